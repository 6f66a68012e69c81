"""One row per trial, from the files of a sweep dir: the leaderboard and the learning curves.

A trial's row holds the metrics of its last reported epoch, because that is the model its
latest checkpoint holds. The sweep calls `write_leaderboard` after every finished trial while
users may be reading the file, hence the atomic write.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from results.render import write_csv
from results.sweepdir import (
    ResultsError,
    check_sweep_dir,
    read_error,
    read_params,
    read_results,
    read_status,
    read_sweep_meta,
    trial_dirs,
    trial_id_of,
)
from spaces import constants as C
from spaces import study
from spaces.config import ConfigError, ModelConfig
from spaces.notation import describe, format_dropout, format_pool

LEADERBOARD_COLUMNS = (
    "rank", C.TRIAL_ID, "status", "task", "family", "notation", "conv_layers", "filters",
    "kernel", "pool_upsample", "skip", "dropout", "batchnorm", "dense_widths", "loss", "lr",
    "batch_size", "epochs", C.IMAGES, C.PARAMS, C.TRAIN_LOSS, C.VAL_LOSS, C.TRAIN_MSE,
    C.VAL_MSE, C.VAL_RMSE, C.SECONDS, C.LATENCY, C.PRECISION, C.NODE, "report_model",
    "report_val", C.REASON,
)
COLUMNS = list(LEADERBOARD_COLUMNS)
CURVE_METRICS = (*C.METRICS, C.PARAMS, C.EPOCH_SECONDS, C.SECONDS, C.NODE)
_INT_COLUMNS = ("conv_layers", "kernel", "batchnorm", "batch_size", C.IMAGES, C.PARAMS)


def _config_columns(config: ModelConfig) -> dict[str, Any]:
    conv = config.family == "conv"
    return {
        "task": config.task,
        "family": config.family,
        "notation": describe(config),
        "conv_layers": len(config.filters),
        "filters": ",".join(str(f) for f in config.filters),
        "kernel": config.kernel if conv else None,
        "pool_upsample": format_pool(config) if conv else "",
        "skip": config.skip,
        "dropout": format_dropout(config),
        "batchnorm": config.batchnorm,
        "dense_widths": ",".join(str(w) for w in config.dense_widths),
        "loss": config.loss,
        "lr": config.lr,
        "batch_size": config.batch_size,
        "optimizer": config.optimizer,
    }


def ints_of(text: Any) -> tuple[int, ...]:
    """A "32,32,64" column of the leaderboard back to ints; blank (or NaN from a CSV) -> ()."""
    if pd.isna(text):
        return ()
    return tuple(int(v) for v in str(text).split(",") if v)


def _study_columns(params: dict[str, Any], config: ModelConfig) -> dict[str, Any]:
    """The study row this trial replays: named in params, else found by architecture."""
    row_id = params.get(C.REPORT_KEY)
    row: study.StudyRow | None
    if row_id:
        try:
            row = study.row(str(row_id))
        except KeyError:
            return {"report_model": str(row_id), "report_val": math.nan}
    else:
        row = study.match(config)
    if row is None:
        return {"report_model": "", "report_val": math.nan}
    return {"report_model": row.id, "report_val": row.val}


def _epoch_of(row: dict[str, Any]) -> float | None:
    """Epochs completed at this report (fractional between reports inside an epoch): our own
    counter, else Ray's iteration count."""
    for key in (C.EPOCH, C.TRAINING_ITERATION):
        if row.get(key) is not None:
            return round(float(row[key]), 3)
    return None


def _reported_epochs(rows: list[dict[str, Any]]) -> float:
    """Epochs at the last report (0 for a trial refused before training), else the count of
    reports; 0 with none."""
    if not rows:
        return 0
    epoch = _epoch_of(rows[-1])
    return len(rows) if epoch is None else epoch


def _infer_status(
    rows: list[dict[str, Any]], target_epochs: int, error: str | None, finished: bool
) -> str:
    """A status from the files alone, for sweeps that left no trial_status.json entry."""
    if error is not None:
        return C.Status.ERROR
    if rows and rows[-1].get(C.VERDICT):  # the trial stopped itself: COLLAPSED, DIVERGED
        return str(rows[-1][C.VERDICT])
    if rows and (rows[-1].get("done") or (_epoch_of(rows[-1]) or len(rows)) >= target_epochs):
        return C.Status.TERMINATED
    return C.Status.STOPPED if finished else C.Status.RUNNING


NO_REPORT_REASON = "the sweep ended (its budget or time was spent) before the trial's first report"


