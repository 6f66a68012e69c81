"""The contract every (task, space) keeps: what it yields is a config the sweep can run.

`default` and `study-axes` are drawn with hand-picked FixedTrial points (edges included) and
with the sampler the sweep uses, TPESampler(multivariate=True, group=True), told a fake
objective computed from the config's footprint (no training). `report` yields the study's rows
the guard accepts (the
others are refused by the caller; tests/test_report.py checks which and how).
Every config round-trips through JSON and through the notation; every sampled config
passes the guard and stays within its space's bounds (which the study's rows need not respect).
A few small ones per (task, space) are built and run at the task's image sizes.
"""

from __future__ import annotations

import json
import math
import warnings

import keras
import numpy as np
import optuna
import pytest
from model_sizes import keras_sizes

from search.models import build_model
from spaces import REGISTRY, SPACES, TASKS, get_space, task_bounds, warm_start_points
from spaces.axes import (
    DROPOUT_RATE_RANGE,
    FILTERS,
    KERNELS,
    LOSSES,
    LR_RANGE,
    TaskBounds,
)
from spaces.config import ModelConfig
from spaces.constants import MODEL_KEY
from spaces.default import DefaultBounds
from spaces.guard import check, fits, footprint
from spaces.notation import describe, format_row, parse, parse_row
from spaces.study import architecture

TPE_DRAWS = 200
BUILDS = 5
# Sizes the built models run at: text pages come 258 or 420 high.
RUN_SHAPES = {"mnist": [(28, 28)], "mnist-denoise": [(28, 28)], "text": [(258, 540), (420, 540)]}
CASES = [(task, space) for task in TASKS for space in SPACES]


def _point(bounds: TaskBounds, **chosen: object) -> dict[str, object]:
    """A FixedTrial point: every parameter the space might ask for, overridden by `chosen`."""
    point = {
        "family": "conv", "conv_depth": 1, "filter_schedule": "constant", "base_filters": 1,
        "kernel": 1, "pool_level": 0.0, "dropout_level": 0.0, "dropout_rate": 0.2,
        "batchnorm_level": 0.0, "dense_depth": 2, "loss": "mse", "lr": LR_RANGE[0],
        "batch_size": min(bounds.batch_sizes),
        **{f"filters_{i}": FILTERS[i % len(FILTERS)] for i in range(bounds.max_depth)},
    }
    if bounds.dense_widths:
        point["dense_width"] = bounds.dense_widths[0]
    return point | chosen


def _edge_points(bounds: TaskBounds) -> list[dict[str, object]]:
    top = {
        "kernel": max(KERNELS), "pool_level": 1.0, "dropout_level": 1.0,
        "dropout_rate": DROPOUT_RATE_RANGE[1], "batchnorm_level": 1.0, "loss": "bce",
        "lr": LR_RANGE[1], "batch_size": max(bounds.batch_sizes),
    }
    points = [
        _point(bounds),  # the smallest model: one 1-filter 1x1 layer
        _point(bounds, conv_depth=2, pool_level=1.0),  # the shallowest pooled model
        _point(bounds, conv_depth=bounds.max_depth, filter_schedule="widening",
               base_filters=max(FILTERS), **top),  # far over the guard: narrowed
        _point(bounds, conv_depth=bounds.max_depth, filter_schedule="free", **top),
        _point(bounds, conv_depth=6, filter_schedule="narrowing", base_filters=16,
               kernel=3, pool_level=0.5, dropout_level=0.5, dropout_rate=0.3),
        *warm_start_points(bounds.task),
    ]
    if "dense" in bounds.families:
        points += [
            _point(bounds, family="dense"),  # the output layer alone
            _point(bounds, family="dense", dense_depth=bounds.max_dense_depth,
                   dense_width=max(bounds.dense_widths), **top),
        ]
    return points


def _default_edges(bounds: DefaultBounds) -> list[dict[str, object]]:
    """The smallest and the largest draw of the default space (the largest is narrowed)."""
    small: dict[str, object] = {
        "depth": bounds.depths[0], "filters": min(bounds.filters), "schedule": "constant",
        "kernel": min(bounds.kernels), "batchnorm": False, "lr": bounds.lr_range[0],
        "batch_size": min(bounds.batch_sizes)}
    large: dict[str, object] = {
        "depth": bounds.depths[1], "filters": max(bounds.filters), "schedule": "widening",
        "kernel": max(bounds.kernels), "batchnorm": True, "lr": bounds.lr_range[1],
        "batch_size": max(bounds.batch_sizes)}
    if bounds.unet_levels:
        small |= {"unet_levels": min(bounds.unet_levels), "skip": False}
        large |= {"unet_levels": max(bounds.unet_levels), "skip": True}
    return [small, large]


def _sampled_draws(space_name: str, task: str) -> list[ModelConfig]:
    space = get_space(space_name, task)
    if space_name == "default":
        edges = _default_edges(REGISTRY[task].default)
        shape = REGISTRY[task].default.input_shape
    else:
        edges, shape = _edge_points(task_bounds(task)), task_bounds(task).input_shape
    draws = [space(optuna.trial.FixedTrial(p)) for p in edges]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(multivariate=True, group=True, seed=0)
    study = optuna.create_study(sampler=sampler)
    for _ in range(TPE_DRAWS):
        trial = study.ask()
        drawn = space(trial)
        assert not any("/" in name for name in trial.params), trial.params
        # Deterministic given the suggestions: a replay of the trial's params gives the same.
        assert space(optuna.trial.FixedTrial(trial.params)) == drawn
        size = footprint(ModelConfig.from_dict(drawn[MODEL_KEY]), shape)
        # Rewarding big models drives the sampler into the guard's limits.
        study.tell(trial, -math.log(size.params) - math.log(size.activation_bytes))
        draws.append(drawn)
    for drawn in draws:
        assert set(drawn) == {MODEL_KEY}
        assert json.loads(json.dumps(drawn)) == drawn
    return [ModelConfig.from_dict(d[MODEL_KEY]) for d in draws]


