"""search/precision.py: which precision a trial trains in, and models built in it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from search import precision
from search.data import DataOptions, load_task
from search.models import build_model, load_model
from search.options import InputError
from search.sweep import SweepSettings, prepare
from search.trial import Trial
from spaces import constants as C
from spaces.notation import parse_row

AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
NO_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"


@pytest.mark.parametrize("text, expected", [(AMX, True), (NO_AMX, False), ("", False)])
def test_the_cpu_is_judged_by_its_amx_flag(tmp_path, text, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert precision.cpu_has_bf16(cpuinfo) is expected


def test_an_unreadable_cpuinfo_means_no_bf16(tmp_path):
    assert precision.cpu_has_bf16(tmp_path / "missing") is False


@pytest.mark.parametrize("native, expected", [(True, "mixed_bfloat16"), (False, "float32")])
def test_auto_follows_the_cpu_for_a_cpu_trial(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)
    assert precision.resolve("auto") == expected
    assert precision.resolve("auto", gpus=0.0) == expected


def test_auto_keeps_float32_on_gpus(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.resolve("auto", gpus=0.5) == "float32"


def test_an_explicit_precision_is_kept_and_an_unknown_one_refused(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.resolve("float32") == "float32"
    assert precision.resolve("mixed_bfloat16", gpus=1) == "mixed_bfloat16"
    with pytest.raises(ValueError, match="precision must be one of auto, float32"):
        precision.resolve("bf16")


def test_the_console_says_what_auto_means_here(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.describe("auto") == "auto: mixed_bfloat16 (this CPU has AMX)"
    assert precision.describe("auto", gpus=0.5) == "auto: float32 (on GPUs)"
    assert precision.describe("float32", gpus=1) == "float32"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.describe("auto") == "auto: float32 (this CPU has no AMX)"


@pytest.mark.parametrize("notation, pool, task, shape", [
    ("4L,32,32,64,128F(3X3)", "0", "mnist", (28, 28)),
    ("6L,8,8,8F(3X3)", "2+2", "text", (30, 34)),
])
def test_a_bf16_model_computes_in_bf16_and_outputs_float32(notation, pool, task, shape):
    config = parse_row(notation, pool).replace(task=task)
    before = keras.config.dtype_policy().name
    plain = build_model(config, shape, compile=False)
    mixed = build_model(config, shape, compile=False, precision="mixed_bfloat16")
    assert keras.config.dtype_policy().name == before  # the global policy is restored
    assert mixed.count_params() == plain.count_params()
    assert all(w.dtype == "float32" for w in mixed.weights)  # weights stay float32
    assert [layer.compute_dtype for layer in mixed.layers if "conv" in layer.name][0] == "bfloat16"
    assert all(layer.compute_dtype == "float32" for layer in plain.layers)
    x = np.random.default_rng(0).uniform(size=(2, *shape, 1)).astype("float32")
    y = keras.ops.convert_to_numpy(mixed(x))
    assert y.dtype == np.float32 and y.shape == x.shape


def test_a_dense_bf16_model_outputs_float32():
    config = parse_row("3L(8, 4, 784)", dropout="1 (p=0.2)", batchnorm=1)
    model = build_model(config, (28, 28), compile=False, precision="mixed_bfloat16")
    assert model.layers[-1].compute_dtype == "float32"
    x = np.zeros((1, 28, 28, 1), "float32")
    assert keras.ops.convert_to_numpy(model(x)).dtype == np.float32


def test_a_bf16_trial_reports_its_precision_and_resumes_in_it(data_dir, tmp_path):
    data = load_task("mnist", DataOptions(data_dir=data_dir, subset=64, val_subset=16))
    config = parse_row("2L,4F(3X3)").replace(task="mnist", epochs=2, batch_size=32)
    trial = Trial(config, data, precision="mixed_bfloat16", report_images=64)
    first = next(trial.reports())
    assert first[C.PRECISION] == "mixed_bfloat16"
    assert np.isfinite(first[C.VAL_MSE])
    trial.save(tmp_path, first)
    resumed = Trial.resume(tmp_path, config, data)
    assert resumed.precision == "mixed_bfloat16"
    assert load_model(tmp_path / C.MODEL_FILE).layers[-1].compute_dtype == "float32"
    assert Trial(config, data).precision == "float32"  # the library's default


def test_a_sweep_refuses_an_unknown_precision():
    with pytest.raises(InputError, match="--precision must be one of auto, float32, mixed_bfl"):
        prepare(SweepSettings(task="mnist", precision="half"))
