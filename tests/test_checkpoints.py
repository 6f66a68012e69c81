"""search/checkpoints.py: which ended trials lose their checkpoints, and that a pruned sweep
still resumes and exports."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import REPO
from pyarrow import fs as pafs

from search.checkpoints import PRUNED_FILE, Finalists, prune, pruned_result, rank_key
from spaces import constants as C


def _result(val: float, params: int = 1000, /, **extra: Any) -> dict[str, Any]:
    return {C.VAL_MSE: val, C.PARAMS: params, **extra}


def test_the_k_best_keep_their_checkpoints_and_the_rest_go_as_they_end():
    finalists = Finalists(keep=2)
    assert finalists.ended("a", _result(0.05)) == []
    assert finalists.ended("b", _result(0.03)) == []
    assert finalists.ended("c", _result(0.09)) == ["c"]  # worse than both kept
    assert finalists.ended("d", _result(0.01)) == ["a"]  # pushes the second best out
    assert [k[2] for k in finalists.ranked] == ["d", "b"]
    assert finalists.ended("d", _result(0.01)) == []  # told again: nothing changes


def test_trials_that_never_rank_lose_theirs_at_once_and_zero_keeps_all():
    finalists = Finalists(keep=3)
    assert finalists.ended("x", _result(0.01, **{C.VERDICT: C.Status.COLLAPSED})) == ["x"]
    assert finalists.ended("y", _result(math.nan)) == ["y"]
    assert finalists.ended("z", {}) == ["z"]
    assert finalists.ranked == []
    keep_all = Finalists(keep=0)
    assert keep_all.ended("x", _result(0.5, **{C.VERDICT: C.Status.DIVERGED})) == []


def test_the_leaderboards_order_breaks_ties_and_a_tie_with_the_last_kept_stays():
    # val_mse, then fewer parameters, then trial id: the leaderboard's order.
    fewer, more = rank_key(_result(0.02, 500), "b"), rank_key(_result(0.02, 900), "a")
    assert fewer is not None and more is not None and fewer < more
    finalists = Finalists(keep=1)
    finalists.ended("a", _result(0.02, 900))
    assert finalists.ended("b", _result(0.02, 500)) == []  # tied on val_mse: both may be best
    assert finalists.ended("c", _result(0.03)) == ["c"]


def _ray_trial(trial_dir, last_result):
    storage = SimpleNamespace(storage_filesystem=pafs.LocalFileSystem(),
                              trial_fs_path=str(trial_dir))
    return SimpleNamespace(storage=storage, path=str(trial_dir), last_result=last_result,
                           trial_id="t1", status=C.Status.TERMINATED)


def test_prune_removes_checkpoint_folders_and_leaves_the_last_result(tmp_path):
    trial_dir = tmp_path / "trial_t1"
    for name in ("checkpoint_000000", "checkpoint_000001"):
        (trial_dir / name).mkdir(parents=True)
        (trial_dir / name / C.MODEL_FILE).write_bytes(b"x" * 100)
    (trial_dir / C.RESULT_FILE).write_text("{}\n")
    last = _result(0.04, **{C.EPOCH: 1.0})
    trial = _ray_trial(trial_dir, last)
    assert pruned_result(trial.storage) is None
    assert prune(trial) == 2
    assert sorted(p.name for p in trial_dir.iterdir()) == [PRUNED_FILE, C.RESULT_FILE]
    assert pruned_result(trial.storage) == last


def test_prune_of_a_trial_whose_folder_storage_has_not_made_yet_leaves_its_result(tmp_path):
    # ASHA stopped it at its first report: no checkpoint, and no folder on the storage yet.
    trial = _ray_trial(tmp_path / "trial_t1", _result(0.2))
    assert prune(trial) == 0
    assert pruned_result(trial.storage) == _result(0.2)


SMALL = ["--subset", "64", "--val-subset", "64"]


@pytest.mark.slow
def test_a_pruned_sweep_killed_mid_way_resumes_without_retraining_and_exports(tmp_path,
                                                                              data_dir):
    """Killed as soon as a trial's checkpoints were pruned (Ray's experiment state may not
    have recorded its end yet), resumed, then exported from its files."""
    args = ["--task", "mnist", "--space", "study-axes", "--search", "random",
            "--scheduler", "fifo", "--num-samples", "5", "--max-epochs", "1",
            "--max-params", "20000", "--max-concurrent", "1", "--keep-checkpoints", "1",
            "--storage", str(tmp_path), "--name", "pruned", *SMALL]
    env = {**os.environ, "SEARCH_DATA_DIR": str(data_dir)}
    run = [sys.executable, str(REPO / "search" / "run.py"), *args]
    proc = subprocess.Popen(run, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    sweep = tmp_path / "pruned"
    try:
        deadline = time.monotonic() + 400
        while not list(sweep.glob(f"trial_*/{PRUNED_FILE}")):
            if proc.poll() is not None:
                pytest.fail("the sweep ended before any trial was pruned")
            if time.monotonic() > deadline:
                pytest.fail("no trial was pruned within 400 s")
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, no more
            proc.wait()
    pruned_before = {p.parent.name: json.loads(p.read_text())
                     for p in sweep.glob(f"trial_*/{PRUNED_FILE}")}

    resumed = subprocess.run([*run, "--resume"], env=env, capture_output=True, text=True,
                             timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for trial_dir, last in pruned_before.items():
        # Never trained again: every report is the one run's (a rerun of a pruned trial
        # repeats its last result, started_at included).
        rows = _rows(sweep / trial_dir)
        assert rows and {r[C.STARTED_AT] for r in rows} == {last[C.STARTED_AT]}, rows
        assert rows[-1][C.VAL_MSE] == last[C.VAL_MSE]
    statuses = json.loads((sweep / C.STATUS_FILE).read_text())
    assert len(statuses) == 5 and all(s in C.ENDED for s in statuses.values()), statuses
    # Of the sweep's trials, only the best keeps its checkpoints. (A trial the kill caught
    # before Ray's state recorded it at all is not the sweep's: the resumed Ray never heard of
    # it, and its folder stays as it was.)
    with_checkpoints = {p.parent.parent.name.removeprefix("trial_")
                        for p in sweep.glob(f"trial_*/checkpoint_*/{C.MODEL_FILE}")}
    board = (sweep / C.LEADERBOARD_FILE).read_text().splitlines()
    assert (sweep / C.BEST_DIR / C.MODEL_FILE).is_file()
    best_id = json.loads((sweep / C.BEST_DIR / C.METRICS_FILE).read_text())[C.TRIAL_ID]
    assert with_checkpoints & set(statuses) == {best_id}, (with_checkpoints, board[:3])

    # Exported again from the files alone: the same trial.
    (sweep / C.BEST_DIR / C.MODEL_FILE).unlink()
    export = subprocess.run([sys.executable, "-m", "search.export", str(sweep)], cwd=REPO,
                            env={**env, "PYTHONPATH": str(REPO)}, capture_output=True,
                            text=True, timeout=300)
    assert export.returncode == 0, export.stderr[-3000:]
    assert json.loads((sweep / C.BEST_DIR / C.METRICS_FILE).read_text())[C.TRIAL_ID] == best_id


def _rows(trial_dir):
    return [json.loads(line) for line in
            (trial_dir / C.RESULT_FILE).read_text().splitlines() if line.strip()]
