"""The like-for-like table of a sweep's finalists stage (`aesearch refit`), from its files.

Every row of the table was trained here at one budget (the same epochs, data, seeds and
precision): the search's finalists and the study's best row(s). Figures are over the seeds:
test MSE (and RMSE) as mean and standard deviation, on the test split no trial and no
selection saw; the validation MSE, which selects the best finalist. Each row gets a verdict
against the study's row trained here, on the seeds' test MSEs: `better` or `worse` where the
intervals mean +/- 2 standard errors do not overlap, else `within noise` (one seed: `n/a`).
(A conservative rule, close to a two-sided test at p < 0.01 for equal spreads, and with no
dependency: scipy is not one of the project's.) The study's published
figure stands beside it with its budget; it is on other data and another budget, so it is
shown, never tested.

Compute, then render: `finalists_table` and `training_curves` return DataFrames; the
generator writes them as CSV, Markdown and PNG. Reads files only (pandas).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from results.sweepdir import ResultsError, read_results
from spaces import constants as C
from spaces.study import StudyRow, row

SEMS = 2.0  # the verdict's interval: mean +/- 2 standard errors over the seeds
SEARCH, STUDY, STUDY_RECIPE = "search", "study", "study, default recipe"  # search/refit.py's
STUDY_TRAIN_IMAGES = {"mnist": 60_000, "mnist-denoise": 60_000}
TEST_SPLIT = {"text": "held-out labelled pages"}
TABLE_COLUMNS = ["candidate", "kind", C.NOTATION, "seeds", "test_mse_mean", "test_mse_std",
                 "test_rmse_mean", "test_rmse_std", "val_mse_mean", "val_mse_std", C.PARAMS,
                 "seconds_mean", "search_val_mse", "study_figure", "study_budget", "verdict",
                 "selected"]


def finalists_dir(sweep_dir: Path) -> Path | None:
    """<sweep>/finalists if it holds a finished (or partial) runs.csv, else None."""
    folder = sweep_dir / C.FINALISTS_DIR
    return folder if (folder / C.RUNS_FILE).is_file() else None


def read_runs(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """runs.csv and finalists.json of a finalists folder."""
    try:
        runs = pd.read_csv(folder / C.RUNS_FILE)
        record = json.loads((folder / C.FINALISTS_FILE).read_text())
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ResultsError(f"{folder}: the finalists' files cannot be read ({exc})") from None
    missing = {"candidate", "kind", "seed", C.TEST_MSE, C.VAL_MSE} - set(runs.columns)
    if missing or not isinstance(record, dict):
        raise ResultsError(f"{folder / C.RUNS_FILE}: not a finalists stage's runs.csv (no "
                           f"{', '.join(sorted(missing)) or 'finalists.json object'})")
    return runs, record


def _study_row(source: Any) -> StudyRow | None:
    try:
        return row(str(source))
    except KeyError:
        return None


def _budget(study: StudyRow) -> str:
    images = STUDY_TRAIN_IMAGES.get(study.task)
    where = f"{images:,} images" if images else "all training pages"
    return f"{study.epochs} epochs on {where}, batch {study.batch_size}"


def interval(values: np.ndarray) -> tuple[float, float]:
    """mean -/+ 2 standard errors of the mean over the seeds."""
    half = SEMS * float(values.std(ddof=1)) / math.sqrt(len(values))
    return float(values.mean()) - half, float(values.mean()) + half


def verdict(ours: np.ndarray, reference: np.ndarray) -> str:
    """better / worse / within noise of `ours` against `reference` (test MSEs over seeds):
    better or worse only where the intervals mean +/- 2 SEM do not overlap; `n/a` where
    either has fewer than two seeds."""
    ours, reference = ours[np.isfinite(ours)], reference[np.isfinite(reference)]
    if len(ours) < 2 or len(reference) < 2:
        return "n/a (fewer than 2 seeds)"
    (low, high), (ref_low, ref_high) = interval(ours), interval(reference)
    if high < ref_low:
        return "better"
    if low > ref_high:
        return "worse"
    return "within noise"


def _reference(frame: pd.DataFrame) -> str | None:
    """The study row trained here that verdicts compare with: as printed, unless no seed of
    it finished healthy with a test figure, then with the default recipe. A collapsed run is
    tested too (the stage writes its figure: noisy MNIST's row as printed, 0.114, a constant
    image), but a win over a constant image says nothing of the search."""
    healthy = ~frame["status"].isin(C.UNHEALTHY) if "status" in frame else True
    for kind in (STUDY, STUDY_RECIPE):
        rows = frame[(frame["kind"] == kind) & frame[C.TEST_MSE].notna() & healthy]
        if not rows.empty:
            return str(rows["candidate"].iloc[0])
    return None


def _stat(values: pd.Series, how: str) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return math.nan
    return float(values.mean() if how == "mean" else values.std(ddof=1) if len(values) > 1
                 else 0.0)


def finalists_table(runs: pd.DataFrame, record: dict[str, Any]) -> pd.DataFrame:
    """One row per candidate, in the stage's order: spread over seeds, the verdict against
    the study's row trained here, and which finalist validation selects (`selected`)."""
    searched = {c["name"]: c.get("search_val_mse") for c in record.get("candidates", [])}
    reference = _reference(runs)
    ref_mse = (runs.loc[runs["candidate"] == reference, C.TEST_MSE].to_numpy(float)
               if reference else np.array([]))
    table = []
    for name, group in runs.groupby("candidate", sort=False):
        finished = group[group[C.TEST_MSE].notna()]
        study = _study_row(group["source"].iloc[0]) if group["kind"].iloc[0] != SEARCH else None
        if name == reference:
            said = "reference"
        elif reference is None or finished.empty:
            said = "n/a"
        else:
            said = verdict(finished[C.TEST_MSE].to_numpy(float), ref_mse)
        table.append({
            "candidate": name, "kind": group["kind"].iloc[0],
            C.NOTATION: group[C.NOTATION].dropna().iloc[0] if group[C.NOTATION].notna().any()
            else "",
            "seeds": f"{len(finished)}/{len(group)}",
            **{f"{metric}_{how}": _stat(finished[metric], how)
               for metric in (C.TEST_MSE, C.TEST_RMSE, C.VAL_MSE) for how in ("mean", "std")},
            C.PARAMS: _stat(group[C.PARAMS], "mean"),
            "seconds_mean": _stat(finished[C.SECONDS], "mean"),
            "search_val_mse": searched.get(str(name)),
            "study_figure": study.val if study else math.nan,
            "study_budget": _budget(study) if study else "",
            "verdict": said,
        })
    frame = pd.DataFrame.from_records(table)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TABLE_COLUMNS})
    finalists = frame[(frame["kind"] == SEARCH) & frame["val_mse_mean"].notna()]
    frame["selected"] = False
    if not finalists.empty:
        frame.loc[finalists["val_mse_mean"].idxmin(), "selected"] = True
    return frame[TABLE_COLUMNS]


