"""Ray glue around `search.trial.Trial`: resources in, checkpoints in and out, `tune.report`.

Kept thin on purpose: everything that can be tested without Ray lives in `search/trial.py`.
"""

from __future__ import annotations

import re
import tempfile
import time
from typing import Any

import ray
from ray import tune

from search.data import TaskData
from search.settings import TrialSettings
from search.trial import Trial, configure_backend
from spaces import constants as C
from spaces.config import ModelConfig
from spaces.guard import check


def model_config(config: dict[str, Any], settings: TrialSettings) -> ModelConfig:
    """The trial's ModelConfig, with the sweep's epoch budget."""
    return ModelConfig.from_dict(config[C.MODEL_KEY]).replace(epochs=int(settings.max_epochs))


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
    import keras  # TensorFlow's import: paid by a worker's first trial only (reuse_actors)

    imported = time.perf_counter()
    resources = tune.get_context().get_trial_resources().required_resources
    configure_backend(resources.get("CPU"))
    keras.backend.clear_session()
    model = model_config(config, settings)
    check(model, settings.guard_shape, max_params=settings.max_params,
          max_activation_mb=settings.max_activation_mb)

    report_images = settings.report_images
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trial = Trial.resume(directory, model, data, report_images=report_images)
    else:
        trial = Trial(model, data, report_images=report_images,
                      seed=trial_seed(settings.seed, tune.get_context().get_trial_id()))

    node = ray.get_runtime_context().get_node_id()
    timing = {C.STARTED_AT: started_at, C.IMPORT_SECONDS: imported - began,
              C.SETUP_SECONDS: time.perf_counter() - imported}
    every = int(settings.checkpoint_every)
    for metrics in trial.reports():
        metrics[C.NODE] = node
        metrics.update(timing)
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
