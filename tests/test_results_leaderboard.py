"""results/: reading sweep dirs into trials, leaderboards, curves; atomic writes; no TF/Ray."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sweep_files import (
    TEXT_BEST,
    TEXT_NEW,
    running_text_sweep,
    write_status,
    write_sweep,
    write_trial,
)

from results import ResultsError, curves, load_trials, merge, write_leaderboard
from results.leaderboard import LEADERBOARD_COLUMNS, best_so_far, leaderboard
from results.render import read_csv
from spaces import constants as C

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def text_sweep(tmp_path: Path) -> Path:
    return running_text_sweep(tmp_path)


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index(C.TRIAL_ID)


def test_leaderboard_columns_order_and_ranks(text_sweep: Path) -> None:
    board = leaderboard(load_trials(text_sweep))
    assert list(board.columns) == list(LEADERBOARD_COLUMNS)
    # Best val_mse first; the failed trial (whose last val_mse is the lowest of all) and the
    # trials with nothing reported come last.
    assert list(board[C.TRIAL_ID]) == [
        "abcde_00001", "abcde_00002", "abcde_00000", "abcde_00004",
        "abcde_00003", "abcde_00005", "abcde_00006",
    ]
    assert list(board["rank"]) == list(range(1, 8))
    assert list(board["status"]) == [
        C.Status.TERMINATED, C.Status.RUNNING, C.Status.TERMINATED, C.Status.TERMINATED,
        C.Status.ERROR, C.Status.PENDING, C.Status.RUNNING,
    ]


def test_trial_rows_hold_the_last_epoch_and_the_study_notation(text_sweep: Path) -> None:
    rows = by_id(load_trials(text_sweep))
    dense = rows.loc["abcde_00004"]
    assert dense[C.VAL_MSE] == 0.05  # the last epoch (the checkpoint), not the best (0.03)
    assert dense["epochs"] == 3 and dense[C.SECONDS] == 6.0 and dense[C.NODE] == "node-a"
    assert dense["dense_widths"] == "64,226800" and dense["notation"] == "2L(64, 226800)"
    assert dense["filters"] == "" and pd.isna(dense["kernel"]) and dense["pool_upsample"] == ""
    new = rows.loc["abcde_00002"]
    assert new["epochs"] == 2 and new[C.VAL_MSE] == 0.0025 and new["status"] == C.Status.RUNNING
    assert new["filters"] == "16,8,8,8,16" and new["kernel"] == 5
    assert new["pool_upsample"] == "1+1" and new["dropout"] == "1 (p=0.2)"
    assert new["notation"] == "5L,16,8,8F(5X5) pool 1+1 dropout 1 (p=0.2) bn 2"
    assert rows.loc["abcde_00003", "error"] == "ValueError: loss is nan"
    assert rows.loc["abcde_00006", "epochs"] == 0  # empty result.json: started, nothing yet
    assert rows.loc["abcde_00005", "task"] == "text"  # known only from the status file


def test_study_rows_named_or_matched(text_sweep: Path) -> None:
    rows = by_id(load_trials(text_sweep))
    # Named by report_id in params.json.
    assert rows.loc["abcde_00000", "report_model"] == "text/3.3/5"
    assert rows.loc["abcde_00000", "report_val"] == 0.0015
    # Not named, but the architecture of the study's 3.1/4 ("3L, 32F(3X3)").
    assert rows.loc["abcde_00001", "report_model"] == "text/3.1/4"
    assert rows.loc["abcde_00001", "report_val"] == 0.0021
    assert rows.loc["abcde_00002", "report_model"] == ""
    assert pd.isna(rows.loc["abcde_00002", "report_val"])


@pytest.mark.parametrize("finished, unfinished_status",
                         [(True, C.Status.STOPPED), (False, C.Status.RUNNING)])
def test_status_inferred_without_status_file(
    tmp_path: Path, finished: bool, unfinished_status: str
) -> None:
    sweep = tmp_path / "sweep"
    write_sweep(sweep, "text", finished=finished)
    write_trial(sweep, "aaaaa_00000", TEXT_BEST, [0.01, 0.009, 0.008])  # reached its 3 epochs
    write_trial(sweep, "aaaaa_00001", TEXT_BEST, [0.01, 0.009], done_last=True)  # done=true
    write_trial(sweep, "aaaaa_00002", TEXT_BEST, [0.01])
    write_trial(sweep, "aaaaa_00003", TEXT_BEST, [0.01], error="RuntimeError: OOM")
    status = by_id(load_trials(sweep))["status"].to_dict()
    assert status == {
        "aaaaa_00000": C.Status.TERMINATED, "aaaaa_00001": C.Status.TERMINATED,
        "aaaaa_00002": unfinished_status, "aaaaa_00003": C.Status.ERROR,
    }


def test_epoch_budget_of_the_sweep_decides_termination(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_sweep(sweep, "text", finished=False, max_epochs=2)
    write_trial(sweep, "aaaaa_00000", TEXT_BEST, [0.01, 0.009])  # config says 3, sweep 2
    assert load_trials(sweep)["status"].tolist() == [C.Status.TERMINATED]


def test_half_written_last_line_is_ignored_but_damage_elsewhere_is_not(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    trial = write_trial(sweep, "aaaaa_00000", TEXT_BEST, [0.01, 0.009])
    result = trial / C.RESULT_FILE
    with result.open("a") as handle:
        handle.write('{"val_mse": 0.00')  # the trial is writing its third epoch
    assert load_trials(sweep)[C.VAL_MSE].tolist() == [0.009]
    result.write_text("not json\n" + result.read_text())
    with pytest.raises(ResultsError, match=r"result\.json, line 1"):
        load_trials(sweep)


def test_not_a_sweep_dir_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="empty is not a sweep directory"):
        load_trials(tmp_path / "empty")
    with pytest.raises(ResultsError, match="missing: no such directory"):
        load_trials(tmp_path / "missing")


def test_bad_params_file_is_named(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    trial = write_trial(sweep, "aaaaa_00000", TEXT_BEST, [0.01])
    (trial / C.PARAMS_FILE).write_text(json.dumps({C.MODEL_KEY: {"task": "cifar"}}))
    with pytest.raises(ResultsError, match=r"params\.json: not a model config.*cifar"):
        load_trials(sweep)


def test_curves_in_report_order_with_cumulative_epochs(text_sweep: Path) -> None:
    curve = curves(text_sweep)
    for column in (C.TRIAL_ID, C.EPOCH, *C.METRICS, C.PARAMS, C.SECONDS, C.NODE, "cum_epochs"):
        assert column in curve
    assert len(curve) == 3 + 3 + 2 + 1 + 3
    assert curve["cum_epochs"].tolist() == list(range(1, 13))
    assert curve["time"].is_monotonic_increasing
    order = list(zip(curve[C.TRIAL_ID], curve[C.EPOCH], strict=True))
    # abcde_00002 started a second later: its first epoch comes after the others' first ones.
    assert order.index(("abcde_00002", 1)) == 4
    assert order[:4] == [("abcde_00000", 1), ("abcde_00001", 1), ("abcde_00003", 1),
                         ("abcde_00004", 1)]
    best = best_so_far(curve)
    assert best[C.VAL_MSE].is_monotonic_decreasing
    assert best[C.VAL_MSE].iloc[-1] == 0.001
    # Wall-clock: seconds since the earliest trial start (timestamp - time_total_s) in the files.
    starts = [json.loads(line)["timestamp"] - json.loads(line)["time_total_s"]
              for trial in text_sweep.glob("*/") if (trial / C.RESULT_FILE).is_file()
              for line in (trial / C.RESULT_FILE).read_text().splitlines()]
    assert curve["elapsed_s"].tolist() == pytest.approx((curve["time"] - min(starts)).tolist())
    assert best["elapsed_s"].is_monotonic_increasing and best["elapsed_s"].iloc[0] > 0


def test_curves_keep_the_last_report_of_a_replayed_epoch(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    trial = write_trial(sweep, "aaaaa_00000", TEXT_BEST, [0.01, 0.009])
    rows = [json.loads(line) for line in (trial / C.RESULT_FILE).read_text().splitlines()]
    replay = dict(rows[1], val_mse=0.008, time_total_s=rows[1]["time_total_s"] + 5)
    with (trial / C.RESULT_FILE).open("a") as handle:  # restored from the epoch-1 checkpoint
        handle.write(json.dumps(replay) + "\n")
    curve = curves(sweep)
    assert curve[C.EPOCH].tolist() == [1, 2]
    assert curve[C.VAL_MSE].tolist() == [0.01, 0.008]


def test_a_trial_refused_before_training_adds_no_trial_epochs(tmp_path: Path) -> None:
    """The guard's refusal is one report at epoch 0.0 (a falsy epoch once counted as 1)."""
    sweep = tmp_path / "sweep"
    write_trial(sweep, "aaaaa_00000", TEXT_BEST, [0.01, 0.009])
    refused = write_trial(sweep, "aaaaa_00001", TEXT_BEST, [0.5])
    row = json.loads((refused / C.RESULT_FILE).read_text())
    row.update({C.EPOCH: 0.0, C.TRAINING_ITERATION: 1, C.VAL_MSE: float("nan"),
                C.VERDICT: C.Status.REFUSED, "time_total_s": 0.3})
    (refused / C.RESULT_FILE).write_text(json.dumps(row) + "\n")
    curve = curves(sweep)
    assert curve.set_index(C.TRIAL_ID).loc["aaaaa_00001", C.EPOCH] == 0.0
    assert curve["cum_epochs"].max() == 2.0


