"""search/fidelity.py: what TPE learns from stopped trials, and the whole-sweep budget."""

from __future__ import annotations

import functools
import math

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.schedulers import TrialScheduler

from search.fidelity import BudgetStopper, FidelityOptunaSearch, WarmStartASHA, optuna_state
from spaces import REGISTRY
from spaces import constants as C
from spaces.default import sample


def _result(value: float, reports: int, **extra: object) -> dict[str, object]:
    return {C.VAL_MSE: value, C.TRAINING_ITERATION: reports, **extra}


@pytest.mark.parametrize(
    ("result", "error", "state"),
    [(_result(0.02, 6), False, TrialState.COMPLETE),
     (_result(0.05, 1), False, TrialState.PRUNED),  # ASHA stopped it at its first rung
     (_result(0.09, 1, verdict=C.Status.COLLAPSED), False, TrialState.PRUNED),
     (_result(math.nan, 1, verdict=C.Status.DIVERGED), False, TrialState.FAIL),
     (_result(0.02, 6), True, TrialState.FAIL),
     (None, False, TrialState.FAIL)],
)
def test_optuna_state(result, error, state):
    assert optuna_state(result, C.VAL_MSE, 6, error) == state


def test_tpe_is_told_stopped_trials_as_pruned_with_their_last_rung():
    """Through Ray's searcher API: a trial stopped after 1 of 6 reports is PRUNED with its
    intermediate value, so TPE ranks it below every complete trial (Optuna's own rule)."""
    space = functools.partial(sample, bounds=REGISTRY["mnist-denoise"].default)
    searcher = FidelityOptunaSearch(space=space, metric=C.VAL_MSE, mode="min", max_t=6,
                                    sampler=optuna.samplers.RandomSampler(seed=0))
    for trial_id, values in (("full", [0.05, 0.03, 0.02, 0.02, 0.02, 0.019]),
                             ("stopped", [0.01])):
        assert searcher.suggest(trial_id)
        for step, value in enumerate(values, start=1):
            searcher.on_trial_result(trial_id, _result(value, step))
        searcher.on_trial_complete(trial_id, _result(values[-1], len(values)))
    assert searcher._ot_study is not None
    trials = {t.number: t for t in searcher._ot_study.trials}
    assert trials[0].state == TrialState.COMPLETE and trials[0].value == pytest.approx(0.019)
    assert trials[1].state == TrialState.PRUNED
    assert trials[1].intermediate_values == {1: 0.01}


def test_budget_stopper_counts_each_trial_once_and_survives_a_restart(tmp_path):
    path = tmp_path / "budget.json"
    stopper = BudgetStopper(1000, path)
    assert not stopper("a", {C.IMAGES: 300})
    assert not stopper("a", {C.IMAGES: 600})  # the same trial further on: 600 in all
    assert not stopper("b", {C.IMAGES: 300})
    assert stopper.spent == 900
    again = BudgetStopper(1000, path)  # a resumed sweep reads what was spent
    assert again.spent == 900
    assert again("b", {C.IMAGES: 400}) and again.stop_all()


class _Trial:
    """What ASHA reads of a Ray trial: its id and config."""

    def __init__(self, trial_id: str, config: dict[str, object]) -> None:
        self.trial_id, self.config = trial_id, config


def test_warm_start_trials_are_never_stopped_early():
    """ASHA stops a trial whose first rung is worse than the others'; a warm-start trial
    (the study's row) with the same bad value runs on, so its final result is kept."""
    asha = WarmStartASHA(time_attr=C.TRAINING_ITERATION, max_t=9, grace_period=1,
                         reduction_factor=3, metric=C.VAL_MSE, mode="min",
                         protect=[{"depth": 4, "filters": 32}])
    good = [_Trial(f"good{i}", {"depth": 2, "filters": 16}) for i in range(4)]
    row = _Trial("row", {"depth": 4, "filters": 32, "lr": 1e-3})
    bad = _Trial("bad", {"depth": 6, "filters": 16})
    for trial in (*good, row, bad):
        asha.on_trial_add(None, trial)  # type: ignore[arg-type]  # ASHA reads id and config
    for i, trial in enumerate(good):
        asha.on_trial_result(None, trial, _result(0.01 + i * 1e-4, 1))
    assert asha.on_trial_result(None, bad, _result(0.5, 1)) == TrialScheduler.STOP
    assert asha.on_trial_result(None, row, _result(0.5, 1)) == TrialScheduler.CONTINUE
