"""PNG figures of a sweep, from DataFrames and arrays computed elsewhere.

Figures are built with matplotlib's object API on the Agg canvas: no pyplot, so no global
backend or figure state leaks into the caller (the sweep draws them inside a running process).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from results.leaderboard import best_so_far, succeeded
from results.pareto import pareto_front
from spaces import constants as C

Triple = tuple[np.ndarray, np.ndarray, np.ndarray]
MAX_SAMPLES = 8


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    # Atomic, like every other output: a crash mid-write leaves the old picture.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        figure.savefig(tmp, dpi=100, format=path.suffix.lstrip(".") or "png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _trial_keys(frame: pd.DataFrame) -> list[str]:
    """Columns that identify a trial: its id, and its sweep in a merged frame."""
    return ["sweep", C.TRIAL_ID] if "sweep" in frame else [C.TRIAL_ID]


def _note_if_empty(axes, empty: bool, what: str) -> None:
    if empty:
        axes.text(0.5, 0.5, f"no {what} yet", ha="center", va="center",
                  transform=axes.transAxes)


def learning_curves(
    curve: pd.DataFrame, board: pd.DataFrame, path: str | Path, top_k: int = 5
) -> Path:
    """val_mse per epoch of the top-k trials of the leaderboard (failed trials left out)."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    keys = _trial_keys(board)
    top = succeeded(board).head(top_k)
    grouped = dict(list(curve.groupby(keys, sort=False)))
    drawn = 0
    for _, row in top.iterrows():
        trial = grouped.get(tuple(row[k] for k in keys))
        if trial is None or trial[C.VAL_MSE].isna().all():
            continue
        axes.plot(trial[C.EPOCH], trial[C.VAL_MSE], marker=".",
                  label=f"#{row['rank']} {row['notation']}")
        drawn += 1
    _note_if_empty(axes, not drawn, "reported epochs")
    axes.set(xlabel="epoch", ylabel=C.VAL_MSE, title=f"Learning curves of the top {top_k}")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if drawn:
        axes.set_yscale("log")
        # Below the axes, never over a curve.
        figure.legend(loc="outside lower center", fontsize="small", ncols=min(drawn, 2))
    return _save(figure, path)


def search_progress(
    curve: pd.DataFrame,
    path: str | Path,
    study_val: float | None = None,
    study_label: str = "study's best",
    budget: str = "",
) -> Path:
    """Best val_mse so far against trial-epochs spent (left) and wall-clock time (right),
    with the study's best as a line.

    One line per sweep where `curve` has a `sweep` column (several sweeps merged). `study_label`
    should state the study's budget and `budget` ours (epochs, images), since the two differ.
    Searchers are compared at equal time on the right: trials differ several-fold in cost.
    """
    figure = Figure(figsize=(12, 5), layout="constrained")
    by_work, by_time = figure.subplots(1, 2, sharey=True)
    sweeps = curve.groupby("sweep", sort=False) if "sweep" in curve else [("best so far", curve)]
    drawn = 0
    for name, part in sweeps:
        best = best_so_far(part)
        if best.empty:
            continue
        by_work.step(best["cum_epochs"], best[C.VAL_MSE], where="post", label=str(name))
        by_time.step(best["elapsed_s"] / 60, best[C.VAL_MSE], where="post")
        drawn += 1
    for axes in (by_work, by_time):
        if study_val is not None:
            axes.axhline(study_val, color="tab:red", linestyle="--",
                         label=f"{study_label}: {study_val:g}" if axes is by_work else None)
        _note_if_empty(axes, not drawn, "reported epochs")
    by_work.set(xlabel="trial-epochs spent by the sweep" + (f" ({budget})" if budget else ""),
                ylabel=f"best {C.VAL_MSE} so far", title="Search progress by work")
    by_time.set(xlabel="minutes since the sweep started", title="... and by wall-clock time")
    by_work.xaxis.set_major_locator(MaxNLocator(integer=True))
    if drawn or study_val is not None:
        by_work.set_yscale("log")
        figure.legend(loc="outside lower center", fontsize="small")  # never over a line
    return _save(figure, path)


