"""Ray glue around `search.trial.Trial`: resources in, checkpoints in and out, `tune.report`.

Kept thin on purpose: everything that can be tested without Ray lives in `search/trial.py`.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
from ray import tune

from search import internals
from search.checkpoints import pruned_result
from search.data import TaskData
from search.precision import resolve
from search.settings import TrialSettings
from search.trial import Trial, configure_backend
from search.worker import fresh_session
from spaces import constants as C
from spaces.config import MAX_EPOCHS, ModelConfig
from spaces.guard import ResourceLimitError, check
from spaces.notation import describe

# What a trial that ended with a verdict and no training reports: every metric NaN, so the
# searcher counts it FAIL and it never ranks (Ray requires the objective in every result).
_NO_METRICS = dict.fromkeys(C.METRICS, math.nan)
EXPLOIT_REPORT_SPACING = 4  # the trained-on best reports every 4 reports' worth of examples
# ... at least, and then so that it trains at least this many times as long as it spends
# validating and checkpointing between reports (`paced`).
EXPLOIT_OVERHEAD_RATIO = 4.0


def out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is running out of host or accelerator memory (not worth a retry)."""
    if isinstance(exc, MemoryError):
        return True
    return type(exc).__name__ == "ResourceExhaustedError"  # tf.errors, without importing TF


def _ended(verdict: str, reason: str, **metrics: Any) -> dict[str, Any]:
    return {**_NO_METRICS, C.EPOCH: 0.0, C.IMAGES: 0, **metrics,
            C.VERDICT: verdict, C.REASON: reason}


