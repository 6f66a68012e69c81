"""The study's tables as data: every row as a `StudyRow`, and the `report` space that replays them.

The rows live in `spaces/study_rows.csv` (a copy of the study's `report-tables.csv`, shipped as
package data), so the project can replay and compare against the study without `shared/`.

Loss, where the study leaves it blank (decided here and nowhere else, see `BLANK_LOSS`):
- mnist: `bce`. Section 1's only printed code (the best model 2) compiles with
  binary_crossentropy, as did the classic Keras conv autoencoder of section 1.1; the dense rows
  of 1.3 report losses above 1, which a per-pixel MSE of [0, 1] images cannot reach.
- mnist-denoise: `mse`. Section 2's only printed code (its best model 3) compiles with
  mean_squared_error.
- text: every row names `mse`.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

from spaces.config import ConfigError, ModelConfig
from spaces.constants import MODEL_KEY, REPORT_KEY, TASKS
from spaces.notation import parse_row

ROWS_FILE = "study_rows.csv"
BLANK_LOSS = {"mnist": "bce", "mnist-denoise": "mse", "text": "mse"}
OPTIMIZER = "adam"  # every model the study prints code for compiles with adam
_BEST_PREFIX = "best"


@dataclass(frozen=True)
class StudyRow:
    """One row of the study's tables, as printed, plus the `ModelConfig` it describes."""

    id: str  # "task/section/model", e.g. "text/3.3/5"
    task: str
    section: str
    model: int
    family: str
    layers: str
    pool_upsample: str
    dropout: str
    batchnorm: str
    train: float
    val: float
    epochs: int
    batch_size: int
    loss: str
    note: str
    config: ModelConfig
    best: bool


def _row_from_csv(record: dict[str, str]) -> StudyRow:
    task = record["task"]
    row_id = f"{task}/{record['section']}/{record['model']}"
    loss = record["loss"] or BLANK_LOSS[task]
    epochs, batch_size = int(record["epochs"]), int(record["batch_size"])
    try:
        config = parse_row(
            record["layers"],
            record["pool_upsample"],
            record["dropout"],
            record["batchnorm"],
            task=task,
            loss=loss,
            optimizer=OPTIMIZER,
            epochs=epochs,
            batch_size=batch_size,
        )
    except ValueError as err:
        raise ValueError(f"{ROWS_FILE}, row {row_id}: {err}") from err
    return StudyRow(
        id=row_id,
        task=task,
        section=record["section"],
        model=int(record["model"]),
        family=record["family"],
        layers=record["layers"],
        pool_upsample=record["pool_upsample"],
        dropout=record["dropout"],
        batchnorm=record["batchnorm"],
        train=float(record["train"]),
        val=float(record["val"]),
        epochs=epochs,
        batch_size=batch_size,
        loss=loss,
        note=record["note"],
        config=config,
        best=record["note"].startswith(_BEST_PREFIX),
    )


@functools.cache
def _all_rows() -> tuple[StudyRow, ...]:
    text = resources.files("spaces").joinpath(ROWS_FILE).read_text(encoding="utf-8")
    return tuple(_row_from_csv(record) for record in csv.DictReader(text.splitlines()))


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")


def study_rows(task: str | None = None) -> list[StudyRow]:
    """Every row of the study's tables in printed order, or only those of `task`."""
    if task is None:
        return list(_all_rows())
    _check_task(task)
    return [r for r in _all_rows() if r.task == task]


def row(row_id: str) -> StudyRow:
    """The row with id "task/section/model" (e.g. "text/3.3/5")."""
    for r in _all_rows():
        if r.id == row_id:
            return r
    valid = ", ".join(r.id for r in _all_rows())
    raise KeyError(f"no study row {row_id!r}; valid ids: {valid}")


def training_defaults(task: str) -> dict[str, int]:
    """The batch size and epochs the study trained most of `task`'s rows with (text: 16 and
    25; MNIST: 128 and 50): the defaults of a config given in the study's notation."""
    rows = study_rows(task)

    def common(values: list[int]) -> int:
        return max(sorted(set(values)), key=values.count)

    return {"batch_size": common([r.batch_size for r in rows]),
            "epochs": common([r.epochs for r in rows])}


def architecture(config: ModelConfig) -> tuple[Any, ...]:
    """What makes two configs the same model, whatever they train with.

    Dropout rate counts only where there is dropout, kernel only for conv models.
    """
    return (
        config.task,
        config.family,
        config.filters,
        config.kernel if config.family == "conv" else None,
        config.pool,
        config.dropout,
        config.dropout_rate if config.dropout else None,
        config.batchnorm,
        config.dense_widths,
        config.skip,  # the study never used skips: a skip model replays no row
    )


def match(config: ModelConfig) -> StudyRow | None:
    """The first study row of the same task and architecture as `config`, if any."""
    key = architecture(config)
    return next((r for r in _all_rows() if architecture(r.config) == key), None)


def study_space(task: str) -> list[dict[str, Any]]:
    """Grid points replaying every study row of `task`: `{MODEL_KEY: config, REPORT_KEY: id}`."""
    return [{MODEL_KEY: r.config.to_dict(), REPORT_KEY: r.id} for r in study_rows(task)]
