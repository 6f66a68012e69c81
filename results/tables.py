"""The study's comparison tables, filled with our trials and the study's own rows.

Columns follow the study's tables (Model | Conv2D or Dense | MaxPooling2D+UpSampling2D |
Dropout | BatchNormalization | Mean_squared_error Train/Validation), so a reader can hold a
page of the study next to ours. Our rows and the study's sit in one table (`Source`: ours or
study); one row per table, the best, is marked the way the study marked its best.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from results.leaderboard import ints_of, succeeded
from results.sweepdir import ResultsError
from spaces import constants as C
from spaces import study as study_data
from spaces import task_bounds
from spaces.config import FAMILIES, ModelConfig
from spaces.guard import footprint
from spaces.notation import format_layers

BEST_MARK = "**"  # the study wrote its best model's number as "2**"
MSE = "Mean_squared_error Train/Validation"
OURS, STUDY = "ours", "study"  # the Source column
POOL = "MaxPooling2D+UpSampling2D"
LAYERS = {"conv": "Conv2D", "dense": "Dense"}
DISCOVERY_COLUMNS = [
    "rank", C.TRIAL_ID, "notation", "family", "loss", "lr", "batch_size", C.TRAIN_MSE,
    C.VAL_MSE, C.VAL_RMSE, C.PARAMS, "epochs", C.SECONDS,
]


def mse_pair(train: float, val: float, spec: str = ".4g") -> str:
    """Train and validation figures in the study's style, "0.0023/ 0.0026".

    Ours get 4 significant digits; the study's own figures are printed in full (spec "g").
    """
    if pd.isna(train) and pd.isna(val):
        return ""
    return f"{float(train):{spec}}/ {float(val):{spec}}"


def _layers(row: pd.Series) -> str:
    """The Conv2D / Dense column in the study's notation, rebuilt from the leaderboard row."""
    config = ModelConfig(
        task=row["task"],
        family=row["family"],
        filters=ints_of(row["filters"]),
        kernel=int(row["kernel"]) if row["family"] == "conv" else 3,
        dense_widths=ints_of(row["dense_widths"]),
    )
    return format_layers(config)


def study_row(row_id: str) -> study_data.StudyRow | None:
    """The study row a leaderboard's `report_model` names; None for none or an unknown id."""
    try:
        return study_data.row(row_id) if row_id else None
    except KeyError:
        return None


def _one_task(board: pd.DataFrame, task: str | None) -> pd.DataFrame:
    tasks = sorted(board["task"].dropna().unique())
    if task is None:
        if len(tasks) > 1:
            raise ResultsError(f"the leaderboard mixes tasks ({', '.join(tasks)}): name one")
        return board
    return board[board["task"] == task]


def study_parameters(row: study_data.StudyRow) -> int | None:
    """A study row's parameter count, by the guard's arithmetic (equal to Keras')."""
    try:
        return footprint(row.config, task_bounds(row.task).input_shape).params
    except (ValueError, KeyError):
        return None


def _pool(row: Any) -> str:
    """The pooling column, with ` skip` where the model has skip connections (U-Net levels
    or an input skip), which the study's columns have no place for."""
    pool = "" if pd.isna(row.get("pool_upsample")) else str(row.get("pool_upsample"))
    skip = row.get("skip")
    return f"{pool} skip".strip() if skip is True or str(skip) == "True" else pool


def _our_rows(rows: pd.DataFrame, family: str) -> list[dict]:
    records = []
    ok = set(succeeded(rows).index)
    for position, row in rows.iterrows():
        study = study_row(row["report_model"])
        record = {
            "Model": f"{study.section}/{study.model}" if study else f"#{row['rank']}",
            "Source": OURS,
            LAYERS[family]: _layers(row),
            POOL: _pool(row),
            "Dropout": row["dropout"],
            "BatchNormalization": row["batchnorm"],
            MSE: mse_pair(row[C.TRAIN_MSE], row[C.VAL_MSE]),
            "val RMSE": row[C.VAL_RMSE],
            "Parameters": row[C.PARAMS],
            "Epochs": row["epochs"],
            "Seconds": row[C.SECONDS],
            "Rank": row["rank"],
            "Trial": row[C.TRIAL_ID],
            "Status": row["status"],
            "_val": row[C.VAL_MSE] if position in ok else math.nan,
        }
        records.append(record)
    return records


