"""The `full` space: the study's axes as one Optuna define-by-run function, shared by all tasks.

`sample(trial, bounds)` asks the trial (an Optuna `Trial`, `FixedTrial`, or Ray's wrapper of one)
for every axis and returns `{MODEL_KEY: config_dict}`; Ray merges that into the trial config
next to the flat parameters. It only does arithmetic, and given the suggestions it is
deterministic, as Optuna's samplers and `FixedTrial` replays require.

Parameter names (conditional ones only exist when their condition holds):
    family                       conv | dense (the task's families)
    conv_depth                   1..max_depth                                  (conv)
    filter_schedule              constant | widening | narrowing | free        (conv)
    base_filters                 1..128, for the three schedules               (conv)
    filters_0 .. filters_<d-1>   1..128, one per layer, for `free`             (conv)
    kernel                       1 | 3 | 5                                     (conv)
    pool_level                   [0, 1] -> 0..min(max_pool, depth // 2) pairs  (conv, depth >= 2)
    dense_depth                  2..max_dense_depth, output layer included    (dense)
    dense_width                  hidden width, from the task's list            (dense)
    dropout_level, batchnorm_level  [0, 1] -> 0..hidden layers                 (hidden >= 1)
    dropout_rate                 0.2..0.4 in steps of 0.05                     (dropout >= 1)
    loss, lr, batch_size

Counts whose range depends on the depth are sampled as levels (see axes.count_from_level).

The resource guard: a draw over the task's limits is not returned; its widths (conv filters,
dense hidden widths) are halved until it fits, deterministically. TaskBounds checks that the
narrowest models fit, so the halving always ends within the limits.
"""

from __future__ import annotations

from typing import Any, Protocol

from spaces.axes import (
    DROPOUT_RATE_RANGE,
    DROPOUT_RATE_STEP,
    FILTERS,
    FREE,
    KERNELS,
    LOSSES,
    LR_RANGE,
    OPTIMIZER,
    SCHEDULE_NAMES,
    SCHEDULES,
    TaskBounds,
    count_from_level,
    level_for_count,
)
from spaces.config import ModelConfig
from spaces.constants import MODEL_KEY
from spaces.guard import check, fits