def _checkpoint_images(directory: Path) -> int | None:
    """Training examples a complete checkpoint written by `Trial.save` holds, else None."""
    try:
        state = json.loads((directory / C.STATE_FILE).read_text())
        if not (directory / C.MODEL_FILE).is_file() or not (directory / C.METRICS_FILE).is_file():
            return None
        json.loads((directory / C.METRICS_FILE).read_text())
        return int(state["images"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def newest_checkpoints(given: Any) -> list[Any]:
    """The trial's checkpoints to resume from, most trained first, `given` (Ray's) last.

    Ray resumes a trial from the checkpoint its experiment state recorded, and saves that
    state only every few seconds. A driver killed in between leaves newer checkpoints in the
    trial's directory (a trial's worker persists each checkpoint before the driver hears of
    it): resuming from Ray's would train again what was already trained, a finished trial
    included. So every complete checkpoint in the trial's directory is a candidate.
    """
    found: list[tuple[int, str, Any]] = []
    try:
        session = internals.trial_session()
        if session is None:
            raise RuntimeError("no Ray Tune session")
        storage = session.storage
        trial_dir = Path(storage.trial_fs_path)
        if type(storage.storage_filesystem).__name__ == "LocalFileSystem" and trial_dir.is_dir():
            for directory in trial_dir.glob("checkpoint_*"):
                images = _checkpoint_images(directory)
                if images is not None:
                    found.append((images, directory.name,
                                  tune.Checkpoint.from_directory(str(directory))))
    except Exception:  # noqa: BLE001 - Ray's internals moved, or remote storage: Ray's own
        found = []
    ordered = [c for _, _, c in sorted(found, key=lambda f: (f[0], f[1]), reverse=True)]
    if given is not None and all(Path(c.path) != Path(given.path) for c in ordered):
        ordered.append(given)
    return ordered


def _resumed(model: ModelConfig, data: TaskData,
             report_images: int | None) -> tuple[Trial | None, dict[str, Any]]:
    """The trial resumed from its newest readable checkpoint and that checkpoint's metrics,
    else (None, {})."""
    for checkpoint in newest_checkpoints(tune.get_checkpoint()):
        try:
            with checkpoint.as_directory() as directory:
                trial = Trial.resume(directory, model, data, report_images=report_images)
                return trial, json.loads((Path(directory) / C.METRICS_FILE).read_text())
        except Exception as exc:  # noqa: BLE001 - a damaged checkpoint: try an older one
            print(f"trial {tune.get_context().get_trial_id()}: cannot resume from "
                  f"{checkpoint.path} ({type(exc).__name__}: {exc}); trying an older one")
    return None, {}


def _pruned_result() -> dict[str, Any] | None:
    """This trial's last result if the sweep pruned its checkpoints (`search.checkpoints`)."""
    try:
        from ray.train._internal.session import get_session

        session = get_session()
        return pruned_result(session.storage) if session is not None else None
    except Exception:  # noqa: BLE001 - no Ray Tune session, or Ray's internals moved
        return None


def model_config(config: dict[str, Any], settings: TrialSettings) -> ModelConfig:
    """The trial's ModelConfig, with the sweep's epoch budget; the trained-on best of a
    time-budgeted search (search/exploit.py) has none but the time: capped at the study's 25
    text epochs, it stopped after 94 s of a 20-minute sweep's 800 s left."""
    epochs = MAX_EPOCHS if config.get(C.EXPLOIT) else int(settings.max_epochs)
    return ModelConfig.from_dict(config[C.MODEL_KEY]).replace(epochs=epochs)


def trial_seed(base: int, trial_id: str) -> int:
    """Repeats of one grid point (`--num-samples N` with a grid) get different seeds.

    Grid trials are numbered (`<experiment>_00003`); their number is added to the sweep's
    seed, which keeps sweeps reproducible. Optuna's trials, which differ by config, keep it.
    """
    match = re.search(r"_(\d{5})$", trial_id)
    return base + int(match[1]) if match else base


def train_autoencoder(config: dict[str, Any], data: TaskData, settings: TrialSettings) -> None:
    """Ray Tune function trainable: one config, reporting every `report_images` examples.

    `data` arrives through `tune.with_parameters` (Ray's object store), so worker nodes never
    read the data set themselves; `settings` are the sweep's per-trial options. With
    `reuse_actors`, one worker process runs trial after trial, so TensorFlow is imported once
    per worker and each trial starts from a cleared Keras session.
    """
    started_at, began = time.time(), time.perf_counter()
    import keras  # noqa: F401 - TensorFlow's import: paid by a worker's first trial only

    imported = time.perf_counter()
    resources = tune.get_context().get_trial_resources().required_resources
    configure_backend(resources.get("CPU"), resources.get("GPU"))
    fresh_session()  # what earlier trials in this worker left, dropped: a flat setup cost
    model = model_config(config, settings)
    node = ray.get_runtime_context().get_node_id()
    try:
        check(model, settings.guard_shape, max_params=settings.max_params,
              max_activation_mb=settings.max_activation_mb)
    except ResourceLimitError as exc:
        # Refused for good: the same config is refused again, so the trial ends now with its
        # verdict rather than raising into Ray's retries (max_failures).
        tune.report(_ended(C.Status.REFUSED, str(exc),
                           **{C.NODE: node, C.NOTATION: describe(model)}))
        return

    pruned = _pruned_result()
    if pruned is not None:
        # Ended, and its checkpoints pruned (--keep-checkpoints), before Ray's experiment state
        # recorded it: report its last result again, train nothing.
        tune.report({**pruned, C.NODE: node})
        return

    report_images = settings.report_images
    exploit = bool(config.get(C.EXPLOIT))
    if exploit and report_images:
        # A top-rung config, trained on (search/exploit.py): no scheduler judges it, so it
        # validates less often and trains more of the budget.
        report_images *= EXPLOIT_REPORT_SPACING
    trial, last_metrics = _resumed(model, data, report_images)
    if trial is None:
        trial = Trial(model, data, report_images=report_images,
                      precision=resolve(settings.precision, resources.get("GPU")),
                      seed=trial_seed(settings.seed, tune.get_context().get_trial_id()))
    elif trial.images >= trial.total_images or C.VERDICT in last_metrics:
        # Finished before the driver recorded it: report its final metrics again, train
        # nothing (Ray's last result for the trial is otherwise an older one).
        tune.report({**last_metrics, C.NODE: node})
        return

    timing = {C.STARTED_AT: started_at, C.IMPORT_SECONDS: imported - began,
              C.SETUP_SECONDS: time.perf_counter() - imported}
    _train(trial, {C.NODE: node, **timing}, int(settings.checkpoint_every),
           paced_from=report_images if exploit else None)


def paced(metrics: dict[str, Any], *, images: int, seconds: float, least: int,
          epoch_size: int, ratio: float = EXPLOIT_OVERHEAD_RATIO) -> int:
    """Examples until the next report, so that training takes at least `ratio` times what the
    last report spent validating and checkpointing (`images` and `seconds`: trained so far).

    The trial trained on is judged by no scheduler, so its reports only say how it stands.
    On text, a small model trained an epoch of patches in 1 s, then validated whole pages for
    2 s and checkpointed for 2 s: three quarters of its time went to reports. Spacing of an
    epoch or more is rounded down to whole epochs (reports then land at epoch ends, where
    checkpoints are taken); never below `least`."""
    overhead = sum(float(metrics.get(key, 0.0)) for key in (C.VAL_SECONDS, C.CHECKPOINT_SECONDS))
    if images <= 0 or seconds <= 0 or not math.isfinite(overhead):
        return least
    want = math.ceil(ratio * overhead * images / seconds)
    if want >= epoch_size:
        want = want // epoch_size * epoch_size
    return max(least, want)


def _train(trial: Trial, extra: dict[str, Any], every: int, *,
           paced_from: int | None = None) -> None:
    """Report every `trial.reports()` result with `extra`, checkpointed at every `every`th
    epoch's end and at the last report; an out-of-memory error ends the trial with its verdict
    (a retry with the same config and resources runs out again), any other is Ray's to retry
    from the last checkpoint. With `paced_from`, the reports are spaced by `paced`, never
    closer than that many examples."""
    try:
        for metrics in trial.reports():
            metrics.update(extra)
            epoch_end = trial.images % trial.epoch_size == 0
            last = trial.images >= trial.total_images or C.VERDICT in metrics
            if (epoch_end and round(trial.epoch) % every == 0) or last:
                with tempfile.TemporaryDirectory() as directory:
                    saving = time.perf_counter()
                    trial.save(directory, metrics)
                    metrics[C.CHECKPOINT_SECONDS] = time.perf_counter() - saving
                    tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
            else:
                metrics[C.CHECKPOINT_SECONDS] = 0.0
                tune.report(metrics)
            if paced_from:
                trial.report_images = paced(metrics, images=trial.images, seconds=trial.seconds,
                                            least=paced_from, epoch_size=trial.epoch_size)
    except Exception as exc:
        if not out_of_memory(exc):
            raise  # Ray records it and retries the trial from its last checkpoint
        reason = f"out of memory: {type(exc).__name__}: {str(exc).strip()[:300]}"
        tune.report(_ended(C.Status.OUT_OF_MEMORY, reason, **{
            C.EPOCH: round(trial.epoch, 6), C.IMAGES: trial.images, C.PARAMS: trial.params,
            C.SECONDS: trial.seconds, C.NOTATION: trial.notation, C.NODE: extra[C.NODE]}))
