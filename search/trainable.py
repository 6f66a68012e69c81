"""Ray glue around `search.trial.Trial`: resources in, checkpoints in and out, `tune.report`.

Kept thin on purpose: everything that can be tested without Ray lives in `search/trial.py`.
"""

from __future__ import annotations

import tempfile
from typing import Any

import ray
from ray import tune

from search import constants as C
from search.data import TaskData
from search.trial import Trial, configure_backend
from spaces.config import ModelConfig
from spaces.guard import check


def model_config(config: dict[str, Any], settings: dict[str, Any]) -> ModelConfig:
    """The trial's ModelConfig, with the sweep's epoch budget applied."""
    model = ModelConfig.from_dict(config[C.MODEL_KEY])
    if settings.get("max_epochs"):
        model = model.replace(epochs=int(settings["max_epochs"]))
    return model


def train_autoencoder(config: dict[str, Any], data: TaskData, settings: dict[str, Any]) -> None:
    """Ray Tune function trainable: one config, reporting every epoch.

    `data` arrives through `tune.with_parameters` (Ray's object store), so worker nodes never
    read the data set themselves; `settings` are the sweep's plain-data options.
    """
    resources = tune.get_context().get_trial_resources().required_resources
    configure_backend(resources.get("CPU"))
    model = model_config(config, settings)
    check(model, settings["guard_shape"], max_params=settings["max_params"],
          max_activation_mb=settings["max_activation_mb"])

    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trial = Trial.resume(directory, model, data)
    else:
        trial = Trial(model, data, seed=settings.get("seed", 0))

    node = ray.get_runtime_context().get_node_id()
    every = max(1, int(settings.get("checkpoint_every", 1)))
    for metrics in trial.epochs():
        metrics[C.NODE] = node
        last = trial.epoch >= model.epochs
        if trial.epoch % every == 0 or last:
            with tempfile.TemporaryDirectory() as directory:
                trial.save(directory, metrics)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)
