"""`--search random`: uniform draws of the space, the baseline every model-based searcher must
beat at equal time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optuna
from ray.tune.search import Searcher

from search.searchers.base import optuna_searcher

if TYPE_CHECKING:
    from pathlib import Path

    from search.sweep import SweepSettings


def make(settings: SweepSettings,
         journal: Path | None = None) -> tuple[Searcher | None, dict[str, Any]]:
    return optuna_searcher(settings, optuna.samplers.RandomSampler(seed=settings.seed),
                           ordered=False, journal=journal)

