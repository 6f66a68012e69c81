"""spaces/guard.py and the guard defaults of spaces/axes.TaskBounds."""

from __future__ import annotations

import dataclasses

import pytest
from model_sizes import keras_sizes

from spaces import TASKS, task_bounds
from spaces.axes import TaskBounds
from spaces.config import SKIP_INPUT, ConfigError, ModelConfig, conv_layout
from spaces.errors import UserError
from spaces.guard import ResourceLimitError, check, fits, footprint
from spaces.notation import parse_row
from spaces.study import row


@pytest.mark.parametrize(
    ("config", "shape"),
    [
        (parse_row("5L,16,8,8,4,4F(5X5)", "2+2", "2 (p=0.3)", 3, batch_size=3), (29, 37)),
        (parse_row("8L,8F(3X3)", "4+4", 0, 8, batch_size=2), (30, 50)),
        (parse_row("1L,2F(1X1)", batch_size=5), (7, 9)),
        (parse_row("3L(64, 32, 784)", 0, "2", 1, batch_size=4), (28, 28)),
        (parse_row("1L(784)", batch_size=4), (28, 28)),
    ],
    ids=["pooled-odd-size", "deep-pooled", "tiny", "dense", "dense-output-only"],
)
def test_footprint_equals_keras(config, shape):
    size = footprint(config, shape)
    assert keras_sizes(config, shape) == (size.params, size.activation_bytes)


def test_check_message_names_the_model_its_size_and_the_flag():
    config = row("text/3.3/3").config  # about 5.3 GB of layer outputs for 16 whole pages
    size = check(config, (420, 540), max_params=10**6, max_activation_mb=8192)
    assert size.params == 46_033 and 5000 < size.activation_mb < 5400
    with pytest.raises(ResourceLimitError) as caught:
        check(config, (420, 540), max_params=10**6, max_activation_mb=1024)
    message = str(caught.value)
    assert message.startswith("model 4L,16,16,32,128F(3X3) bn 4 is too big: ")
    assert "layer outputs for a batch of 16 at 420x540 exceed the limit of 1,024 MB" in message
    assert "(raise it with --max-activation-mb)" in message and "--max-params" not in message
    with pytest.raises(ResourceLimitError, match="46,033 parameters exceed the limit of 40,000 "
                       r"\(raise it with --max-params\); .* --max-activation-mb"):
        check(config, (420, 540), max_params=40_000, max_activation_mb=1024)
    assert not fits(config, (420, 540), max_params=10**6, max_activation_mb=1024)
    assert issubclass(ResourceLimitError, UserError)


def test_footprint_needs_one_fixed_size():
    with pytest.raises(ConfigError, match="one fixed image size"):
        footprint(ModelConfig(task="text"), (None, 540))  # type: ignore[arg-type]  # the bad input


@pytest.mark.parametrize("task", TASKS)
def test_task_defaults_take_the_studys_conv_models(task):
    """The best model fits every task's defaults; text's ~0.9 billion-parameter dense does not."""
    bounds = task_bounds(task)
    best = row("text/3.3/5").config.replace(task=task, batch_size=max(bounds.batch_sizes))
    assert fits(best, bounds.input_shape, max_params=bounds.max_params,
                max_activation_mb=bounds.max_activation_mb)


def test_bounds_validation():
    text = task_bounds("text")
    with pytest.raises(ConfigError, match="bounds for task 'text': the guard's defaults leave no"):
        dataclasses.replace(text, max_activation_mb=1)
    with pytest.raises(ConfigError, match="families"):
        dataclasses.replace(text, families=("rnn",))
    with pytest.raises(ConfigError, match="max_pool <= max_depth // 2"):
        dataclasses.replace(text, max_pool=6)
    with pytest.raises(ConfigError, match="a dense family needs"):
        dataclasses.replace(text, families=("conv", "dense"))
    with pytest.raises(ConfigError, match="unknown task"):
        TaskBounds(task="cifar", input_shape=(32, 32), families=("conv",), max_depth=2,
                   max_pool=1, batch_sizes=(8,), epochs=1, max_params=10, max_activation_mb=1)


SKIP_CASES = {
    "input-skip-1x1": (parse_row("1L,2F(1X1)", skip=True, batch_size=5), (7, 9)),
    "input-skip-bn-dropout": (
        parse_row("3L,4,8,2F(5X5)", 0, "2 (p=0.1)", 3, skip=True, batch_size=2), (28, 28)),
    "unet-1-odd": (parse_row("2L,3F(3X3)", "1", skip=True, batch_size=3), (37, 53)),
    "unet-2-bn-dropout-5x5": (
        parse_row("5L,16,8,8,4,4F(5X5)", "2+2", "2 (p=0.3)", 3, skip=True, batch_size=3),
        (29, 37)),
    "unet-3-1x1-bn": (parse_row("6L,4,6,8F(1X1)", "3+3", 0, 6, skip=True, batch_size=2),
                      (37, 53)),
    "unet-3-deep-dropout": (
        parse_row("8L,2,3,4,5F(3X3)", "3", "8", 0, skip=True, batch_size=2), (30, 50)),
    "unet-3-middle-layer-page": (
        parse_row("7L,3F(3X3)", "3+3", "1", 1, skip=True, task="text", batch_size=1),
        (258, 540)),
}


@pytest.mark.parametrize("name", SKIP_CASES)
def test_skip_footprint_equals_keras(name):
    config, shape = SKIP_CASES[name]
    size = footprint(config, shape)
    assert keras_sizes(config, shape) == (size.params, size.activation_bytes)
    plain = footprint(config.replace(skip=False), shape)
    assert size.params > plain.params and size.activation_bytes > plain.activation_bytes


@pytest.mark.parametrize(
    ("config", "sources"),
    [
        (parse_row("6L,16F(3X3)", "2+2", skip=True), [None, None, None, None, 1, 0]),
        (parse_row("5L,16F(3X3)", "2+2", skip=True), [None, None, None, 1, 0]),
        (parse_row("3L,16F(3X3)", skip=True), [None, None, SKIP_INPUT]),
        (parse_row("6L,16F(3X3)", "2+2"), [None] * 6),
    ],
    ids=["even", "odd-depth", "input-skip", "no-skip"],
)
def test_conv_layout_names_each_skip_source(config, sources):
    layout = conv_layout(config)
    assert [spec["skip_from"] for spec in layout] == sources
    channels = [0 if s is None else 1 if s == SKIP_INPUT else 16 for s in sources]
    assert [spec["skip_channels"] for spec in layout] == channels
