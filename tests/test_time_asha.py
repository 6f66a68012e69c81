"""search/time_asha.py: ASHA in seconds fitted to a time budget; and what the searcher is told of
its trials."""

from __future__ import annotations

import functools
import math

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.schedulers import TrialScheduler

from search.fidelity import FidelityOptunaSearch, optuna_state, step_of
from search.sweep import SweepSettings
from search.time_asha import ETA, MIN_RUNG_S, TOP_SHARE, TimeASHA, time_rungs
from spaces import REGISTRY
from spaces import constants as C
from spaces.default import sample

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


class _Trial:
    def __init__(self, trial_id: str, config: dict[str, object] | None = None) -> None:
        self.trial_id, self.config = trial_id, config or {"depth": 2}


def _at(value: float, seconds: float) -> dict[str, float]:
    return {C.VAL_MSE: value, C.SECONDS: seconds}


def test_rungs_are_a_factor_three_apart_below_a_ninth_of_the_budget():
    assert time_rungs(240) == pytest.approx((240 / 81, 240 / 27))
    rungs = time_rungs(20 * 60)
    assert rungs[-1] == pytest.approx(20 * 60 * TOP_SHARE) and len(rungs) == 3
    assert rungs == pytest.approx((rungs[-1] / 9, rungs[-1] / 3, rungs[-1]))
    assert rungs[0] >= MIN_RUNG_S > rungs[0] / ETA
    assert time_rungs(10) == pytest.approx((10 / 27,))  # a tiny budget: the top rung alone
    for bad in (0, -5, math.inf, math.nan):
        with pytest.raises(ValueError, match="time budget"):
            time_rungs(bad)


def test_it_is_asha_on_seconds_and_every_trial_stops_at_the_top_rung():
    asha = TimeASHA((3.0, 9.0, 27.0))
    first, good, bad = _Trial("first"), _Trial("good"), _Trial("bad")
    assert asha.on_trial_result(None, first, _at(0.05, 1.0)) == CONTINUE  # before any rung
    assert asha.on_trial_result(None, first, _at(0.04, 3.5)) == CONTINUE  # alone at 3 s
    assert asha.on_trial_result(None, good, _at(0.02, 3.1)) == CONTINUE
    assert asha.on_trial_result(None, bad, _at(0.09, 3.2)) == STOP  # not in the best third
    # Judged once per rung: later reports before the next rung go on.
    assert asha.on_trial_result(None, first, _at(0.5, 8.0)) == CONTINUE
    # A report that jumps past two rungs is judged at the higher one.
    late = _Trial("late")
    assert asha.on_trial_result(None, late, _at(0.01, 10.0)) == CONTINUE
    assert "late" in asha._recorded[1] and "late" not in asha._recorded[0]
    assert asha.on_trial_result(None, first, {C.VAL_MSE: 0.1}) == CONTINUE  # no time: no call
    # The top rung ranks configs at equal cost; everyone stops there, the best too.
    assert asha.on_trial_result(None, late, _at(0.001, 27.5)) == STOP
    assert asha._recorded[2] == {"late": -0.001}


def test_warm_start_rows_reach_the_top_rung_and_the_exploit_trial_is_never_stopped():
    row = {"depth": 4, "filters": 32}
    asha = TimeASHA((3.0, 9.0), protect=[row])
    assert asha.on_trial_result(None, _Trial("x"), _at(0.01, 3.0)) == CONTINUE
    assert asha.on_trial_result(None, _Trial("y"), _at(0.005, 3.0)) == CONTINUE
    assert asha.on_trial_result(None, _Trial("bad"), _at(0.9, 3.0)) == STOP
    warm = _Trial("row", {**row, "lr": 1e-3})
    assert asha.on_trial_result(None, warm, _at(0.9, 3.0)) == CONTINUE
    # At the top rung the row is ranked at equal cost and stops, like every other trial.
    assert asha.on_trial_result(None, warm, _at(0.002, 9.0)) == STOP
    assert asha._recorded[-1]["row"] == -0.002
    winner = _Trial("winner", {"depth": 2, C.EXPLOIT: True})
    for seconds in (3.0, 9.0, 200.0):
        assert asha.on_trial_result(None, winner, _at(0.9, seconds)) == CONTINUE