def finalist_vs_study(table: pd.DataFrame) -> float:
    """Mean test MSE of the finalist validation selects over that of the study's row trained
    here (the reference); NaN where either is missing."""
    chosen = table[table["selected"].astype(bool)]
    reference = table[table["verdict"] == "reference"]
    if chosen.empty or reference.empty:
        return math.nan
    return float(chosen["test_mse_mean"].iloc[0] / reference["test_mse_mean"].iloc[0])


def training_curves(folder: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """Validation MSE after each epoch of every run: candidate, seed, epoch, val_mse."""
    records = []
    for _, run in runs.iterrows():
        if not isinstance(run.get("trial_dir"), str):
            continue
        trial_dir = Path(run["trial_dir"])
        trial_dir = trial_dir if trial_dir.is_absolute() else folder / trial_dir
        if not trial_dir.is_dir():
            continue
        for report in read_results(trial_dir):
            if report.get(C.EPOCH) is not None and report.get(C.VAL_MSE) is not None:
                records.append({"candidate": run["candidate"], "seed": run["seed"],
                                C.EPOCH: float(report[C.EPOCH]),
                                C.VAL_MSE: float(report[C.VAL_MSE])})
    columns = ["candidate", "seed", C.EPOCH, C.VAL_MSE]
    return pd.DataFrame.from_records(records, columns=columns)


def table_note(record: dict[str, Any], runs: pd.DataFrame, task: str | None) -> str:
    """What the table's figures are, and on what data and budget they were trained."""
    data = record.get("data") or {}
    subset = data.get("subset")
    return (f"Every row trained here: {record.get('epochs')} epochs, seeds "
            f"{record.get('seeds')}, precision {record.get('precision')}, on "
            f"{'the first ' + format(subset, ',') if subset else 'all'} training examples of "
            f"the sweep's split (split {record.get('split')}). test_* are on the test split "
            f"no trial saw ({TEST_SPLIT.get(task or '', 'the official MNIST test split')}); "
            f"mean and std over the seeds. `selected`: the finalist with the lowest mean "
            f"validation MSE. verdict: against the reference (the study's row trained here): "
            f"better/worse where the seeds' test MSE intervals mean +/- {SEMS:g} SEM do not "
            f"overlap, else within noise. study_figure: "
            f"the study's published validation figure at study_budget (MNIST rows: BCE loss as "
            f"printed), for context only. {len(runs)} runs.")
