"""What every Optuna-backed searcher shares: the space, the warm-start points, the fidelity-aware
`OptunaSearch` that tells ASHA-stopped trials to the sampler as pruned."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from ray.tune.search import Searcher

import spaces
from search import internals
from search import journal as journals
from search.fidelity import FidelityOptunaSearch
from search.searchers import warm_points
from spaces import constants as C

if TYPE_CHECKING:
    from search.sweep import SweepSettings


def space_of(settings: SweepSettings, *, ordered: bool) -> Callable[[Any], dict[str, Any]]:
    """The sweep's define-by-run space under its limits."""
    return spaces.sampled_space(settings.space, settings.task, max_params=settings.max_params,
                                max_activation_mb=settings.max_activation_mb,
                                input_shape=settings.guard_shape, ordered=ordered)


def optuna_searcher(settings: SweepSettings, sampler: optuna.samplers.BaseSampler, *,
                    ordered: bool, journal: Path | None = None) -> tuple[Searcher, dict[str, Any]]:
    """Ray's `OptunaSearch` around `sampler`, over the sweep's space (the space is the
    searcher's, so the param space Ray gets is empty). With a `journal`, its study, named after
    the sweep, lives there (`search.journal`: the dashboard shows it); else in memory."""
    searcher = FidelityOptunaSearch(
        space=space_of(settings, ordered=ordered),
        # Several objectives: Optuna's multi-objective study (TPE and random handle it).
        metric=list(settings.objectives) if settings.multi_objective else C.OBJECTIVE,
        mode=[C.MODE] * len(settings.objectives) if settings.multi_objective else C.MODE,
        sampler=sampler,
        points_to_evaluate=warm_points(settings, ordered=ordered) or None,
        time_attr=settings.fidelity[0],
        max_t=settings.fidelity[1],
        storage=journals.open_storage(journal) if journal is not None else None,
        study_name=settings.name if journal is not None else None,
    )
    if journal is not None:  # a new sweep's study: the dashboard names its objective(s)
        journals.name_metrics(internals.optuna_study(searcher), searcher.metric)
    return searcher, {}
