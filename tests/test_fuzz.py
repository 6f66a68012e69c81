"""Property-based fuzzing of what users type: the study's notation and JSON configs.

Any input either gives a config that round-trips (notation: format -> parse, describe -> parse;
JSON: to_json -> from_json) or raises ConfigError with a message; never another exception.
Random text tests the parser's front door; near-valid notation and JSON built from the
grammar's own pieces reach its inner branches (expansion, kernels, counts, field checks).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.cli import parse as parse_cli
from search.options import Options
from search.single import resolve_config
from spaces import config as config_module
from spaces.config import (
    FAMILIES,
    LOSSES,
    MAX_DENSE_WIDTH,
    MAX_DEPTH,
    MAX_FILTERS,
    MAX_KERNEL,
    OPTIMIZERS,
    ConfigError,
    ModelConfig,
)
from spaces.constants import TASKS
from spaces.notation import describe, format_row, parse, parse_row
from spaces.study import architecture

# No example database on disk (the repository has no place for it), no per-example deadline
# (the first examples pay for imports).
FAST = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
TRAINING_FIELDS = ("task", "loss", "optimizer", "lr", "batch_size", "epochs")


def _training(config: ModelConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in TRAINING_FIELDS}


def outcome(call: Any, *args: Any, **kwargs: Any) -> Any:
    """`call(...)`'s result, or None where it raised ConfigError with a message.

    Any other exception propagates and fails the test: that is what the fuzzer looks for.
    """
    try:
        return call(*args, **kwargs)
    except ConfigError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message, f"unclear message {message!r}"
        return None


def assert_round_trips(config: ModelConfig) -> None:
    """Notation (columns and describe's line) and JSON give the same config back."""
    training = _training(config)
    # The study's four architecture columns have no place for skip connections; the
    # leaderboard keeps them in a column of their own, given here as the training fields are.
    from_columns = parse_row(**format_row(config), **training, skip=config.skip)
    assert architecture(from_columns) == architecture(config)
    assert _training(from_columns) == training
    assert parse(describe(config), **training) == from_columns
    assert describe(from_columns) == describe(config)
    assert ModelConfig.from_json(config.to_json()) == config
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


# --- strategies ----------------------------------------------------------------------------------

# Numbers as a user might type them: small, boundary, huge, zero, and non-ASCII digits.
number_text = st.one_of(
    st.integers(0, 40).map(str),
    st.sampled_from(["0", "1", "2", "3", "28", "784", "226800", "4097", "99", "00", "007"]),
    st.integers(0, 10**30).map(str),
    st.just("9" * 5000),  # int() would refuse it with a bare ValueError
    st.sampled_from(["²", "٣", "３", "-1", "+2", "1.5", "1e3", "", " "]),
)
kernel_text = st.one_of(number_text, st.sampled_from(["3X3", "5X5", "3x3", "3X5", "1X1"]))


@st.composite
def conv_notation(draw: st.DrawFn) -> str:
    n = draw(number_text)
    values = draw(st.lists(number_text, min_size=0, max_size=8))
    k = draw(number_text)
    k2 = draw(st.one_of(st.just(k), number_text))
    sep = draw(st.sampled_from([",", ", ", ",,", " , "]))
    text = f"{n}L,{sep.join(values)}F({k}X{k2})"
    return draw(st.one_of(st.just(text), mutated(text)))


@st.composite
def dense_notation(draw: st.DrawFn) -> str:
    n = draw(number_text)
    width = st.one_of(number_text, st.lists(number_text, min_size=1, max_size=4).map("*".join))
    groups = draw(st.lists(st.lists(width, min_size=0, max_size=4), min_size=1, max_size=3))
    text = f"{n}L" + "".join(f"({', '.join(g)})" for g in groups)
    return draw(st.one_of(st.just(text), mutated(text)))


def mutated(text: str) -> st.SearchStrategy[str]:
    """`text` with one character dropped, doubled or replaced by a notation character."""
    def mutate(args: tuple[int, str, int]) -> str:
        where, char, how = args
        i = where % (len(text) or 1)
        return [text[:i] + text[i + 1:], text[:i] + text[i] * 2 + text[i + 1:],
                text[:i] + char + text[i + 1:]][how]

    return st.tuples(st.integers(0, 10**6), st.sampled_from(list("LF(),X*+p= .0-")),
                     st.integers(0, 2)).map(mutate)


pool_text = st.one_of(number_text, st.builds(lambda a, b: f"{a}+{b}", number_text, number_text),
                      st.sampled_from(["1+1 (2X2)", "2+2(2x2)", "nan", "-", "", "2+"]))
dropout_text = st.one_of(
    number_text,
    st.builds(lambda n, p: f"{n} (p={p})", number_text, st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["0.2", ".5", "1.", "1.2.3", "e", "1e-05", "-0.1", "1", ""]))),
)
notation = st.one_of(conv_notation(), dense_notation(), st.text(max_size=40),
                     st.text(alphabet="0123456789LFX(),*+ p=.", max_size=40))


