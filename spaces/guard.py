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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

from spaces.config import ConfigError, ModelConfig, conv_layout, dense_layout
from spaces.errors import UserError
from spaces.notation import describe

FLOAT_BYTES = 4
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

    @property
    def activation_mb(self) -> float:
        return self.activation_bytes / MB


def _conv_footprint(config: ModelConfig, height: int, width: int) -> tuple[int, int]:
    k2 = config.kernel * config.kernel
    params = 0
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
    values += h * w
    if config.pool:
        values += height * width  # CropTo
    return params, values


def _dense_footprint(config: ModelConfig, height: int, width: int) -> tuple[int, int]:
    n_in = height * width
    params = 0
    values = n_in  # Flatten
    for spec in dense_layout(config):
        n = spec["width"]
        params += n_in * n + n
        n_in = n
        values += (1 + int(spec["batchnorm"]) + int(spec["dropout"])) * n
        if spec["batchnorm"]:
            params += _BATCHNORM_WEIGHTS * n
    values += n_in  # Reshape
    return params, values


_FAMILIES = {"conv": _conv_footprint, "dense": _dense_footprint}


def footprint(config: ModelConfig, input_shape: tuple[int, int]) -> Footprint:
    """Parameters and activation bytes of `config` on images of `input_shape` (height, width)."""
    if len(input_shape) != 2 or any(not isinstance(d, int) or d < 1 for d in input_shape):
        raise ConfigError(
            f"the guard sizes a model at one fixed image size (height, width); "
            f"got {input_shape!r}"
        )
    params, values = _FAMILIES[config.family](config, *input_shape)
    return Footprint(params=params, activation_bytes=values * config.batch_size * FLOAT_BYTES)


def _violations(
    config: ModelConfig, size: Footprint, input_shape: tuple[int, int], max_params: int,
    max_activation_mb: float,
) -> list[str]:
    over = []
    if size.params > max_params:
        over.append(
            f"{size.params:,} parameters exceed the limit of {max_params:,} "
            f"(raise it with --max-params)"
        )
    if size.activation_mb > max_activation_mb:
        height, width = input_shape
        over.append(
            f"{math.ceil(size.activation_mb):,} MB of layer outputs for a batch of "
            f"{config.batch_size} at {height}x{width} exceed the limit of "
            f"{max_activation_mb:,g} MB (raise it with --max-activation-mb)"
        )
    return over


def fits(
    config: ModelConfig,
    input_shape: tuple[int, int],
    *,
    max_params: int,
    max_activation_mb: float,
) -> bool:
    """Whether `config` is within both limits (what `check` would accept)."""
    size = footprint(config, input_shape)
    return not _violations(config, size, input_shape, max_params, max_activation_mb)


def check(
    config: ModelConfig,
    input_shape: tuple[int, int],
    *,
    max_params: int,
    max_activation_mb: float,
) -> Footprint:
    """The footprint of `config`, or ResourceLimitError naming the flag that would allow it."""
    size = footprint(config, input_shape)
    over = _violations(config, size, input_shape, max_params, max_activation_mb)
    if over:
        raise ResourceLimitError(f"model {describe(config)} is too big: {'; '.join(over)}")
    return size
