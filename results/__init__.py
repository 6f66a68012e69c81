"""Leaderboards, the study's comparison tables, plots and importance, from a sweep's files.

Reads only files: importing `results` (or any of its modules) loads neither TensorFlow nor
Ray. The public names below are imported on first use, so `import results` stays cheap.
`leaderboard()` itself is `results.leaderboard.leaderboard`: its module shares its name.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "ResultsError": "results.sweepdir",
    "load_trials": "results.leaderboard",
    "curves": "results.leaderboard",
    "best_so_far": "results.leaderboard",
    "write_leaderboard": "results.leaderboard",
    "read_csv": "results.render",
    "merge": "results.leaderboard",
    "comparison_table": "results.tables",
    "discoveries": "results.tables",
    "study_table": "results.tables",
    "pareto_front": "results.pareto",
    "param_importances": "results.importance",
    "generate": "results.generator",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'results' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
