"""The model configuration: plain data shared by spaces, the model builder and results.

A config is what a search space samples, what a trial trains and what a leaderboard row
describes. It lives in `spaces/` (the leaf package) so that `search/` and `results/` can both
speak it without importing each other; it imports nothing of ours and no ML framework.

Layer semantics, decided once (see README "Notation"):
- `filters` has one entry per hidden Conv2D layer (relu, `same` padding). A final sigmoid
  Conv2D(1) is always added and, as in the study, never counted.
- `pool` MaxPooling2D+UpSampling2D pairs: a MaxPooling2D(2) follows each of the first `pool`
  convolutions of the encoder half (the first ceil(n/2) layers) and an UpSampling2D(2) follows
  each of the last `pool` convolutions of the decoder half. So `pool <= n // 2`.
- `batchnorm` BatchNormalization layers and `dropout` Dropout layers are spread evenly over the
  hidden layers (index floor(i * n / count)); within a block the order is
  layer -> BatchNormalization -> Dropout -> pooling/upsampling.
- Dense models (`family == "dense"`) flatten the image, apply `dense_widths` (relu), the last
  of which is the sigmoid output layer and must equal H*W (the study printed 226800 = 420*540),
  then reshape back to the image.
- `skip` (conv only, default False) adds skip connections, each a Concatenate on the channels
  axis placed last in its block (layer -> BatchNormalization -> Dropout -> pooling/upsampling
  -> Concatenate), so the next convolution, or the output Conv2D(1), sees both tensors:
  - with `pool` k >= 1, U-Net style: the feature map just before each encoder MaxPooling2D
    (taken after the zero-padding, so sizes always match) is kept, and each decoder
    UpSampling2D output is concatenated with one of them, last in first out: the last pooled
    level meets the first upsampled one. Decoder layer i meets encoder layer n - 1 - i.
  - with `pool` 0: the input image is concatenated to the last hidden feature map (an input
    skip: the model can pass clean background straight through and learn only the correction).
  Configs saved before this field existed have no `skip` key and load as skip=False.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass
from typing import Any

from spaces import constants as C
from spaces.errors import UserError

FAMILIES = ("conv", "dense")
LOSSES = ("mse", "bce", "mae")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
# `conv_layout`'s "skip_from" for the input skip of unpooled skip models (not a layer index).
SKIP_INPUT = "input"

# Hard bounds, far beyond every search space and study row, so that absurd values (which Keras
# could not build, or would build into an out-of-memory model) are refused here with the field's
# name. The resource guard (spaces/guard.py) adds each task's tighter limits on top.
MAX_DEPTH = 64  # hidden layers; the study's deepest has 14
MAX_FILTERS = 4096  # per conv layer; the study's widest has 128
MAX_KERNEL = 63  # square kernel side; the study's largest is 5
MAX_POOL = 8  # pooling pairs: the input is padded to a multiple of 2**pool (256)
MAX_DENSE_WIDTH = 1 << 20  # units; the study's widest is 226800 = 420*540, one per page pixel
MAX_BATCH_SIZE = 1 << 16
MAX_EPOCHS = 100_000
MAX_LR = 10.0
# Tasks whose images have one known size (H, W); the text task's depends on --resize.
IMAGE_SHAPES = {"mnist": (28, 28), "mnist-denoise": (28, 28)}
_INT_FIELDS = {  # field -> (smallest, largest)
    "kernel": (1, MAX_KERNEL), "pool": (0, MAX_POOL), "dropout": (0, MAX_DEPTH),
    "batchnorm": (0, MAX_DEPTH), "batch_size": (1, MAX_BATCH_SIZE), "epochs": (1, MAX_EPOCHS),
}
_CHOICES = {"task": C.TASKS, "family": FAMILIES, "loss": LOSSES, "optimizer": OPTIMIZERS}


class ConfigError(UserError, ValueError):
    """A config that cannot describe a model (bad field, impossible layer layout), or a task,
    space or study row that does not exist. Also a ValueError: a bad field value is one."""


def shown(value: object, limit: int = 60) -> str:
    """`repr(value)` cut to one short line; safe for values too big or deep to print."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # ints beyond 4300 digits, very deep nesting
        return f"a {type(value).__name__} value too large to print"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _bad(msg: str) -> ConfigError:
    return ConfigError(f"invalid config: {msg}")


