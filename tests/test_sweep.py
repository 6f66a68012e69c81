"""Small real sweeps through the entry point: grid replay, Optuna + ASHA, resume after SIGKILL.

Each sweep runs `search/run.py` in a subprocess with `--address local`, so it starts (and, on
exit, stops) its own Ray instance and can never join a stray cluster. The process group each test
starts is the only thing it kills.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from results.leaderboard import LEADERBOARD_COLUMNS, succeeded
from results.render import read_csv
from search import internals
from search.searchers import SEARCHERS
from spaces import constants as C

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--subset", "300", "--val-subset", "200", "--address", "local", "--seed", "1"]


def run_cli(args: list[str], data_dir: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEARCH_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(REPO / "search" / "run.py"), *args],
                          env=env, capture_output=True, text=True, timeout=600, **kwargs)


def board(sweep_dir: Path) -> pd.DataFrame:
    return read_csv(sweep_dir / C.LEADERBOARD_FILE)


@pytest.mark.slow
def test_grid_replays_study_rows_and_a_refused_row_fails_alone(tmp_path, data_dir):
    rows = "mnist/1.2/2,mnist/1.2/3,mnist/1.3/5"  # 1.3/5 is far over the parameter limit
    proc = run_cli(["--task", "mnist", "--space", "report", "--rows", rows, "--max-epochs", "1",
                    "--storage", str(tmp_path), "--name", "grid", *SMALL], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lb = board(tmp_path / "grid")
    assert list(lb.columns) == list(LEADERBOARD_COLUMNS)
    assert sorted(lb["report_model"]) == sorted(rows.split(","))
    assert lb["rank"].tolist() == [1, 2, 3]
    done = lb[lb["status"] == C.Status.TERMINATED]
    assert sorted(done["report_model"]) == ["mnist/1.2/2", "mnist/1.2/3"]
    assert done["val_mse"].is_monotonic_increasing
    assert (done["notation"].str.startswith("6L,16F(3X3)")).all()
    assert (done["report_val"] > 0).all()
    refused = lb[lb["report_model"] == "mnist/1.3/5"].iloc[0]
    assert refused["status"] == C.Status.REFUSED and refused["rank"] == 3
    assert "--max-params" in refused["reason"]
    assert "--max-params" in (proc.stdout + proc.stderr)
    best = tmp_path / "grid" / C.BEST_DIR
    assert (best / C.MODEL_FILE).is_file()
    assert json.loads((best / C.METRICS_FILE).read_text())[C.VAL_MSE] == pytest.approx(
        done["val_mse"].min())

    # `python -m results` rebuilds the same leaderboard from the files, and the study's tables
    live = lb.copy()
    report = subprocess.run([sys.executable, "-m", "results", str(tmp_path / "grid")],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert report.returncode == 0, report.stderr[-3000:]
    rebuilt = board(tmp_path / "grid")
    pd.testing.assert_frame_equal(rebuilt[["rank", "trial_id", "status", "val_mse"]],
                                  live[["rank", "trial_id", "status", "val_mse"]])
    table = pd.read_csv(tmp_path / "grid" / "tables" / "comparison-conv.csv", dtype=str)
    assert sorted(table.loc[table["Source"] == "ours", "Trial"]) == sorted(done["trial_id"])
    by_trial = table.set_index("Trial")
    replay = done.set_index("report_model").loc["mnist/1.2/2"]
    assert by_trial.loc[replay["trial_id"], "Model"].startswith("1.2/2")
    assert by_trial.loc["mnist/1.2/2", "Mean_squared_error Train/Validation"] == "0.0586/ 0.0583"
    assert by_trial.loc[done.iloc[0]["trial_id"], "Model"].endswith("**")  # best, marked
    assert table["Model"].str.endswith("**").sum() == 1
    assert "1 trial(s) failed" in report.stdout
    for plot in ("curves", "progress", "pareto", "reconstructions"):
        assert (tmp_path / "grid" / "plots" / f"{plot}.png").stat().st_size > 1000


@pytest.mark.slow
def test_optuna_asha_sweep_writes_a_ranked_leaderboard(tmp_path, data_dir):
    proc = run_cli(["--task", "mnist-denoise", "--space", "study-axes", "--num-samples", "5",
                    "--max-epochs", "2", "--max-params", "20000", "--max-concurrent", "2",
                    "--storage", str(tmp_path), "--name", "tpe", *SMALL], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "tpe"
    lb = board(sweep)
    assert len(lb) == 5 and set(lb["trial_id"]) == set(json.loads(
        (sweep / C.STATUS_FILE).read_text()))
    finished = succeeded(lb)  # collapsed trials keep their val_mse but rank after these
    assert finished["val_mse"].is_monotonic_increasing
    assert finished["rank"].tolist() == list(range(1, len(finished) + 1))
    assert (lb["params"].dropna() <= 20000).all()
    assert set(lb["epochs"]) <= {1, 2}
    assert lb["node"].notna().all()
    meta = json.loads((sweep / C.SWEEP_FILE).read_text())
    assert meta["finished"] and meta["search"] == "tpe" and meta["scheduler"] == "asha"
    # The console: one line per ended trial, numbered against the fixed total, progress lines,
    # a few lines of ours before and after; no Ray tables, worker output or TensorFlow lines.
    out = proc.stdout.splitlines()
    assert f"searcher tpe: {SEARCHERS['tpe'].why}" in out  # which searcher runs, and why
    trials = [line for line in out if line.startswith("[")]
    assert [line[:line.index("]") + 1] for line in trials] == [f"[{n}/5]" for n in range(1, 6)]
    assert all(" trial " in line and (" val_mse " in line or "ERROR" in line)
               for line in trials)
    progress = [line for line in out if line.startswith("progress: ")]
    assert progress and progress[-1].startswith("progress: 5/5 trials | best 0.")
    others = [line for line in out if line not in trials and line not in progress]
    assert f"dashboard: aesearch dashboard {sweep} (or optuna-dashboard {sweep}/optuna.journal)" \
        in others  # how to watch it (search/journal.py)
    assert len(others) <= 11, "\n".join(others)
    for noise in ("╭", "│", "oneDNN", "cuda", "Trial status", "Checkpoint successfully",
                  "pid=", "A new study created"):
        assert noise not in proc.stdout + proc.stderr, noise


def wait_for_ray_state(sweep: Path, deadline: float) -> None:
    """Until Ray's experiment state (saved every second here) records as finished every trial
    our status file does: a stop then loses none of them."""
    status = sweep / C.STATUS_FILE
    finished = {t for t, s in json.loads(status.read_text()).items() if s == C.Status.TERMINATED}
    while not finished <= {t for t, s in internals.recorded_statuses(sweep).items()
                           if s == C.Status.TERMINATED}:
        if time.monotonic() > deadline:
            pytest.fail(f"Ray's experiment state never recorded {sorted(finished)}")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_resume_after_a_stop_finishes_every_trial_once(tmp_path, data_dir, stop):
    args = ["--task", "mnist", "--space", "study-axes", "--search", "random", "--scheduler", "fifo",
            "--num-samples", "4", "--max-epochs", "2", "--max-params", "20000",
            "--max-concurrent", "1", "--storage", str(tmp_path), "--name", "killed", *SMALL]
    env = {**os.environ, "SEARCH_DATA_DIR": str(data_dir), "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    proc = subprocess.Popen([sys.executable, str(REPO / "search" / "run.py"), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    sweep = tmp_path / "killed"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = sweep / C.STATUS_FILE
            if status.is_file() and list(json.loads(status.read_text()).values()).count(
                    C.Status.TERMINATED) >= 1:
                break
            if proc.poll() is not None:
                pytest.fail("the sweep ended before it could be killed")
            time.sleep(0.5)
        else:
            pytest.fail("no trial finished within 300 s")
        wait_for_ray_state(sweep, deadline)
        os.killpg(proc.pid, stop)  # Ctrl-C reaches the whole foreground group, as here
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, no more
            proc.wait()
    before = json.loads((sweep / C.STATUS_FILE).read_text())
    finished_before = {t for t, s in before.items() if s == C.Status.TERMINATED}
    assert len(finished_before) < 4
    assert json.loads((sweep / C.SWEEP_FILE).read_text())["finished"] is False

    changed = run_cli([*args, "--resume", "--subset", "200"], data_dir)
    assert changed.returncode == 2 and "the data flags" in changed.stderr

    resumed = run_cli([*args, "--resume"], data_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    lb = board(sweep)
    assert len(lb) == 4 and lb["trial_id"].is_unique
    # Tiny random models may collapse and stop themselves: an ending too, never a rerun.
    healthy = lb["status"] == C.Status.TERMINATED
    assert (healthy | lb["status"].isin(C.UNHEALTHY)).all()
    assert (lb.loc[healthy, "epochs"] == 2).all()
    results = list(sweep.glob(f"trial_*/{C.RESULT_FILE}"))
    assert len(results) == 4
    for result in results:
        epochs = [json.loads(line)[C.EPOCH] for line in result.read_text().splitlines()
                  if line.strip()]
        trial_dir = result.parent
        if trial_dir.name.removeprefix("trial_") in finished_before:
            assert epochs == [1, 2], f"{trial_dir.name} was trained again: {epochs}"

    again = run_cli([*args, "--resume"], data_dir)
    assert again.returncode == 2, again.stderr[-3000:]
    assert "already finished" in again.stderr


@pytest.mark.slow
def test_text_sweep_on_patches_validates_whole_pages(tmp_path, data_dir):
    proc = run_cli(["--task", "text", "--space", "report", "--rows", "text/3.1/2,text/3.1/8",
                    "--max-epochs", "1", "--subset", "4", "--val-subset", "3", "--patch-size",
                    "48", "--patches-per-page", "2", "--address", "local",
                    "--storage", str(tmp_path), "--name", "pages"], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lb = board(tmp_path / "pages")
    assert (lb["status"] == C.Status.TERMINATED).all() and len(lb) == 2
    assert set(lb["report_model"]) == {"text/3.1/2", "text/3.1/8"}
    assert (lb["val_rmse"] ** 2 - lb["val_mse"]).abs().max() < 1e-9
    best = tmp_path / "pages" / C.BEST_DIR
    metrics = json.loads((best / C.METRICS_FILE).read_text())
    assert metrics[C.VAL_MSE] == pytest.approx(lb["val_mse"].min())
    sheet = np.load(best / C.RECONSTRUCTIONS_FILE)
    heights = {sheet[f"targets_{i}"].shape[1] for i in range(3)}
    assert heights <= {258, 420} and all(
        sheet[f"outputs_{i}"].shape == sheet[f"targets_{i}"].shape for i in range(3))


@pytest.mark.slow
@pytest.mark.parametrize("budget", [["--budget-epochs", "2"], ["--time-budget", "40s"]],
                         ids=["budget-epochs", "time-budget"])
def test_a_budget_ends_the_default_search_with_complete_outputs(tmp_path, data_dir, budget):
    """With a budget and no --num-samples, trials go on until it is spent; then the sweep has
    ended (not been interrupted): every trial has ended, the leaderboard ranks them, best/ is
    written."""
    proc = run_cli(["--task", "mnist-denoise", "--max-epochs", "50", "--max-concurrent", "2",
                    "--storage", str(tmp_path), "--name", "budget", *budget, *SMALL], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "budget"
    meta = json.loads((sweep / C.SWEEP_FILE).read_text())
    assert meta["finished"] and meta["space"] == "default" and meta["num_samples"] == -1
    lb = board(sweep)
    assert len(lb) >= 2 and lb["status"].isin(C.ENDED).all(), lb[["trial_id", "status"]]
    assert (sweep / C.BEST_DIR / C.MODEL_FILE).is_file(), proc.stdout[-3000:]
    if budget[0] == "--time-budget":
        # Rungs in seconds; after a third of the budget the best config trains on, and on
        # the second slot the runner-up, where it is in the top rung's best third.
        assert "ASHA's unit: seconds of training" in proc.stdout
        configs = [json.loads(p.read_text()) for p in sweep.glob("trial_*/params.json")]
        exploits = [c for c in configs if c.get(C.EXPLOIT)]
        assert 1 <= len(exploits) <= 2, [sorted(c) for c in configs]
        assert "a top-rung config, trained on" in proc.stdout
        twins = [{k: v for k, v in c.items() if k != C.EXPLOIT} for c in exploits]
        assert all(twin in configs for twin in twins)  # configs that reached the top rung
        assert len({json.dumps(twin, sort_keys=True) for twin in twins}) == len(twins)
    if budget[0] == "--budget-epochs":  # 300 images an epoch; two trials at once may overshoot
        spent = json.loads((sweep / "budget.json").read_text())
        assert 600 <= sum(spent.values()) <= 600 + 2 * 300
        assert lb["images"].sum() == sum(spent.values())
        # `python -m search.export` writes best/ again from the files alone.
        exported = json.loads((sweep / C.BEST_DIR / C.METRICS_FILE).read_text())
        shutil.rmtree(sweep / C.BEST_DIR)
        again = subprocess.run([sys.executable, "-m", "search.export", str(sweep)],
                               capture_output=True, text=True, timeout=300, cwd=REPO,
                               env={**os.environ, "SEARCH_DATA_DIR": str(data_dir)})
        assert again.returncode == 0, again.stderr[-3000:]
        rewritten = json.loads((sweep / C.BEST_DIR / C.METRICS_FILE).read_text())
        assert rewritten[C.TRIAL_ID] == exported[C.TRIAL_ID]
        assert rewritten[C.VAL_MSE] == exported[C.VAL_MSE] == lb[C.VAL_MSE].iloc[0]
