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


def test_a_checkpoint_shows_the_outputs_its_last_validation_computed(pages, tmp_path):
    """A report's checkpoint reuses the validation's outputs for its reconstruction sheet (on
    text these are the validation pages: predicting them again cost more than validating);
    they are the model's outputs at that checkpoint, and a save away from a report predicts."""
    from search.trial import SHOWN_PAGES, Trial

    config = ModelConfig(task="text", filters=(2,), epochs=2, batch_size=4)
    trial = Trial(config, pages, seed=0, report_images=pages.epoch_size)
    next(trial.reports())
    trial.save(tmp_path / "kept")
    sheet = np.load(tmp_path / "kept" / C.RECONSTRUCTIONS_FILE)
    shown = min(SHOWN_PAGES, pages.n_val)
    assert sorted(sheet.files) == sorted(f"{kind}_{i}" for kind in ("inputs", "outputs", "targets")
                                         for i in range(shown))
    for i in range(shown):
        again = np.asarray(trial.model.predict_on_batch(sheet[f"inputs_{i}"]))
        np.testing.assert_allclose(sheet[f"outputs_{i}"], again, atol=1e-6)
    trial._shown = (trial.images - 1, [np.zeros_like(sheet["outputs_0"])])  # stale: not used
    trial.save(tmp_path / "predicted")
    predicted = np.load(tmp_path / "predicted" / C.RECONSTRUCTIONS_FILE)
    np.testing.assert_allclose(predicted["outputs_0"], sheet["outputs_0"], atol=1e-6)
