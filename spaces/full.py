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
    dense_depth                  1..max_dense_depth, output layer included    (dense)
    dense_width                  hidden width, from the task's list            (dense, depth >= 2)
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
    SCHEDULES,
    SCHEDULE_NAMES,
    TaskBounds,
    count_from_level,
    level_for_count,
)
from spaces.config import ModelConfig
from spaces.guard import check, fits
from spaces.keys import MODEL_KEY


class SuggestTrial(Protocol):
    """The part of `optuna.Trial` a define-by-run function uses (Ray passes a wrapper)."""

    def suggest_int(self, name: str, low: int, high: int) -> int: ...

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
        rate = round(trial.suggest_float("dropout_rate", *DROPOUT_RATE_RANGE, step=DROPOUT_RATE_STEP), 2)
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
    depth = trial.suggest_int("dense_depth", 1, bounds.max_dense_depth)
    hidden = depth - 1
    width = trial.suggest_categorical("dense_width", bounds.dense_widths) if hidden else 0
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


def within_limits(config: ModelConfig, bounds: TaskBounds) -> ModelConfig:
    """`config`, narrowed until it fits the task's guard defaults."""
    limits = {"max_params": bounds.max_params, "max_activation_mb": bounds.max_activation_mb}
    while not fits(config, bounds.input_shape, **limits):
        narrower = _narrower(config)
        if narrower == config:  # every width is 1 already: the bounds leave no room
            check(config, bounds.input_shape, **limits)
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
    return {MODEL_KEY: within_limits(config, bounds).to_dict()}


def _filter_params(filters: tuple[int, ...]) -> dict[str, Any] | None:
    depth = len(filters)
    for name, schedule in SCHEDULES.items():
        for base in FILTERS:
            if schedule(base, depth) == filters:
                return {"filter_schedule": name, "base_filters": base}
    if set(filters) <= set(FILTERS):
        return {"filter_schedule": FREE, **{f"filters_{i}": f for i, f in enumerate(filters)}}
    return None


def point_for(config: ModelConfig, bounds: TaskBounds) -> dict[str, Any] | None:
    """The full space's parameters that yield `config` (epochs aside), or None if it can't.

    Used for warm starts: Ray's OptunaSearch enqueues such points as the first trials.
    """
    rate_steps = (config.dropout_rate - DROPOUT_RATE_RANGE[0]) / DROPOUT_RATE_STEP
    expressible = (
        config.task == bounds.task
        and config.family in bounds.families
        and config.optimizer == OPTIMIZER
        and config.loss in LOSSES
        and config.batch_size in bounds.batch_sizes
        and LR_RANGE[0] <= config.lr <= LR_RANGE[1]
        and (
            not config.dropout
            or (
                DROPOUT_RATE_RANGE[0] <= config.dropout_rate <= DROPOUT_RATE_RANGE[1]
                and abs(rate_steps - round(rate_steps)) < 1e-9
            )
        )
        and fits(config, bounds.input_shape, max_params=bounds.max_params,
                 max_activation_mb=bounds.max_activation_mb)
    )
    if not expressible:
        return None
    point: dict[str, Any] = {"family": config.family}
    depth = config.depth
    if config.family == "conv":
        filters = _filter_params(config.filters)
        pool_limit = min(bounds.max_pool, depth // 2)
        if depth > bounds.max_depth or filters is None or config.kernel not in KERNELS:
            return None
        if config.pool > pool_limit:
            return None
        point |= {"conv_depth": depth, **filters, "kernel": config.kernel}
        if pool_limit:
            point["pool_level"] = level_for_count(config.pool, pool_limit)
        hidden = depth
    else:
        *widths, output = config.dense_widths
        if depth > bounds.max_dense_depth or output != bounds.output_width:
            return None
        if widths and (len(set(widths)) > 1 or widths[0] not in bounds.dense_widths):
            return None
        point["dense_depth"] = depth
        if widths:
            point["dense_width"] = widths[0]
        hidden = depth - 1
    if hidden:
        point["dropout_level"] = level_for_count(config.dropout, hidden)
        point["batchnorm_level"] = level_for_count(config.batchnorm, hidden)
    if config.dropout:
        point["dropout_rate"] = config.dropout_rate
    return point | {"loss": config.loss, "lr": config.lr, "batch_size": config.batch_size}
