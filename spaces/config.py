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
from dataclasses import dataclass
from typing import Any

FAMILIES = ("conv", "dense")
LOSSES = ("mse", "bce", "mae")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
TASKS = ("mnist", "mnist-denoise", "text")
# `conv_layout`'s "skip_from" for the input skip of unpooled skip models (not a layer index).
SKIP_INPUT = "input"


class ConfigError(ValueError):
    """A config that cannot describe a model (bad field, impossible layer layout)."""


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
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        object.__setattr__(self, "dense_widths", tuple(int(w) for w in self.dense_widths))
        self.validate()

    @property
    def depth(self) -> int:
        """Hidden layers as the study counts them (conv layers, or dense layers)."""
        return len(self.filters) if self.family == "conv" else len(self.dense_widths)

    def validate(self) -> None:
        def bad(msg: str) -> None:
            raise ConfigError(f"invalid config: {msg}")

        if self.task not in TASKS:
            bad(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if self.family not in FAMILIES:
            bad(f"family {self.family!r} is not one of {', '.join(FAMILIES)}")
        if self.loss not in LOSSES:
            bad(f"loss {self.loss!r} is not one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            bad(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            bad(f"lr must be a positive number, got {self.lr}")
        if self.batch_size < 1 or self.epochs < 1:
            bad("batch_size and epochs must be at least 1")
        if not 0.0 <= self.dropout_rate < 1.0:
            bad(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        if not isinstance(self.skip, bool):  # 0/1 or "false" would silently mean something
            bad(f"skip must be true or false, got {self.skip!r} ({type(self.skip).__name__})")
        if self.family == "conv":
            if not self.filters or any(f < 1 for f in self.filters):
                bad("a conv model needs at least one layer and positive filter counts")
            if self.kernel < 1 or self.kernel % 2 == 0:
                bad(f"kernel must be a positive odd size, got {self.kernel}")
            if self.dense_widths:
                bad("a conv model has no dense_widths")
            if not 0 <= self.pool <= len(self.filters) // 2:
                bad(
                    f"{self.pool} pooling+upsampling pairs need at least {2 * self.pool} conv "
                    f"layers (one pooled encoder layer and one upsampled decoder layer each); "
                    f"this model has {len(self.filters)}"
                )
        else:
            if not self.dense_widths or any(w < 1 for w in self.dense_widths):
                bad("a dense model needs at least one layer and positive widths")
            if self.pool:
                bad("a dense model has no pooling")
            if self.skip:
                bad("skip connections are for conv models; a dense model needs skip=False")
        hidden = self.depth if self.family == "conv" else self.depth - 1
        for name, count in (("batchnorm", self.batchnorm), ("dropout", self.dropout)):
            if not 0 <= count <= hidden:
                bad(f"{name} layers ({count}) must be between 0 and {hidden} for this model")

    # --- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["filters"] = list(self.filters)
        d["dense_widths"] = list(self.dense_widths)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))

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
        elif source == SKIP_INPUT:
            extra = 1  # greyscale
        else:
            extra = config.filters[source]
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
