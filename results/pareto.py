"""The trade-off between model size and quality: trials no other trial beats on both."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from spaces import constants as C


def pareto_front(df: pd.DataFrame, x: str = C.PARAMS, y: str = C.VAL_MSE) -> pd.DataFrame:
    """Rows not dominated on (x, y), both minimized, sorted by x then y.

    A row is dominated when another is at least as good on both and better on one; rows with
    equal (x, y) do not dominate each other, so ties on the front are all kept. Rows missing
    x or y are left out. The original index is kept, to find the rows in `df`.
    """
    for column in (x, y):
        if column not in df:
            raise KeyError(f"pareto_front: no column {column!r} (columns: {', '.join(df)})")
    points = df.dropna(subset=[x, y])
    xs, ys = points[x].to_numpy(dtype=float), points[y].to_numpy(dtype=float)
    order = np.lexsort((ys, xs))  # by x, then y
    keep: list[int] = []
    best_y = math.inf  # the lowest y among points of strictly smaller x
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and xs[order[end]] == xs[order[start]]:
            end += 1
        group_min = ys[order[start]]
        if group_min < best_y:
            keep += [int(i) for i in order[start:end] if ys[i] == group_min]
        best_y = min(best_y, group_min)
        start = end
    return points.iloc[keep]