def trial_record(
    params: dict[str, Any], rows: list[dict[str, Any]], *, trial_id: str, status: str | None,
    error: str | None, meta: dict[str, Any], trial_dir: str | None = None,
) -> dict[str, Any]:
    """One `load_trials` row from a trial's Ray config and reported epochs.

    Shared by the file reader below and the running sweep's callback (which has the same data
    in memory before Ray syncs it to storage), so both write the same leaderboard.
    """
    config = ModelConfig.from_dict(params[C.MODEL_KEY])
    target = int(meta.get("max_epochs") or config.epochs)
    last = rows[-1] if rows else {}
    seconds = last.get(C.SECONDS, last.get("time_total_s"))
    # A trial that stopped itself reads TERMINATED to Ray; its own verdict is what it was.
    verdict = last.get(C.VERDICT) or None
    status = verdict or status or _infer_status(rows, target, error, bool(meta.get("finished")))
    reason = last.get(C.REASON) or (error and error.strip().splitlines()[-1][:200])
    if not rows and status == C.Status.TERMINATED:
        # Ray ended it before its first report: the sweep's budget or time ran out.
        status, reason = C.Status.STOPPED, NO_REPORT_REASON
    return {
        C.TRIAL_ID: trial_id,
        "status": status,
        C.REASON: reason,
        **_config_columns(config),
        "epochs": _reported_epochs(rows),
        C.IMAGES: last.get(C.IMAGES),
        "target_epochs": target,
        **{m: last.get(m) for m in (C.PARAMS, *C.METRICS, C.LATENCY)},
        C.SECONDS: seconds,
        C.PRECISION: last.get(C.PRECISION),
        C.NODE: last.get(C.NODE),
        **_study_columns(params, config),
        "error": error,
        "trial_dir": trial_dir,
    }


def _trial_row(
    trial_dir: Path, status: dict[str, str], meta: dict[str, Any]
) -> dict[str, Any]:
    params = read_params(trial_dir)
    rows = read_results(trial_dir)
    trial_id = trial_id_of(trial_dir, rows, set(status))
    try:
        return trial_record(params, rows, trial_id=trial_id, status=status.get(trial_id),
                            error=read_error(trial_dir), meta=meta, trial_dir=str(trial_dir))
    except (ConfigError, TypeError) as exc:
        raise ResultsError(f"{trial_dir / C.PARAMS_FILE}: not a model config: {exc}") from exc


def load_trials(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per trial of the sweep: config, last reported metrics, status, study row.

    Trials the status file names but that have no directory yet get a row with only their
    id, status and the sweep's task.
    """
    sweep_dir = check_sweep_dir(sweep_dir)
    meta = read_sweep_meta(sweep_dir)
    status = read_status(sweep_dir)
    records = [_trial_row(d, status, meta) for d in trial_dirs(sweep_dir)]
    seen = {r[C.TRIAL_ID] for r in records}
    for trial_id, state in status.items():
        if trial_id not in seen:
            records.append({C.TRIAL_ID: trial_id, "status": state, "task": meta.get("task")})
    return trials_frame(records)


def trials_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """`trial_record`s as the typed frame `leaderboard` ranks (missing columns added)."""
    frame = pd.DataFrame.from_records(records)
    for column in (*COLUMNS[1:], "target_epochs", "error", "trial_dir"):
        if column not in frame:
            frame[column] = None
    for column in (*_INT_COLUMNS, "target_epochs"):
        frame[column] = frame[column].astype("Int64")
    for column in (*C.METRICS, C.SECONDS, C.LATENCY, "lr", "report_val", "epochs"):
        frame[column] = frame[column].astype("float64")
    frame["report_model"] = frame["report_model"].fillna("")
    frame[C.REASON] = frame[C.REASON].fillna("")
    return frame


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Best first by val_mse; failed, collapsed, diverged and unreported trials last (only
    finite results from healthy trials rank); ranks 1..n."""
    val = pd.to_numeric(frame[C.VAL_MSE], errors="coerce")
    key = pd.DataFrame(
        {
            "failed": frame["status"].isin(C.FAILED | C.UNHEALTHY) | ~np.isfinite(val),
            "val": frame[C.VAL_MSE],
            "params": frame[C.PARAMS],
            "trial": frame[C.TRIAL_ID].astype(str),
        },
        index=frame.index,
    )
    order = key.sort_values(["failed", "val", "params", "trial"], na_position="last").index
    frame = frame.loc[order].reset_index(drop=True)
    frame["rank"] = pd.Series(range(1, len(frame) + 1), dtype="Int64")
    return frame


def leaderboard(trials: pd.DataFrame) -> pd.DataFrame:
    """`load_trials` rows ranked, in exactly `LEADERBOARD_COLUMNS`."""
    if trials.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
    return _ordered(trials)[COLUMNS]


def succeeded(board: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite val_mse from trials that neither failed nor collapsed or diverged:
    what can be compared, plotted and called best."""
    val = pd.to_numeric(board[C.VAL_MSE], errors="coerce")
    return board[np.isfinite(val) & ~board["status"].isin(C.FAILED | C.UNHEALTHY)]


def write_leaderboard(board: pd.DataFrame, path: str | Path) -> Path:
    """Write the leaderboard CSV atomically: readers see the old file or the new, never half."""
    return write_csv(board, Path(path))


def sweep_task(sweep_dir: Path, trials: pd.DataFrame) -> str | None:
    """The sweep's task: from sweep.json, else the one task its trials share."""
    task = read_sweep_meta(sweep_dir).get("task")
    if task:
        return str(task)
    tasks = sorted(trials["task"].dropna().unique())
    if len(tasks) > 1:
        raise ResultsError(f"{sweep_dir}: trials of several tasks ({', '.join(tasks)})")
    return tasks[0] if tasks else None


def sweep_names(dirs: list[Path]) -> list[str]:
    """How a merged frame names each sweep: its dir name, or its path where names collide."""
    names = [d.name for d in dirs]
    return names if len(set(names)) == len(names) else [str(d) for d in dirs]


def merge_trials(loaded: dict[Path, pd.DataFrame]) -> pd.DataFrame:
    """One leaderboard from the `load_trials` frames of several sweep dirs of one task."""
    if not loaded:
        raise ResultsError("merge needs at least one sweep directory")
    tasks = {d: sweep_task(d, trials) for d, trials in loaded.items()}
    if len({t for t in tasks.values() if t}) > 1:
        listed = ", ".join(f"{d} ({t or 'unknown task'})" for d, t in tasks.items())
        raise ResultsError(f"cannot merge sweeps of different tasks: {listed}")
    frames = [
        trials.assign(sweep=name)
        for trials, name in zip(loaded.values(), sweep_names(list(loaded)), strict=True)
        if not trials.empty
    ]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in (*COLUMNS, "sweep")})
    return _ordered(pd.concat(frames, ignore_index=True))[[*COLUMNS, "sweep"]]


