"""spaces/study.py: the study's rows as data, replayed as the `report` space."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from model_sizes import keras_sizes

from spaces import TASKS, get_space, task_bounds
from spaces import constants as C
from spaces.config import ConfigError, ModelConfig
from spaces.guard import ResourceLimitError, check, footprint
from spaces.notation import format_row, parse_row
from spaces.study import architecture, match, row, study_rows, study_space

# The study's models the guard refuses by default: dense layers over whole images.
REFUSED = {"mnist/1.3/5", "mnist-denoise/2.3/5", "text/3.2/1", "text/3.2/2", "text/3.2/3",
           "text/3.2/4"}
ROWS = study_rows()


def test_rows_are_the_studys_tables():
    assert len(ROWS) == 36
    assert len({r.id for r in ROWS}) == len(ROWS)
    assert [r.id for r in ROWS if r.best] == ["mnist/1.2/2", "mnist-denoise/2.2/3", "text/3.3/5"]
    assert {r.task for r in ROWS} == set(TASKS)
    assert [r.id for r in study_rows("text")][:2] == ["text/3.1/1", "text/3.1/2"]
    best = row("text/3.3/5")
    assert (best.section, best.model, best.epochs, best.batch_size) == ("3.3", 5, 25, 16)
    assert (best.train, best.val) == (0.0014, 0.0015)
    assert best.config.filters == (32, 32, 64, 128) and best.config.optimizer == "adam"


def test_blank_losses_are_decided_per_task():
    """Section 1's code compiles with bce, section 2's with mse; text names mse everywhere."""
    assert {r.loss for r in study_rows("mnist")} == {"bce"}
    assert {r.loss for r in study_rows("mnist-denoise")} == {"mse"}
    assert {r.loss for r in study_rows("text")} == {"mse"}
    assert all(r.config.loss == r.loss for r in ROWS)


def _as_printed(column: str, text: str) -> str:
    """A study column in canonical form: no spaces; pool "k" and "k+k (2X2)" both as "k+k"."""
    text = re.sub(r"\s+", "", text)
    if column == "pool_upsample":
        text = text.replace("(2X2)", "")
        if text.isdigit() and text != "0":
            text = f"{text}+{text}"
    return text


@pytest.mark.parametrize("study_row", ROWS, ids=lambda r: r.id)
def test_rows_print_back_as_the_study_printed_them(study_row):
    """Modulo spacing and the pool forms above; the dense `(a)(b)` form prints as its padded
    half `(a, b, b)` (spaces/notation.py's documented exception), which parses to the same
    model (tests/test_notation.py checks every row's round trip)."""
    printed = format_row(study_row.config)
    for column in ("layers", "pool_upsample", "dropout", "batchnorm"):
        written = getattr(study_row, column)
        if column == "layers" and ")(" in written:
            assert printed[column] == "6L(28*28, 28*28*28, 28*28*28)"
            assert written == "6L(28*28)(28*28*28)"
            continue
        assert _as_printed(column, printed[column]) == _as_printed(column, written), column


def test_unknown_row_and_task():
    with pytest.raises(KeyError, match=r"no study row 'text/9/9'; valid ids: mnist/1.1/1, "):
        row("text/9/9")
    with pytest.raises(ConfigError, match="unknown task 'cifar': expected one of mnist"):
        study_rows("cifar")


def test_match_finds_each_row_by_architecture_alone():
    for study_row in ROWS:
        retrained = study_row.config.replace(epochs=3, batch_size=8, lr=0.01, loss="mae")
        assert match(retrained) is study_row
    # 3.3/4 and 3.3/5 differ only in one BatchNormalization layer.
    assert match(row("text/3.3/4").config.replace(batchnorm=0)) is row("text/3.3/5")
    # Same model on another task, another kernel, another dropout rate: no row.
    assert match(row("text/3.3/5").config.replace(task="mnist")) is None
    assert match(row("text/3.3/5").config.replace(kernel=5)) is None
    assert match(row("text/3.3/1").config.replace(dropout_rate=0.25)) is None
    # The rate of a model without dropout is not part of its architecture.
    assert architecture(ModelConfig(dropout_rate=0.3)) == architecture(ModelConfig())


@pytest.mark.parametrize("task", TASKS)
def test_study_space_replays_every_row(task):
    points = get_space("report", task)
    assert points == study_space(task)
    assert [p[C.REPORT_KEY] for p in points] == [r.id for r in study_rows(task)]
    for point in points:
        config = ModelConfig.from_dict(point[C.MODEL_KEY])
        assert config == row(point[C.REPORT_KEY]).config


@pytest.mark.parametrize("study_row", ROWS, ids=lambda r: r.id)
def test_every_row_builds_unless_the_guard_refuses_it(study_row):
    config, shape = study_row.config, task_bounds(study_row.task).input_shape
    if study_row.id in REFUSED:
        with pytest.raises(ResourceLimitError, match=r"raise it with --max-params"):
            check(config, shape, **task_bounds(study_row.task).limits)
        return
    size = check(config, shape, **task_bounds(study_row.task).limits)
    assert keras_sizes(config, shape) == (size.params, size.activation_bytes)


def test_refused_dense_text_model_message():
    with pytest.raises(ResourceLimitError) as caught:
        check(row("text/3.2/1").config, (420, 540), **task_bounds("text").limits)
    message = str(caught.value)
    assert "3L(2000, 2000, 226800)" in message
    assert "911,430,800 parameters exceed the limit of 5,000,000" in message
    assert "--max-params" in message and "--max-activation-mb" not in message


def test_best_model_has_the_studys_parameter_count():
    config = parse_row("4L,32,32,64,128F(3X3)", task="text")
    assert footprint(config, (420, 540)).params == 103_073
    assert keras_sizes(config, (28, 28))[0] == 103_073


@pytest.mark.parametrize("space", ["default", "study-axes"])
@pytest.mark.parametrize("task", TASKS)
def test_define_by_run_does_no_real_work(task, space):
    """Ray runs the space on the driver for every trial: it must only do arithmetic, never
    build a model (its speed is measured in bench/bench_space.py, not asserted here)."""
    script = (
        "import sys, optuna, spaces\n"
        f"space = spaces.get_space({space!r}, {task!r})\n"
        "study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))\n"
        "for _ in range(200):\n"
        "    trial = study.ask(); space(trial); study.tell(trial, 0.0)\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'ray') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
