"""The trade-off between model size and quality: trials no other trial beats on both."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from spaces import constants as C


def nondominated(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Rows no other row beats on all `columns` (all minimized): a row is beaten when another
    is at least as good on each and better on one, so equal rows are all kept. Rows missing a
    column's value are left out; the index is kept."""
    missing = [c for c in columns if c not in frame]
    if missing:
        raise KeyError(f"no column {missing[0]!r} (columns: {', '.join(frame)})")
    points = frame.dropna(subset=list(columns))
    values = points[list(columns)].to_numpy(dtype=float)
    keep = []
    for i, row in enumerate(values):
        no_worse = np.all(values <= row, axis=1)
        better = np.any(values < row, axis=1)
        if not np.any(no_worse & better):
            keep.append(i)
    return points.iloc[keep]


def pareto_front(df: pd.DataFrame, x: str = C.PARAMS, y: str = C.VAL_MSE) -> pd.DataFrame:
    """Rows not dominated on (x, y), both minimized, sorted by x then y (`nondominated`)."""
    return nondominated(df, [x, y]).sort_values([x, y], kind="stable")