def size_vs_quality(board: pd.DataFrame, path: str | Path,
                    study_points: pd.DataFrame | None = None,
                    front: pd.DataFrame | None = None) -> Path:
    """val_mse against parameter count (log x), our replays of the study's rows marked, the
    study's published figures for those rows (`study_points`: params, val_mse, id) beside
    them, and the Pareto front: `front` where a multi-objective sweep gives its own (trials of
    the whole budget only), else the front of every trial drawn. Only what is drawn gets a
    legend entry."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    points = succeeded(board).dropna(subset=[C.PARAMS])
    study = points["report_model"].fillna("") != ""
    if (~study).any():
        axes.scatter(points.loc[~study, C.PARAMS], points.loc[~study, C.VAL_MSE], s=18,
                     label="searched configs")
    if study.any():
        axes.scatter(points.loc[study, C.PARAMS], points.loc[study, C.VAL_MSE], s=40,
                     marker="s", facecolors="none", edgecolors="tab:red",
                     label="our replays of the study's configs")
    published = study_points if study_points is not None else pd.DataFrame()
    if not published.empty:
        axes.scatter(published[C.PARAMS], published[C.VAL_MSE], s=50, marker="x",
                     color="tab:red", label="the study's published figures")
        for _, row in published.iterrows():
            axes.annotate(str(row["id"]), (row[C.PARAMS], row[C.VAL_MSE]), fontsize="x-small",
                          xytext=(4, 4), textcoords="offset points")
    label = "Pareto front" if front is None else "the sweep's front (whole budget)"
    front = pareto_front(points) if front is None else pareto_front(front)
    if not front.empty:
        axes.plot(front[C.PARAMS], front[C.VAL_MSE], drawstyle="steps-post", color="black",
                  linewidth=1, marker="o", markersize=8, fillstyle="none", label=label)
    _note_if_empty(axes, points.empty, "finished trials")
    axes.set(xlabel="parameters", ylabel=C.VAL_MSE, title="Size against quality")
    if not points.empty or not published.empty:
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.legend(fontsize="small")
    return _save(figure, path)


def reconstruction_sheet(samples: Sequence[Triple], path: str | Path, title: str = "") -> Path:
    """Rows input / output / target, one column per sample (at most MAX_SAMPLES), under
    `title` (the model, in the study's notation)."""
    samples = list(samples)[:MAX_SAMPLES]
    if not samples:
        raise ValueError("reconstruction_sheet: no samples to draw")
    height, width = samples[0][0].shape
    side = 2.0
    figure = Figure(
        figsize=(side * len(samples) * max(width / height, 0.25), side * 3 + 0.5),
        layout="constrained",
    )
    grid = figure.subplots(3, len(samples), squeeze=False)
    for column, triple in enumerate(samples):
        labelled = zip(("input", "output", "target"), triple, strict=True)
        for row, (label, image) in enumerate(labelled):
            axes = grid[row][column]
            axes.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
            axes.set_xticks([])
            axes.set_yticks([])
            if column == 0:
                axes.set_ylabel(label)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def finalist_curves(curve: pd.DataFrame, path: str | Path) -> Path:
    """The finalists stage's training: val_mse per epoch, one line per (candidate, seed), one
    colour per candidate (`results.finalists.training_curves`)."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    colours = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys(curve["candidate"]))}
    for (name, seed), run in curve.groupby(["candidate", "seed"], sort=False):
        first = seed == curve.loc[curve["candidate"] == name, "seed"].iloc[0]
        axes.plot(run[C.EPOCH], run[C.VAL_MSE], marker=".", color=colours[name],
                  label=str(name) if first else None, alpha=0.8)
    _note_if_empty(axes, curve.empty, "finalist runs")
    axes.set(xlabel="epoch", ylabel=C.VAL_MSE,
             title="Finalists' training (every seed; the same budget for all)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not curve.empty:
        axes.set_yscale("log")
        figure.legend(loc="outside lower center", fontsize="small", ncols=min(len(colours), 2))
    return _save(figure, path)
