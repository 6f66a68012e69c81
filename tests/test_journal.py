"""The sweep's Optuna journal (search/journal.py, search/mirror.py, search/relocate.py): what the
dashboard reads. Fast checks drive the searcher and the grid's mirror directly; the slow ones
run real tiny sweeps through the entry point, stop them with Ctrl-C and resume them in place,
moved, and with the journal damaged.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from test_sweep import SMALL, run_cli, wait_for_ray_state

from search import journal, searchers
from search.fidelity import FidelityOptunaSearch
from search.journal import JournalError
from search.mirror import JournalMirror
from search.relocate import attach_journal
from search.sweep import SweepSettings, prepare
from spaces import constants as C

REPO = Path(__file__).resolve().parent.parent
GARBAGE = b"this is not a journal record\n"


def _settings(name: str = "t", **extra: Any) -> SweepSettings:
    return prepare(SweepSettings(task="mnist", search="tpe", space="default", max_epochs=2,
                                 storage="/nonexistent-not-written", name=name, **extra))


def _study(path: Path, name: str = "t") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=journal.open_storage(path))


def _run(searcher: FidelityOptunaSearch, trial_id: str, reports: int,
         value: float = 0.05, **extra: Any) -> None:
    """One Ray trial through the searcher: proposed, reported, ended after `reports`."""
    searcher.suggest(trial_id)
    searcher.on_trial_result(trial_id, {C.OBJECTIVE: value + 0.01, C.TRAINING_ITERATION: 1})
    searcher.on_trial_complete(trial_id, {C.OBJECTIVE: value, C.TRAINING_ITERATION: reports,
                                          C.NOTATION: "2L,16F(3X3)", C.PARAMS: 2753, **extra})


def _journal_searcher(path: Path) -> FidelityOptunaSearch:
    searcher, _ = searchers.make(_settings(), path)
    assert isinstance(searcher, FidelityOptunaSearch)
    return searcher


# --- the file ---------------------------------------------------------------------------------
def test_optuna_reads_past_a_bad_last_line_and_fails_once_a_record_follows(tmp_path):
    """Why `check` reads every line itself: Optuna's reader skips a bad last line, so a journal
    with garbage at its end reads until the sweep writes its next record, then never again."""
    path = tmp_path / C.JOURNAL_FILE
    optuna.create_study(storage=journal.open_storage(path), study_name="t")
    records = len(list(JournalFileBackend(str(path)).read_logs(0)))
    with path.open("ab") as f:
        f.write(GARBAGE)
    assert len(list(JournalFileBackend(str(path)).read_logs(0))) == records
    optuna.create_study(storage=journal.open_storage(tmp_path / "other"), study_name="t")
    with path.open("ab") as f:
        f.write((tmp_path / "other").read_bytes())
    with pytest.raises(ValueError):
        list(JournalFileBackend(str(path)).read_logs(0))


@pytest.mark.parametrize("damage", [GARBAGE, b'{"op_code": 4}\n' + GARBAGE, b"[1, 2]\n",
                                    b'{"op_code": 99, "worker_id": "w"}\n'],
                         ids=["garbage-last", "garbage-mid", "not-a-record", "unknown-operation"])
def test_a_damaged_journal_is_named_and_set_aside_before_a_resume(tmp_path, damage):
    path = tmp_path / C.JOURNAL_FILE
    optuna.create_study(storage=journal.open_storage(path), study_name="t")
    journal.check(path)
    with path.open("ab") as f:
        f.write(damage)
    with pytest.raises(JournalError, match=str(path)):
        journal.check(path)
    line = journal.resume_check(path)
    assert line is not None and str(path) in line and "starts over" in line
    assert "\n" not in line and not path.exists()
    assert (tmp_path / f"{C.JOURNAL_FILE}.damaged").read_bytes().endswith(damage)
    assert journal.resume_check(path) is None  # none there: a fresh one is made


def test_a_resume_removes_the_write_lock_a_killed_driver_left(tmp_path):
    path = tmp_path / C.JOURNAL_FILE
    optuna.create_study(storage=journal.open_storage(path), study_name="t")
    lock = tmp_path / f"{C.JOURNAL_FILE}.lock"
    lock.symlink_to(path)  # as Optuna's JournalFileSymlinkLock holds it mid-write
    assert journal.resume_check(path) is None
    assert not lock.is_symlink() and path.is_file()


def test_a_record_being_written_is_damage_only_to_a_resume(tmp_path):
    path = tmp_path / C.JOURNAL_FILE
    optuna.create_study(storage=journal.open_storage(path), study_name="t")
    with path.open("ab") as f:
        f.write(b'{"op_code": 4, "work')
    journal.check(path, torn_tail_ok=True)  # the dashboard beside a running sweep
    with pytest.raises(JournalError, match="incomplete"):
        journal.check(path)
    with pytest.raises(JournalError, match=f"no journal at {tmp_path / 'none'}"):
        journal.check(tmp_path / "none")


def test_statuses_tell_apart_what_optunas_states_merge():
    status = journal.status_of
    assert status(TrialState.COMPLETE, {}) == journal.FINISHED
    assert status(TrialState.PRUNED, {}) == journal.STOPPED_BY_ASHA
    assert status(TrialState.PRUNED, {}, stopped=journal.STOPPED_EARLY) == "stopped early"
    assert status(TrialState.PRUNED, {C.VERDICT: C.Status.COLLAPSED}) == journal.COLLAPSED
    assert status(TrialState.FAIL, {C.VERDICT: C.Status.DIVERGED}) == journal.DIVERGED
    assert status(TrialState.FAIL, {C.VERDICT: C.Status.REFUSED}) == journal.FAILED
    assert status(TrialState.FAIL, None) == journal.FAILED
    attrs = journal.status_attrs("abc_00001", {C.NOTATION: "4L,32F(3X3)", C.PARAMS: 103073.0,
                                               C.VERDICT: C.Status.COLLAPSED,
                                               C.REASON: "constant output"},
                                 TrialState.PRUNED)
    assert attrs == {journal.STATUS: "collapsed", journal.RAY_TRIAL_ID: "abc_00001",
                     journal.MODEL: "4L,32F(3X3)", journal.PARAM_COUNT: 103073,
                     journal.REASON: "constant output"}


# --- the searcher's study ---------------------------------------------------------------------
def test_the_searchers_study_lives_in_the_journal_with_statuses(tmp_path):
    path = tmp_path / C.JOURNAL_FILE
    searcher = _journal_searcher(path)
    searcher.set_search_properties(C.OBJECTIVE, C.MODE, {})
    _run(searcher, "a", reports=2)
    _run(searcher, "b", reports=1)
    _run(searcher, "c", reports=1, value=float("nan"), **{C.VERDICT: C.Status.DIVERGED})
    trials = _study(path).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED,
                                         TrialState.FAIL]
    assert [t.user_attrs[journal.STATUS] for t in trials] == ["finished", "stopped by ASHA",
                                                              "diverged"]
    assert [t.user_attrs[journal.RAY_TRIAL_ID] for t in trials] == ["a", "b", "c"]
    assert trials[0].user_attrs[journal.PARAM_COUNT] == 2753
    assert trials[0].intermediate_values == {1: pytest.approx(0.06)}
    assert _study(path).metric_names == [C.OBJECTIVE]  # the dashboard says val_mse
    assert journal.how_to_watch(tmp_path, False) == (
        f"dashboard: aesearch dashboard {tmp_path} (or optuna-dashboard {path})")
    assert "none" in journal.how_to_watch(tmp_path, True)


def _stopped_sweep(tmp_path: Path) -> tuple[Path, Path]:
    """A searcher that ran two trials and proposed a third, saved as Ray saves it (the
    searcher-state pickle); the journal in sweep dir `a`."""
    path = tmp_path / "a" / C.JOURNAL_FILE
    searcher = _journal_searcher(path)
    searcher.set_search_properties(C.OBJECTIVE, C.MODE, {})
    _run(searcher, "a", reports=2)
    _run(searcher, "b", reports=1)
    searcher.suggest("c")  # running when the sweep stopped
    searcher.on_trial_result("c", {C.OBJECTIVE: 0.2, C.TRAINING_ITERATION: 1})
    state = tmp_path / "searcher-state.pkl"
    searcher.save(str(state))
    return path, state


def _restored(state: Path) -> FidelityOptunaSearch:
    """What Ray's resume does: unpickle the searcher and restore its saved state into it."""
    restored = pickle.loads(pickle.dumps(_journal_searcher(state.parent / "spare.journal")))
    restored.restore(str(state))
    return restored


