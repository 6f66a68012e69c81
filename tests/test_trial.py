"""search/trial.py: one config trained on real data, without Ray."""

from __future__ import annotations

import json
import math
import os
from types import SimpleNamespace

import numpy as np
import pytest

from search.data import DataOptions, load_task
from search.trial import Baselines, Trial, evaluate, health, pixel_losses, report_parts
from spaces import constants as C
from spaces.config import ModelConfig
from spaces.notation import parse_row


@pytest.fixture(scope="module")
def mnist_small(data_dir):
    return load_task("mnist", DataOptions(data_dir=data_dir, subset=1000, val_subset=300))


def test_pixel_losses_match_numpy():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0.01, 0.99, (3, 5, 7, 1)).astype("float32")
    target = rng.uniform(0, 1, (3, 5, 7, 1)).astype("float32")
    sums = pixel_losses(pred, target)
    assert sums["pixels"] == pred.size
    assert sums["mse"] / pred.size == pytest.approx(np.mean((pred - target) ** 2), rel=1e-6)
    assert sums["mae"] / pred.size == pytest.approx(np.mean(np.abs(pred - target)), rel=1e-6)
    bce = -np.mean(target * np.log(pred) + (1 - target) * np.log(1 - pred))
    assert sums["bce"] / pred.size == pytest.approx(bce, rel=1e-5)


def test_evaluate_weighs_pages_by_pixels():
    """RMSE is over all pixels of all pages, so a big page counts more than a small one."""

    class Constant:
        def predict_on_batch(self, x):
            return np.zeros_like(x)

    small = (np.zeros((1, 2, 2, 1), "float32"), np.ones((1, 2, 2, 1), "float32"))  # err 1
    big = (np.zeros((1, 4, 4, 1), "float32"), np.zeros((1, 4, 4, 1), "float32"))  # err 0
    metrics = evaluate(Constant(), [small, big], "mse", batch_size=1)
    assert metrics[C.VAL_MSE] == pytest.approx(4 / 20)
    assert metrics[C.VAL_RMSE] == pytest.approx(math.sqrt(4 / 20))


def test_training_on_real_mnist_lowers_the_loss(mnist_small):
    config = parse_row("2L,8F(3X3)", task="mnist").replace(epochs=2, batch_size=64, lr=3e-3)
    trial = Trial(config, mnist_small, seed=1)
    before = evaluate(trial.model, list(mnist_small.val), "mse", 256)[C.VAL_MSE]
    history = list(trial.reports())
    assert [m[C.EPOCH] for m in history] == [1, 2]
    assert history[-1][C.VAL_MSE] < before * 0.5
    assert history[-1][C.TRAIN_LOSS] < history[0][C.TRAIN_LOSS]
    last = history[-1]
    assert last[C.PARAMS] == trial.model.count_params() == 8 * 9 + 8 + 8 * 8 * 9 + 8 + 8 * 9 + 1
    assert last[C.VAL_RMSE] == pytest.approx(math.sqrt(last[C.VAL_MSE]))
    assert last[C.SECONDS] == pytest.approx(sum(m[C.EPOCH_SECONDS] for m in history))
    assert last[C.NOTATION] == "2L,8F(3X3)"


def test_save_and_resume_continue_where_training_stopped(mnist_small, tmp_path):
    config = ModelConfig(task="mnist", filters=(4,), epochs=2, batch_size=128)
    trial = Trial(config, mnist_small, seed=3)
    first = next(trial.reports())
    trial.save(tmp_path, first)
    assert json.loads((tmp_path / C.STATE_FILE).read_text())["images"] == 1000
    assert ModelConfig.from_json((tmp_path / C.CONFIG_FILE).read_text()) == config

    resumed = Trial.resume(tmp_path, config, mnist_small)
    weights = [w.copy() for w in trial.model.get_weights()]
    pairs = zip(weights, resumed.model.get_weights(), strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)
    rest = list(resumed.reports())
    assert [m[C.EPOCH] for m in rest] == [2]
    assert rest[0][C.SECONDS] > first[C.SECONDS]


def test_bce_trial_reports_mse_beside_its_loss(mnist_small):
    """val_loss is the configured loss (binary cross-entropy) and val_mse the MSE, both of the
    model's validation predictions: each computed here again with numpy."""
    config = ModelConfig(task="mnist", filters=(4,), loss="bce", epochs=1, batch_size=128)
    trial = Trial(config, mnist_small)
    metrics = next(trial.reports())
    ((x, y),) = mnist_small.val
    pred = np.asarray(trial.model.predict(x, verbose=0), dtype=np.float64)
    target = y.astype(np.float64)
    clipped = np.clip(pred, 1e-7, 1 - 1e-7)  # Keras' epsilon
    bce = -np.mean(target * np.log(clipped) + (1 - target) * np.log(1 - clipped))
    assert metrics[C.VAL_LOSS] == pytest.approx(bce, rel=1e-3)
    assert metrics[C.VAL_MSE] == pytest.approx(np.mean((pred - target) ** 2), rel=1e-3)


