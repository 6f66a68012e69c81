"""The study's comparison tables, filled with our trials, beside the study's own figures.

Columns follow the study's tables (Model | Conv2D or Dense | MaxPooling2D+UpSampling2D |
Dropout | BatchNormalization | Mean_squared_error Train/Validation), so a reader can hold a
page of the study next to ours; the best row is marked the way the study marked its best.
"""

from __future__ import annotations

import pandas as pd

from results.leaderboard import ints_of, succeeded
from results.sweepdir import ResultsError
from spaces import constants as C
from spaces import report
from spaces.config import FAMILIES, ModelConfig
from spaces.notation import format_layers

BEST_MARK = "**"  # the study wrote its best model's number as "2**"
MSE = "Mean_squared_error Train/Validation"
STUDY_MSE = "Study Train/Validation"
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


def study_row(row_id: str) -> report.StudyRow | None:
    """The study row a leaderboard's `report_model` names; None for none or an unknown id."""
    try:
        return report.row(row_id) if row_id else None
    except KeyError:
        return None


def _one_task(board: pd.DataFrame, task: str | None) -> pd.DataFrame:
    tasks = sorted(board["task"].dropna().unique())
    if task is None:
        if len(tasks) > 1:
            raise ResultsError(f"the leaderboard mixes tasks ({', '.join(tasks)}): name one")
        return board
    return board[board["task"] == task]


def _best_position(rows: pd.DataFrame) -> int | None:
    """Position of the lowest val_mse among trials that did not fail (`rows` has a 0..n index)."""
    ok = succeeded(rows)
    return None if ok.empty else int(ok[C.VAL_MSE].idxmin())


def comparison_table(
    board: pd.DataFrame, family: str, task: str | None = None
) -> pd.DataFrame:
    """One family's trials of one task in the study's columns, in leaderboard order.

    Model is the study's `section/model` where the trial replays one of its rows (its
    published figures then sit in the Study column), else our rank as `#n`.
    """
    if family not in FAMILIES:
        raise ResultsError(f"family {family!r} is not one of {', '.join(FAMILIES)}")
    rows = _one_task(board, task)
    rows = rows[rows["family"] == family].reset_index(drop=True)
    best = _best_position(rows)
    records = []
    for position, row in rows.iterrows():
        study = study_row(row["report_model"])
        model = f"{study.section}/{study.model}" if study else f"#{row['rank']}"
        record = {
            "Model": model + (BEST_MARK if position == best else ""),
            LAYERS[family]: _layers(row),
        }
        if family == "conv":
            record[POOL] = row["pool_upsample"]
        record |= {
            "Dropout": row["dropout"],
            "BatchNormalization": row["batchnorm"],
            MSE: mse_pair(row[C.TRAIN_MSE], row[C.VAL_MSE]),
            STUDY_MSE: mse_pair(study.train, study.val, "g") if study else "",
            "val RMSE": row[C.VAL_RMSE],
            "Parameters": row[C.PARAMS],
            "Epochs": row["epochs"],
            "Seconds": row[C.SECONDS],
            "Rank": row["rank"],
            "Trial": row[C.TRIAL_ID],
            "Status": row["status"],
        }
        records.append(record)
    columns = ["Model", LAYERS[family], *([POOL] if family == "conv" else []), "Dropout",
               "BatchNormalization", MSE, STUDY_MSE, "val RMSE", "Parameters", "Epochs",
               "Seconds", "Rank", "Trial", "Status"]
    return pd.DataFrame.from_records(records, columns=columns)


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
        for r in report.study_rows(task)
    ]
    return pd.DataFrame.from_records(records)


def study_best(task: str) -> report.StudyRow | None:
    """The row the study marked as its best for `task`."""
    return next((r for r in report.study_rows(task) if r.best), None)
