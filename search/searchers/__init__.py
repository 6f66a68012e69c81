"""The searchers `--search` names: one module per variant behind a dict, as Optuna's samplers.

Each entry is a `SearcherSpec`: the module whose `make(settings)` returns `(Ray searcher or
None, param space)`, the spaces it can search, and one line a sweep prints to say what runs and
why. A new searcher is one module and one entry here. This module imports neither Ray nor
Optuna (the CLI reads it for `--search`'s choices); `make` imports the chosen module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import spaces
from spaces import constants as C

if TYPE_CHECKING:
    from ray.tune.search import Searcher

    from search.sweep import SweepSettings

__all__ = ["DEFAULT_SEARCH", "SEARCHERS", "SPACES_OF_SEARCH", "SearcherSpec", "make",
           "warm_points"]


@dataclass(frozen=True)
class SearcherSpec:
    """One `--search` choice."""

    module: str  # search.searchers.<module>.make(settings) builds it
    spaces: tuple[str, ...]  # the --space values it can search
    why: str  # what the sweep's first lines say of it
    ordered: bool = False  # samples the default space's ordered choices as integers
    max_objectives: int = len(C.OBJECTIVE_METRICS)  # --objectives it can optimize at once


SEARCHERS: dict[str, SearcherSpec] = {
    "tpe": SearcherSpec(
        "cheap_tpe", spaces.SAMPLED_SPACES,
        "TPE on ordered choices, the cheapest of 3 proposals by multiply-adds per image, "
        "with ASHA (bench/searchers.py compares it with random search)",
        ordered=True),
    "optuna": SearcherSpec(
        "tpe", spaces.SAMPLED_SPACES,
        "the earlier TPE setup (categorical choices, blind to cost), with ASHA"),
    "random": SearcherSpec(
        "random_search", spaces.SAMPLED_SPACES, "random sampling of the space, with ASHA"),
    "grid": SearcherSpec(
        "grid", ("report",), "the study's rows as a grid, each trained as the study printed it",
        max_objectives=1),
}

# What `--search` runs when not given, for a sampled space (a grid replays `--space report`).
DEFAULT_SEARCH = "tpe"

# The spaces each search needs: a grid is a finite list, Optuna samples a define-by-run function.
SPACES_OF_SEARCH = {name: spec.spaces for name, spec in SEARCHERS.items()}


def make(settings: SweepSettings,
         journal: Path | None = None) -> tuple[Searcher | None, dict[str, Any]]:
    """The sweep's searcher (None for a grid, which Ray's variant generator walks) and the
    param space Ray gets (empty where the searcher owns the space). An Optuna searcher keeps
    its study in `journal` where given (a sweep's; `search.journal`), else in memory."""
    module = importlib.import_module(f"search.searchers.{SEARCHERS[settings.search].module}")
    searcher, param_space = module.make(settings, journal)
    return searcher, param_space


def warm_points(settings: SweepSettings, *, ordered: bool | None = None) -> list[dict[str, Any]]:
    """The searcher's warm-start points (the study's best rows), or none, in the parameter
    names the sweep's searcher samples."""
    if settings.warm_start != "report" or settings.space not in spaces.SAMPLED_SPACES:
        return []
    if ordered is None:
        spec = SEARCHERS.get(settings.search)
        ordered = bool(spec and spec.ordered)
    return spaces.warm_start_points(settings.task, settings.space,
                                    ordered=ordered and settings.space == "default")