def test_a_restored_searcher_keeps_its_history_from_the_journal(tmp_path):
    """JournalStorage pickles as its file's path and replays the file: a resumed searcher has
    every earlier trial, continues the one that was running, and proposes as before."""
    path, state = _stopped_sweep(tmp_path)
    restored = _restored(state)  # no attach_journal: the pickled path is the journal's
    restored.on_trial_result("c", {C.OBJECTIVE: 0.1, C.TRAINING_ITERATION: 2})
    restored.on_trial_complete("c", {C.OBJECTIVE: 0.09, C.TRAINING_ITERATION: 2})
    _run(restored, "d", reports=2)
    trials = _study(path).trials
    assert [t.user_attrs[journal.RAY_TRIAL_ID] for t in trials] == ["a", "b", "c", "d"]
    assert trials[2].intermediate_values == {1: 0.2, 2: 0.1}
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED,
                                         TrialState.COMPLETE, TrialState.COMPLETE]


def test_a_moved_searcher_writes_the_journal_where_the_sweep_is_now(tmp_path):
    path, state = _stopped_sweep(tmp_path)
    before = _study(path).trials
    moved = tmp_path / "b" / C.JOURNAL_FILE
    shutil.copytree(path.parent, moved.parent)
    shutil.rmtree(path.parent)
    restored = _restored(state)
    attach_journal(restored, moved)
    restored.on_trial_complete("c", {C.OBJECTIVE: 0.09, C.TRAINING_ITERATION: 2})
    _run(restored, "d", reports=2)
    assert not path.parent.exists()  # the original is never written again
    trials = _study(moved).trials
    assert len(trials) == 4 and [t.number for t in trials[:2]] == [t.number for t in before[:2]]
    assert trials[0].user_attrs == before[0].user_attrs
    assert trials[2].state == TrialState.COMPLETE