def _study_rows(task: str, family: str) -> list[dict]:
    """The study's rows of this task and family with its published figures. Only its MSE
    figures can be called best beside ours: where it trained with another loss (MNIST's
    BCE), its figure is that loss."""
    return [
        {
            "Model": f"{r.section}/{r.model}",
            "Source": STUDY,
            LAYERS[family]: format_layers(r.config),
            POOL: r.pool_upsample,
            "Dropout": r.dropout,
            "BatchNormalization": r.batchnorm,
            MSE: mse_pair(r.train, r.val, "g"),
            "val RMSE": math.sqrt(r.val) if r.loss == "mse" else math.nan,
            "Parameters": study_parameters(r),
            "Epochs": r.epochs,
            "Seconds": math.nan,
            "Rank": None,
            "Trial": r.id,
            "Status": "published" if r.loss == "mse" else f"published ({r.loss})",
            "_val": r.val if r.loss == "mse" else math.nan,
        }
        for r in study_data.study_rows(task)
        if r.family == family
    ]


def comparison_table(
    board: pd.DataFrame, family: str, task: str | None = None, *, study: bool = True
) -> pd.DataFrame:
    """One family's rows of one task in the study's columns: our trials in leaderboard
    order, then the study's own rows with its published figures (`Source` says which).

    Model is the study's `section/model` for its rows and for our replays of them, else our
    rank as `#n`. Exactly one row is marked best: the lowest validation MSE among our
    trials that did not fail and the study's MSE figures.
    """
    if family not in FAMILIES:
        raise ResultsError(f"family {family!r} is not one of {', '.join(FAMILIES)}")
    rows = _one_task(board, task)
    rows = rows[rows["family"] == family].reset_index(drop=True)
    task = task or next(iter(rows["task"].dropna().unique()), None)
    records = _our_rows(rows, family)
    if study and task:
        records += _study_rows(task, family)
    columns = ["Model", "Source", LAYERS[family], *([POOL] if family == "conv" else []),
               "Dropout", "BatchNormalization", MSE, "val RMSE", "Parameters", "Epochs",
               "Seconds", "Rank", "Trial", "Status"]
    table = pd.DataFrame.from_records(records, columns=[*columns, "_val"])
    values = pd.to_numeric(table["_val"], errors="coerce")
    if values.notna().any():
        best = int(values.idxmin())
        table.loc[best, "Model"] = f"{table.loc[best, 'Model']}{BEST_MARK}"
    for column in ("Parameters", "Rank"):
        table[column] = table[column].astype("Int64")
    return table[columns]


def marked_rows(table: pd.DataFrame) -> list[int]:
    """Positions of the rows marked best (to render them bold)."""
    return [i for i, m in enumerate(table["Model"]) if str(m).endswith(BEST_MARK)]


def discoveries(board: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The k best configs that are none of the study's rows (repeats of a config count once)."""
    found = succeeded(board)
    found = found[found["report_model"].fillna("") == ""]
    config_columns = ["task", "family", "notation", "loss", "lr", "batch_size"]
    found = found.drop_duplicates(subset=config_columns, keep="first")
    return found.head(k)[DISCOVERY_COLUMNS].reset_index(drop=True)


def study_table(task: str) -> pd.DataFrame:
    """The study's own rows of `task` as it printed them, its best marked, for reference."""
    records = [
        {
            "Model": f"{r.section}/{r.model}" + (BEST_MARK if r.best else ""),
            "Family": r.family,
            "Layers": r.layers,
            POOL: r.pool_upsample,
            "Dropout": r.dropout,
            "BatchNormalization": r.batchnorm,
            MSE: mse_pair(r.train, r.val, "g"),
            "Epochs": r.epochs,
            "Batch size": r.batch_size,
            "Loss": r.loss,
            "Note": r.note,
            "Id": r.id,
        }
        for r in study_data.study_rows(task)
    ]
    return pd.DataFrame.from_records(records)


def study_best(task: str) -> study_data.StudyRow | None:
    """The row the study marked as its best for `task`."""
    return next((r for r in study_data.study_rows(task) if r.best), None)
