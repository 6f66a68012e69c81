"""Cost-aware proposals: of a sampler's few proposals, run the cheapest.

Optuna's samplers rank proposals by expected quality alone. In a sweep with a time budget a
trial's cost matters as much: a model that costs four times as much per image gets a quarter of
the trials. The cost of a proposal is known before it trains, from the space itself (the model
its parameters build, counted in multiply-adds per image by the resource guard), so no
surrogate of cost is needed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from spaces import constants as C
from spaces.config import ModelConfig
from spaces.guard import multiply_adds

Cost = Callable[[dict[str, Any]], float]


def _params_cost(params: dict[str, Any], space: Callable[[Any], dict[str, Any]],
                 shape: tuple[int, int]) -> float:
    try:
        config = ModelConfig.from_dict(space(optuna.trial.FixedTrial(params))[C.MODEL_KEY])
        return multiply_adds(config, shape) / (shape[0] * shape[1])
    except Exception:  # noqa: BLE001 - a partial or refused point: no cost to compare by
        return math.inf


def space_cost(space: Callable[[Any], dict[str, Any]], shape: tuple[int, int]) -> Cost:
    """Multiply-adds per pixel of the model `space` builds from a full set of parameters
    (inf where the parameters are partial or the space refuses them). Picklable."""
    return functools.partial(_params_cost, space=space, shape=(shape[0], shape[1]))


class CheapestOf(BaseSampler):
    """`base`'s relative proposals, `candidates` at a time; the cheapest by `cost` runs.

    While `base` proposes nothing relative (its random start-up trials), the start is drawn
    the same way from uniform draws over the space, once the space is known (from the second
    trial on): a time-budgeted sweep on one CPU spent 65 of its first 80 seconds on five
    uniform start-up draws that all landed on 64-filter or 5x5 models, ten times the cost of
    the configs that won. Ties in cost (or proposals that cannot be costed) keep the first.
    """

    def __init__(self, base: BaseSampler, cost: Cost, candidates: int = 3,
                 seed: int | None = None) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self._base = base
        self._cost = cost
        self._candidates = candidates
        self._uniform = optuna.samplers.RandomSampler(seed=seed)

    def _draw(self, study: Study, trial: FrozenTrial,
              search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {name: self._uniform.sample_independent(study, trial, name, distribution)
                for name, distribution in search_space.items()}

    def infer_relative_search_space(self, study: Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        first = self._base.sample_relative(study, trial, search_space)
        if first:
            proposals = [first] + [self._base.sample_relative(study, trial, search_space)
                                   for _ in range(self._candidates - 1)]
        elif search_space:  # the base's start-up: uniform draws, the cheapest of them
            proposals = [self._draw(study, trial, search_space)
                         for _ in range(self._candidates)]
        else:
            return first
        costs = [self._cost(p) for p in proposals]
        return proposals[min(range(len(proposals)), key=lambda i: (costs[i], i))]

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
        self._uniform.reseed_rng()