def test_a_fresh_journal_restarts_the_study_with_the_trials_ray_still_runs(tmp_path):
    path, state = _stopped_sweep(tmp_path)
    journal.set_aside(path)
    restored = _restored(state)
    attach_journal(restored, path)
    restored.on_trial_complete("c", {C.OBJECTIVE: 0.09, C.TRAINING_ITERATION: 2})
    _run(restored, "d", reports=2)
    trials = _study(path).trials
    assert [t.user_attrs[journal.RAY_TRIAL_ID] for t in trials] == ["c", "d"]
    assert trials[0].params == _study(tmp_path / "a" / f"{C.JOURNAL_FILE}.damaged").trials[
        2].params


def test_a_trial_created_after_the_last_save_is_abandoned_not_left_running(tmp_path):
    path, state = _stopped_sweep(tmp_path)
    live = _restored(state)
    attach_journal(live, path)
    live.suggest("e")  # created after Ray saved the searcher; then the driver died
    restored = _restored(state)
    attach_journal(restored, path)
    orphan = _study(path).trials[-1]
    assert orphan.state == TrialState.FAIL
    assert orphan.user_attrs[journal.STATUS] == journal.ABANDONED
    assert _study(path).trials[2].state == TrialState.RUNNING  # Ray continues this one


def test_a_trial_told_after_the_last_save_is_not_told_again(tmp_path):
    """The driver died after the searcher told a trial (the journal has it) and before Ray
    saved the searcher: Ray completes the trial again, and telling Optuna twice would raise."""
    path, state = _stopped_sweep(tmp_path)
    live = _restored(state)
    attach_journal(live, path)
    live.on_trial_complete("c", {C.OBJECTIVE: 0.3, C.TRAINING_ITERATION: 1})
    restored = _restored(state)
    attach_journal(restored, path)
    restored.on_trial_result("c", {C.OBJECTIVE: 0.2, C.TRAINING_ITERATION: 2})
    restored.on_trial_complete("c", {C.OBJECTIVE: 0.1, C.TRAINING_ITERATION: 2})
    _run(restored, "d", reports=2)
    trials = _study(path).trials
    assert [t.state for t in trials[2:]] == [TrialState.PRUNED, TrialState.COMPLETE]
    assert trials[2].user_attrs[journal.STATUS] == "stopped by ASHA"  # its first ending