def _int(name: str, value: object, low: int, high: int) -> int:
    """An integer, numpy's included, in [low, high]; never a bool (True is not a layer count;
    numpy's bools are no numbers.Integral)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise _bad(f"{name} must be an integer, got {shown(value)} ({type(value).__name__})")
    number = int(value)
    if not low <= number <= high:
        raise _bad(f"{name} must be between {low} and {high}, got {shown(value)}")
    return number


def _float(name: str, value: object) -> float:
    """A finite float from any real number (not a bool); ints too large for a float refused."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise _bad(f"{name} must be a number, got {shown(value)} ({type(value).__name__})")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise _bad(f"{name} must be a finite number, got {shown(value)}")
    return result


def _ints(name: str, values: object, high: int) -> tuple[int, ...]:
    """A list of at most MAX_DEPTH integers in [1, high], as a tuple."""
    if not isinstance(values, (list, tuple)):
        raise _bad(f"{name} must be a list of integers, got {shown(values)} "
                   f"({type(values).__name__})")
    if len(values) > MAX_DEPTH:
        raise _bad(f"{name} has {len(values)} layers; at most {MAX_DEPTH} are allowed")
    return tuple(_int(f"{name}[{i}]", v, 1, high) for i, v in enumerate(values))


@dataclass(frozen=True)
class ModelConfig:
    """One autoencoder and how to train it. Round-trips through JSON via to_dict/from_dict."""

    task: str = "mnist"
    family: str = "conv"
    filters: tuple[int, ...] = (16,)
    kernel: int = 3
    pool: int = 0
    dropout: int = 0
    dropout_rate: float = 0.2
    batchnorm: int = 0
    dense_widths: tuple[int, ...] = ()
    loss: str = "mse"
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 50
    skip: bool = False

    def __post_init__(self) -> None:
        self.validate()

    @property
    def depth(self) -> int:
        """Hidden layers as the study counts them (conv layers, or dense layers)."""
        return len(self.filters) if self.family == "conv" else len(self.dense_widths)

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def validate(self) -> None:
        """Check every field's type and range (normalizing numbers to int, float and tuples),
        then the layer layout. Raises ConfigError naming the field."""
        for name, valid in _CHOICES.items():
            value = getattr(self, name)
            if not isinstance(value, str) or value not in valid:
                raise _bad(f"{name} {shown(value)} is not one of {', '.join(valid)}")
        for name, (low, high) in _INT_FIELDS.items():
            self._set(name, _int(name, getattr(self, name), low, high))
        self._set("filters", _ints("filters", self.filters, MAX_FILTERS))
        self._set("dense_widths", _ints("dense_widths", self.dense_widths, MAX_DENSE_WIDTH))
        self._set("lr", _float("lr", self.lr))
        self._set("dropout_rate", _float("dropout_rate", self.dropout_rate))
        if not 0 < self.lr <= MAX_LR:
            raise _bad(f"lr must be in (0, {MAX_LR:g}], got {self.lr!r}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise _bad(f"dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
        if not isinstance(self.skip, bool):  # 0/1 or "false" would silently mean something
            raise _bad(f"skip must be true or false, got {shown(self.skip)} "
                       f"({type(self.skip).__name__})")
        if self.family == "conv":
            self._validate_conv()
        else:
            self._validate_dense()
        hidden = self.depth if self.family == "conv" else self.depth - 1
        for name, count in (("batchnorm", self.batchnorm), ("dropout", self.dropout)):
            if not 0 <= count <= hidden:
                raise _bad(f"{name} layers ({count}) must be between 0 and {hidden} for this "
                           f"model")

    def _validate_dense(self) -> None:
        if not self.dense_widths:
            raise _bad("a dense model needs at least one layer (dense_widths)")
        if self.filters:
            raise _bad(f"a dense model has no filters, got {shown(self.filters)}")
        if self.pool:
            raise _bad("a dense model has no pooling")
        if self.skip:
            raise _bad("skip connections are for conv models; a dense model needs skip=False")

    def _validate_conv(self) -> None:
        if not self.filters:
            raise _bad("a conv model needs at least one layer (filters)")
        if self.kernel % 2 == 0:
            raise _bad(f"kernel must be a positive odd size, got {self.kernel}")
        image = IMAGE_SHAPES.get(self.task)
        if image is not None and self.kernel > min(image):
            raise _bad(f"kernel {self.kernel} is larger than the {self.task} task's "
                       f"{image[0]}x{image[1]} images")
        if self.dense_widths:
            raise _bad("a conv model has no dense_widths")
        if not 0 <= self.pool <= len(self.filters) // 2:
            raise _bad(
                f"{self.pool} pooling+upsampling pairs need at least {2 * self.pool} conv "
                f"layers (one pooled encoder layer and one upsampled decoder layer each); "
                f"this model has {len(self.filters)}"
            )

    # --- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["filters"] = list(self.filters)
        d["dense_widths"] = list(self.dense_widths)
        return d

    @classmethod
    def from_dict(cls, data: Any, **overrides: Any) -> ModelConfig:
        """A config from plain data (a JSON object); `overrides` replace its fields."""
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a JSON object (a dict), got "
                              f"{type(data).__name__}")
        data = {**data, **overrides}
        known = {f.name for f in dataclasses.fields(cls)}
        # Plain names as they are; anything a reader could not see (empty, blank, newlines,
        # control characters) or that is no string at all, as its repr.
        unknown = sorted(key if isinstance(key, str) and key.isprintable() and key.strip()
                         else shown(key) for key in data if key not in known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, **overrides: Any) -> ModelConfig:
        """A config from JSON text (what `to_json` and --config FILE.json hold)."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, ints over 4300 digits
            raise ConfigError(f"not a JSON config: {shown(exc, 120)}") from None
        return cls.from_dict(data, **overrides)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


def spread(count: int, n: int) -> frozenset[int]:
    """Indices of `count` layers spread evenly over `n` (the placement of BN and Dropout)."""
    if count <= 0:
        return frozenset()
    return frozenset(math.floor(i * n / count) for i in range(count))


def _skip_from(config: ModelConfig, i: int) -> int | str | None:
    """Which tensor hidden layer i's block ends by concatenating (see the module docstring)."""
    n = len(config.filters)
    if not config.skip:
        return None
    if config.pool:
        return n - 1 - i if i >= n - config.pool else None  # LIFO: pooled layer n - 1 - i
    return SKIP_INPUT if i == n - 1 else None


