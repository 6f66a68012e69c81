"""The best model of a sweep or a single run, written to `<storage>/<name>/best/`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from search.data import TaskData
from search.outputs import foreign_entries
from search.precision import FLOAT32
from search.trial import Trial, reconstructions
from spaces import constants as C
from spaces.config import ModelConfig


class ExportError(Exception):
    """best/ could not be written; the sweep's results and checkpoints are intact."""


def write_best(checkpoint: Path, model: Any, data: TaskData, metrics: dict[str, Any],
               best_dir: Path, *, trial_id: str | None = None) -> Path:
    """Copy a trial checkpoint (model, config, notation, reconstructions) and add metrics.

    With `model` None, the checkpoint's own reconstructions are kept (`Trial.save` writes
    them), so a sweep's driver exports its best without importing TensorFlow; an older
    checkpoint without them has its model loaded (TensorFlow then) to compute them, as they
    are computed from a `model` given. Written into a fresh hidden folder next to `best_dir` and
    swapped in by renames, so readers never see half an export and a crash leaves the previous
    best/ (or, between the two renames, its copy `.best-old-*`). Only a best/ that holds
    nothing but an export's files is ever replaced: anything else there was not written by
    this project.
    """
    foreign = foreign_entries(best_dir) if best_dir.exists() or best_dir.is_symlink() else []
    if foreign:
        raise ExportError(f"{best_dir} holds files this project did not write "
                          f"({', '.join(foreign[:3])}); nothing was replaced")
    best_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{best_dir.name}-new-", dir=best_dir.parent))
    try:
        for name in (C.MODEL_FILE, C.CONFIG_FILE, C.NOTATION_FILE):
            shutil.copy2(checkpoint / name, tmp / name)
        metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
        if trial_id:
            metrics[C.TRIAL_ID] = trial_id
        (tmp / C.METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        if model is None and not (checkpoint / C.RECONSTRUCTIONS_FILE).is_file():
            from search.models import load_model  # an older checkpoint: its model makes them

            model = load_model(checkpoint / C.MODEL_FILE)
        if model is not None:
            arrays = reconstructions(model, data)
            np.savez_compressed(tmp / C.RECONSTRUCTIONS_FILE, **arrays)  # type: ignore[arg-type]
        else:
            shutil.copy2(checkpoint / C.RECONSTRUCTIONS_FILE, tmp / C.RECONSTRUCTIONS_FILE)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would hide it from other readers
        _swap_in(tmp, best_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own fresh folder, never best/
        raise
    return best_dir


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_in(new: Path, best_dir: Path) -> None:
    """Put `new` at `best_dir`: the old export is renamed aside, then removed once the new one
    is in place (or renamed back if that fails)."""
    if not best_dir.exists():
        os.rename(new, best_dir)
        return
    old = best_dir.with_name(f".{best_dir.name}-old-{uuid.uuid4().hex[:8]}")
    os.rename(best_dir, old)
    try:
        os.rename(new, best_dir)
    except BaseException:
        os.rename(old, best_dir)
        raise
    shutil.rmtree(old)


def refit_best(config: ModelConfig, data: TaskData, sweep_metrics: dict[str, Any],
               best_dir: Path, *, seed: int = 0) -> Path:
    """Retrain `config` on every labelled page (training and validation) and export it.

    The sweep's held-out metrics are kept in metrics.json under their usual names; what the
    refit model scores on the (now seen) validation pages is stored as `refit_*`. The refit
    trains in the precision the sweep's trial did, so that it retrains what was chosen.
    """
    trial = Trial(config, data.with_validation_in_training(), seed=seed,
                  precision=sweep_metrics.get(C.PRECISION) or FLOAT32)
    last = list(trial.reports())[-1]
    metrics = {**sweep_metrics, "refit": True,
               **{f"refit_{k}": last[k] for k in (C.TRAIN_LOSS, C.VAL_MSE, C.VAL_RMSE)}}
    with tempfile.TemporaryDirectory() as checkpoint:
        trial.save(checkpoint)
        return write_best(Path(checkpoint), trial.model, data, metrics, best_dir)


def best_checkpoint(sweep_dir: Path) -> tuple[Path, dict[str, Any], str]:
    """The best healthy trial's last checkpoint, its last result and its id, from files alone."""
    from results.leaderboard import leaderboard, load_trials, succeeded
    from results.sweepdir import read_results

    board = succeeded(leaderboard(load_trials(sweep_dir)))
    trials = load_trials(sweep_dir).set_index(C.TRIAL_ID)
    for trial_id in board[C.TRIAL_ID]:
        trial_dir = Path(str(trials.loc[trial_id, "trial_dir"]))
        checkpoints = sorted(trial_dir.glob(f"checkpoint_*/{C.MODEL_FILE}"))
        if checkpoints:
            return checkpoints[-1].parent, read_results(trial_dir)[-1], str(trial_id)
    raise ExportError(f"{sweep_dir}: no finished trial has a checkpoint to export")


def main(argv: list[str] | None = None) -> int:
    """`python -m search.export SWEEP_DIR`: write best/ again from the sweep's files."""
    import argparse
    import sys

    from search.data import DataOptions, load_task
    from spaces.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m search.export", description=main.__doc__)
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        from results.sweepdir import check_sweep_dir, read_sweep_meta

        sweep_dir = check_sweep_dir(args.sweep_dir)
        meta = read_sweep_meta(sweep_dir)
        options = DataOptions(**meta.get("data", {}))
        checkpoint, metrics, trial_id = best_checkpoint(sweep_dir)
        data = load_task(str(meta["task"]), options)
        target = write_best(checkpoint, None, data, metrics, sweep_dir / C.BEST_DIR,
                            trial_id=trial_id)
    except (UserError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"best: {metrics.get(C.NOTATION)}  val_mse {metrics[C.VAL_MSE]:.5f}  "
          f"(trial {trial_id}) -> {target / C.MODEL_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
