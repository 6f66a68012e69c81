"""The `default` space: conv autoencoders that a short search can win in.

The study's axes (`study-axes`, spaces/full.py) span about 15 dimensions: dense and conv
families, 1..128 filters per layer, 1x1 kernels, dropout and batchnorm counts, two losses. A
sweep of a few dozen trials is then mostly random search, and most draws are models that could
never win (1-filter layers, 28-parameter models, 0.9-billion-parameter dense layers). This
space keeps what the study's best models have in common and what the metric needs:

- conv only, 3x3 or 5x5 kernels, 16..64 base filters (never 1), constant or widening
  (32 x 4 widening is the study's best `4L,32,32,64,128F(3X3)`);
- batchnorm all-or-nothing, no dropout (no row of the study gained from it);
- loss fixed to binary cross-entropy: the objective is validation MSE, and with a sigmoid
  output MSE's gradient 2(p-y)p(1-p) vanishes once p saturates (the study's best denoiser
  collapses to an all-zero output under Adam+MSE), while BCE's logit gradient p-y does not;
- learning rate log-uniform from half Adam's default to ten times it, batch sizes that give
  enough steps on a laptop-sized subset. Both were moved where the winners piled up: in 30
  equal-time sweeps (bench/searchers.py, 3 tasks, 5 seeds, TPE and random), every MNIST winner
  used the smallest batch (32), and 22 of 30 a rate in the top third of (3e-4, 5e-3); trained
  alone for 100 s, `6L,16F(3X3)` at batch 16 reached half the error of batch 32, and lr 1e-2
  matched 4.5e-3;
- a compute cap (`max_params`): without pooling a conv layer's parameters are its multiply-adds
  per pixel, so the cap bounds a trial's cost and keeps a single trial from eating the budget;
- text adds what the document-cleaning literature uses beyond the study: U-Net levels
  (pooling pairs whose encoder features skip to the decoder) and an input skip, for larger
  receptive fields at the same cost (the `skip` axis).

Parameter names: depth, filters, schedule, kernel, batchnorm, lr, batch_size; text also
unet_levels and skip. With `ordered=True` the ordered choices are integers a model-based
searcher can interpolate over: filters as `filters_log2` (4..6), the kernel as an integer with
step 2, the batch size as `batch_size_log2` (4..7 on MNIST). As categoricals, TPE cannot tell
that 32 filters lie between 16 and 64; random sampling draws the same configs either way.

Every distribution is the same in every trial (TPE's multivariate model needs that): where a
range depends on another choice, the value is clamped instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spaces.axes import SCHEDULES, Limits
from spaces.config import ModelConfig
from spaces.constants import MODEL_KEY
from spaces.full import SuggestTrial
from spaces.guard import fits


@dataclass(frozen=True)
class DefaultBounds:
    """The default space of one task: plain data, read by `sample`."""

    task: str
    input_shape: tuple[int, int]  # the size the guard checks models at
    depths: tuple[int, int]  # (fewest, most) conv layers, the output layer not counted
    filters: tuple[int, ...] = (16, 32, 64)
    schedules: tuple[str, ...] = ("constant", "widening")
    kernels: tuple[int, ...] = (3, 5)
    batch_sizes: tuple[int, ...] = (16, 32, 64, 128)
    lr_range: tuple[float, float] = (5e-4, 1e-2)
    loss: str = "bce"
    unet_levels: tuple[int, ...] = ()  # pooling pairs with skips; () = not an axis
    max_params: int = 250_000  # the compute cap (see the module docstring)
    max_activation_mb: float = 2048.0
    epochs: int = 50  # a neutral default: the sweep overrides it with --max-epochs
    ordered: bool = False  # ordered choices as integers (see the module docstring)

    @property
    def limits(self) -> Limits:
        return {"max_params": self.max_params, "max_activation_mb": self.max_activation_mb}


def _narrowed(config: ModelConfig, bounds: DefaultBounds) -> ModelConfig:
    """`config` made to fit the caps: filters halved (never below the smallest base), then
    the smallest kernel. A draw still over a cap (a tight --max-params) is returned as it is:
    the trial's guard refuses it with a message naming the limit. Raising here would raise in
    Ray's driver, where the searcher runs, and end the whole sweep."""
    floor = min(bounds.filters)
    while not fits(config, bounds.input_shape, **bounds.limits):
        narrower = config.replace(filters=tuple(max(f // 2, floor) for f in config.filters))
        if narrower == config:
            narrower = config.replace(kernel=min(bounds.kernels))
        if narrower == config:
            return config
        config = narrower
    return config


def _powers_of_two(values: tuple[int, ...]) -> tuple[int, int] | None:
    """(low, high) exponents where `values` are exactly the powers of two in between."""
    exponents = [v.bit_length() - 1 for v in values]
    if any(v != 2**e for v, e in zip(values, exponents, strict=True)):
        return None
    low, high = min(exponents), max(exponents)
    return (low, high) if sorted(values) == [2**e for e in range(low, high + 1)] else None


def _ordered_int(trial: SuggestTrial, name: str, values: tuple[int, ...]) -> int:
    """One of `values` as an integer parameter: `NAME_log2` for consecutive powers of two,
    `NAME` with a step for an arithmetic run, else a categorical (nothing to order by)."""
    powers = _powers_of_two(values)
    if powers is not None:
        return int(2 ** trial.suggest_int(f"{name}_log2", *powers))
    ordered = sorted(values)
    steps = {b - a for a, b in zip(ordered, ordered[1:], strict=False)}
    if len(steps) == 1:
        return trial.suggest_int(name, ordered[0], ordered[-1], step=steps.pop())
    return int(trial.suggest_categorical(name, values))


def _choose(trial: SuggestTrial, bounds: DefaultBounds, name: str, values: tuple[int, ...]) -> int:
    if bounds.ordered and len(values) > 1:
        return _ordered_int(trial, name, values)
    return int(trial.suggest_categorical(name, values))


def sample(trial: SuggestTrial, bounds: DefaultBounds) -> dict[str, Any]:
    """One draw of the default space for `bounds.task`: `{MODEL_KEY: config_dict}`."""
    depth = trial.suggest_int("depth", *bounds.depths)
    base = _choose(trial, bounds, "filters", bounds.filters)
    schedule = trial.suggest_categorical("schedule", bounds.schedules)
    kernel = _choose(trial, bounds, "kernel", bounds.kernels)
    batchnorm = trial.suggest_categorical("batchnorm", (False, True))
    unet: dict[str, Any] = {}
    if bounds.unet_levels:
        pool = trial.suggest_categorical("unet_levels", bounds.unet_levels)
        skip = trial.suggest_categorical("skip", (False, True))
        depth = max(depth, 2 * pool)  # each level needs a pooled and an upsampled layer
        # Pooled levels always skip: that is what makes a level a U-Net level.
        unet = {"pool": pool, "skip": skip or pool > 0}
    config = ModelConfig(
        task=bounds.task,
        family="conv",
        filters=SCHEDULES[schedule](base, depth),
        kernel=kernel,
        batchnorm=depth if batchnorm else 0,
        **unet,
        loss=bounds.loss,
        optimizer="adam",
        lr=trial.suggest_float("lr", *bounds.lr_range, log=True),
        batch_size=_choose(trial, bounds, "batch_size", bounds.batch_sizes),
        epochs=bounds.epochs,
    )
    return {MODEL_KEY: _narrowed(config, bounds).to_dict()}


def point_for(config: ModelConfig, bounds: DefaultBounds) -> dict[str, Any] | None:
    """The default space's parameters for `config`'s architecture and training, or None
    where the space cannot express it. The loss is not an axis: the point trains with the
    space's loss (BCE), whatever `config` used. Used to warm-start with the study's rows."""
    depth = config.depth
    pool_choices = bounds.unet_levels or (0,)
    if (config.family != "conv" or config.dropout or config.batchnorm not in (0, depth)
            or config.kernel not in bounds.kernels or config.batch_size not in bounds.batch_sizes
            or config.pool not in pool_choices or (config.pool and not config.skip)
            or not bounds.lr_range[0] <= config.lr <= bounds.lr_range[1]
            or not bounds.depths[0] <= depth <= max(bounds.depths[1], 2 * config.pool)
            or not fits(config, bounds.input_shape, **bounds.limits)):
        return None
    for schedule in bounds.schedules:
        for base in bounds.filters:
            if SCHEDULES[schedule](base, depth) == config.filters:
                point: dict[str, Any] = {
                    "depth": depth, "filters": base, "schedule": schedule,
                    "kernel": config.kernel, "batchnorm": bool(config.batchnorm),
                    "lr": config.lr, "batch_size": config.batch_size}
                if bounds.unet_levels:
                    point |= {"unet_levels": config.pool, "skip": config.skip}
                return _encoded(point, bounds) if bounds.ordered else point
    return None


def _encoded(point: dict[str, Any], bounds: DefaultBounds) -> dict[str, Any]:
    """A categorical point in the names and values `sample` uses when `bounds.ordered`."""
    out = dict(point)
    for name, values in (("filters", bounds.filters), ("kernel", bounds.kernels),
                         ("batch_size", bounds.batch_sizes)):
        if len(values) > 1 and _powers_of_two(values) is not None:
            out[f"{name}_log2"] = int(out.pop(name)).bit_length() - 1
    return out
