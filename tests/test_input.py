"""Bad input, for real: exit 2, one line naming the flag, field or file, nothing written or run.

Every refusal here happens before Ray starts and before any data is read (the fixture fails the
test otherwise), so these tests are fast. Also: the name lock, the export that only replaces
its own best/, atomic writes under a crash, and the flag fuzzer.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import refused
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import search.launch
import search.single
from results.render import atomic_write_text
from search.cli import main
from search.cluster import unplaceable
from search.launch import Outcome
from search.lock import NameLock
from spaces import constants as C
from spaces.config import ModelConfig

pytestmark = pytest.mark.usefixtures("nothing_runs")


def files_under(path: Path) -> list[Path]:
    return sorted(path.rglob("*")) if path.exists() else []


SINGLE = ["--task", "mnist", "--config", "2L,8F(3X3)"]


@pytest.mark.parametrize(("argv", "needle"), [
    # numbers out of range
    (SINGLE + ["--epochs", "0"], "--epochs must be at least 1 and at most 100000, got 0"),
    (SINGLE + ["--epochs", "-3"], "--epochs must be at least 1"),
    (SINGLE + ["--batch-size", "0"], "--batch-size must be at least 1"),
    (SINGLE + ["--lr", "0"], "--lr must be more than 0"),
    (SINGLE + ["--lr", "nan"], "--lr must be a finite number"),
    (SINGLE + ["--max-params", "0"], "--max-params must be at least 1"),
    (SINGLE + ["--max-activation-mb", "nan"], "--max-activation-mb must be a finite number"),
    (SINGLE + ["--max-activation-mb", "inf"], "--max-activation-mb must be a finite number"),
    (SINGLE + ["--max-activation-mb", "-1"], "--max-activation-mb must be more than 0"),
    (SINGLE + ["--seed", "-1"], "--seed must be at least 0"),
    (SINGLE + ["--seed", str(2**40)], "--seed must be at least 0 and at most 2147483647"),
    (SINGLE + ["--subset", "0"], "--subset must be at least 1"),
    (SINGLE + ["--cpus-per-trial", "nan"], "--cpus-per-trial must be a finite number"),
    (SINGLE + ["--cpus-per-trial", "10000"], "--cpus-per-trial 10000: this machine has"),
    (["--task", "mnist", "--max-epochs", "0"], "--max-epochs must be at least 1"),
    (["--task", "mnist", "--budget-epochs", "nan"], "--budget-epochs must be a finite number"),
    (["--task", "mnist", "--budget-epochs", "-2"], "--budget-epochs must be more than 0"),
    (["--task", "mnist", "--time-budget", "9" * 400 + "h"], "--time-budget must be a finite"),
    (["--task", "mnist", "--gpus-per-trial", "inf"], "--gpus-per-trial must be a finite"),
    (["--task", "mnist", "--gpus-per-trial", "-1"], "--gpus-per-trial must be at least 0"),
    (["--task", "mnist", "--gpus-per-trial", "1.5"], "above 1 must be a whole number"),
    (["--task", "mnist", "--report-images", "0"], "--report-images must be at least 1"),
    (["--task", "mnist-denoise", "--noise", "nan"], "--noise must be a finite number"),
    (["--task", "mnist-denoise", "--noise", "0"], "--noise must be more than 0"),
    (["--task", "text", "--val-fraction", "1"], "--val-fraction must be less than 1"),
    (["--task", "text", "--val-fraction", "0"], "--val-fraction must be more than 0"),
    (["--task", "text", "--patches-per-page", "0"], "--patches-per-page must be at least 1"),
    (["--task", "text", "--resize", "0x540"], "--resize sides must be between 1 and"),
    (["--task", "text", "--resize", "99999x540"], "--resize sides must be between 1 and"),
    (["--task", "text", "--resize", "64x64", "--patch-size", "96"],
     "--patch-size 96 is larger than the 64x64 pages of --resize"),
    # empty values
    (["--task", "mnist", "--config", ""], "--config is empty"),
    (["--task", "mnist", "--config", "  "], "--config is empty"),
    (["--task", "mnist", "--storage", ""], "--storage is empty"),
    (["--task", "mnist", "--address", ""], "--address is empty"),
    (["--task", "mnist", "--data-dir", ""], "--data-dir is empty"),
    (["--task", "mnist", "--space", "report", "--rows", ","], "--rows is empty"),
    # flags of another task
    (["--task", "mnist", "--noise", "0.3"], "--noise is for --task mnist-denoise only"),
    (["--task", "mnist-denoise", "--patch-size", "16"], "--patch-size is for --task text only"),
    (["--task", "mnist", "--resize", "28x28"], "--resize is for --task text only"),
    (["--task", "mnist", "--test-fraction", "0.2"], "--test-fraction is for --task text only"),
    (["--task", "text", "--val-fraction", "0.5", "--test-fraction", "0.5"],
     "--val-fraction 0.5 and --test-fraction 0.5 leave no pages to train on"),
    (["--task", "mnist", "--repeats", "2"], "--repeats sets the finalists stage: add --refit"),
    (["--task", "mnist", "--refit", "--repeats", "0"],
     "--repeats must be at least 1 and at most 100, got 0"),
    (["--task", "mnist", "--refit", "--top-k", "101"], "--top-k must be at least 1 and at most"),
    # flags of the other mode
    (["--task", "mnist", "--lr", "0.01"], "--lr sets the one configuration of --config"),
    (["--task", "mnist", "--pool", "1+1"], "--pool sets the one configuration of --config"),
    (["--task", "mnist", "--epochs", "3"], "--epochs sets the one configuration"),
    (SINGLE + ["--num-samples", "5"], "--num-samples is for sweeps"),
    (SINGLE + ["--address", "local"], "--address is for sweeps"),
    (SINGLE + ["--resume"], "--resume is for sweeps"),
    (SINGLE + ["--space", "report"], "--space is for sweeps"),
    (SINGLE + ["--epochs", "2", "--max-epochs", "3"], "--epochs 2 and --max-epochs 3 disagree"),
    (["--task", "mnist", "--config", "mnist/1.2/2", "--pool", "1+1"],
     "--pool is part of the study's notation; the study row mnist/1.2/2"),
    (["--task", "mnist", "--scheduler", "fifo", "--grace-period", "2"], "--grace-period is ASHA"),
    (["--task", "mnist", "--time-budget", "5m", "--grace-period", "2"],
     "--grace-period counts reports; with --time-budget"),
    (["--task", "mnist", "--space", "report", "--warm-start", "report"],
     "--warm-start seeds Optuna"),
    # configs the image size rules out, refused before the data is read
    (["--task", "text", "--config", "2L,8F(31X31)", "--resize", "20x20"],
     "kernel 31 is larger than the 20x20 images"),
    (["--task", "text", "--config", "2L,8F(9X9)", "--patch-size", "8"],
     "kernel 9 is larger than the 8-pixel patches of --patch-size"),
    (["--task", "text", "--config", "3L(64, 64, 226800)"], "needs one fixed image size"),
    (["--task", "mnist", "--config", "3L(64, 64, 100)"], "must be 28*28=784"),
    # names that are not one plain folder
    (["--task", "mnist", "--name", ".."], "--name '..' is not a plain name"),
    (["--task", "mnist", "--name", "/tmp/elsewhere"], "is not a plain name"),
    (["--task", "mnist", "--name", "a/b"], "is not a plain name"),
    (["--task", "mnist", "--name", ""], "is not a plain name"),
    (SINGLE + ["--name", "../up"], "is not a plain name"),
    # addresses
    (["--task", "mnist", "--address", "nowhere"], "expected local, auto or host:port"),
    (["--task", "mnist", "--address", "host:99999"], "expected local, auto or host:port"),
])
def test_bad_input_is_refused_naming_the_flag(argv, needle, tmp_path, capsys):
    storage = tmp_path / "runs"
    if "--storage" not in argv:
        argv = [*argv, "--storage", str(storage)]
    err = refused(argv, capsys)
    assert needle in err
    assert files_under(tmp_path) == []  # nothing written, not even the storage folder


def test_argparse_errors_are_one_line_too(capsys):
    err = refused(["--task", "mnist", "--epochs", "two"], capsys)
    assert "--epochs" in err and "'two'" in err


def test_a_missing_data_dir_is_named_before_anything_is_read(tmp_path, capsys):
    err = refused(["--task", "mnist", "--data-dir", str(tmp_path / "nope"),
                   "--storage", str(tmp_path / "runs")], capsys)
    assert "--data-dir" in err and "nope" in err


def test_config_json_with_booleans_or_fractions_names_file_and_field(tmp_path, capsys):
    for field, value in (("epochs", True), ("kernel", 2.5), ("batch_size", "64")):
        path = tmp_path / f"bad-{field}.json"
        path.write_text(json.dumps({"filters": [8], field: value}))
        err = refused(["--task", "mnist", "--config", str(path),
                       "--storage", str(tmp_path / "runs")], capsys)
        assert path.name in err and field in err


def test_a_config_file_that_is_a_folder_or_huge_is_named(tmp_path, capsys):
    (tmp_path / "dir.json").mkdir()
    assert "dir.json" in refused(["--task", "mnist", "--config", str(tmp_path / "dir.json")],
                                 capsys)
    huge = tmp_path / "huge.json"
    huge.write_text(" " * (2 << 20) + "{}")
    err = refused(["--task", "mnist", "--config", str(huge)], capsys)
    assert "huge.json" in err and "bytes is no config" in err


# --- storage ----------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [True, False], ids=["single", "sweep"])
def test_storage_that_is_a_file_is_refused_before_anything_runs(config, tmp_path, capsys):
    storage = tmp_path / "file"
    storage.write_text("mine")
    for where in (storage, storage / "below"):
        argv = (SINGLE if config else ["--task", "mnist"]) + ["--storage", str(where)]
        err = refused(argv, capsys)
        assert f"--storage {where}" in err and "is a file, not a folder" in err
    assert storage.read_text() == "mine"


def test_unwritable_storage_is_refused_before_training(tmp_path, capsys):
    # procfs creates no file for anyone, root included: unwritable on every Linux host
    err = refused(SINGLE + ["--storage", "/proc/runs"], capsys)
    assert "--storage /proc/runs: cannot write in /proc" in err


def _a_sweep(storage: Path, name: str) -> Path:
    sweep = storage / name
    (sweep / C.BEST_DIR).mkdir(parents=True)
    (sweep / C.SWEEP_FILE).write_text(json.dumps({"task": "mnist"}))
    (sweep / C.BEST_DIR / C.MODEL_FILE).write_text("the sweep's model")
    return sweep


def test_a_single_run_never_replaces_a_sweeps_best(tmp_path, capsys):
    sweep = _a_sweep(tmp_path, "mnist-default")
    before = {p: p.read_bytes() for p in files_under(tmp_path) if p.is_file()}
    err = refused(SINGLE + ["--storage", str(tmp_path), "--name", "mnist-default"], capsys)
    assert "--name mnist-default is a sweep's" in err and "another --name" in err
    assert {p: p.read_bytes() for p in files_under(tmp_path) if p.is_file()} == before
    assert (sweep / C.BEST_DIR / C.MODEL_FILE).read_text() == "the sweep's model"


@pytest.mark.parametrize("config", [True, False], ids=["single", "sweep"])
def test_a_best_folder_with_foreign_files_is_refused_before_training(config, tmp_path, capsys):
    best = tmp_path / "mine" / C.BEST_DIR
    best.mkdir(parents=True)
    (best / "thesis.tex").write_text("years of work")
    argv = (SINGLE if config else ["--task", "mnist"]) + ["--storage", str(tmp_path),
                                                         "--name", "mine"]
    err = refused(argv, capsys)
    assert "holds files this project did not write (thesis.tex)" in err
    assert (best / "thesis.tex").read_text() == "years of work"


# --- the name lock ----------------------------------------------------------------------------
@pytest.mark.parametrize("config", [True, False], ids=["single", "sweep"])
def test_two_drivers_on_one_name_are_refused(config, tmp_path, capsys, monkeypatch):
    ran: list[tuple[object, ...]] = []

    def train_single(*args: object, **kwargs: object) -> int:
        ran.append(args)
        return 0

    monkeypatch.setattr(search.single, "train_single", train_single)
    folder = tmp_path / "busy"
    argv = (SINGLE if config else ["--task", "mnist"]) + ["--storage", str(tmp_path),
                                                         "--name", "busy"]
    with NameLock(folder, "busy"):  # another driver, as far as flock can tell
        err = refused(argv, capsys)
    assert f"--name busy: another driver (pid {os.getpid()}) is running on it" in err
    assert not folder.exists()  # released: the folder the lock made went with it
    if config:
        assert main(argv) == 0 and len(ran) == 1


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from search.lock import NameLock; "
            "NameLock(Path(sys.argv[1]), 'x').__enter__(); print('held', flush=True); "
            "import os; os._exit(0)")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep").write_text("")  # so the folder outlives the dead driver
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert "held" in out.stdout, out.stderr
    with NameLock(tmp_path / "x", "x"):  # the dead driver's lock is gone
        pass


# --- Ray --------------------------------------------------------------------------------------
def test_an_address_where_no_ray_listens_fails_fast_naming_it(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    began = time.monotonic()
    err = refused(["--task", "mnist", "--address", f"127.0.0.1:{port}",
                   "--storage", str(tmp_path / "runs")], capsys)
    assert time.monotonic() - began < 30
    assert f"--address 127.0.0.1:{port}: no Ray cluster reachable there" in err
    assert files_under(tmp_path) == []


def test_ray_address_from_the_environment_is_checked_too(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    err = refused(["--task", "mnist", "--storage", str(tmp_path)], capsys)
    assert "$RAY_ADDRESS 127.0.0.1:1" in err


def test_unplaceable_trials_are_named():
    nodes = [{"Alive": True, "Resources": {"CPU": 2.0}},
             {"Alive": True, "Resources": {"CPU": 4.0}},
             {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]
    assert unplaceable(nodes, 4, 0) is None
    assert unplaceable(nodes, 5, 0) == "--cpus-per-trial 5: no node has 5 CPUs (the most is 4)"
    assert unplaceable(nodes, 1, 0.5) == ("--gpus-per-trial 0.5: no node has 0.5 GPU(s) "
                                          "(the most is 0)")
    two = [{"Resources": {"CPU": 8.0}}, {"Resources": {"CPU": 1.0, "GPU": 1.0}}]
    assert unplaceable(two, 2, 1) == ("--cpus-per-trial 2: no node has 2 CPUs and 1 GPU(s) "
                                      "(the most is 8)")



# --- atomic writes ----------------------------------------------------------------------------
def _export(best: Path, tmp_path: Path) -> None:
    from search.data.base import TaskData
    from search.export import write_best
    from search.models import build_model

    config = ModelConfig(filters=(2,), epochs=1)
    model = build_model(config, (28, 28))
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir(exist_ok=True)
    model.save(checkpoint / C.MODEL_FILE)
    (checkpoint / C.CONFIG_FILE).write_text(config.to_json())
    (checkpoint / C.NOTATION_FILE).write_text("1L,2F(3X3)\n")
    import numpy as np

    x = np.zeros((2, 28, 28, 1), np.float32)
    data = TaskData(task="mnist", train=((x, x),), val=((x, x),))
    write_best(checkpoint, model, data, {C.VAL_MSE: 0.5}, best)


def test_export_replaces_its_own_best_and_survives_a_crash_mid_swap(tmp_path, monkeypatch):
    best = tmp_path / "sweep" / C.BEST_DIR
    _export(best, tmp_path)
    before = {p.name: p.read_bytes() for p in best.iterdir()}
    assert set(before) == {C.MODEL_FILE, C.CONFIG_FILE, C.NOTATION_FILE, C.METRICS_FILE,
                           C.RECONSTRUCTIONS_FILE}
    real_rename = os.rename

    def crash_on_the_new_one(src, dst):
        if Path(dst) == best and ".best-new-" in str(src):
            raise OSError("disk gone")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_the_new_one)
    with pytest.raises(OSError, match="disk gone"):
        _export(best, tmp_path)
    assert {p.name: p.read_bytes() for p in best.iterdir()} == before  # the old one, whole
    assert sorted(p.name for p in best.parent.iterdir()) == [C.BEST_DIR]  # no leftovers
    monkeypatch.setattr(os, "rename", real_rename)
    _export(best, tmp_path)  # and a later export replaces it
    assert sorted(p.name for p in best.parent.iterdir()) == [C.BEST_DIR]


def test_export_never_deletes_a_best_it_did_not_write(tmp_path):
    from search.export import ExportError

    best = tmp_path / C.BEST_DIR
    best.mkdir()
    (best / C.MODEL_FILE).write_text("not ours")
    (best / "notes.txt").write_text("the user's")
    with pytest.raises(ExportError, match="did not write"):
        _export(best, tmp_path)
    assert (best / "notes.txt").read_text() == "the user's"
    assert (best / C.MODEL_FILE).read_text() == "not ours"
    assert not list(tmp_path.glob(".best-*"))


def test_a_crash_mid_write_leaves_the_old_file(tmp_path, monkeypatch):
    """sweep.json, the leaderboard, trial statuses and the tables all go through
    atomic_write_text; the plots through their own rename."""
    path = tmp_path / C.SWEEP_FILE
    atomic_write_text(path, '{"old": true}')

    def crash(src, dst):
        raise OSError("killed mid-write")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_text(path, '{"new": tr')
    assert path.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == [C.SWEEP_FILE]


def test_a_crash_mid_plot_leaves_the_old_picture(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from results.plots import _save

    path = tmp_path / "curves.png"
    path.write_bytes(b"old picture")

    def crash(src, dst):
        raise OSError("killed mid-write")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        _save(Figure(), path)
    assert path.read_bytes() == b"old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


# --- fuzzing the flags ------------------------------------------------------------------------
NUMBERS = st.one_of(
    st.integers(-3, 70).map(str), st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e999",
                                                   "0.5", "1.5", "2147483648", "", " ", "x",
                                                   "1e-3", "3+3", "2 (p=0.2)", "1_0"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=6),
)
FLAGS = ["--num-samples", "--max-epochs", "--grace-period", "--report-images",
         "--budget-epochs", "--time-budget", "--checkpoint-every", "--seed", "--max-params",
         "--max-activation-mb", "--cpus-per-trial", "--gpus-per-trial", "--max-concurrent",
         "--subset", "--val-subset", "--noise", "--val-fraction", "--patch-size",
         "--patches-per-page", "--resize", "--pool", "--dropout", "--batchnorm", "--lr",
         "--batch-size", "--epochs", "--rows", "--name", "--address", "--space", "--search",
         "--scheduler", "--warm-start", "--loss", "--optimizer"]
WORDS = st.sampled_from(["report", "default", "study-axes", "optuna", "grid", "random", "asha",
                         "fifo", "mse", "bce", "adam", "sgd", "local", "127.0.0.1:1", "..",
                         "a/b", "ok-name", "mnist/1.2/2,mnist/1.2/3", "28x28", "420x540",
                         "0x5", "64x64"])
CONFIGS = st.one_of(st.none(), st.sampled_from(
    ["2L,8F(3X3)", "4L,8,16F(5X5)", "3L(64, 64, 784)", "mnist/1.2/2", "text/3.3/5", "",
     "6L,16F(3X3)", "2L,8F(29X29)", "1L,1F(1X1)", "99L,8F(3X3)", "2L,0F(3X3)"]),
    st.text(max_size=12))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                               HealthCheck.function_scoped_fixture])
@given(task=st.sampled_from(["mnist", "mnist-denoise", "text"]), config=CONFIGS,
       flags=st.dictionaries(st.sampled_from(FLAGS), st.one_of(NUMBERS, WORDS), max_size=4),
       switches=st.sets(st.sampled_from(["--resume", "--refit"]), max_size=1))
def test_any_flag_values_give_a_runnable_plan_or_one_line_exit_2(task, config, flags,
                                                                 switches):
    import contextlib
    import io
    import tempfile

    from search.models import build_model
    from spaces.guard import footprint

    plans: list = []

    def train_single(args: Any, cfg: Any, best: Any, **kwargs: Any) -> int:
        plans.append(("single", args, cfg, best))
        return 0

    def run_prepared(args: Any, settings: Any, patches: Any = None) -> Outcome:
        plans.append(("sweep", args, settings, None))
        return Outcome(settings.experiment_dir, finished=True)

    patch = pytest.MonkeyPatch()
    patch.setattr(search.single, "train_single", train_single)
    patch.setattr(search.launch, "run_prepared", run_prepared)
    argv = ["--task", task, *([] if config is None else ["--config", config])]
    for name, value in flags.items():
        argv += [f"{name}={value}"]
    argv += sorted(switches)
    err = io.StringIO()
    try:
        with tempfile.TemporaryDirectory() as storage, contextlib.redirect_stderr(err):
            argv += ["--storage", storage]
            try:
                code: int | str | None = main(argv)
            except SystemExit as exc:
                code = exc.code
    finally:
        patch.undo()
    event(f"exit {code}")
    if code == 0:
        assert len(plans) == 1
        mode, args, what, _ = plans[0]
        if mode == "single":
            assert ModelConfig.from_json(what.to_json()) == what
            shape = search.single.guard_shape(args)
            footprint(what, shape)
            if what.family == "conv" and len(what.filters) <= 8 and max(what.filters) <= 64:
                build_model(what, shape, compile=False)  # builds (small ones: time)
        else:
            from search.sweep import _sweep_meta

            what.trainable_settings()
            json.dumps(_sweep_meta(what))
    else:
        assert code == 2, (argv, code)
        text = err.getvalue()
        assert text.startswith("error: ") and text.count("\n") == 1, (argv, text)