# --- a grid's mirror ----------------------------------------------------------------------------
def _ray_trial(trial_id: str, row: str, results: list[dict[str, Any]],
               status: str = C.Status.RUNNING) -> SimpleNamespace:
    from spaces import study

    config = {C.REPORT_KEY: row, C.MODEL_KEY: study.row(row).config.to_dict()}
    return SimpleNamespace(trial_id=trial_id, config=config, status=status,
                           last_result=results[-1] if results else None)


def test_a_grids_trials_are_mirrored_and_a_broken_journal_never_raises(tmp_path, caplog):
    path = tmp_path / C.JOURNAL_FILE
    rows = ("mnist/1.2/2", "mnist/1.2/3")
    mirror = pickle.loads(pickle.dumps(JournalMirror(path, "grid", rows, max_t=2)))
    first = [{C.OBJECTIVE: 0.06, C.TRAINING_ITERATION: 1}, {C.OBJECTIVE: 0.05,
                                                           C.TRAINING_ITERATION: 2}]
    a = _ray_trial("a", rows[0], first)
    b = _ray_trial("b", rows[1], [{C.OBJECTIVE: float("nan"), C.TRAINING_ITERATION: 1,
                                   C.VERDICT: C.Status.DIVERGED}])
    mirror.on_step_begin(0, [])
    for trial in (a, b):
        mirror.on_trial_start(0, [a, b], trial)
    mirror.on_trial_result(0, [a, b], a, first[0])
    mirror.on_trial_complete(0, [a, b], a)
    mirror.on_trial_complete(0, [a, b], b)
    trials = _study(path, "grid").trials
    assert [t.params for t in trials] == [{C.REPORT_KEY: row} for row in rows]
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert trials[0].intermediate_values == {1: 0.06, 2: 0.05}  # the last one too
    assert trials[0].user_attrs[journal.MODEL].startswith("6L,16F(3X3)")
    assert [t.user_attrs[journal.STATUS] for t in trials] == ["finished", "diverged"]

    # a restored grid: the running trial is found by its Ray id and continued
    c = _ray_trial("c", rows[0], [])
    mirror.on_trial_start(0, [c], c)
    again = pickle.loads(pickle.dumps(mirror))
    again.on_step_begin(0, [c])
    again.on_trial_complete(0, [c], _ray_trial("c", rows[0], first))
    assert len(_study(path, "grid").trials) == 3

    # the journal ahead of Ray's saved state: c told, Ray runs it on; never a second trial
    late = pickle.loads(pickle.dumps(mirror))
    late.on_step_begin(0, [c])
    late.on_trial_result(0, [c], c, first[1])
    late.on_trial_complete(0, [c], _ray_trial("c", rows[0], first))
    assert len(_study(path, "grid").trials) == 3

    path.write_bytes(GARBAGE * 2)  # every write fails from here: logged once, never raised
    broken = JournalMirror(path, "grid", rows, max_t=2)
    with caplog.at_level("WARNING"):
        for _ in range(3):
            broken.on_trial_start(0, [a], a)
    assert sum("stopped mirroring" in r.getMessage() for r in caplog.records) == 1