def test_reports_inside_an_epoch_resume_at_the_same_example(mnist_small, tmp_path):
    """At least 300 examples a report: 1000 images an epoch are three equal parts, reports at
    334, 667, 1000 (no 100-example remainder of its own); a checkpoint at any report resumes
    there and trains the same examples as without it."""
    config = ModelConfig(task="mnist", filters=(4,), epochs=2, batch_size=64, loss="bce")
    whole = Trial(config, mnist_small, seed=5, report_images=300)
    history = list(whole.reports())
    assert [m[C.IMAGES] for m in history] == [334, 667, 1000, 1334, 1667, 2000]
    assert [m[C.EPOCH] for m in history] == [0.334, 0.667, 1, 1.334, 1.667, 2]

    split = Trial(config, mnist_small, seed=5, report_images=300)
    reports = split.reports()
    for _ in range(2):
        middle = next(reports)
    split.save(tmp_path, middle)
    resumed = Trial.resume(tmp_path, config, mnist_small, report_images=300)
    rest = list(resumed.reports())
    assert [m[C.IMAGES] for m in rest] == [1000, 1334, 1667, 2000]
    # Same examples in the same order from the same weights: the same model (up to float
    # reduction order, which the single-threaded backend keeps).
    assert rest[-1][C.VAL_MSE] == pytest.approx(history[-1][C.VAL_MSE], rel=1e-3)


@pytest.mark.parametrize(("epoch_size", "report_images", "parts"),
                         [(160, 159, 1), (160, 80, 2), (160, 81, 1), (1000, 300, 3),
                          (1000, 63, 15), (5, 1, 5), (10, 10, 1)])
def test_an_epoch_is_reported_in_equal_parts(epoch_size, report_images, parts):
    """As many equal parts of at least `report_images` as fit: 159 a report in an epoch of
    160 (text's validation cost) is one report an epoch, not one of 159 and one of 1."""
    assert report_parts(epoch_size, report_images) == parts
    # next_stop reads only where training stands: no model needed to walk three epochs
    trial = SimpleNamespace(epoch_size=epoch_size, report_images=report_images,
                            total_images=3 * epoch_size, images=0)
    stops: list[int] = []
    while trial.images < trial.total_images:
        assert Trial.report_index.fget(trial) == len(stops)  # type: ignore[attr-defined]
        trial.images = Trial.next_stop(trial)  # type: ignore[arg-type]
        stops.append(trial.images)
    assert len(stops) == 3 * parts and stops[parts - 1] == epoch_size
    sizes = {b - a for a, b in zip([0, *stops], stops, strict=False)}
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= min(report_images, epoch_size)


@pytest.mark.parametrize(("report_images", "stops"),
                         [(100, [100, 200, 300, 400]), (250, [200, 400])])
def test_reports_of_an_epoch_or_more_land_on_whole_epochs(report_images, stops):
    """250 examples a report in epochs of 100 report every 2 whole epochs (what the trained-on
    trial's pacing asks for), and `report_index` counts reports as `next_stop` places them."""
    trial = SimpleNamespace(epoch_size=100, report_images=report_images, total_images=400,
                            images=0)
    seen, indices = [], []
    while trial.images < trial.total_images:
        indices.append(Trial.report_index.fget(trial))  # type: ignore[attr-defined]
        trial.images = Trial.next_stop(trial)  # type: ignore[arg-type]
        seen.append(trial.images)
    assert seen == stops and indices == list(range(len(stops)))
    trial.images = stops[0] + 50  # inside the second report's span
    assert Trial.report_index.fget(trial) == 1  # type: ignore[attr-defined]


def test_report_parts_refuses_nonpositive_sizes():
    with pytest.raises(ValueError, match="report_images"):
        report_parts(160, 0)


def test_reports_spanning_epochs_train_as_epoch_by_epoch(mnist_small):
    """A report of two epochs' examples (the trial trained on, paced: search/trainable.py)
    lands at the end of the second epoch, and trains the same examples in the same order as
    reports at each epoch's end; a spacing that changes between reports is followed."""
    config = ModelConfig(task="mnist", filters=(4,), epochs=5, batch_size=64, loss="bce")
    by_epoch = list(Trial(config, mnist_small, seed=3).reports())
    assert [m[C.IMAGES] for m in by_epoch] == [1000, 2000, 3000, 4000, 5000]
    paced = Trial(config, mnist_small, seed=3, report_images=2000)
    reports = paced.reports()
    first = next(reports)
    assert first[C.IMAGES] == 2000 and first[C.EPOCH] == 2
    paced.report_images = 2500  # not whole epochs: the last whole epoch it reaches
    second = next(reports)
    assert second[C.IMAGES] == 4000
    paced.report_images = 3000  # past the last epoch: the trial's end
    assert [m[C.IMAGES] for m in reports] == [5000]
    assert paced.images == 5000
    assert second[C.VAL_MSE] == pytest.approx(by_epoch[3][C.VAL_MSE], rel=1e-3)