@st.composite
def valid_configs(draw: st.DrawFn, *, small: bool = False) -> ModelConfig:
    """Any config the validator accepts: every family, layout and training field."""
    task = draw(st.sampled_from(["mnist", "mnist-denoise"] if small else TASKS))
    family = draw(st.sampled_from(FAMILIES))
    depth = draw(st.integers(1, 4 if small else MAX_DEPTH))
    if family == "conv":
        widest = 8 if small else MAX_FILTERS
        filters = tuple(draw(st.lists(st.integers(1, widest), min_size=depth, max_size=depth)))
        largest = 5 if small else (27 if task != "text" else MAX_KERNEL)
        kernel = draw(st.integers(0, largest // 2)) * 2 + 1
        pool = draw(st.integers(0, min(depth // 2, 2 if small else config_module.MAX_POOL)))
        arch: dict[str, Any] = {"filters": filters, "kernel": kernel, "pool": pool}
        hidden = depth
    else:
        widest = 16 if small else MAX_DENSE_WIDTH
        hidden_widths = draw(st.lists(st.integers(1, widest), min_size=depth - 1,
                                      max_size=depth - 1))
        output = 28 * 28 if small else draw(st.integers(1, MAX_DENSE_WIDTH))
        arch = {"filters": (), "dense_widths": (*hidden_widths, output),
                "kernel": draw(st.integers(0, 13)) * 2 + 1}
        hidden = depth - 1
    return ModelConfig(
        task=task, family=family, **arch,
        dropout=draw(st.integers(0, hidden)),
        dropout_rate=draw(st.floats(0.0, 1.0, exclude_max=True)),
        batchnorm=draw(st.integers(0, hidden)),
        loss=draw(st.sampled_from(LOSSES)),
        optimizer=draw(st.sampled_from(OPTIMIZERS)),
        lr=draw(st.floats(1e-12, config_module.MAX_LR)),
        batch_size=draw(st.integers(1, config_module.MAX_BATCH_SIZE)),
        epochs=draw(st.integers(1, config_module.MAX_EPOCHS)),
    )


# Any JSON value, and the odd values JSON and Python produce (NaN, huge ints, bools).
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10),
    st.sampled_from(list(TASKS + FAMILIES + LOSSES + OPTIMIZERS)),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)
field_values = st.one_of(
    json_values,
    st.integers(-3, 70), st.lists(st.integers(-2, 5000), max_size=6),
    st.lists(st.one_of(st.integers(0, 64), st.booleans(), st.floats(), st.text(max_size=2)),
             max_size=4),
)


@st.composite
def near_valid_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A valid config's dict with a few fields replaced by odd values (or unknown keys)."""
    data = draw(valid_configs()).to_dict()
    for name in draw(st.lists(st.sampled_from(sorted(data)), max_size=3, unique=True)):
        data[name] = draw(field_values)
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.text(max_size=6))] = draw(json_values)
    return data


# --- the notation --------------------------------------------------------------------------------


@FAST
@given(text=notation, pool=pool_text, dropout=dropout_text, batchnorm=number_text,
       task=st.sampled_from(TASKS))
def test_any_notation_parses_to_a_round_tripping_config_or_a_config_error(
    text: str, pool: str, dropout: str, batchnorm: str, task: str
) -> None:
    config = outcome(parse_row, text, pool, dropout, batchnorm, task=task)
    if config is not None:
        assert_round_trips(config)


@FAST
@given(line=st.one_of(
    st.text(max_size=60),
    st.builds(lambda layers, extra: f"{layers} {extra}", notation, st.one_of(
        st.builds(lambda p, d, b: f"pool {p} dropout {d} bn {b}", pool_text, dropout_text,
                  number_text),
        st.text(alphabet="pooldrbn 0123456789()+=.X", max_size=30))),
))
def test_any_description_parses_or_is_refused(line: str) -> None:
    config = outcome(parse, line, task="text")
    if config is not None:
        assert_round_trips(config)


@FAST
@given(config=valid_configs())
def test_every_valid_config_round_trips(config: ModelConfig) -> None:
    assert_round_trips(config)


# --- JSON ----------------------------------------------------------------------------------------


@FAST
@given(data=st.one_of(near_valid_dicts(), json_values,
                      st.dictionaries(st.sampled_from(
                          [f.name for f in config_module.dataclasses.fields(ModelConfig)]),
                          field_values, max_size=6)))
def test_any_json_value_loads_as_a_round_tripping_config_or_a_config_error(data: Any) -> None:
    config = outcome(ModelConfig.from_dict, data)
    if config is not None:
        assert_round_trips(config)
        for name, value in data.items():  # what was accepted is what was given
            given_value = tuple(value) if isinstance(value, list) else value
            assert getattr(config, name) == given_value
            # Booleans are never numbers; `skip` is the one field that is a bool.
            assert isinstance(value, bool) == (name == "skip")


def test_a_skip_config_round_trips_with_the_leaderboards_skip_column() -> None:
    """Found by the JSON fuzzer: an input skip (pool 0) on a 1-filter model."""
    assert_round_trips(ModelConfig.from_json(
        '{"task": "mnist", "family": "conv", "filters": [1], "kernel": 1, "pool": 0, '
        '"loss": "mse", "lr": 1.0, "batch_size": 1, "epochs": 1, "skip": true}'))


@FAST
@given(text=st.one_of(
    st.text(max_size=80),
    st.builds(json.dumps, near_valid_dicts()),
    st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(4300, 5000).map(lambda digits: '{"epochs": ' + "9" * digits + "}"),
))
def test_any_json_text_loads_or_is_refused(text: str) -> None:
    config = outcome(ModelConfig.from_json, text)
    if config is not None:
        assert_round_trips(config)


# --- fields: the checks the fuzzer led to, stated once each -------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": True}, "epochs must be an integer, got True"),
        ({"filters": (16, True)}, r"filters\[1\] must be an integer, got True"),
        ({"filters": (1.5,)}, r"filters\[0\] must be an integer, got 1.5"),
        ({"filters": "16"}, "filters must be a list of integers"),
        ({"filters": (MAX_FILTERS + 1,)}, r"filters\[0\] must be between 1 and 4096"),
        ({"filters": (8,) * (MAX_DEPTH + 1)}, "filters has 65 layers; at most 64"),
        ({"kernel": 29}, "kernel 29 is larger than the mnist task's 28x28 images"),
        ({"task": "text", "kernel": MAX_KERNEL + 2}, "kernel must be between 1 and 63"),
        ({"lr": 10**400}, "lr must be a finite number"),
        ({"lr": math.nan}, "lr must be a finite number, got nan"),
        ({"lr": "0.1"}, r"lr must be a number, got '0.1' \(str\)"),
        ({"lr": False}, "lr must be a number, got False"),
        ({"lr": 0}, r"lr must be in \(0, 10\]"),
        ({"dropout_rate": 1.0}, r"dropout_rate must be in \[0, 1\)"),
        ({"batch_size": 2.0}, "batch_size must be an integer, got 2.0"),
        ({"task": ["mnist"]}, r"task \['mnist'\] is not one of"),
        ({"pool": 10**5000}, "pool must be between 0 and 8, got a int value too large to print"),
        ({"family": "dense", "dense_widths": (784,)},
         r"a dense model has no filters, got \(16,\)"),
        ({"filters": None}, "filters must be a list of integers, got None"),
    ],
)
def test_fields_are_type_and_range_checked(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**changes)