class SuggestTrial(Protocol):
    """The part of `optuna.Trial` a define-by-run function uses (Ray passes a wrapper)."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1,
                    log: bool = False) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def _count(trial: SuggestTrial, name: str, limit: int) -> int:
    """0..limit layers; not asked at all when the model has no room for any."""
    return count_from_level(trial.suggest_float(name, 0.0, 1.0), limit) if limit else 0


def _regularization(trial: SuggestTrial, hidden: int) -> dict[str, Any]:
    dropout = _count(trial, "dropout_level", hidden)
    rate = DROPOUT_RATE_RANGE[0]
    if dropout:
        # Rounded so the rate prints and parses back exactly in the study's notation.
        drawn = trial.suggest_float("dropout_rate", *DROPOUT_RATE_RANGE, step=DROPOUT_RATE_STEP)
        rate = round(drawn, 2)
    return {
        "dropout": dropout,
        "dropout_rate": rate,
        "batchnorm": _count(trial, "batchnorm_level", hidden),
    }


def _conv(trial: SuggestTrial, bounds: TaskBounds) -> dict[str, Any]:
    depth = trial.suggest_int("conv_depth", 1, bounds.max_depth)
    schedule = trial.suggest_categorical("filter_schedule", SCHEDULE_NAMES)
    if schedule == FREE:
        filters = tuple(trial.suggest_categorical(f"filters_{i}", FILTERS) for i in range(depth))
    else:
        filters = SCHEDULES[schedule](trial.suggest_categorical("base_filters", FILTERS), depth)
    return {
        "filters": filters,
        "kernel": trial.suggest_categorical("kernel", KERNELS),
        "pool": _count(trial, "pool_level", min(bounds.max_pool, depth // 2)),
        **_regularization(trial, depth),
    }


def _dense(trial: SuggestTrial, bounds: TaskBounds) -> dict[str, Any]:
    # At least one hidden layer: without one there is no bottleneck, and no width the guard
    # could narrow (input -> H*W output alone is 615k parameters at 28x28).
    depth = trial.suggest_int("dense_depth", 2, bounds.max_dense_depth)
    hidden = depth - 1
    width = trial.suggest_categorical("dense_width", bounds.dense_widths)
    return {
        "filters": (),
        "dense_widths": (width,) * hidden + (bounds.output_width,),
        **_regularization(trial, hidden),
    }


_FAMILIES = {"conv": _conv, "dense": _dense}


def _narrower(config: ModelConfig) -> ModelConfig:
    """Every width halved (at least 1); a dense model's output layer keeps its width."""
    if config.family == "conv":
        return config.replace(filters=tuple(max(f // 2, 1) for f in config.filters))
    *hidden, output = config.dense_widths
    return config.replace(dense_widths=(*(max(w // 2, 1) for w in hidden), output))


def _within_limits(config: ModelConfig, bounds: TaskBounds) -> ModelConfig:
    """`config`, narrowed until it fits the task's guard defaults."""
    while not fits(config, bounds.input_shape, **bounds.limits):
        narrower = _narrower(config)
        if narrower == config:  # every width is 1 already: the bounds leave no room
            check(config, bounds.input_shape, **bounds.limits)
        config = narrower
    return config


def sample(trial: SuggestTrial, bounds: TaskBounds) -> dict[str, Any]:
    """One draw of the full space for `bounds.task`: `{MODEL_KEY: config_dict}`."""
    family = trial.suggest_categorical("family", bounds.families)
    architecture = _FAMILIES[family](trial, bounds)
    config = ModelConfig(
        task=bounds.task,
        family=family,
        **architecture,
        loss=trial.suggest_categorical("loss", LOSSES),
        optimizer=OPTIMIZER,
        lr=trial.suggest_float("lr", *LR_RANGE, log=True),
        batch_size=trial.suggest_categorical("batch_size", bounds.batch_sizes),
        epochs=bounds.epochs,
    )
    return {MODEL_KEY: _within_limits(config, bounds).to_dict()}


def _filter_params(filters: tuple[int, ...]) -> dict[str, Any] | None:
    depth = len(filters)
    for name, schedule in SCHEDULES.items():
        for base in FILTERS:
            if schedule(base, depth) == filters:
                return {"filter_schedule": name, "base_filters": base}
    if set(filters) <= set(FILTERS):
        return {"filter_schedule": FREE, **{f"filters_{i}": f for i, f in enumerate(filters)}}
    return None


def _regularization_params(config: ModelConfig, hidden: int) -> dict[str, Any] | None:
    point: dict[str, Any] = {}
    if hidden:
        point["dropout_level"] = level_for_count(config.dropout, hidden)
        point["batchnorm_level"] = level_for_count(config.batchnorm, hidden)
    if config.dropout:
        low, high = DROPOUT_RATE_RANGE
        steps = (config.dropout_rate - low) / DROPOUT_RATE_STEP
        if not low <= config.dropout_rate <= high or abs(steps - round(steps)) > 1e-9:
            return None
        point["dropout_rate"] = config.dropout_rate
    return point


def _conv_params(config: ModelConfig, bounds: TaskBounds) -> dict[str, Any] | None:
    depth = config.depth
    filters = _filter_params(config.filters)
    pool_limit = min(bounds.max_pool, depth // 2)
    regularization = _regularization_params(config, depth)
    if (
        depth > bounds.max_depth
        or filters is None
        or config.kernel not in KERNELS
        or config.pool > pool_limit
        or regularization is None
    ):
        return None
    point = {"conv_depth": depth, **filters, "kernel": config.kernel, **regularization}
    if pool_limit:
        point["pool_level"] = level_for_count(config.pool, pool_limit)
    return point


def _dense_params(config: ModelConfig, bounds: TaskBounds) -> dict[str, Any] | None:
    *widths, output = config.dense_widths
    regularization = _regularization_params(config, len(widths))
    if (
        not 2 <= config.depth <= bounds.max_dense_depth
        or output != bounds.output_width
        or len(set(widths)) > 1
        or (widths and widths[0] not in bounds.dense_widths)
        or regularization is None
    ):
        return None
    return {"dense_depth": config.depth, "dense_width": widths[0], **regularization}


_FAMILY_PARAMS = {"conv": _conv_params, "dense": _dense_params}


def point_for(config: ModelConfig, bounds: TaskBounds) -> dict[str, Any] | None:
    """The full space's parameters that yield `config` (epochs aside), or None if it can't.

    Used for warm starts: Ray's OptunaSearch enqueues such points as its first trials.
    """
    if (
        config.task != bounds.task
        or config.family not in bounds.families
        or config.optimizer != OPTIMIZER
        or config.loss not in LOSSES
        or config.batch_size not in bounds.batch_sizes
        or not LR_RANGE[0] <= config.lr <= LR_RANGE[1]
        or not fits(config, bounds.input_shape, **bounds.limits)
    ):
        return None
    architecture = _FAMILY_PARAMS[config.family](config, bounds)
    if architecture is None:
        return None
    training = {"loss": config.loss, "lr": config.lr, "batch_size": config.batch_size}
    return {"family": config.family, **architecture, **training}
