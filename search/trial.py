"""One config trained on one task, epoch by epoch. Pure: no Ray, so it is tested directly.

The Ray trainable (`search/trainable.py`) and the single-trial CLI both drive `Trial.epochs()`,
checkpointing with `Trial.save()` and resuming with `Trial.resume()`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from search.data import TaskData
from spaces import constants as C
from spaces.config import ModelConfig
from spaces.notation import describe

_EPS = 1e-7  # Keras' epsilon for binary cross-entropy


def configure_backend(cpus: float | None = None) -> None:
    """Size TensorFlow's thread pools to the CPUs a trial was given; turn on GPU memory growth.

    TensorFlow ignores Ray's CPU allocation, so concurrent trials would each take every core.
    Both settings only take effect before TensorFlow initializes its runtime; later calls are
    no-ops (the process already trained a model with its settings).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
        if cpus:
            threads = max(1, int(math.ceil(cpus)))
            tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # runtime already initialized in this worker process


def squared_error(pred: np.ndarray, target: np.ndarray) -> float:
    """Summed squared error over every pixel (float64): the numerator of MSE and RMSE."""
    diff = pred.astype(np.float64) - target.astype(np.float64)
    return float(np.sum(diff * diff))


def pixel_losses(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Summed per-pixel errors, so that pages of different sizes weigh by their pixels."""
    p = pred.astype(np.float64)
    t = target.astype(np.float64)
    pc = np.clip(p, _EPS, 1 - _EPS)
    return {
        "mse": squared_error(p, t),
        "mae": float(np.sum(np.abs(p - t))),
        "bce": float(-np.sum(t * np.log(pc) + (1 - t) * np.log(1 - pc))),
        "pixels": float(t.size),
    }


def evaluate(model: Any, groups: list[tuple[np.ndarray, np.ndarray]], loss: str,
             batch_size: int) -> dict[str, float]:
    """Validation metrics over whole images: per-pixel loss and MSE, and RMSE (Kaggle)."""
    totals = {"mse": 0.0, "mae": 0.0, "bce": 0.0, "pixels": 0.0}
    for x, y in groups:
        for start in range(0, len(x), batch_size):
            pred = model.predict_on_batch(x[start : start + batch_size])
            for key, value in pixel_losses(np.asarray(pred), y[start : start + batch_size]).items():
                totals[key] += value
    pixels = max(totals["pixels"], 1.0)
    mse = totals["mse"] / pixels
    return {C.VAL_LOSS: totals[loss] / pixels, C.VAL_MSE: mse, C.VAL_RMSE: math.sqrt(mse)}


class Trial:
    """Trains `config` on `data`; `epochs()` yields each epoch's metrics as a plain dict."""

    def __init__(self, config: ModelConfig, data: TaskData, *, seed: int = 0,
                 model: Any = None, epoch: int = 0, seconds: float = 0.0,
                 eval_batch_size: int | None = None) -> None:
        import keras

        from search.models import build_model

        self.config = config
        self.data = data
        self.seed = seed
        self.epoch = epoch
        self.seconds = seconds
        self.eval_batch_size = eval_batch_size or (config.batch_size if data.val_names == () else 4)
        if model is None:
            keras.utils.set_random_seed(seed)
            model = build_model(config, data.input_shape)
        self.model = model
        self.params = int(model.count_params())
        self.notation = describe(config)

    def epochs(self) -> Iterator[dict[str, Any]]:
        """Train the remaining epochs (up to config.epochs), yielding metrics after each."""
        import keras

        while self.epoch < self.config.epochs:
            keras.utils.set_random_seed(self.seed * 100_003 + self.epoch)
            start = time.perf_counter()
            groups = self.data.training_groups(self.epoch)
            order = np.random.default_rng((self.seed, self.epoch)).permutation(len(groups))
            loss_sum = mse_sum = 0.0
            count = 0
            for i in order:
                x, y = groups[i]
                history = self.model.fit(x, y, batch_size=self.config.batch_size, epochs=1,
                                         shuffle=True, verbose=0)
                loss_sum += history.history["loss"][-1] * len(x)
                mse_sum += history.history["mse"][-1] * len(x)
                count += len(x)
            train_seconds = time.perf_counter() - start
            val = evaluate(self.model, list(self.data.val), self.config.loss, self.eval_batch_size)
            self.epoch += 1
            self.seconds += train_seconds
            yield {
                C.EPOCH: self.epoch,
                C.TRAIN_LOSS: loss_sum / count,
                C.TRAIN_MSE: mse_sum / count,
                **val,
                C.PARAMS: self.params,
                C.EPOCH_SECONDS: train_seconds,
                C.SECONDS: self.seconds,
                C.NOTATION: self.notation,
            }

    def save(self, directory: str | Path, metrics: dict[str, Any] | None = None) -> Path:
        """Write the model (with optimizer state) and where training stands."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / C.MODEL_FILE)
        state = {"epoch": self.epoch, "seconds": self.seconds, "seed": self.seed}
        (directory / C.STATE_FILE).write_text(json.dumps(state))
        (directory / C.CONFIG_FILE).write_text(self.config.to_json())
        (directory / C.NOTATION_FILE).write_text(self.notation + "\n")
        if metrics is not None:
            (directory / C.METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=float))
        return directory

    @classmethod
    def resume(cls, directory: str | Path, config: ModelConfig, data: TaskData) -> Trial:
        """Continue from a directory written by `save` (a Ray checkpoint)."""
        from search.models import load_model

        directory = Path(directory)
        state = json.loads((directory / C.STATE_FILE).read_text())
        model = load_model(directory / C.MODEL_FILE)
        return cls(config, data, seed=state["seed"], model=model, epoch=state["epoch"],
                   seconds=state["seconds"])


def reconstructions(model: Any, data: TaskData, count: int = 6) -> dict[str, np.ndarray]:
    """A few validation inputs, outputs and targets, for the results' reconstruction sheet.

    Same-size images come as one stack (`inputs`, ...); pages, whose heights differ, as one
    triple per page (`inputs_0`, `outputs_0`, `targets_0`, ...), at most three.
    """
    if not data.val_names:
        x, y = data.val[0]
        return {"inputs": x[:count], "outputs": np.asarray(model.predict(x[:count], verbose=0)),
                "targets": y[:count]}
    pages = [(gx[i : i + 1], gy[i : i + 1]) for gx, gy in data.val for i in range(len(gx))]
    arrays: dict[str, np.ndarray] = {}
    for i, (px, py) in enumerate(pages[: min(count, 3)]):
        arrays[f"inputs_{i}"] = px
        arrays[f"outputs_{i}"] = np.asarray(model.predict(px, verbose=0))
        arrays[f"targets_{i}"] = py
    return arrays