def test_merge_ranks_across_sweeps_of_one_task(tmp_path: Path) -> None:
    first = running_text_sweep(tmp_path / "a")
    second = tmp_path / "b" / "other"
    write_sweep(second, "text", finished=True)
    write_trial(second, "bbbbb_00000", TEXT_NEW, [0.0022, 0.0011])
    board = merge([first, second])
    assert list(board.columns) == [*LEADERBOARD_COLUMNS, "sweep"]
    assert board[C.TRIAL_ID].tolist()[:3] == ["bbbbb_00000", "abcde_00001", "abcde_00002"]
    assert board["sweep"].tolist()[:2] == ["other", "text-sweep"]
    assert board["rank"].tolist() == list(range(1, len(board) + 1))
    assert board["status"].iloc[-3:].tolist() == [
        C.Status.ERROR, C.Status.PENDING, C.Status.RUNNING]


def test_merge_refuses_mixed_tasks(tmp_path: Path) -> None:
    text = running_text_sweep(tmp_path)
    mnist = tmp_path / "mnist-sweep"
    write_sweep(mnist, "mnist", finished=True)
    with pytest.raises(ResultsError, match="different tasks") as info:
        merge([text, mnist])
    assert str(text) in str(info.value) and str(mnist) in str(info.value)


def test_write_leaderboard_is_atomic(
    text_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = leaderboard(load_trials(text_sweep))
    out = tmp_path / "out"
    path = write_leaderboard(board, out / C.LEADERBOARD_FILE)
    write_leaderboard(board, path)  # replaced in place
    assert sorted(p.name for p in out.iterdir()) == [C.LEADERBOARD_FILE]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable by others, as a plain file
    again = read_csv(path)
    assert list(again.columns) == list(LEADERBOARD_COLUMNS)
    assert again[C.TRIAL_ID].tolist() == board[C.TRIAL_ID].tolist()

    before = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_leaderboard(board.head(1), path)
    assert path.read_bytes() == before  # readers still see the whole old file
    assert sorted(p.name for p in out.iterdir()) == [C.LEADERBOARD_FILE]  # no temp left


def test_empty_sweep_gives_an_empty_leaderboard(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_sweep(sweep, "text", finished=False)
    board = leaderboard(load_trials(sweep))
    assert board.empty and list(board.columns) == list(LEADERBOARD_COLUMNS)
    assert curves(sweep).empty


def test_status_only_trials_get_rows(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    write_status(sweep, {"ccccc_00000": C.Status.PENDING})
    board = leaderboard(load_trials(sweep))
    assert board[[C.TRIAL_ID, "status"]].values.tolist() == [["ccccc_00000", C.Status.PENDING]]


def test_results_imports_neither_tensorflow_nor_ray() -> None:
    code = (
        "import pkgutil, importlib, sys, results\n"
        "for m in pkgutil.iter_modules(results.__path__):\n"
        "    importlib.import_module('results.' + m.name)\n"
        "heavy = sorted(m for m in sys.modules\n"
        "               if m.split('.')[0] in ('tensorflow', 'ray', 'keras'))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, f"results/ loaded {done.stdout.strip()} {done.stderr[-2000:]}"
    assert done.stdout.strip() == "[]"


def test_package_api_is_lazy_and_complete() -> None:
    import results

    for name in results.__all__:  # each public name is the object its module defines
        module = importlib.import_module(results._API[name])
        assert getattr(results, name) is vars(module)[name], name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        results.nope  # noqa: B018


def test_a_trial_ray_ended_before_its_first_report_reads_stopped_with_why(tmp_path: Path) -> None:
    """A budget that runs out while a trial builds its model: Ray says TERMINATED, but the
    trial trained nothing, so the leaderboard says STOPPED and why, not "finished"."""
    from results.leaderboard import NO_REPORT_REASON
    from spaces import study

    sweep = tmp_path / "sweep"
    write_sweep(sweep, "mnist", finished=True, max_epochs=2)
    config = study.row("mnist/1.2/2").config
    write_trial(sweep, "ddddd_00000", config, [0.05, 0.04])
    write_trial(sweep, "ddddd_00001", config, [])
    write_status(sweep, {"ddddd_00000": C.Status.TERMINATED, "ddddd_00001": C.Status.TERMINATED})
    board = by_id(leaderboard(load_trials(sweep)))
    assert board.loc["ddddd_00000", "status"] == C.Status.TERMINATED
    assert board.loc["ddddd_00001", "status"] == C.Status.STOPPED
    assert board.loc["ddddd_00001", C.REASON] == NO_REPORT_REASON
    assert pd.isna(board.loc["ddddd_00001", C.VAL_MSE])


def test_trial_ids_that_look_like_numbers_read_back_as_text(tmp_path):
    """Ray's 8-hex-digit ids include ones such as 3e778219, which pandas reads as inf: a
    multi-objective sweep's front test failed on one."""
    path = tmp_path / "ids.csv"
    pd.DataFrame({C.TRIAL_ID: ["3e778219", "00001234"], "x": [1, 2]}).to_csv(path, index=False)
    assert list(read_csv(path)[C.TRIAL_ID]) == ["3e778219", "00001234"]
    # What it guards against: a column of such ids alone reads as numbers.
    assert list(pd.read_csv(path)[C.TRIAL_ID]) == [float("inf"), 1234.0]
