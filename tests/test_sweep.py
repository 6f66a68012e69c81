"""Small real sweeps through the entry point: grid replay, Optuna + ASHA, resume after SIGKILL.

Each sweep runs `search/run.py` in a subprocess with `--address local`, so it starts (and, on
exit, stops) its own Ray instance and can never join a stray cluster. The process group each test
starts is the only thing it kills.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from results.leaderboard import LEADERBOARD_COLUMNS
from spaces import constants as C

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--subset", "300", "--val-subset", "200", "--address", "local", "--seed", "1"]


def run_cli(args: list[str], data_dir: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEARCH_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(REPO / "search" / "run.py"), *args],
                          env=env, capture_output=True, text=True, timeout=600, **kwargs)


def board(sweep_dir: Path) -> pd.DataFrame:
    return pd.read_csv(sweep_dir / C.LEADERBOARD_FILE)


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
    assert sorted(table["Trial"]) == sorted(done["trial_id"])
    by_trial = table.set_index("Trial")
    replay = done.set_index("report_model").loc["mnist/1.2/2"]
    assert by_trial.loc[replay["trial_id"], "Study Train/Validation"] == "0.0586/ 0.0583"
    assert by_trial.loc[done.iloc[0]["trial_id"], "Model"].endswith("**")  # best, marked
    assert "1 trial(s) failed" in report.stdout
    for plot in ("curves", "progress", "pareto", "reconstructions"):
        assert (tmp_path / "grid" / "plots" / f"{plot}.png").stat().st_size > 1000


def test_optuna_asha_sweep_writes_a_ranked_leaderboard(tmp_path, data_dir):
    proc = run_cli(["--task", "mnist-denoise", "--space", "study-axes", "--num-samples", "5",
                    "--max-epochs", "2", "--max-params", "20000", "--max-concurrent", "2",
                    "--storage", str(tmp_path), "--name", "tpe", *SMALL], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "tpe"
    lb = board(sweep)
    assert len(lb) == 5 and set(lb["trial_id"]) == set(json.loads(
        (sweep / C.STATUS_FILE).read_text()))
    finished = lb.dropna(subset=["val_mse"])
    assert finished["val_mse"].is_monotonic_increasing
    assert (lb["params"].dropna() <= 20000).all()
    assert set(lb["epochs"]) <= {1, 2}
    assert lb["node"].notna().all()
    meta = json.loads((sweep / C.SWEEP_FILE).read_text())
    assert meta["finished"] and meta["search"] == "optuna" and meta["scheduler"] == "asha"
    # one progress line per finished trial, each with its notation and the best so far
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 5 and all("best" in line for line in lines)
    assert [int(line[1:line.index("/")]) for line in lines] == [1, 2, 3, 4, 5]


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
        time.sleep(2)  # let Ray save its experiment state once more
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
    assert (lb["status"] == C.Status.TERMINATED).all() and (lb["epochs"] == 2).all()
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


def test_text_sweep_on_patches_validates_whole_pages_and_refits(tmp_path, data_dir):
    proc = run_cli(["--task", "text", "--space", "report", "--rows", "text/3.1/2,text/3.1/8",
                    "--max-epochs", "1", "--subset", "4", "--val-subset", "3", "--patch-size",
                    "48", "--patches-per-page", "2", "--refit", "--address", "local",
                    "--storage", str(tmp_path), "--name", "pages"], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lb = board(tmp_path / "pages")
    assert (lb["status"] == C.Status.TERMINATED).all() and len(lb) == 2
    assert set(lb["report_model"]) == {"text/3.1/2", "text/3.1/8"}
    assert (lb["val_rmse"] ** 2 - lb["val_mse"]).abs().max() < 1e-9
    best = tmp_path / "pages" / C.BEST_DIR
    metrics = json.loads((best / C.METRICS_FILE).read_text())
    assert metrics["refit"] is True and metrics[C.VAL_MSE] == pytest.approx(lb["val_mse"].min())
    sheet = np.load(best / C.RECONSTRUCTIONS_FILE)
    heights = {sheet[f"targets_{i}"].shape[1] for i in range(3)}
    assert heights <= {258, 420} and all(
        sheet[f"outputs_{i}"].shape == sheet[f"targets_{i}"].shape for i in range(3))
