"""Search spaces over autoencoder configs: `default`, the study's axes (`study-axes`) and
the study's rows (`report`).

The leaf package: imports nothing else of ours and no ML framework, so `search/` and
`results/` can both use it.

    REGISTRY[task]             -> TaskSpec: name, description, bounds, full space
    get_space("report", task)  -> list of Ray grid points {MODEL_KEY: config, REPORT_KEY: id}
    get_space("default", task) -> the default space (spaces/default.py), and
    get_space("study-axes", task) -> the study's axes (spaces/full.py): define-by-run
                                  functions for ray.tune.search.optuna.OptunaSearch(space=...)
    warm_start_points(task)    -> the study's best rows as full-space points, for
                                  OptunaSearch(points_to_evaluate=...)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from spaces import default
from spaces.axes import TaskBounds
from spaces.config import ConfigError
from spaces.full import point_for, sample
from spaces.study import study_rows, study_space
from spaces.tasks import REGISTRY, TaskSpec

__all__ = ["REGISTRY", "SAMPLED_SPACES", "SPACES", "TASKS", "TaskSpec", "full_space",
           "get_space", "sampled_space", "task_bounds", "warm_start_points"]

TASKS = tuple(REGISTRY)


def _full_space(task: str) -> Callable[[Any], dict[str, Any]]:
    return REGISTRY[task].full_space


def _default_space(task: str) -> Callable[[Any], dict[str, Any]]:
    return functools.partial(default.sample, bounds=REGISTRY[task].default)


SPACES: dict[str, Callable[[str], Any]] = {
    "default": _default_space, "study-axes": _full_space, "report": study_space,
}
# The spaces Optuna samples (define-by-run functions); "report" is a finite grid.
SAMPLED_SPACES = ("default", "study-axes")


def _check(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"unknown {name} {value!r}: expected one of {', '.join(valid)}")


def get_space(space: str, task: str) -> Any:
    """The `space` of `task` (a name in SPACES); see the module docstring for the types."""
    _check("space", space, tuple(SPACES))
    _check("task", task, TASKS)
    return SPACES[space](task)


def task_bounds(task: str) -> TaskBounds:
    """The full space's bounds and the resource guard's defaults for `task`."""
    _check("task", task, TASKS)
    return REGISTRY[task].bounds


def sampled_space(
    space: str, task: str, *, max_params: int | None = None,
    max_activation_mb: float | None = None, input_shape: tuple[int, int] | None = None,
    ordered: bool = False,
) -> Callable[[Any], dict[str, Any]]:
    """`space` ("default" or "study-axes") of `task` under the user's limits. `ordered`: the
    default space's ordered choices as integer parameters (spaces/default.py)."""
    _check("space", space, SAMPLED_SPACES)
    if space == "study-axes":
        return full_space(task, max_params=max_params, max_activation_mb=max_activation_mb,
                          input_shape=input_shape)
    _check("task", task, TASKS)
    bounds = REGISTRY[task].default
    # The user's limits tighten the default space's caps, never loosen them.
    limited = dataclasses.replace(
        bounds,
        max_params=min(bounds.max_params, max_params or bounds.max_params),
        max_activation_mb=min(bounds.max_activation_mb,
                              max_activation_mb or bounds.max_activation_mb),
        input_shape=(input_shape[0], input_shape[1]) if input_shape else bounds.input_shape,
        ordered=ordered,
    )
    return functools.partial(default.sample, bounds=limited)


def full_space(
    task: str, *, max_params: int | None = None, max_activation_mb: float | None = None,
    input_shape: tuple[int, int] | None = None,
) -> Callable[[Any], dict[str, Any]]:
    """The full space of `task` under the user's limits (--max-params, --max-activation-mb)
    at the size the guard checks (--resize).

    A `functools.partial` of the module-level `sample` with frozen bounds: unlike a closure it
    pickles, which Ray needs at `fit()`.
    """
    bounds = task_bounds(task)
    changes: dict[str, Any] = {
        "max_params": max_params, "max_activation_mb": max_activation_mb,
        "input_shape": None if input_shape is None else tuple(input_shape),
    }
    try:
        limited = dataclasses.replace(
            bounds, **{k: v for k, v in changes.items() if v is not None})
    except ConfigError as err:
        raise ConfigError(
            f"--max-params {max_params} / --max-activation-mb {max_activation_mb} leave no "
            f"room for the {task} full space: {err}"
        ) from None
    return functools.partial(sample, bounds=limited)


def warm_start_points(task: str, space: str = "study-axes", *,
                      ordered: bool = False) -> list[dict[str, Any]]:
    """The study's best rows of `task` as parameters of `space` ("default" or "study-axes"),
    where the space can express them (the default space trains them with its own loss), in
    the default space's `ordered` encoding where asked."""
    _check("space", space, SAMPLED_SPACES)
    _check("task", task, TASKS)
    best = [r.config for r in study_rows(task) if r.best]
    if space == "default":
        bounds = dataclasses.replace(REGISTRY[task].default, ordered=ordered)
        found = (default.point_for(c, bounds) for c in best)
    else:
        found = (point_for(c, task_bounds(task)) for c in best)
    return [p for p in found if p is not None]
