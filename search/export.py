"""The best model of a sweep or a single run, written to `<storage>/<name>/best/`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from search import constants as C
from search.data import TaskData
from search.trial import reconstructions


def write_best(checkpoint: Path, model: Any, data: TaskData, metrics: dict[str, Any],
               best_dir: Path, *, trial_id: str | None = None) -> Path:
    """Copy a trial checkpoint (model, config, notation) and add metrics and reconstructions.

    Written next to `best_dir` and renamed into place, so readers never see half an export.
    """
    tmp = best_dir.with_name(best_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint, tmp)
    (tmp / C.STATE_FILE).unlink(missing_ok=True)
    metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    if trial_id:
        metrics[C.TRIAL_ID] = trial_id
    (tmp / C.METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    np.savez_compressed(tmp / C.RECONSTRUCTIONS_FILE, **reconstructions(model, data))
    shutil.rmtree(best_dir, ignore_errors=True)
    tmp.rename(best_dir)
    return best_dir