def _report_draws(task: str) -> list[ModelConfig]:
    bounds = task_bounds(task)
    configs = [ModelConfig.from_dict(p[MODEL_KEY]) for p in get_space("report", task)]
    return [c for c in configs if fits(c, bounds.input_shape, **bounds.limits)]


DRAWS = {"default": lambda task: _sampled_draws("default", task),
         "study-axes": lambda task: _sampled_draws("study-axes", task),
         "report": _report_draws}


def _assert_within_default(config: ModelConfig, bounds: DefaultBounds) -> None:
    assert config.family == "conv" and config.loss == bounds.loss
    assert config.optimizer == "adam" and config.epochs == bounds.epochs
    assert bounds.depths[0] <= config.depth <= max(bounds.depths[1], 2 * config.pool)
    assert min(config.filters) >= min(bounds.filters)  # never a 1-filter layer
    assert max(config.filters) <= max(bounds.filters) * 2 ** (config.depth - 1)
    assert config.kernel in bounds.kernels and config.batch_size in bounds.batch_sizes
    assert bounds.lr_range[0] <= config.lr <= bounds.lr_range[1]
    assert config.dropout == 0 and config.batchnorm in (0, config.depth)
    assert config.pool in (bounds.unet_levels or (0,))
    assert config.skip or config.pool == 0
    check(config, bounds.input_shape, **bounds.limits)


def _assert_within_bounds(config: ModelConfig, bounds: TaskBounds) -> None:
    assert config.family in bounds.families
    assert config.loss in LOSSES and config.optimizer == "adam"
    assert config.batch_size in bounds.batch_sizes and config.epochs == bounds.epochs
    assert LR_RANGE[0] <= config.lr <= LR_RANGE[1]
    assert DROPOUT_RATE_RANGE[0] <= config.dropout_rate <= DROPOUT_RATE_RANGE[1]
    if config.family == "conv":
        assert 1 <= config.depth <= bounds.max_depth
        assert set(config.filters) <= set(FILTERS) and config.kernel in KERNELS
        assert config.pool <= min(bounds.max_pool, config.depth // 2)
        hidden = config.depth
    else:
        assert 1 <= config.depth <= bounds.max_dense_depth
        *widths, output = config.dense_widths
        assert output == bounds.output_width
        assert all(1 <= w <= max(bounds.dense_widths) for w in widths)
        hidden = config.depth - 1
    assert config.dropout <= hidden and config.batchnorm <= hidden


@pytest.mark.parametrize(("task", "space"), CASES)
def test_space_contract(task, space):
    bounds = task_bounds(task)
    configs = DRAWS[space](task)
    assert configs, f"{space} space of {task} yielded nothing the guard accepts"
    for config in configs:
        assert config.task == task
        assert ModelConfig.from_json(config.to_json()) == config
        again = parse(describe(config), task=task)
        assert architecture(again) == architecture(config), describe(config)
        if not config.skip:  # the study's columns have no skip connections
            again = parse_row(**format_row(config), task=task)
            assert architecture(again) == architecture(config), format_row(config)
        if space == "study-axes":  # `report` keeps only the rows the guard accepts
            check(config, bounds.input_shape, **bounds.limits)
            _assert_within_bounds(config, bounds)
        elif space == "default":
            _assert_within_default(config, REGISTRY[task].default)

    distinct = {architecture(c): c for c in configs}.values()
    smallest = sorted(distinct, key=lambda c: footprint(c, bounds.input_shape).params)[:BUILDS]
    for config in smallest:
        size = footprint(config, bounds.input_shape)
        assert keras_sizes(config, bounds.input_shape) == (size.params, size.activation_bytes)
        model = _built(config, bounds)
        for shape in RUN_SHAPES[task]:
            if config.family == "dense" and shape != bounds.input_shape:
                continue
            out = model.predict_on_batch(np.zeros((1, *shape, 1), dtype="float32"))
            assert out.shape == (1, *shape, 1), f"{format_row(config)} at {shape}"


def _built(config: ModelConfig, bounds: TaskBounds) -> keras.Model:
    # Conv models are fully convolutional; dense ones need the task's one fixed size.
    shape = (None, None) if config.family == "conv" else bounds.input_shape
    return build_model(config, shape, compile=False)


def test_full_space_narrows_over_limit_draws():
    """The widest, deepest unpooled draw is far over the guard: it comes back narrowed."""
    for task in TASKS:
        bounds = task_bounds(task)
        point = _point(
            bounds, conv_depth=bounds.max_depth, filter_schedule="constant", base_filters=128,
            kernel=5, dropout_level=1.0, batchnorm_level=1.0, batch_size=max(bounds.batch_sizes),
        )
        drawn = get_space("study-axes", task)(optuna.trial.FixedTrial(point))
        config = ModelConfig.from_dict(drawn[MODEL_KEY])
        wanted = config.replace(filters=(128,) * bounds.max_depth)
        assert not fits(wanted, bounds.input_shape, **bounds.limits)
        assert fits(config, bounds.input_shape, **bounds.limits)
        # Halved as a whole: the schedule's shape is kept.
        assert len(set(config.filters)) == 1 and config.filters[0] < 128
