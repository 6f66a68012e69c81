"""Faults injected for real: killed and interrupted drivers, damaged and moved sweep dirs, trials
that raise, run out of memory, diverge or are refused, and a dead worker node.

The sweeps run through `bench/faults.py` (the same scenarios `python bench/faults.py` tabulates),
each driver in its own process group and Ray instance, which is all a test here ever kills. The
fast tests below check the pieces without Ray.
"""

from __future__ import annotations

import json
import logging
import pickle
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from sweep_files import write_status, write_sweep, write_trial

from results.generator import generate
from search import progress
from search.sweep import SweepError, SweepSettings, _check_resume, _sweep_meta, damaged_ray_state
from search.trainable import out_of_memory
from spaces import constants as C
from spaces.config import ModelConfig

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import faults  # noqa: E402


def failures(rows: list[faults.Row]) -> dict[str, list[str]]:
    return {r.fault: [*r.notes, *([f"lost {r.lost}"] if r.lost else []),
                      *([f"re-ran {r.rerun}"] if r.rerun else []),
                      *([] if r.valid else ["leaderboard invalid"])]
            for r in rows if r.notes or r.lost or r.rerun or not r.valid}


# --- real sweeps ------------------------------------------------------------------------------
@pytest.mark.slow
def test_killed_interrupted_damaged_and_moved_sweeps_resume_without_losing_a_trial(
        tmp_path, data_dir):
    """SIGKILL while trials start, Ctrl-C mid-epoch (exit 130, one resume hint, INTERRUPTED),
    SIGKILL mid-way through a leaderboard rewrite; truncated experiment and searcher state
    refused with one line and nothing changed; a copy resumed in its new place with the
    original moved away; then every trial finished exactly once, none trained twice."""
    rows = faults.kills(tmp_path, data_dir)
    assert len(rows) == 6 and all(r.injected for r in rows)
    assert failures(rows) == {}


@pytest.mark.slow
def test_trials_that_raise_run_out_of_memory_diverge_or_are_refused(tmp_path, data_dir):
    """Each is marked with its status and reason, printed once, not retried where a retry
    cannot help; a NaN trial stops at its first report; the healthy trial finishes."""
    rows = faults.trial_faults(tmp_path, data_dir)
    assert [r.fault for r in rows] == ["trial raises", "trial out of memory", "NaN loss",
                                       "guard refusal"]
    assert failures(rows) == {}


@pytest.mark.slow
def test_a_grid_moved_before_it_made_all_its_trials_finishes_them_in_its_new_place(
        tmp_path, data_dir):
    """The grid points still to come live only in Ray's saved generator state, with their
    storage and an unresolved model; both must follow the resume."""
    assert failures(faults.grid_resume(tmp_path, data_dir)) == {}


@pytest.mark.integration
def test_a_trial_on_a_dead_worker_node_continues_on_a_live_one(tmp_path, data_dir):
    rows = faults.node_death(tmp_path, data_dir)
    assert failures(rows) == {}


# --- the pieces -------------------------------------------------------------------------------
def _settings(tmp_path: Path) -> SweepSettings:
    return SweepSettings(task="mnist", space="study-axes", search="random", scheduler="fifo",
                         num_samples=2, max_epochs=1, storage=str(tmp_path), name="s")


def _sweep_with_ray_state(tmp_path: Path) -> Path:
    settings = _settings(tmp_path)
    sweep = settings.experiment_dir
    sweep.mkdir(parents=True)
    (sweep / C.SWEEP_FILE).write_text(json.dumps(_sweep_meta(settings, finished=False)))
    (sweep / "tuner.pkl").write_bytes(pickle.dumps({"a": list(range(100))}))
    (sweep / "experiment_state-2026-01-01_00-00-00.json").write_text(
        json.dumps({"trial_data": [["x", "y"]], "runner_data": {}, "stats": {}}))
    (sweep / "searcher-state-2026-01-01_00-00-00.pkl").write_bytes(pickle.dumps([1.0] * 50))
    return sweep


@pytest.mark.parametrize("name", ["tuner.pkl", "experiment_state-2026-01-01_00-00-00.json",
                                  "searcher-state-2026-01-01_00-00-00.pkl"])
def test_resume_refuses_truncated_ray_state_naming_the_file_and_writes_nothing(tmp_path, name):
    sweep = _sweep_with_ray_state(tmp_path)
    assert damaged_ray_state(sweep) is None
    _check_resume(_settings(tmp_path), resume=True)  # intact: accepted
    target = sweep / name
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    before = {p.name: p.read_bytes() for p in sweep.iterdir()}
    with pytest.raises(SweepError) as refused:
        _check_resume(_settings(tmp_path), resume=True)
    message = str(refused.value)
    assert name in message and "damaged" in message and "\n" not in message
    assert {p.name: p.read_bytes() for p in sweep.iterdir()} == before


