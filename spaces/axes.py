"""The study's axes, defined once: value sets, filter schedules, and each task's bounds.

The `full` space (spaces/full.py) samples these axes; the per-task modules only pick bounds.
Parameter names are plain words (no "/": Ray unflattens trial configs on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spaces import constants as C
from spaces.config import FAMILIES, ConfigError, ModelConfig
from spaces.guard import Limits, ResourceLimitError, check

# The filter counts the study used, and its kernels.
FILTERS = (1, 2, 4, 8, 16, 32, 64, 128)
KERNELS = (1, 3, 5)
LOSSES = ("mse", "bce")
LR_RANGE = (1e-4, 1e-2)  # log-uniform; Keras' Adam default 1e-3 (the study's) sits inside
DROPOUT_RATE_RANGE = (0.2, 0.4)  # the study used p=0.2, 0.3 and 0.4
DROPOUT_RATE_STEP = 0.05  # a grid, so the notation's "p=0.25" reads back as the same rate
OPTIMIZER = "adam"  # the only optimizer the study used; not an axis


def _constant(base: int, depth: int) -> tuple[int, ...]:
    return (base,) * depth


def _widening(base: int, depth: int) -> tuple[int, ...]:
    """base, base, then doubling, capped at the largest filter count: 32 x 4 -> 32,32,64,128."""
    return tuple(min(base * 2 ** max(i - 1, 0), FILTERS[-1]) for i in range(depth))


def _narrowing(base: int, depth: int) -> tuple[int, ...]:
    """base at both ends, base/2 inside: 16 x 6 -> 16,8,8,8,8,16 (the study's `6L,16,8,8F`).

    The encoder narrows and the decoder mirrors it, as in the classic Keras autoencoder.
    """
    inner = max(base // 2, 1)
    return tuple(base if i in (0, depth - 1) else inner for i in range(depth))


# How a base filter count spreads over the layers; "free" picks every layer's count itself.
SCHEDULES = {"constant": _constant, "widening": _widening, "narrowing": _narrowing}
FREE = "free"
SCHEDULE_NAMES = (*SCHEDULES, FREE)


def count_from_level(level: float, limit: int) -> int:
    """A count in 0..limit from a level in [0, 1], uniform over the counts for a uniform level.

    Counts whose range depends on an earlier choice (dropout layers <= depth) are sampled as a
    level because Optuna's multivariate TPE needs each parameter's distribution to stay the same
    across trials.
    """
    return min(limit, math.floor(level * (limit + 1)))


def level_for_count(count: int, limit: int) -> float:
    """The level that `count_from_level` maps back to `count` (the inverse, for warm starts)."""
    return count / limit if limit else 0.0


@dataclass(frozen=True)
class TaskBounds:
    """How far the full space may go for one task, and the resource guard's defaults.

    `input_shape` is the image size the guard sizes models at, and the fixed size dense models
    are built for (their output layer is `height * width` wide).
    """

    task: str
    input_shape: tuple[int, int]
    families: tuple[str, ...]
    max_depth: int  # conv layers, not counting the final sigmoid Conv2D(1)
    max_pool: int  # MaxPooling2D+UpSampling2D pairs; each also needs depth >= 2 * pairs
    batch_sizes: tuple[int, ...]
    epochs: int  # a neutral default: the sweep overrides it with --max-epochs
    max_params: int  # guard default, --max-params
    max_activation_mb: float  # guard default, --max-activation-mb
    max_dense_depth: int = 0  # dense layers, output layer included
    dense_widths: tuple[int, ...] = ()  # hidden widths to choose from

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ConfigError(f"bounds for task {self.task!r}: {msg}")

        if self.task not in C.TASKS:
            bad(f"unknown task; expected one of {', '.join(C.TASKS)}")
        if not self.families or not set(self.families) <= set(FAMILIES):
            bad(f"families {self.families} must be a non-empty subset of {FAMILIES}")
        if self.max_depth < 1 or not 0 <= self.max_pool <= self.max_depth // 2:
            bad("need max_depth >= 1 and 0 <= max_pool <= max_depth // 2")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            bad("batch_sizes must be positive")
        if "dense" in self.families and (self.max_dense_depth < 1 or not self.dense_widths):
            bad("a dense family needs max_dense_depth >= 1 and dense_widths")
        if min(self.input_shape) < 1:
            bad(f"input_shape {self.input_shape} must be positive")
        for config in self._smallest_models():
            try:
                check(config, self.input_shape, **self.limits)
            except ResourceLimitError as err:
                bad(f"the guard's defaults leave no room for the full space: {err}")

    @property
    def limits(self) -> Limits:
        """The guard's defaults as `guard.check`/`guard.fits` keyword arguments."""
        return {"max_params": self.max_params, "max_activation_mb": self.max_activation_mb}

    @property
    def output_width(self) -> int:
        """The width of a dense model's output layer: one unit per pixel."""
        return self.input_shape[0] * self.input_shape[1]

    def _smallest_models(self) -> list[ModelConfig]:
        """The largest models the full space's shrinking can end at: every width 1, all else
        maximal. The space halves widths until a model fits, so these must fit the guard."""
        batch = max(self.batch_sizes)
        models = []
        if "conv" in self.families:
            for pool in range(self.max_pool + 1):
                models.append(
                    ModelConfig(
                        task=self.task, family="conv", filters=(1,) * self.max_depth,
                        kernel=max(KERNELS), pool=pool, dropout=self.max_depth,
                        batchnorm=self.max_depth, batch_size=batch, epochs=self.epochs,
                    )
                )
        if "dense" in self.families:
            hidden = self.max_dense_depth - 1
            models.append(
                ModelConfig(
                    task=self.task, family="dense",
                    dense_widths=(1,) * hidden + (self.output_width,), filters=(),
                    dropout=hidden, batchnorm=hidden, batch_size=batch, epochs=self.epochs,
                )
            )
        return models