def test_json_loader_names_its_problem() -> None:
    with pytest.raises(ConfigError, match="must be a JSON object"):
        ModelConfig.from_json("[1, 2]")
    with pytest.raises(ConfigError, match="not a JSON config"):
        ModelConfig.from_json("[" * 100_000)
    with pytest.raises(ConfigError, match="unknown config keys: 1, depth"):
        ModelConfig.from_dict({1: 2, "depth": 3})
    # a key a reader could not see is shown as its repr, on one line
    with pytest.raises(ConfigError, match=r"^unknown config keys: '', '\\n'$"):
        ModelConfig.from_dict({"\n": None, "": 1})
    with pytest.raises(ConfigError, match="at most 64 layers"):
        parse_row("99999999999L,16F(3X3)")
    with pytest.raises(ConfigError, match="at most 12 digits"):
        parse_row("3L,16F(" + "9" * 5000 + "X3)")
    with pytest.raises(ConfigError, match="not a batchnorm layer count"):
        parse_row("4L,16F(3X3)", 0, 0, "²")
    with pytest.raises(ConfigError, match="dropout rate '1.2.3'"):
        parse_row("4L,16F(3X3)", 0, "1 (p=1.2.3)")
    with pytest.raises(ConfigError, match="dense width '9999999\\*9999999' exceeds"):
        parse_row("2L(9999999*9999999, 784)")