def test_the_newest_experiment_state_is_the_one_checked(tmp_path):
    sweep = _sweep_with_ray_state(tmp_path)
    (sweep / "experiment_state-2026-02-01_00-00-00.json").write_text('{"trial_data": [')
    path, what = damaged_ray_state(sweep) or (None, "")
    assert path is not None and path.name == "experiment_state-2026-02-01_00-00-00.json"
    (sweep / path.name).unlink()
    (sweep / "experiment_state-2026-01-01_00-00-00.json").unlink()
    path, what = damaged_ray_state(sweep) or (None, "")
    assert what == "missing"


def test_sweep_json_holds_no_local_path(tmp_path):
    meta = _sweep_meta(_settings(tmp_path))
    assert meta["storage"] is None and str(tmp_path) not in json.dumps(meta)
    uri = SweepSettings(task="mnist", storage="s3://bucket/sweeps")
    assert _sweep_meta(uri)["storage"] == "s3://bucket/sweeps"


def _trial(trial_id: str, status: str, epoch: float | None = None) -> SimpleNamespace:
    config = {C.MODEL_KEY: ModelConfig(task="mnist", filters=(8, 8), epochs=2).to_dict()}
    result = {C.EPOCH: epoch, C.VAL_MSE: 0.1, C.TRAIN_LOSS: 0.1, C.VAL_LOSS: 0.1,
              C.TRAIN_MSE: 0.1, C.VAL_RMSE: 0.3} if epoch is not None else {}
    return SimpleNamespace(trial_id=trial_id, status=status, config=config, last_result=result,
                           error_file="/nonexistent")


def test_trials_ray_stops_on_ctrl_c_are_interrupted_not_finished(tmp_path):
    callback = progress.SweepCallback(tmp_path, {"task": "mnist", "max_epochs": 2})
    restored = _trial("a_00000", C.Status.TERMINATED, 2)  # finished in an earlier session
    done = _trial("a_00001", C.Status.RUNNING, 2)
    running = _trial("a_00002", C.Status.RUNNING, 1)
    starting = _trial("a_00003", C.Status.PENDING)
    waiting = _trial("a_00004", C.Status.PENDING)
    trials = [restored, done, running, starting, waiting]
    progress.watch_interrupts()
    callback.on_step_begin(0, trials)
    callback.on_trial_complete(1, trials, done)
    done.status = C.Status.TERMINATED
    logging.getLogger("ray.tune.tune").warning("Stop signal received (e.g. via SIGINT/Ctrl+C)")
    assert progress.INTERRUPTED.is_set()
    running.status = starting.status = C.Status.TERMINATED  # what Ray's cleanup does
    callback.on_experiment_end(trials)
    statuses = json.loads((tmp_path / C.STATUS_FILE).read_text())
    assert statuses == {"a_00000": "TERMINATED", "a_00001": "TERMINATED",
                        "a_00002": "INTERRUPTED", "a_00003": "INTERRUPTED",
                        "a_00004": "PENDING"}
    progress.watch_interrupts()
    assert not progress.INTERRUPTED.is_set()


def test_a_resumed_sweeps_progress_line_starts_from_the_trials_it_has(tmp_path):
    callback = progress.SweepCallback(tmp_path, {"task": "mnist", "max_epochs": 2,
                                                 "num_samples": 3})
    trials = [_trial("a_00000", C.Status.TERMINATED, 2), _trial("a_00001", C.Status.PENDING)]
    callback.setup()
    callback.on_step_begin(0, trials)
    line = callback.console.progress.line()
    assert line.startswith("progress: 1/3 trials | best 0.10000"), line


@pytest.mark.parametrize("verbose", [False, True])
def test_rays_interrupt_messages_give_way_to_ours(caplog, capsys, verbose):
    """Ray's resume hint (Tuner.restore) is always dropped; its timestamped interrupt warning
    becomes one line of ours unless --verbose."""
    logger = logging.getLogger("ray.tune.tune")
    progress.watch_interrupts(verbose)
    with caplog.at_level(logging.INFO, logger="ray.tune.tune"):
        logger.warning("Stop signal received (e.g. via SIGINT/Ctrl+C), ending Ray Tune run.")
        logger.warning("Experiment has been interrupted, but the most recent state was saved.\n"
                       "Resume experiment with: Tuner.restore(path=..., trainable=...)")
        logger.info("Total run time: 3.00 seconds")
    assert progress.INTERRUPTED.is_set()
    text, printed = caplog.text, capsys.readouterr().out
    assert "Total run time" in text and "Tuner.restore" not in text
    assert ("Stop signal received" in text) is verbose
    assert printed == ("" if verbose else progress.STOPPING + "\n")
    progress.watch_interrupts()