# --- real sweeps ------------------------------------------------------------------------------
def _start_and_stop(args: list[str], sweep: Path, data_dir: Path) -> None:
    """Start a sweep, and Ctrl-C it once a trial has finished (Ray has recorded it)."""
    env = {**os.environ, "SEARCH_DATA_DIR": str(data_dir), "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    proc = subprocess.Popen([sys.executable, str(REPO / "search" / "run.py"), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        status = sweep / C.STATUS_FILE
        while not (status.is_file() and C.Status.TERMINATED in json.loads(
                status.read_text()).values()):
            if proc.poll() is not None:
                pytest.fail("the sweep ended before it could be stopped")
            if time.monotonic() > deadline:
                pytest.fail("no trial finished within 300 s")
            time.sleep(0.5)
        wait_for_ray_state(sweep, deadline)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, no more
            proc.wait()


def _ended(path: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return [t for t in _study(path, name).trials if t.state.is_finished()]


@pytest.mark.slow
def test_a_sweep_keeps_its_study_in_the_journal_and_a_moved_copy_resumes_it(tmp_path,
                                                                           data_dir):
    args = ["--task", "mnist", "--num-samples", "3", "--max-epochs", "2", "--max-params",
            "20000", "--max-concurrent", "1", "--report-images", "150", *SMALL]
    first = tmp_path / "first"
    _start_and_stop([*args, "--storage", str(first), "--name", "s"], first / "s", data_dir)
    path = first / "s" / C.JOURNAL_FILE
    before = _ended(path, "s")
    assert before and all(t.user_attrs[journal.STATUS] in ("finished", "stopped by ASHA",
                                                           "collapsed") for t in before)
    assert all(journal.MODEL in t.user_attrs for t in before)
    # Ray gives a trial's last result to on_trial_complete, not on_trial_result: a trial's
    # curve holds every report but its last (one ASHA stopped at its first report has none).
    complete = [t for t in before if t.state == TrialState.COMPLETE]
    assert complete and all(sorted(t.intermediate_values) == [1, 2, 3] for t in complete)
    statuses = json.loads((first / "s" / C.STATUS_FILE).read_text())
    assert {t.user_attrs[journal.RAY_TRIAL_ID] for t in before} <= set(statuses)

    moved = tmp_path / "moved"
    shutil.copytree(first, moved)
    first.rename(tmp_path / "away")
    resumed = run_cli([*args, "--storage", str(moved), "--name", "s", "--resume"], data_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not first.exists()  # nothing wrote to the original place
    after = _ended(moved / "s" / C.JOURNAL_FILE, "s")
    assert len(after) == 3 and all(t.state != TrialState.RUNNING for t in after)
    kept = {t.number: t.user_attrs for t in after}
    assert all(kept[t.number] == t.user_attrs for t in before)  # the earlier ones, kept
    board = json.loads((moved / "s" / C.STATUS_FILE).read_text())
    assert {t.user_attrs[journal.RAY_TRIAL_ID] for t in after} == set(board)
    assert journal.ABANDONED not in {t.user_attrs.get(journal.STATUS) for t in after}


@pytest.mark.slow
def test_a_damaged_journal_is_refused_by_the_dashboard_and_set_aside_by_a_resume(tmp_path,
                                                                                data_dir):
    """A grid (its trials mirrored into the journal): garbage in the journal makes `aesearch
    dashboard` exit 2 naming the file, and the resumed sweep finish with a fresh journal."""
    rows = "mnist/1.2/2,mnist/1.2/3"
    args = ["--task", "mnist", "--space", "report", "--rows", rows, "--max-epochs", "1",
            "--max-concurrent", "1", "--storage", str(tmp_path), "--name", "grid", *SMALL]
    sweep = tmp_path / "grid"
    _start_and_stop(args, sweep, data_dir)
    path = sweep / C.JOURNAL_FILE
    mirrored = _ended(path, "grid")
    assert mirrored and all(t.params[C.REPORT_KEY] in rows.split(",") for t in mirrored)
    assert all(t.user_attrs[journal.STATUS] == "finished" for t in mirrored)
    with path.open("ab") as f:
        f.write(GARBAGE + path.read_bytes().splitlines(keepends=True)[-1])

    dashboard = subprocess.run([sys.executable, "-m", "search.cli", "dashboard", str(sweep)],
                               capture_output=True, text=True, timeout=120, cwd=REPO)
    assert dashboard.returncode == 2 and dashboard.stdout == ""
    assert dashboard.stderr.count("\n") == 1 and str(path) in dashboard.stderr

    resumed = run_cli([*args, "--resume"], data_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    said = [line for line in resumed.stdout.splitlines()
            if line.startswith(f"dashboard: the journal {path} is damaged")]
    assert len(said) == 1 and "starts over" in said[0]
    assert (sweep / f"{C.JOURNAL_FILE}.damaged").is_file()
    journal.check(path)
    assert len(json.loads((sweep / C.STATUS_FILE).read_text())) == 2