def test_dropout_rates_print_exactly_enough_to_read_back() -> None:
    config = parse_row("4L,16F(3X3)", 0, "2 (p=0.2)")
    assert describe(config) == "4L,16F(3X3) dropout 2 (p=0.2)"  # the study's spelling kept
    odd = config.replace(dropout_rate=0.123456789)
    assert parse(describe(odd)) == odd  # ':g' alone printed 0.123457
    tiny = config.replace(dropout_rate=1e-05)
    assert parse(describe(tiny)) == tiny  # '1e-05' did not parse


# --- --config FILE.json, as the command line loads it ---------------------------------------------


def _args(config: str) -> Options:
    return parse_cli(["--task", "mnist", "--config", config])[0]


@settings(max_examples=60, deadline=None, database=None)
@given(text=st.one_of(st.builds(json.dumps, near_valid_dicts()), st.text(max_size=40),
                      st.integers(900, 3000).map(lambda d: "[" * d + "]" * d)))
def test_config_file_loads_or_fails_with_a_message(tmp_path_factory: pytest.TempPathFactory,
                                                   text: str) -> None:
    path = tmp_path_factory.mktemp("config") / "c.json"
    path.write_text(text)
    try:
        config = resolve_config(_args(str(path)))
    except ValueError as exc:  # what the command line reports (ConfigError is a ValueError)
        assert str(path) in str(exc)
        return
    assert config.task == "mnist"
    assert_round_trips(config)


# --- building a small sample ---------------------------------------------------------------------


@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(config=valid_configs(small=True))
def test_valid_configs_build_on_28x28(config: ModelConfig) -> None:
    import numpy as np

    from search.models import build_model

    model = build_model(config, (28, 28), compile=False)
    x = np.zeros((1, 28, 28, 1), "float32")
    assert model.predict_on_batch(x).shape == x.shape

