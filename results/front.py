"""A multi-objective sweep's Pareto front, and how it stands against the study's rows.

The front holds the healthy trials that trained their whole budget and that no other such
trial beats on every objective. A trial ASHA stopped early never enters it: its figures are
from fewer epochs, so it would sit on the front for having trained less.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from results.leaderboard import succeeded
from results.pareto import nondominated
from spaces import constants as C

FRONT_COLUMNS = ("notation", C.PARAMS, C.VAL_MSE, C.LATENCY, "epochs", C.TRIAL_ID,
                 "report_model")


def full_budget(trials: pd.DataFrame) -> pd.DataFrame:
    """Healthy trials (`succeeded`) that trained every epoch they were given."""
    ok = succeeded(trials)
    if "target_epochs" not in ok:
        raise KeyError("full_budget needs load_trials rows (with target_epochs), not a "
                       "leaderboard")
    epochs = pd.to_numeric(ok["epochs"], errors="coerce")
    target = pd.to_numeric(ok["target_epochs"], errors="coerce")
    return ok[epochs >= target]


def front_table(trials: pd.DataFrame, objectives: Sequence[str]) -> pd.DataFrame:
    """The sweep's front on `objectives`, smallest first (by the second objective, then the
    first), in the study's notation with parameters and val_mse."""
    front = nondominated(full_budget(trials), objectives)
    order = [objectives[1], objectives[0], *objectives[2:]] if len(objectives) > 1 else \
        list(objectives)
    front = front.sort_values(order, kind="stable")
    columns = [c for c in FRONT_COLUMNS if c in front]
    return front[columns].reset_index(drop=True)


def study_dominance(front: pd.DataFrame, rows: pd.DataFrame, x: str = C.PARAMS,
                    y: str = C.VAL_MSE) -> pd.DataFrame:
    """Each study row trained here (`rows`: report_model, x, y) with the smallest front model at
    most as large and at most as bad, if any: the front dominates a row it covers so."""
    records = []
    for _, row in rows.iterrows():
        covering = front[(front[x] <= row[x]) & (front[y] <= row[y])]
        best = covering.sort_values([x, y]).iloc[0] if len(covering) else None
        records.append({
            "study_row": row["report_model"], "study_notation": row.get("notation"),
            f"study_{x}": row[x], f"study_{y}": row[y],
            "covered": best is not None,
            "front_notation": None if best is None else best.get("notation"),
            f"front_{x}": np.nan if best is None else best[x],
            f"front_{y}": np.nan if best is None else best[y],
        })
    return pd.DataFrame.from_records(records)


def hypervolume_2d(points: Sequence[tuple[float, float]], reference: tuple[float, float]
                   ) -> float:
    """The area dominated by `points` (both minimized) and bounded by `reference`; points
    beyond the reference add nothing."""
    inside = sorted((a, b) for a, b in points if a < reference[0] and b < reference[1])
    area, floor = 0.0, reference[1]
    for a, b in inside:  # by the first coordinate; each step adds what lies below `floor`
        if b < floor:
            area += (reference[0] - a) * (floor - b)
            floor = b
    return area
