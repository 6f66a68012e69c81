"""`--search tpe` (the default): TPE fitted to short sweeps and to time, with ASHA.

The earlier setup (`--search optuna`) lost to random sampling of its own space on MNIST at equal
images, on 3 of 3 seeds (bench/efficiency.py, 2026-12-05). Three things are changed, each for a
reason seen in those sweeps or read in Optuna's TPE:
- Ordered choices are integers (`filters_log2`, `kernel` step 2, `batch_size_log2`), so TPE's
  kernels reach from 32 filters to its neighbours; as categoricals, each value is its own
  island and the model cannot tell that 32 lies between 16 and 64.
- `gamma` keeps at least two and a quarter of the trials in TPE's "good" set (Optuna's default,
  `ceil(0.1 n)`, is one trial for n <= 10, so a dozen-trial sweep cloned its early leader).
- Cost: of `CANDIDATES` TPE proposals, the cheapest in multiply-adds per image runs
  (`CheapestOf`). A trial's cost per image is known before it trains and differs several-fold
  across the space (a 64-filter 5x5 stack against a 16-filter 3x3 one), so at equal time a
  searcher blind to it runs fewer, slower trials.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import optuna
from ray.tune.search import Searcher

from search.searchers.base import optuna_searcher, space_of
from search.searchers.cost import CheapestOf, Cost, space_cost

if TYPE_CHECKING:
    from pathlib import Path

    from search.sweep import SweepSettings

N_STARTUP_TRIALS = 5  # random trials first, then TPE (ASHA-stopped trials count)
CANDIDATES = 3  # TPE proposals per trial; the cheapest runs


def gamma(n: int) -> int:
    """How many of `n` trials TPE models as good: a quarter, at least two, at most 25."""
    return min(max(2, math.ceil(0.25 * n)), 25)


def sampler(seed: int, cost: Cost | None = None,
            candidates: int = CANDIDATES) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():  # `group`, `constant_liar` are experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        tpe = optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True,
                                         n_startup_trials=N_STARTUP_TRIALS, gamma=gamma,
                                         seed=seed)
    return tpe if cost is None or candidates <= 1 else CheapestOf(tpe, cost, candidates, seed)


def make(settings: SweepSettings,
         journal: Path | None = None) -> tuple[Searcher | None, dict[str, Any]]:
    space = space_of(settings, ordered=True)
    cost = space_cost(space, settings.guard_shape or (28, 28))
    return optuna_searcher(settings, sampler(settings.seed, cost), ordered=True,
                           journal=journal)

