"""`--search grid`: the study's rows (`--space report`), each trained as the study printed it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray import tune
from ray.tune.search import Searcher

from spaces import constants as C
from spaces import study

if TYPE_CHECKING:
    from pathlib import Path

    from search.sweep import SweepSettings


def report_model(config: dict[str, Any]) -> dict[str, Any]:
    """Resolves a grid point's row id into its config (module level: pickled by Ray)."""
    return study.row(config[C.REPORT_KEY]).config.to_dict()


def make(settings: SweepSettings,
         journal: Path | None = None) -> tuple[Searcher | None, dict[str, Any]]:
    """No searcher: `search.mirror` writes the grid's trials into the `journal`."""
    from search.sweep import report_ids

    return None, {C.REPORT_KEY: tune.grid_search(report_ids(settings)),
                  C.MODEL_KEY: tune.sample_from(report_model)}