def test_a_trial_without_a_finite_value_is_the_worst_at_its_rung():
    asha = TimeASHA((3.0, 9.0))
    assert asha.on_trial_result(None, _Trial("nan"), _at(math.nan, 3.0)) == CONTINUE  # alone
    assert asha.on_trial_result(None, _Trial("ok"), _at(0.5, 3.0)) == CONTINUE
    assert asha.on_trial_result(None, _Trial("ok2"), _at(0.6, 3.0)) == STOP  # not best third
    assert asha.on_trial_result(None, _Trial("nan2"), _at(math.inf, 3.0)) == STOP


def test_its_state_survives_save_and_restore(tmp_path):
    asha = TimeASHA((3.0, 9.0))
    for name, value in (("a", 0.03), ("b", 0.02)):
        asha.on_trial_result(None, _Trial(name), _at(value, 3.0))
    asha.save(str(tmp_path / "asha.pkl"))
    again = TimeASHA((1.0,))
    again.restore(str(tmp_path / "asha.pkl"))
    assert again.rungs == (3.0, 9.0)
    assert again.on_trial_result(None, _Trial("c"), _at(0.05, 3.0)) == STOP


def test_the_searcher_hears_seconds_as_steps_and_the_top_rung_as_complete():
    """Through Ray's searcher API: a trial stopped at 3 s is PRUNED with its value filed
    under 3,000 ms, and one that passed the top rung (27 s) is COMPLETE."""
    space = functools.partial(sample, bounds=REGISTRY["mnist"].default)
    searcher = FidelityOptunaSearch(space=space, metric=C.VAL_MSE, mode="min", max_t=27.0,
                                    time_attr=C.SECONDS,
                                    sampler=optuna.samplers.RandomSampler(seed=0))
    runs = {"leader": [(0.05, 3.0), (0.02, 9.5), (0.01, 27.5), (0.005, 90.0)],
            "stopped": [(0.2, 1.2), (0.1, 3.0)]}
    for trial_id, reports in runs.items():
        assert searcher.suggest(trial_id)
        for value, seconds in reports[:-1]:
            searcher.on_trial_result(trial_id, _at(value, seconds))
        # Ray hands the result a scheduler stopped a trial on to on_trial_complete only.
        searcher.on_trial_complete(trial_id, _at(*reports[-1]))
    study = searcher._ot_study
    assert study is not None
    leader, stopped = study.trials
    assert leader.state == TrialState.COMPLETE and leader.value == pytest.approx(0.005)
    assert leader.intermediate_values == {3000: 0.05, 9500: 0.02, 27500: 0.01}
    assert stopped.state == TrialState.PRUNED
    assert stopped.intermediate_values == {1200: 0.2, 3000: 0.1}


def test_optuna_state_and_step_in_seconds():
    assert optuna_state(_at(0.01, 26.9), C.VAL_MSE, 27.0, False,
                        time_attr=C.SECONDS) == TrialState.PRUNED
    assert optuna_state(_at(0.01, 27.0), C.VAL_MSE, 27.0, False,
                        time_attr=C.SECONDS) == TrialState.COMPLETE
    assert step_of(_at(0.01, 2.5), C.SECONDS) == 2500
    assert step_of({C.TRAINING_ITERATION: 4}) == 4
    assert step_of({}, C.SECONDS) is None


def test_a_time_budget_puts_an_asha_sweep_on_seconds():
    timed = SweepSettings(task="mnist", time_budget_s=240.0)
    assert timed.by_time and timed.fidelity == (C.SECONDS, pytest.approx(240 / 27))
    for untimed in (SweepSettings(task="mnist"),
                    SweepSettings(task="mnist", time_budget_s=240.0, scheduler="fifo"),
                    SweepSettings(task="mnist", time_budget_s=240.0,
                                  objectives=(C.VAL_MSE, C.PARAMS))):
        assert not untimed.by_time
        assert untimed.fidelity == (C.TRAINING_ITERATION, untimed.max_reports)