def merge(sweep_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """One leaderboard across sweeps of one task, with a `sweep` column naming each row's dir."""
    dirs = [check_sweep_dir(d) for d in sweep_dirs]
    return merge_trials({d: load_trials(d) for d in dirs})


def _curve_rows(trial_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per epoch (the last report wins after a restore), with its wall-clock time.

    The time is the trial's start plus `time_total_s` (sub-second), else Ray's `timestamp`.
    """
    starts = [
        r["timestamp"] - r["time_total_s"]
        for r in rows
        if r.get("timestamp") is not None and r.get("time_total_s") is not None
    ]
    start = min(starts) if starts else None
    by_epoch: dict[float, dict[str, Any]] = {}
    for i, r in enumerate(rows):
        epoch = _epoch_of(r)
        if epoch is None:
            epoch = float(i + 1)  # 0.0 stays 0: a trial refused before it trained
        if start is not None and r.get("time_total_s") is not None:
            when = start + r["time_total_s"]
        else:
            when = r.get("timestamp")
        by_epoch[epoch] = {
            C.TRIAL_ID: trial_id,
            C.EPOCH: epoch,
            **{m: r.get(m) for m in CURVE_METRICS},
            "time": when,
            "started": start,
        }
    return list(by_epoch.values())


def curves(sweep_dir: str | Path) -> pd.DataFrame:
    """Every reported epoch of every trial, in the order the sweep reported them.

    `cum_epochs` counts the trial-epochs the whole sweep had spent when that report arrived,
    and `elapsed_s` the wall seconds since the sweep's first trial started: the two x axes on
    which search strategies are compared (at equal work, and at equal time).
    """
    sweep_dir = check_sweep_dir(sweep_dir)
    known = set(read_status(sweep_dir))
    records: list[dict[str, Any]] = []
    for trial_dir in trial_dirs(sweep_dir):
        rows = read_results(trial_dir)
        records += _curve_rows(trial_id_of(trial_dir, rows, known), rows)
    columns = [C.TRIAL_ID, C.EPOCH, *CURVE_METRICS, "time", "cum_epochs", "elapsed_s"]
    if not records:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    frame = pd.DataFrame.from_records(records)
    frame = frame.sort_values(["time", C.TRIAL_ID, C.EPOCH], na_position="last", kind="stable")
    frame = frame.reset_index(drop=True)
    # Trial-epochs spent: each report adds what its trial trained since its previous report
    # (a fraction of an epoch where trials report inside epochs).
    spent = frame[C.EPOCH] - frame.groupby(C.TRIAL_ID)[C.EPOCH].shift(1).fillna(0.0)
    frame["cum_epochs"] = spent.clip(lower=0).cumsum()
    frame["elapsed_s"] = frame["time"] - pd.to_numeric(frame["started"]).min()
    for column in (*C.METRICS, C.EPOCH_SECONDS, C.SECONDS, "time", "elapsed_s"):
        frame[column] = frame[column].astype("float64")
    return frame[columns]


def best_so_far(curve: pd.DataFrame) -> pd.DataFrame:
    """The sweep's best val_mse after each report: columns cum_epochs (trial-epochs spent),
    elapsed_s (wall seconds since the sweep started) and val_mse."""
    reported = curve.dropna(subset=[C.VAL_MSE])
    return pd.DataFrame(
        {
            "cum_epochs": reported["cum_epochs"].to_numpy(),
            "elapsed_s": reported["elapsed_s"].to_numpy() if "elapsed_s" in reported
            else np.full(len(reported), np.nan),
            C.VAL_MSE: reported[C.VAL_MSE].cummin().to_numpy(),
        }
    )
