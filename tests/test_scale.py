"""The driver's bookkeeping at scale (issue 25): the live files are rewritten at a bounded
share of the driver's time, and an ended trial's leaderboard row is built once."""

from __future__ import annotations

import json
from types import SimpleNamespace

from search import progress
from spaces import constants as C
from spaces.config import ModelConfig


def _trial(trial_id: str, status: str, epoch: float | None = 1.0) -> SimpleNamespace:
    config = {C.MODEL_KEY: ModelConfig(task="mnist", filters=(8, 8), epochs=1).to_dict()}
    result = {C.EPOCH: epoch, C.VAL_MSE: 0.1, C.TRAIN_LOSS: 0.1, C.VAL_LOSS: 0.1,
              C.TRAIN_MSE: 0.1, C.VAL_RMSE: 0.3, C.TRAINING_ITERATION: 1,
              "time_total_s": 2.0} if epoch is not None else {}
    return SimpleNamespace(trial_id=trial_id, status=status, config=config, last_result=result,
                           error_file="/nonexistent")


def _statuses(tmp_path):
    return json.loads((tmp_path / C.STATUS_FILE).read_text())


def test_an_ended_trials_row_is_built_once_however_many_rewrites(tmp_path, monkeypatch):
    built: list[str] = []
    real = progress.trial_record

    def counting(trial, meta, status):
        built.append(trial.trial_id)
        return real(trial, meta, status)

    monkeypatch.setattr(progress, "trial_record", counting)
    callback = progress.SweepCallback(tmp_path, {"task": "mnist", "max_epochs": 1})
    trials = [_trial(f"a_{i:05d}", C.Status.TERMINATED) for i in range(50)]
    trials.append(_trial("a_00050", C.Status.RUNNING, epoch=0.5))
    for _ in range(4):
        callback._update(trials, force=True)
    # Ended trials once each; the running one at every rewrite (its result still changes).
    assert sorted(built) == sorted([t.trial_id for t in trials[:50]] + ["a_00050"] * 4)


def test_a_rewrite_waits_while_the_last_one_would_take_more_than_its_share(tmp_path):
    callback = progress.SweepCallback(tmp_path, {"task": "mnist", "max_epochs": 1})
    first = _trial("a_00000", C.Status.PENDING, epoch=None)
    trials = [first]
    callback.on_trial_start(0, trials, first)
    assert _statuses(tmp_path) == {"a_00000": C.Status.PENDING}
    # As if that rewrite had taken a second: the next may wait for 1 / WRITE_SHARE seconds.
    callback._write_seconds = 1.0
    first.status = C.Status.RUNNING
    second = _trial("a_00001", C.Status.PENDING, epoch=None)
    trials.append(second)
    callback.on_trial_start(1, trials, second)
    callback.on_step_end(1, trials)
    assert _statuses(tmp_path) == {"a_00000": C.Status.PENDING}  # deferred
    callback._written_at -= 1.0 / progress.WRITE_SHARE  # ... until that time has passed
    callback.on_step_end(2, trials)
    assert _statuses(tmp_path) == {"a_00000": C.Status.RUNNING, "a_00001": C.Status.PENDING}
    # The end of the sweep always writes.
    callback._write_seconds = 1.0
    first.status = second.status = C.Status.TERMINATED
    callback.on_experiment_end(trials)
    assert set(_statuses(tmp_path).values()) == {C.Status.TERMINATED}
