"""`--search optuna`: the TPE setup of the sweeps before `tpe`, kept selectable by name.

Multivariate TPE grouped by which parameters a trial has, `constant_liar` so that concurrent
trials do not get the same proposal, modelling from the 5th trial on, Optuna's default `gamma`,
and the default space's ordered choices as categoricals.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import optuna
from ray.tune.search import Searcher

from search.searchers.base import optuna_searcher

if TYPE_CHECKING:
    from pathlib import Path

    from search.sweep import SweepSettings

# Random trials before TPE models the results. Optuna's default, 10, suits hundreds of trials;
# a sweep of one to two dozen would be random search to the end. ASHA-stopped (PRUNED) trials
# count towards it.
N_STARTUP_TRIALS = 4


def sampler(seed: int) -> optuna.samplers.TPESampler:
    with warnings.catch_warnings():  # `group`, `constant_liar` are experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=N_STARTUP_TRIALS, seed=seed)


def make(settings: SweepSettings,
         journal: Path | None = None) -> tuple[Searcher | None, dict[str, Any]]:
    return optuna_searcher(settings, sampler(settings.seed), ordered=False,
                           journal=journal)

