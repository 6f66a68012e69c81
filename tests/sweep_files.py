"""Writers of the files a sweep leaves in its dir, for tests of `results/` without Ray."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from spaces import constants as C
from spaces.config import ModelConfig


def write_trial(  # noqa: PLR0913 - each keyword is one field of the files it writes
    sweep_dir: Path,
    trial_id: str,
    config: ModelConfig,
    val_mses: list[float],
    *,
    report_id: str | None = None,
    error: str | None = None,
    params: int = 1000,
    start: float = 1_700_000_000.0,
    epoch_seconds: float = 2.0,
    node: str = "node-a",
    done_last: bool = False,
) -> Path:
    """A Ray trial dir: params.json, result.json with one line per value, maybe error.txt."""
    trial_dir = sweep_dir / f"train_autoencoder_{trial_id}_{trial_id[-1]}_lr={config.lr}_2026-01-01"
    trial_dir.mkdir(parents=True)
    ray_config = {C.MODEL_KEY: config.to_dict(), "optuna_lr": config.lr}
    if report_id:
        ray_config[C.REPORT_KEY] = report_id
    (trial_dir / C.PARAMS_FILE).write_text(json.dumps(ray_config))
    lines = []
    for i, val in enumerate(val_mses):
        epoch = i + 1
        lines.append(json.dumps({
            C.EPOCH: epoch,
            C.TRAIN_LOSS: val * 0.9,
            C.VAL_LOSS: val,
            C.TRAIN_MSE: val * 0.9,
            C.VAL_MSE: val,
            C.VAL_RMSE: math.sqrt(val),
            C.PARAMS: params,
            C.EPOCH_SECONDS: epoch_seconds,
            C.SECONDS: epoch_seconds * epoch,
            C.NODE: node,
            C.NOTATION: "ignored",
            C.TRIAL_ID: trial_id,
            C.TRAINING_ITERATION: epoch,
            "time_total_s": epoch_seconds * epoch + 0.5,
            "timestamp": int(start + epoch_seconds * epoch + 0.5),
            "done": done_last and epoch == len(val_mses),
        }))
    (trial_dir / C.RESULT_FILE).write_text("".join(line + "\n" for line in lines))
    if error:
        (trial_dir / C.ERROR_FILE).write_text(f"Traceback (most recent call last):\n{error}\n")
    return trial_dir


def write_status(sweep_dir: Path, statuses: dict[str, str]) -> None:
    (sweep_dir / C.STATUS_FILE).write_text(json.dumps(statuses))


def write_sweep(sweep_dir: Path, task: str, finished: bool, max_epochs: int | None = None) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / C.SWEEP_FILE).write_text(json.dumps({
        "task": task, "space": "test", "search": "random", "scheduler": "fifo",
        "metric": C.VAL_MSE, "mode": "min", "num_samples": 8, "max_epochs": max_epochs,
        "finished": finished,
    }))


def write_reconstructions(sweep_dir: Path, pages: bool = False) -> Path:
    best = sweep_dir / C.BEST_DIR
    best.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays: dict[str, Any]
    if pages:
        arrays = {
            f"{name}_{i}": rng.random((1, h, 24, 1), dtype=np.float32)
            for i, h in enumerate((16, 20)) for name in ("inputs", "outputs", "targets")
        }
    else:
        arrays = {name: rng.random((3, 28, 28, 1), dtype=np.float32)
                  for name in ("inputs", "outputs", "targets")}
    path = best / C.RECONSTRUCTIONS_FILE
    np.savez(path, **arrays)
    return path


TEXT_BEST = ModelConfig(task="text", filters=(32, 32, 64, 128), epochs=3, batch_size=16,
                        loss="mse")  # the study's text/3.3/5
TEXT_3L32 = ModelConfig(task="text", filters=(32, 32, 32), epochs=3, batch_size=16,
                        loss="mse")  # the architecture of text/3.1/4, with no report_id
TEXT_NEW = ModelConfig(task="text", filters=(16, 8, 8, 8, 16), kernel=5, pool=1, dropout=1,
                       batchnorm=2, epochs=3, batch_size=8, lr=3e-4)
TEXT_DENSE = ModelConfig(task="text", family="dense", filters=(), dense_widths=(64, 226800),
                         epochs=3, batch_size=16, loss="mse")


def running_text_sweep(root: Path) -> Path:
    """A text sweep caught mid-run: finished, running, failed, pending and unstarted trials."""
    sweep = root / "text-sweep"
    write_sweep(sweep, "text", finished=False, max_epochs=3)
    write_trial(sweep, "abcde_00000", TEXT_BEST, [0.01, 0.005, 0.004], report_id="text/3.3/5",
                params=103073)
    write_trial(sweep, "abcde_00001", TEXT_3L32, [0.02, 0.003, 0.002], params=18785)
    write_trial(sweep, "abcde_00002", TEXT_NEW, [0.03, 0.0025], params=5000, start=1_700_000_001.0)
    write_trial(sweep, "abcde_00003", TEXT_NEW.replace(lr=0.1), [0.001],
                error="ValueError: loss is nan", params=5000)
    write_trial(sweep, "abcde_00004", TEXT_DENSE, [0.04, 0.03, 0.05], params=14_745_600)
    unstarted = write_trial(sweep, "abcde_00006", TEXT_NEW.replace(lr=1e-2), [])
    (unstarted / C.RESULT_FILE).write_text("")
    write_status(sweep, {
        "abcde_00000": C.Status.TERMINATED, "abcde_00001": C.Status.TERMINATED,
        "abcde_00002": C.Status.RUNNING, "abcde_00003": C.Status.ERROR,
        "abcde_00004": C.Status.TERMINATED, "abcde_00005": C.Status.PENDING,
    })
    return sweep


def lr_driven_sweep(root: Path, trials: int = 16, seed: int = 0) -> Path:
    """A finished mnist sweep in which val_mse follows the learning rate and nothing else."""
    sweep = root / "lr-sweep"
    write_sweep(sweep, "mnist", finished=True)
    rng = np.random.default_rng(seed)
    for i in range(trials):
        lr = float(10 ** rng.uniform(-4, -1))
        width = int(rng.choice([8, 16, 32]))
        config = ModelConfig(task="mnist", filters=(width,) * int(rng.integers(2, 5)),
                             kernel=int(rng.choice([3, 5])), batchnorm=int(rng.integers(0, 2)),
                             batch_size=int(rng.choice([32, 64, 128])), lr=lr, epochs=2)
        val = 0.01 + lr  # the only driver
        write_trial(sweep, f"fffff_{i:05d}", config, [2 * val, val], params=1000 + 100 * width)
    return sweep