def test_a_resumed_dropout_model_draws_the_same_masks(mnist_small, tmp_path):
    """Keras saves no dropout seed state; the trial seeds it at each report, so a trial
    resumed mid-epoch trains as if it never stopped."""
    config = parse_row("3L,8F(3X3)", dropout="2 (p=0.5)").replace(
        task="mnist", epochs=2, batch_size=64, loss="bce")
    whole = list(Trial(config, mnist_small, seed=7, report_images=500).reports())
    split = Trial(config, mnist_small, seed=7, report_images=500)
    middle = next(split.reports())
    split.save(tmp_path, middle)
    rest = list(Trial.resume(tmp_path, config, mnist_small, report_images=500).reports())
    assert [m[C.IMAGES] for m in rest] == [1000, 1500, 2000]
    for a, b in zip(whole[1:], rest, strict=True):
        assert b[C.TRAIN_LOSS] == pytest.approx(a[C.TRAIN_LOSS], rel=1e-6)
        assert b[C.VAL_MSE] == pytest.approx(a[C.VAL_MSE], rel=1e-6)  # unseeded: 5e-6 to 2e-4


@pytest.mark.parametrize(
    ("changes", "status"),
    [({C.VAL_OUTPUT_STD: 1e-5}, C.Status.COLLAPSED),
     ({C.VAL_INPUT_GAP: 1e-5}, C.Status.COLLAPSED),
     ({C.TRAIN_LOSS: math.nan}, C.Status.DIVERGED),
     ({C.VAL_MSE: math.inf}, C.Status.DIVERGED),
     ({}, "")],
)
def test_health_names_the_trivial_predictors_and_divergence(changes, status):
    healthy = {C.TRAIN_LOSS: 0.2, C.VAL_LOSS: 0.2, C.VAL_MSE: 0.02, C.VAL_OUTPUT_STD: 0.3,
               C.VAL_INPUT_GAP: 0.1}
    verdict, reason = health(healthy | changes)
    assert verdict == status
    assert bool(reason) == bool(status)


def test_a_slowly_collapsing_model_is_caught_by_its_baselines():
    """Measured on noisy MNIST: the study's `6L,16,8,8F(3X3) pool 3+3` under MSE drifts to the
    all-zero output; at 4,000 images its outputs still vary a little, but its val_mse is the
    all-zero predictor's."""
    base = Baselines(target_std=0.3, zero_mse=0.10398, mean_mse=0.0950, input_gap=0.27)
    report = {C.TRAIN_LOSS: 0.105, C.VAL_LOSS: 0.1043, C.VAL_MSE: 0.10430,
              C.VAL_OUTPUT_STD: 0.0182, C.VAL_INPUT_GAP: 0.27}
    assert health(report, base)[0] == C.Status.COLLAPSED
    assert health(report | {C.VAL_MSE: 0.05}, base) == ("", "")  # learning: error well below
    assert health(report | {C.VAL_OUTPUT_STD: 0.12}, base) == ("", "")  # outputs vary
    # Measured too: the study's `4L,16F(3X3) pool 2+2 bn 4` at 4,000 images is worse than a
    # constant (0.1347, std 0.069) but learning (0.063 two epochs later): not collapsed.
    assert health(report | {C.VAL_MSE: 0.1347, C.VAL_OUTPUT_STD: 0.069}, base) == ("", "")
    assert health(report, base, steps=5) == ("", "")  # too early to tell
    assert health(report | {C.VAL_MSE: math.nan}, base, steps=5)[0] == C.Status.DIVERGED


def test_a_collapsed_model_stops_at_its_first_report(mnist_small):
    """A sigmoid output pushed to 0 everywhere (the MSE collapse of the study's best denoiser)
    is the all-zero predictor: the trial reports once, says why, and stops."""
    config = ModelConfig(task="mnist", filters=(4,), epochs=3, batch_size=16, lr=1e-6)
    trial = Trial(config, mnist_small, seed=0, report_images=500)  # 31 steps: judged
    output = trial.model.layers[-1]
    kernel, bias = output.get_weights()
    output.set_weights([np.zeros_like(kernel), np.full_like(bias, -30.0)])
    history = list(trial.reports())
    assert len(history) == 1
    assert history[0][C.VERDICT] == C.Status.COLLAPSED
    assert "constant output" in history[0][C.REASON]
    target = np.concatenate([y for _, y in mnist_small.val])
    assert history[0][C.VAL_MSE] == pytest.approx(float(np.mean(target.astype(np.float64) ** 2)),
                                                  rel=1e-3)


