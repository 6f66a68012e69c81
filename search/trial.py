"""One config trained on one task, epoch by epoch. Pure: no Ray, so it is tested directly.

The Ray trainable (`search/trainable.py`) and the single-trial CLI both drive `Trial.epochs()`,
checkpointing with `Trial.save()` and resuming with `Trial.resume()`.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.data import TaskData
from search.precision import FLOAT32
from search.precision import of_model as precision_of
from spaces import constants as C
from spaces.config import ModelConfig
from spaces.guard import EVAL_PAGES
from spaces.notation import describe

_EPS = 1e-7  # Keras' epsilon for binary cross-entropy


def configure_backend(cpus: float | None = None, gpus: float | None = None) -> None:
    """Size the backend to what a trial was given: TensorFlow's thread pools to its CPUs, and
    GPU memory taken as needed rather than all at start-up, so that trials given a fraction of
    a GPU (`--gpus-per-trial 0.5`) can share it.

    TensorFlow ignores Ray's CPU allocation, so concurrent trials would each take every core.
    Both settings only take effect before the backend initializes its runtime; later calls are
    no-ops (the process already trained a model with its settings). With Keras' JAX backend,
    XLA's preallocation of 75% of the GPU is turned off the same way (its environment variable
    is read when JAX first touches the device).
    """
    import os

    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        if gpus:
            os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        return
    if backend != "tensorflow":
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


def seed_layers(model: Any, seed: int) -> None:
    """Set the state of every random layer's seed generator (dropout's) from `seed`.

    A trial calls this before each report's training, with a seed made of its own and the
    examples seen so far, so a trial resumed from a checkpoint draws the same dropout masks
    as one never stopped (Keras does not save these states). It replaces reseeding the
    whole backend (`keras.utils.set_random_seed`) at each report: TensorFlow's
    `tf.random.set_seed` made every following `fit` about 8% slower (`bench/throughput.py`).
    """
    import keras

    generators = [value for layer in model.layers for value in vars(layer).values()
                  if isinstance(value, keras.random.SeedGenerator)]
    for i, generator in enumerate(generators):
        state = generator.state
        state.assign(np.array([(seed + i) % 2**31, 0], dtype=state.dtype))


# Examples whose batch statistics replace BatchNormalization's moving ones before validating:
# enough for a conv layer's per-channel mean and variance (256 MNIST images are 200,000
# pixels a channel), about a quarter of a 1,000-image validation's forward passes.
BN_STAT_EXAMPLES = 256


def refresh_batchnorm(model: Any, batches: Iterable[np.ndarray]) -> bool:
    """Set every BatchNormalization layer's moving mean and variance to the average of its
    batch statistics over `batches`, with the weights as they are now ("precise BN").

    Validation runs in inference mode, on the moving statistics: an exponential average
    (momentum 0.99, about the last 100 steps) of batch statistics taken while the weights
    were changing. Early in a run they lag far behind: `5L,32F(3X3)` with batchnorm on 5,000
    noisy MNIST images validated at 0.102 after its first epoch, 0.015 once recomputed, and
    its trials were stopped as collapsed. Recomputing them makes a trial's verdict what the
    weights are worth, which is what ASHA and the searcher need. Returns whether there were
    any to refresh. The first batch replaces the statistics; each later one is averaged in.
    """
    import keras

    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return False
    momenta = [layer.momentum for layer in norms]
    try:
        for k, x in enumerate(batches):
            for layer in norms:
                layer.momentum = k / (k + 1)  # a running mean of the batch statistics
            model(x, training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
    return True


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


SHOWN = 6  # validation images a checkpoint keeps for the reconstruction sheet
SHOWN_PAGES = 3  # or pages, which are larger


def evaluate(model: Any, groups: list[tuple[np.ndarray, np.ndarray]], loss: str,
             batch_size: int, keep: list[np.ndarray] | None = None) -> dict[str, float]:
    """Validation metrics over whole images: per-pixel loss and MSE, RMSE (Kaggle), and what
    the health check needs (the output's spread, and how far the output is from the input).
    The outputs of the first `SHOWN` images, in order, are appended to `keep` where given:
    a checkpoint's reconstructions then cost nothing (on text they are the validation pages,
    and predicting them again took longer than validating)."""
    totals = {"mse": 0.0, "mae": 0.0, "bce": 0.0, "pixels": 0.0}
    out_sum = out_sq = input_gap = 0.0
    for x, y in groups:
        for start in range(0, len(x), batch_size):
            raw = np.asarray(model.predict_on_batch(x[start : start + batch_size]))
            if keep is not None and len(keep) < SHOWN:
                keep.extend(raw[i : i + 1] for i in range(min(len(raw), SHOWN - len(keep))))
            pred = raw.astype(np.float64)
            for key, value in pixel_losses(pred, y[start : start + batch_size]).items():
                totals[key] += value
            out_sum += float(np.sum(pred))
            out_sq += float(np.sum(pred * pred))
            input_gap += float(np.sum(np.abs(pred - x[start : start + batch_size])))
    pixels = max(totals["pixels"], 1.0)
    mse = totals["mse"] / pixels
    mean = out_sum / pixels
    return {C.VAL_LOSS: totals[loss] / pixels, C.VAL_MSE: mse, C.VAL_RMSE: math.sqrt(mse),
            C.VAL_OUTPUT_STD: math.sqrt(max(out_sq / pixels - mean * mean, 0.0)),
            C.VAL_INPUT_GAP: input_gap / pixels}


@dataclass(frozen=True)
class Baselines:
    """What the trivial predictors score on the validation images, measured once per data.

    A constant output's MSE is at least the targets' variance (`mean_mse`, the best constant)
    and an all-zero output's is E[y^2] (`zero_mse`); a model that copies its input is
    `input_gap` (mean |target - input|) away from the targets (0 for plain reconstruction).
    """

    target_std: float
    zero_mse: float
    mean_mse: float
    input_gap: float

    @classmethod
    def of(cls, groups: list[tuple[np.ndarray, np.ndarray]]) -> Baselines:
        total = sq = gap = pixels = 0.0
        for x, y in groups:
            y64 = y.astype(np.float64)
            total += float(np.sum(y64))
            sq += float(np.sum(y64 * y64))
            gap += float(np.sum(np.abs(y64 - x)))
            pixels += y.size
        pixels = max(pixels, 1.0)
        mean = total / pixels
        variance = max(sq / pixels - mean * mean, 0.0)
        return cls(math.sqrt(variance), sq / pixels, variance, gap / pixels)


# A trial whose outputs hardly vary (relative to the targets' spread) and whose error is at a
# constant predictor's level, or whose output copies its input, has collapsed onto a trivial
# predictor: the sigmoid+MSE collapse of the study's best denoiser, a dead ReLU stack. It never
# recovers, so it is stopped at the first report that shows it.
CONSTANT_STD = 0.01  # output spread below 1% of the targets': a constant output
NEAR_CONSTANT_STD = 0.25  # ... below 25%, with val_mse within 1% of a constant's: collapsing
TRIVIAL_MSE = 0.01  # "within": relative distance to the all-zero or the mean predictor's MSE
COPY_GAP = 0.05  # mean |output - input| below 5% of the targets' distance from the input
MIN_STEPS = 30  # optimizer steps before collapse is judged


def health(metrics: dict[str, Any], base: Baselines | None = None, *,
           steps: float = math.inf) -> tuple[str, str]:
    """(status, reason) of a report: ("", "") if the trial may go on, else why it must stop.

    A loss that is NaN or inf stops a trial at once. Collapse is judged only after
    `MIN_STEPS` optimizer steps: a model that has barely trained also predicts about a
    constant. Without `base` (no validation data to compare with), only absolute tests apply.
    """
    for key in (C.TRAIN_LOSS, C.VAL_LOSS, C.VAL_MSE):
        value = metrics.get(key)
        if value is None or not math.isfinite(value):
            return C.Status.DIVERGED, f"{key} is {value} (the loss diverged)"
    if steps < MIN_STEPS:
        return "", ""
    std = metrics.get(C.VAL_OUTPUT_STD, math.inf)
    gap = metrics.get(C.VAL_INPUT_GAP, math.inf)
    mse = metrics[C.VAL_MSE]
    spread = base.target_std if base and base.target_std > 0 else 1.0
    if std < (CONSTANT_STD * spread if base else 1e-3):
        return C.Status.COLLAPSED, (f"constant output (std {std:.1e}): val_mse {mse:.5f} is "
                                    f"a trivial predictor's")
    if base is not None:
        # Worse than a constant is no collapse by itself (slow starters are); sitting *at* a
        # constant predictor's error with almost constant outputs is.
        for name, trivial in (("all-zero", base.zero_mse), ("mean", base.mean_mse)):
            if std < NEAR_CONSTANT_STD * spread and abs(mse - trivial) <= TRIVIAL_MSE * trivial:
                return C.Status.COLLAPSED, (f"output collapsing to a constant (std {std:.1e}): "
                                            f"val_mse {mse:.5f}, the {name} predictor's "
                                            f"{trivial:.5f}")
        if base.input_gap > 0 and gap < COPY_GAP * base.input_gap:
            return C.Status.COLLAPSED, f"the output copies the input (mean |out - in| {gap:.1e})"
    elif gap < 1e-3:
        return C.Status.COLLAPSED, f"the output copies the input (mean |out - in| {gap:.1e})"
    return "", ""


class Trial:
    """Trains `config` on `data`; `reports()` yields metrics every `report_images` examples.

    A report is the unit of fidelity that ASHA stops trials at: a fixed number of training
    examples (images, or patches for text), so that a trial can be judged before its first
    epoch ends. Training position is counted in examples seen, so a checkpoint taken at any
    report resumes exactly there.
    """

    def __init__(self, config: ModelConfig, data: TaskData, *, seed: int = 0,
                 model: Any = None, images: int = 0, seconds: float = 0.0,
                 eval_batch_size: int | None = None, report_images: int | None = None,
                 precision: str = FLOAT32) -> None:
        import keras

        from search.models import build_model

        self.config = config
        self.data = data
        self.seed = seed
        self.images = images
        self.seconds = seconds
        self.epoch_size = data.epoch_size
        self.report_images = report_images or self.epoch_size  # `next_stop` says how it is read
        if self.report_images < 1:
            raise ValueError(f"report_images must be >= 1, got {report_images}")
        self.eval_batch_size = eval_batch_size or (
            config.batch_size if data.val_names == () else EVAL_PAGES)
        if model is None:
            keras.utils.set_random_seed(seed)
            model = build_model(config, data.input_shape, precision=precision)
        self.model = model
        self.precision = precision_of(model)  # a resumed model keeps the one it had
        self.params = int(model.count_params())
        self.notation = describe(config)
        self._order: tuple[int, list[tuple[np.ndarray, np.ndarray]]] | None = None
        self.baselines = Baselines.of(list(data.val))
        # (examples trained, the outputs `evaluate` kept then): what `save` shows
        self._shown: tuple[int, list[np.ndarray]] | None = None
        self.val_images = sum(len(x) for x, _ in data.val)

    @property
    def epoch(self) -> float:
        """Epochs trained so far (fractional between epoch ends)."""
        return self.images / self.epoch_size

    @property
    def total_images(self) -> int:
        return self.config.epochs * self.epoch_size

    def _epoch_order(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Epoch `epoch`'s examples in training order, as same-size (x, y) runs (kept for the
        epoch's later reports)."""
        if self._order is not None and self._order[0] == epoch:
            return self._order[1]
        groups = self.data.training_groups(epoch)
        rng = np.random.default_rng((self.seed, epoch))
        runs = []
        for g in rng.permutation(len(groups)):
            x, y = groups[g]
            order = rng.permutation(len(x))
            runs.append((x[order], y[order]))
        self._order = (epoch, runs)
        return runs

    def _train_slice(self, epoch: int, start: int, stop: int) -> tuple[float, float, int]:
        """Train on examples [start, stop) of epoch `epoch`; (loss sum, mse sum, count)."""
        loss_sum = mse_sum = 0.0
        count = offset = 0
        for x, y in self._epoch_order(epoch):
            lo, hi = max(start - offset, 0), min(stop - offset, len(x))
            offset += len(x)
            if lo >= hi:
                continue
            history = self.model.fit(x[lo:hi], y[lo:hi], batch_size=self.config.batch_size,
                                     epochs=1, shuffle=False, verbose=0)
            loss_sum += history.history["loss"][-1] * (hi - lo)
            mse_sum += history.history["mse"][-1] * (hi - lo)
            count += hi - lo
        return loss_sum, mse_sum, count

    def _stat_batches(self, epoch: int) -> Iterator[np.ndarray]:
        """The first `BN_STAT_EXAMPLES` training inputs of `epoch`, in training batches."""
        left = BN_STAT_EXAMPLES
        for x, _ in self._epoch_order(epoch):
            end = min(len(x), left)
            for start in range(0, end, self.config.batch_size):
                yield x[start : min(start + self.config.batch_size, end)]
            left -= end
            if left <= 0:
                return

    @property
    def report_index(self) -> int:
        """The 0-based report the trial trains toward, counted as `next_stop` places reports
        (equal parts of an epoch; whole epochs for a report of an epoch or more)."""
        epoch, start = divmod(self.images, self.epoch_size)
        if self.report_images < self.epoch_size:
            parts = report_parts(self.epoch_size, self.report_images)
            return int(epoch * parts + start * parts // self.epoch_size)
        return int(epoch // (self.report_images // self.epoch_size))

    def next_stop(self) -> int:
        """Where the next report lands, in examples seen: the end of the epoch's next equal
        part (`report_parts`); a `report_images` of an epoch or more reports at the end of the
        last whole epoch it spans (the trial trained on paces itself so: search/trainable.py)."""
        epoch, start = divmod(self.images, self.epoch_size)
        if self.report_images < self.epoch_size:
            parts = report_parts(self.epoch_size, self.report_images)
            part = start * parts // self.epoch_size + 1  # the first part ending after `start`
            stop = epoch * self.epoch_size + -(-part * self.epoch_size // parts)
        else:
            stop = (epoch + self.report_images // self.epoch_size) * self.epoch_size
        return min(stop, self.total_images)

    def _train_to(self, stop: int) -> tuple[float, float, int, int]:
        """Train from where the trial stands to example `stop`, across epochs; (loss sum, mse
        sum, count, the last epoch trained)."""
        loss_sum = mse_sum = 0.0
        count, at, epoch = 0, self.images, self.images // self.epoch_size
        while at < stop:
            epoch, start = divmod(at, self.epoch_size)
            end = min(stop - epoch * self.epoch_size, self.epoch_size)
            seed_layers(self.model, (self.seed * 100_003 + at) % 2**31)
            loss, mse, n = self._train_slice(epoch, start, end)
            loss_sum, mse_sum, count = loss_sum + loss, mse_sum + mse, count + n
            at = epoch * self.epoch_size + end
        return loss_sum, mse_sum, count, epoch

    def reports(self) -> Iterator[dict[str, Any]]:
        """Train up to config.epochs, yielding metrics at each `next_stop`. Stops early, after
        yielding, when `health` says the trial is lost."""
        while self.images < self.total_images:
            stop = self.next_stop()
            began = time.perf_counter()
            loss_sum, mse_sum, count, epoch = self._train_to(stop)
            train_seconds = time.perf_counter() - began
            refresh_batchnorm(self.model, self._stat_batches(epoch))
            shown: list[np.ndarray] = []
            predicting = time.perf_counter()
            val = evaluate(self.model, list(self.data.val), self.config.loss, self.eval_batch_size,
                           keep=shown)
            latency = (time.perf_counter() - predicting) / max(self.val_images, 1)
            val_seconds = time.perf_counter() - began - train_seconds
            self.images = stop
            self.seconds += train_seconds
            self._shown = (self.images, shown)
            metrics = {
                C.EPOCH: round(self.epoch, 6),
                C.IMAGES: self.images,
                C.TRAIN_LOSS: loss_sum / max(count, 1),
                C.TRAIN_MSE: mse_sum / max(count, 1),
                **val,
                C.PARAMS: self.params,
                C.EPOCH_SECONDS: train_seconds,
                C.SECONDS: self.seconds,
                C.VAL_SECONDS: val_seconds,
                C.LATENCY: latency,
                C.NOTATION: self.notation,
                C.PRECISION: self.precision,
            }
            status, reason = health(metrics, self.baselines,
                                    steps=self.images / self.config.batch_size)
            if status:
                metrics[C.VERDICT], metrics[C.REASON] = status, reason
            yield metrics
            if status:
                return

    def save(self, directory: str | Path, metrics: dict[str, Any] | None = None) -> Path:
        """Write the model (with optimizer state), where training stands, and a few
        reconstructions, so that exporting this checkpoint as best/ needs no TensorFlow."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / C.MODEL_FILE)
        shown = self._shown[1] if self._shown and self._shown[0] == self.images else None
        arrays = reconstructions(self.model, self.data, shown)
        np.savez_compressed(directory / C.RECONSTRUCTIONS_FILE, **arrays)  # type: ignore[arg-type]
        state = {"images": self.images, "seconds": self.seconds, "seed": self.seed}
        (directory / C.STATE_FILE).write_text(json.dumps(state))
        (directory / C.CONFIG_FILE).write_text(self.config.to_json())
        (directory / C.NOTATION_FILE).write_text(self.notation + "\n")
        if metrics is not None:
            (directory / C.METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=float))
        return directory

    @classmethod
    def resume(cls, directory: str | Path, config: ModelConfig, data: TaskData,
               report_images: int | None = None) -> Trial:
        """Continue from a directory written by `save` (a Ray checkpoint)."""
        from search.models import load_model

        directory = Path(directory)
        state = json.loads((directory / C.STATE_FILE).read_text())
        model = load_model(directory / C.MODEL_FILE)
        return cls(config, data, seed=state["seed"], model=model, images=state["images"],
                   seconds=state["seconds"], report_images=report_images)


def report_parts(epoch_size: int, report_images: int) -> int:
    """Reports in an epoch: as many equal parts of at least `report_images` examples as fit,
    and at least one. Equal, because the remainder of an epoch was its own report: 159 examples
    a report in an epoch of 160 (text) made every other report one example long, and so
    validated and checkpointed twice an epoch for an epoch's training."""
    if epoch_size < 1 or report_images < 1:
        raise ValueError(f"epoch_size and report_images must be >= 1, "
                         f"got {epoch_size} and {report_images}")
    return max(1, epoch_size // report_images)


def reconstructions(model: Any, data: TaskData,
                    outputs: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """A few validation inputs, outputs and targets, for the results' reconstruction sheet:
    `SHOWN` images, or `SHOWN_PAGES` pages. `outputs` are the model's for the first of the
    validation images, one (1, h, w, c) array each, as `evaluate` keeps them; predicted here
    where not given.

    Same-size images come as one stack (`inputs`, ...); pages, whose heights differ, as one
    triple per page (`inputs_0`, `outputs_0`, `targets_0`, ...).
    """
    images = ((gx[i : i + 1], gy[i : i + 1]) for gx, gy in data.val for i in range(len(gx)))
    shown = list(itertools.islice(images, SHOWN_PAGES if data.val_names else SHOWN))
    if outputs is None or len(outputs) < len(shown):
        outputs = [np.asarray(model.predict_on_batch(x)) for x, _ in shown]
    if not data.val_names:
        return {"inputs": np.concatenate([x for x, _ in shown]),
                "outputs": np.concatenate(outputs[: len(shown)]),
                "targets": np.concatenate([y for _, y in shown])}
    arrays: dict[str, np.ndarray] = {}
    for i, ((px, py), out) in enumerate(zip(shown, outputs, strict=False)):
        arrays[f"inputs_{i}"], arrays[f"outputs_{i}"], arrays[f"targets_{i}"] = px, out, py
    return arrays
