"""The resource guard: a model's size by arithmetic, and refusal of models that are too big.

`footprint` mirrors the layer order of `spaces.config.conv_layout` / `dense_layout` (the single
source the Keras builder also follows), so it needs no ML framework and costs microseconds:
the full space calls it on every draw.

- params: exactly Keras' `model.count_params()`: Conv2D k*k*c_in*c_out + c_out, Dense
  n_in*n_out + n_out, BatchNormalization 4*c (gamma, beta and the two moving statistics).
- activation_bytes: float32 bytes of every layer's output (the input excepted) for one batch
  of `config.batch_size` images of `input_shape`: the padding and cropping layers of pooled
  conv models, each Conv2D, BatchNormalization, Dropout, MaxPooling2D, UpSampling2D and
  Concatenate (skip connections), the final Conv2D(1); for dense models Flatten, each Dense,
  BatchNormalization, Dropout and the Reshape. A forward pass keeps these for the backward
  pass, so they bound training memory from below.

`check` can size training and validation apart: a training batch at the patch size, and
validation's few whole images at a time (`search/trial.py` validates pages `EVAL_PAGES` at a
time, whatever the training batch); the larger must fit.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import TypedDict

from spaces.config import ConfigError, ModelConfig, conv_layout, dense_layout
from spaces.errors import UserError
from spaces.notation import describe

FLOAT_BYTES = 4
EVAL_PAGES = 4  # whole pages validated at a time (search/trial.py), whatever the batch
MB = 2**20
_BATCHNORM_WEIGHTS = 4  # gamma, beta, moving mean, moving variance (all counted by Keras)


class ResourceLimitError(UserError):
    """A model over the guard's parameter or activation-memory limit."""


class Limits(TypedDict):
    """The guard's two limits, as `check`/`fits` keyword arguments."""

    max_params: int
    max_activation_mb: float


@dataclass(frozen=True)
class Footprint:
    params: int
    activation_bytes: int
    multiply_adds: int  # one forward pass over one image

    @property
    def activation_mb(self) -> float:
        return self.activation_bytes / MB