def conv_layout(config: ModelConfig) -> list[dict[str, Any]]:
    """Per hidden conv layer: filters, and whether BN, Dropout, pooling or upsampling follow.

    The single source of the layer order, used by the Keras builder and the size estimates.
    "skip_from" is the hidden layer whose pre-pooling output is concatenated last in this
    block, SKIP_INPUT for the input image, or None; "skip_channels" is the channels that adds.
    """
    n = len(config.filters)
    bn = spread(config.batchnorm, n)
    do = spread(config.dropout, n)
    layers = []
    for i, f in enumerate(config.filters):
        source = _skip_from(config, i)
        if source is None:
            extra = 0
        elif isinstance(source, int):
            extra = config.filters[source]
        else:  # SKIP_INPUT
            extra = 1  # greyscale
        layers.append(
            {
                "filters": f,
                "batchnorm": i in bn,
                "dropout": i in do,
                "pool": i < config.pool,
                "upsample": i >= n - config.pool,
                "skip_from": source,
                "skip_channels": extra,
            }
        )
    return layers


def dense_layout(config: ModelConfig) -> list[dict[str, Any]]:
    """Per dense layer (output last): width and whether BN or Dropout follow (hidden only)."""
    n = len(config.dense_widths)
    bn = spread(config.batchnorm, n - 1)
    do = spread(config.dropout, n - 1)
    return [
        {
            "width": w,
            "output": i == n - 1,
            "batchnorm": i in bn,
            "dropout": i in do,
        }
        for i, w in enumerate(config.dense_widths)
    ]
