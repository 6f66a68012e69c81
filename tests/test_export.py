"""best/ export: a trial's checkpoint, or a refit on every labelled page (--refit)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from search.cli import main
from search.data import DataOptions, load_task
from search.export import refit_best
from spaces import constants as C
from spaces.config import ModelConfig


@pytest.fixture(scope="module")
def pages(data_dir):
    return load_task("text", DataOptions(data_dir=data_dir, subset=2, val_fraction=0.2,
                                         patch_size=32, patches_per_page=2))


def test_validation_pages_join_training_grouped_by_size(pages):
    merged = pages.with_validation_in_training()
    assert merged.n_train == pages.n_train + pages.n_val
    assert merged.val is pages.val
    assert [x.shape[1:3] for x, _ in merged.train] == [(420, 540), (258, 540)]
    for x, y in merged.train:
        assert x.shape == y.shape


def test_refit_exports_a_model_with_held_out_and_refit_metrics(pages, tmp_path):
    config = ModelConfig(task="text", filters=(2,), epochs=1, batch_size=4)
    sweep_metrics = {C.VAL_MSE: 0.5, C.VAL_RMSE: 0.7, C.NOTATION: "1L,2F(3X3)"}
    best = refit_best(config, pages, sweep_metrics, tmp_path / C.BEST_DIR, seed=0)
    metrics = json.loads((best / C.METRICS_FILE).read_text())
    assert metrics[C.VAL_MSE] == 0.5 and metrics["refit"] is True
    assert 0 < metrics["refit_val_mse"] < 1
    assert ModelConfig.from_json((best / C.CONFIG_FILE).read_text()) == config
    sheet = np.load(best / C.RECONSTRUCTIONS_FILE)
    assert sheet["outputs_0"].shape == sheet["targets_0"].shape
    assert not (best / C.STATE_FILE).exists()


@pytest.mark.parametrize("precision", [None, "float32", "mixed_bfloat16"])
def test_refit_trains_in_the_precision_the_sweep_chose(pages, tmp_path, precision):
    from search.models import load_model
    from search.precision import of_model

    config = ModelConfig(task="text", filters=(2,), epochs=1, batch_size=4)
    sweep_metrics = {C.VAL_MSE: 0.5, C.VAL_RMSE: 0.7, C.PRECISION: precision}
    best = refit_best(config, pages, sweep_metrics, tmp_path / C.BEST_DIR, seed=0)
    assert of_model(load_model(best / C.MODEL_FILE)) == (precision or "float32")


def test_finalists_flags_without_refit_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--task", "mnist", "--space", "study-axes", "--top-k", "2", "--address", "local"])
    assert exit_info.value.code == 2
    assert "--top-k sets the finalists stage: add --refit" in capsys.readouterr().err


def test_a_checkpoint_without_reconstructions_is_exported_from_its_model(pages, tmp_path):
    """Checkpoints written before trials saved reconstructions: write_best loads the model and
    makes them, so every caller can pass no model."""
    from search.export import write_best
    from search.trial import Trial

    config = ModelConfig(task="text", filters=(2,), epochs=1, batch_size=4)
    trial = Trial(config, pages, seed=0)
    checkpoint = tmp_path / "checkpoint"
    trial.save(checkpoint, {C.VAL_MSE: 0.5})
    (checkpoint / C.RECONSTRUCTIONS_FILE).unlink()
    best = write_best(checkpoint, None, pages, {C.VAL_MSE: 0.5}, tmp_path / C.BEST_DIR)
    sheet = np.load(best / C.RECONSTRUCTIONS_FILE)
    assert sheet["outputs_0"].shape == sheet["targets_0"].shape
    assert json.loads((best / C.METRICS_FILE).read_text())[C.VAL_MSE] == 0.5
