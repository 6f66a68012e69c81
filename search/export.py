"""The best model of a sweep or a single run, written to `<storage>/<name>/best/`."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from search.data import TaskData
from search.trial import Trial, reconstructions
from spaces import constants as C
from spaces.config import ModelConfig


class ExportError(Exception):
    """best/ could not be written; the sweep's results and checkpoints are intact."""


def write_best(checkpoint: Path, model: Any, data: TaskData, metrics: dict[str, Any],
               best_dir: Path, *, trial_id: str | None = None) -> Path:
    """Copy a trial checkpoint (model, config, notation, reconstructions) and add metrics.

    With `model` None, the checkpoint's own reconstructions are kept (`Trial.save` writes
    them), so a sweep's driver exports its best without importing TensorFlow; with a model,
    they are computed from it. Written next to `best_dir` and renamed into place, so readers
    never see half an export.
    """
    tmp = best_dir.with_name(best_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint, tmp)
    (tmp / C.STATE_FILE).unlink(missing_ok=True)
    metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    if trial_id:
        metrics[C.TRIAL_ID] = trial_id
    (tmp / C.METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    if model is not None:
        arrays = reconstructions(model, data)
        np.savez_compressed(tmp / C.RECONSTRUCTIONS_FILE, **arrays)  # type: ignore[arg-type]
    elif not (tmp / C.RECONSTRUCTIONS_FILE).is_file():
        raise ExportError(f"{checkpoint} has no {C.RECONSTRUCTIONS_FILE}: pass the model")
    shutil.rmtree(best_dir, ignore_errors=True)
    tmp.rename(best_dir)
    return best_dir


def refit_best(config: ModelConfig, data: TaskData, sweep_metrics: dict[str, Any],
               best_dir: Path, *, seed: int = 0) -> Path:
    """Retrain `config` on every labelled page (training and validation) and export it.

    The sweep's held-out metrics are kept in metrics.json under their usual names; what the
    refit model scores on the (now seen) validation pages is stored as `refit_*`.
    """
    trial = Trial(config, data.with_validation_in_training(), seed=seed)
    last = list(trial.reports())[-1]
    metrics = {**sweep_metrics, "refit": True,
               **{f"refit_{k}": last[k] for k in (C.TRAIN_LOSS, C.VAL_MSE, C.VAL_RMSE)}}
    with tempfile.TemporaryDirectory() as checkpoint:
        trial.save(checkpoint)
        return write_best(Path(checkpoint), trial.model, data, metrics, best_dir)