def test_results_say_an_interrupted_sweep_was_interrupted(tmp_path):
    sweep = tmp_path / "s"
    write_sweep(sweep, "mnist", finished=False, max_epochs=2)
    meta = json.loads((sweep / C.SWEEP_FILE).read_text())
    (sweep / C.SWEEP_FILE).write_text(json.dumps({**meta, "interrupted": True}))
    config = ModelConfig(task="mnist", filters=(8, 8), epochs=2)
    write_trial(sweep, "abcde_00000", config, [0.05, 0.04])
    write_trial(sweep, "abcde_00001", config, [0.06])
    write_status(sweep, {"abcde_00000": C.Status.TERMINATED,
                         "abcde_00001": C.Status.INTERRUPTED, "abcde_00002": C.Status.PENDING})
    report = generate([sweep])
    assert "1 TERMINATED, 1 INTERRUPTED, 1 PENDING" in report.summary
    assert "was interrupted" in report.summary and "still running" not in report.summary
    board = report.board.set_index(C.TRIAL_ID)
    assert board.loc["abcde_00001", "status"] == C.Status.INTERRUPTED


def test_out_of_memory_is_told_from_other_errors():
    class ResourceExhaustedError(Exception):
        pass

    assert out_of_memory(MemoryError()) and out_of_memory(ResourceExhaustedError("OOM"))
    assert not out_of_memory(RuntimeError("boom")) and not out_of_memory(ValueError())


def test_a_restored_searcher_creates_its_next_trials_where_the_sweep_is_now(tmp_path):
    """Ray restores a searcher's experiment spec with the storage it was pickled with; a
    moved sweep's new trials would write to (and fail on) the original folder."""
    from ray.tune.experiment import Experiment
    from ray.tune.search import Searcher

    from search.relocate import RelocatableSearchGenerator

    def state() -> dict:
        experiment = Experiment("sweep", run=lambda config: None, storage_path=str(tmp_path / "a"))
        return {"counter": 3, "total_samples": 4, "finished": False, "experiment": experiment}

    kept = RelocatableSearchGenerator(Searcher())
    kept.set_state(state())  # not relocated: as Ray restored it
    assert kept._experiment is not None
    assert kept._experiment.spec["storage"].storage_fs_path == str(tmp_path / "a")

    moved = RelocatableSearchGenerator(Searcher())
    moved.storage_path, moved.name = str(tmp_path / "b"), "sweep"
    moved.set_state(state())
    assert moved._experiment is not None
    storage = moved._experiment.spec["storage"]
    assert storage.storage_fs_path == str(tmp_path / "b")
    assert storage.experiment_fs_path == str(tmp_path / "b" / "sweep")
    assert moved._experiment.storage is storage and moved._counter == 3


def test_a_restored_grid_creates_its_remaining_points_where_the_sweep_is_now(tmp_path):
    """A grid larger than Ray's pending-trial limit creates its later points after a resume;
    Ray's BasicVariantGenerator keeps their resolved specs, storage included, in its state."""
    import copy

    from ray import tune
    from ray.tune.experiment import Experiment
    from ray.tune.search import BasicVariantGenerator

    from search.relocate import RelocatableVariantGenerator

    grid = BasicVariantGenerator()
    grid.add_configurations(Experiment("sweep", run=lambda config: None,
                                       storage_path=str(tmp_path / "a"),
                                       config={"row": tune.grid_search([1, 2, 3])}))
    first = grid.next_trial()
    assert first.config == {"row": 1}
    state = grid.get_state()

    kept = BasicVariantGenerator()  # as Ray restores it
    kept.set_state(copy.deepcopy(state))
    assert kept.next_trial().storage.storage_fs_path == str(tmp_path / "a")

    moved = RelocatableVariantGenerator()
    moved.storage_path, moved.name = str(tmp_path / "b"), "sweep"
    moved.set_state(copy.deepcopy(state))
    trials = [moved.next_trial(), moved.next_trial()]
    assert [trial.config for trial in trials] == [{"row": 2}, {"row": 3}]
    for trial in trials:
        assert trial.storage.storage_fs_path == str(tmp_path / "b")
        assert trial.storage.experiment_fs_path == str(tmp_path / "b" / "sweep")
    assert moved.next_trial() is None and moved.is_finished()
