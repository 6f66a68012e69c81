"""spaces/__init__.py and spaces/full.py: the registry, warm starts, and Ray's use of the space."""

from __future__ import annotations

import pickle
import warnings

import optuna
import pytest
from ray.tune.search.optuna import OptunaSearch

import spaces
from spaces import REGISTRY, SPACES, TASKS, get_space, task_bounds, warm_start_points
from spaces.axes import count_from_level, level_for_count
from spaces.config import ConfigError, ModelConfig
from spaces.constants import MODE, MODEL_KEY, OBJECTIVE
from spaces.full import point_for
from spaces.guard import footprint
from spaces.study import architecture, row, study_rows

WARM_ROWS = {"mnist": "mnist/1.2/2", "mnist-denoise": "mnist-denoise/2.2/3", "text": "text/3.3/5"}
# Rows the full space cannot express: 3 poolings of a 28x28 digit (max 2), and the dense
# models the guard refuses.
INEXPRESSIBLE = {"mnist/1.1/1", "mnist-denoise/2.1/1", "mnist/1.3/5", "mnist-denoise/2.3/5",
                 "text/3.2/1", "text/3.2/2", "text/3.2/3", "text/3.2/4"}


def _replay(task: str, point: dict) -> ModelConfig:
    drawn = get_space("study-axes", task)(optuna.trial.FixedTrial(point))
    return ModelConfig.from_dict(drawn[MODEL_KEY])


def test_registry():
    assert all(spec.description and "\n" not in spec.description  # one line, for --help
               for spec in REGISTRY.values())
    assert set(SPACES) == {"default", "study-axes", "report"}
    assert task_bounds("text").families == ("conv",)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = get_space("study-axes", "mnist")(study.ask())  # a define-by-run space
    assert ModelConfig.from_dict(drawn[MODEL_KEY]).task == "mnist"
    with pytest.raises(ConfigError,
                       match="unknown space 'grid': expected one of default, study-axes, report"):
        get_space("grid", "mnist")
    with pytest.raises(ConfigError, match="unknown task 'cifar': expected one of mnist, "):
        get_space("study-axes", "cifar")
    with pytest.raises(ConfigError, match="unknown task 'cifar'"):
        task_bounds("cifar")


@pytest.mark.parametrize("task", TASKS)
def test_full_space_pickles_by_reference(task):
    """Ray pickles the search algorithm at fit(): the function must be module-level."""
    space = get_space("study-axes", task)
    assert pickle.loads(pickle.dumps(space)) is space


@pytest.mark.parametrize("task", TASKS)
def test_warm_start_is_the_studys_best_row(task):
    (point,) = warm_start_points(task)
    best = row(WARM_ROWS[task])
    replayed = _replay(task, point)
    assert architecture(replayed) == architecture(best.config)
    assert (replayed.loss, replayed.batch_size, replayed.lr) == (
        best.config.loss, best.config.batch_size, best.config.lr)


@pytest.mark.parametrize(
    ("task", "schedule", "base", "depth", "loss"),
    [
        ("mnist", "constant", 16, 6, "bce"),
        ("mnist-denoise", "widening", 32, 4, "mse"),
        ("text", "widening", 32, 4, "mse"),
    ],
)
def test_warm_start_point_params(task, schedule, base, depth, loss):
    (point,) = warm_start_points(task)
    assert (point["filter_schedule"], point["base_filters"]) == (schedule, base)
    assert (point["conv_depth"], point["loss"]) == (depth, loss)


@pytest.mark.parametrize("study_row", study_rows(), ids=lambda r: r.id)
def test_point_for_every_row(study_row):
    point = point_for(study_row.config, task_bounds(study_row.task))
    if study_row.id in INEXPRESSIBLE:
        assert point is None
        return
    assert point is not None
    replayed = _replay(study_row.task, point)
    assert replayed.replace(epochs=study_row.epochs) == study_row.config


def test_levels_map_to_counts_uniformly_and_back():
    for limit in range(0, 15):
        counts = [count_from_level(i / 1000, limit) for i in range(1001)]
        assert set(counts) == set(range(limit + 1))
        per_count = [counts.count(c) for c in range(limit + 1)]
        assert max(per_count) - min(per_count) <= 2  # uniform up to the grid's rounding
        for count in range(limit + 1):
            assert count_from_level(level_for_count(count, limit), limit) == count


def test_ray_optuna_search_starts_from_the_warm_point():
    """The caller's set-up: OptunaSearch(space=fn, points_to_evaluate=...), TPE multivariate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(multivariate=True, group=True, seed=0)
    search = OptunaSearch(
        space=get_space("study-axes", "text"), metric=OBJECTIVE, mode=MODE, sampler=sampler,
        points_to_evaluate=warm_start_points("text"),
    )
    first = search.suggest("t0")
    assert first is not None
    assert first[MODEL_KEY] == _replay("text", warm_start_points("text")[0]).to_dict()
    assert first["filter_schedule"] == "widening"  # Ray keeps the flat params beside the model
    search.on_trial_complete("t0", {OBJECTIVE: 0.01})
    suggested = search.suggest("t1")
    assert suggested is not None
    second = ModelConfig.from_dict(suggested[MODEL_KEY])
    assert second.task == "text"


@pytest.mark.parametrize("task", spaces.TASKS)
def test_user_limits_reach_the_full_space(task):
    """--max-params/--max-activation-mb narrow what the space draws, and the space pickles."""
    limit = 20_000
    space = pickle.loads(pickle.dumps(spaces.full_space(task, max_params=limit)))
    bounds = spaces.task_bounds(task)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    families = set()
    for _ in range(150):
        trial = study.ask()
        config = ModelConfig.from_dict(space(trial)[MODEL_KEY])
        study.tell(trial, 0.0)
        families.add(config.family)
        assert footprint(config, bounds.input_shape).params <= limit
    assert families == set(bounds.families)


@pytest.mark.parametrize("task", TASKS)
def test_default_space_warm_start_replays_the_study_best_rows(task):
    """`--warm-start report` with the default space enqueues the study's best rows: each point
    rebuilds the row's architecture, batch and learning rate (trained with the space's BCE)."""
    points = warm_start_points(task, "default")
    best = [r.config for r in study_rows(task) if r.best]
    assert len(points) == len(best) >= 1
    for point, study in zip(points, best, strict=True):
        drawn = ModelConfig.from_dict(get_space("default", task)(
            optuna.trial.FixedTrial(point))[MODEL_KEY])
        assert drawn.replace(loss=study.loss, epochs=study.epochs) == study
        assert drawn.loss == "bce"