def _conv_footprint(config: ModelConfig, height: int, width: int) -> tuple[int, int, int]:
    k2 = config.kernel * config.kernel
    params = macs = 0
    values = 0  # per image, summed over layer outputs
    multiple = 2**config.pool
    h, w = height, width
    if config.pool:
        h, w = -(-h // multiple) * multiple, -(-w // multiple) * multiple
        values += h * w  # PadToMultiple
    channels = 1
    for spec in conv_layout(config):
        f = spec["filters"]
        params += k2 * channels * f + f
        macs += k2 * channels * f * h * w
        channels = f
        outputs = 1 + int(spec["batchnorm"]) + int(spec["dropout"])  # Conv2D, BN, Dropout
        values += outputs * h * w * f
        if spec["batchnorm"]:
            params += _BATCHNORM_WEIGHTS * f
        if spec["pool"]:
            h, w = h // 2, w // 2
            values += h * w * f
        if spec["upsample"]:
            h, w = h * 2, w * 2
            values += h * w * f
        if spec["skip_channels"]:
            channels = f + spec["skip_channels"]
            values += h * w * channels  # Concatenate
    params += k2 * channels + 1  # the final sigmoid Conv2D(1)
    macs += k2 * channels * h * w
    values += h * w
    if config.pool:
        values += height * width  # CropTo
    return params, values, macs


def _dense_footprint(config: ModelConfig, height: int, width: int) -> tuple[int, int, int]:
    n_in = height * width
    params = macs = 0
    values = n_in  # Flatten
    for spec in dense_layout(config):
        n = spec["width"]
        params += n_in * n + n
        macs += n_in * n
        n_in = n
        values += (1 + int(spec["batchnorm"]) + int(spec["dropout"])) * n
        if spec["batchnorm"]:
            params += _BATCHNORM_WEIGHTS * n
    values += n_in  # Reshape
    return params, values, macs


_FAMILIES = {"conv": _conv_footprint, "dense": _dense_footprint}


def footprint(config: ModelConfig, input_shape: tuple[int, int]) -> Footprint:
    """Parameters, activation bytes and multiply-adds per image of `config` on images of
    `input_shape` (height, width)."""
    if len(input_shape) != 2 or any(not isinstance(d, int) or d < 1 for d in input_shape):
        raise ConfigError(
            f"the guard sizes a model at one fixed image size (height, width); "
            f"got {input_shape!r}"
        )
    params, values, macs = _FAMILIES[config.family](config, *input_shape)
    return Footprint(params=params, activation_bytes=values * config.batch_size * FLOAT_BYTES,
                     multiply_adds=macs)


def _largest_batch(config: ModelConfig, shape: tuple[int, int], limit_bytes: float) -> int:
    per_image = footprint(config.replace(batch_size=1), shape).activation_bytes
    return int(limit_bytes // per_image) if per_image else 0


def _largest_patch(config: ModelConfig, shape: tuple[int, int], limit_bytes: float) -> int:
    """The largest square patch (a multiple of 8 and of the pooling's 2^k) a batch fits in."""
    step = max(8, 2**config.pool)
    size = min(shape) // step * step
    while size >= step:
        if footprint(config, (size, size)).activation_bytes <= limit_bytes:
            return size
        size -= step
    return 0


def multiply_adds(config: ModelConfig, input_shape: tuple[int, int]) -> int:
    """Multiply-adds of one forward pass over one image of `input_shape`: a trial's cost per
    training example, known before it trains (the backward pass costs about twice as much,
    in the same proportion for every model)."""
    return footprint(config, input_shape).multiply_adds


def _violations(
    config: ModelConfig, input_shape: tuple[int, int], max_params: int,
    max_activation_mb: float, train_shape: tuple[int, int] | None = None,
    eval_batch: int | None = None, fixes: Collection[str] = ("limit",),
) -> tuple[Footprint, list[str]]:
    """The footprint the limits apply to and what exceeds them.

    Training keeps a batch of `config.batch_size` at `train_shape` (patches; default the
    input shape); validation predicts `eval_batch` whole images of `input_shape` at a time
    where it is given. The larger of the two is what must fit. `fixes` names the flags the
    caller accepts ("batch": --batch-size, "patch": --patch-size, "limit": the limits).
    """
    train = footprint(config, train_shape or input_shape)
    size = train
    evaluation = None
    if eval_batch is not None:
        evaluation = footprint(config.replace(batch_size=eval_batch), input_shape)
        size = Footprint(train.params, max(train.activation_bytes, evaluation.activation_bytes),
                         train.multiply_adds)
    over = []
    if size.params > max_params:
        over.append(
            f"{size.params:,} parameters exceed the limit of {max_params:,} "
            f"(raise it with --max-params)"
        )
    limit = max_activation_mb * MB
    if size.activation_bytes > limit:
        need = f"{math.ceil(size.activation_mb):,}"
        if evaluation is not None and evaluation.activation_bytes > limit:
            height, width = input_shape
            over.append(
                f"{need} MB of layer outputs to validate {eval_batch} whole image(s) of "
                f"{height}x{width} at a time exceed the limit of {max_activation_mb:,g} MB "
                f"(raise it with --max-activation-mb)"
            )
        else:
            height, width = train_shape or input_shape
            text = (f"{math.ceil(train.activation_mb):,} MB of layer outputs for a batch of "
                    f"{config.batch_size} at {height}x{width} exceed the limit of "
                    f"{max_activation_mb:,g} MB")
            ways = []
            batch = _largest_batch(config, train_shape or input_shape, limit)
            if "batch" in fixes and 1 <= batch < config.batch_size:
                ways.append(f"--batch-size {batch}")
            conv = config.family == "conv"  # a dense model is tied to one image size
            patch = _largest_patch(config, input_shape, limit) if conv else 0
            if "patch" in fixes and patch and (train_shape is None or patch < min(train_shape)):
                ways.append(f"--patch-size {patch} (train on patches; validation stays on "
                            f"whole images)")
            if ways:
                ways.append(f"--max-activation-mb {need}")
                text += f"; it fits with {', or '.join(ways)}"
            else:
                text += " (raise it with --max-activation-mb)"
            over.append(text)
    return size, over


def fits(
    config: ModelConfig,
    input_shape: tuple[int, int],
    *,
    max_params: int,
    max_activation_mb: float,
) -> bool:
    """Whether `config` is within both limits (what `check` would accept)."""
    return not _violations(config, input_shape, max_params, max_activation_mb)[1]


def check(
    config: ModelConfig,
    input_shape: tuple[int, int],
    *,
    max_params: int,
    max_activation_mb: float,
    train_shape: tuple[int, int] | None = None,
    eval_batch: int | None = None,
    fixes: Collection[str] = ("limit",),
) -> Footprint:
    """The footprint of `config`, or ResourceLimitError naming each flag that would allow it
    (among `fixes`; see `_violations` for `train_shape` and `eval_batch`)."""
    size, over = _violations(config, input_shape, max_params, max_activation_mb,
                             train_shape, eval_batch, fixes)
    if over:
        raise ResourceLimitError(f"model {describe(config)} is too big: {'; '.join(over)}")
    return size