@pytest.mark.parametrize("gpus, expected", [(0.5, "false"), (1.0, "false"), (None, None),
                                            (0.0, None)])
def test_configure_backend_lets_jax_trials_share_a_gpu(monkeypatch, gpus, expected):
    """On Keras' JAX backend, a trial given a GPU (or a share of one) turns off XLA's
    preallocation of 75% of the device, as memory growth does on TensorFlow; without a GPU
    nothing is set."""
    import keras

    from search.trial import configure_backend

    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    configure_backend(1.0, gpus)
    assert os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE") == expected


def test_refresh_batchnorm_makes_inference_match_the_batch_statistics():
    """After a refresh on one batch, inference on that batch computes what training mode
    computes on it: the moving statistics are that batch's statistics, whatever they were."""
    from search.models import build_model
    from search.trial import refresh_batchnorm

    config = ModelConfig(task="mnist", filters=(4, 4), batchnorm=2, batch_size=16)
    model = build_model(config, (12, 12))
    x = np.random.default_rng(0).uniform(0, 1, (16, 12, 12, 1)).astype("float32")
    stale = np.asarray(model(x, training=False))
    assert refresh_batchnorm(model, [x]) is True
    fresh = np.asarray(model(x, training=False))
    assert not np.allclose(stale, fresh, atol=1e-4)
    np.testing.assert_allclose(fresh, np.asarray(model(x, training=True)), atol=1e-5)
    assert all(layer.momentum == 0.99 for layer in model.layers if "batch" in layer.name)


def test_refresh_batchnorm_averages_batches_and_skips_models_without_it():
    from search.models import build_model
    from search.trial import refresh_batchnorm

    plain = build_model(ModelConfig(task="mnist", filters=(4,)), (8, 8))
    weights = [w.copy() for w in plain.get_weights()]
    assert refresh_batchnorm(plain, [np.ones((2, 8, 8, 1), "float32")]) is False
    assert all(np.array_equal(a, b) for a, b in zip(weights, plain.get_weights(), strict=True))

    model = build_model(ModelConfig(task="mnist", filters=(3,), batchnorm=1), (8, 8))
    norm = next(layer for layer in model.layers if "batch" in layer.name)
    rng = np.random.default_rng(1)
    a, b = (rng.uniform(0, 1, (4, 8, 8, 1)).astype("float32") for _ in range(2))
    means = []
    for batch in (a, b):
        refresh_batchnorm(model, [batch])
        means.append(np.asarray(norm.moving_mean))
    refresh_batchnorm(model, [a, b])
    np.testing.assert_allclose(np.asarray(norm.moving_mean), (means[0] + means[1]) / 2,
                               rtol=1e-5, atol=1e-6)


def test_a_batchnorm_trial_validates_on_statistics_of_its_current_weights(mnist_small,
                                                                          monkeypatch):
    """Inference-mode validation on lagging moving statistics made batchnorm trials look far
    worse than their weights (and collapsed, in sweeps); the same seeded trial validates
    much better with the statistics refreshed (measured: 0.029 against 0.070)."""
    import search.trial

    config = ModelConfig(task="mnist", filters=(8, 8, 8), batchnorm=3, loss="bce",
                         lr=3e-3, batch_size=32, epochs=1)
    (refreshed,) = list(Trial(config, mnist_small, seed=0).reports())
    monkeypatch.setattr(search.trial, "refresh_batchnorm", lambda model, batches: False)
    (stale,) = list(Trial(config, mnist_small, seed=0).reports())
    assert refreshed[C.TRAIN_MSE] == pytest.approx(stale[C.TRAIN_MSE], rel=1e-4)  # same weights
    assert refreshed[C.VAL_MSE] < 0.6 * stale[C.VAL_MSE]


def test_a_checkpoint_of_images_shows_the_first_validation_outputs(mnist_small, tmp_path):
    """Same-size images: one stack of the first `SHOWN`, the outputs those the validation
    computed, equal to predicting them again."""
    from search.trial import SHOWN

    config = ModelConfig(task="mnist", filters=(4,), epochs=1, batch_size=64, loss="bce")
    trial = Trial(config, mnist_small, seed=1, report_images=500)
    next(trial.reports())
    trial.save(tmp_path)
    sheet = np.load(tmp_path / C.RECONSTRUCTIONS_FILE)
    x, y = mnist_small.val[0]
    np.testing.assert_array_equal(sheet["inputs"], x[:SHOWN])
    np.testing.assert_array_equal(sheet["targets"], y[:SHOWN])
    again = np.asarray(trial.model.predict_on_batch(x[:SHOWN]))
    np.testing.assert_allclose(sheet["outputs"], again, atol=1e-6)
