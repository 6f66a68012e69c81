"""Multi-objective sweeps (`--objectives val_mse,params`): the refusals, ParetoASHA's ranking,
what the searcher is told, and the front `results/` builds (stopped trials never in it)."""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from optuna.trial import TrialState
from ray.tune.schedulers import TrialScheduler

from results.front import front_table, hypervolume_2d, study_dominance
from results.pareto import nondominated
from results.render import read_csv
from search import searchers
from search.fidelity import FidelityOptunaSearch, optuna_state
from search.pareto_asha import ParetoASHA, crowding, front_ranks, promoted
from search.sweep import SweepError, SweepSettings, prepare
from spaces import constants as C
from spaces.errors import UserError
from tests.conftest import refused

OBJECTIVES = (C.VAL_MSE, C.PARAMS)


# --- refusals ------------------------------------------------------------------------------------
@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize(("value", "says"), [
    ("val_mse,foo", "unknown metric 'foo'"),
    ("val_mse,val_mse", "names val_mse twice"),
    (",", "--objectives is empty"),
])
def test_bad_objectives_are_refused_with_exit_2(value, says, capsys):
    err = refused(["sweep", "--task", "mnist", "--objectives", value], capsys)
    assert says in err and "--objectives" in err


@pytest.mark.usefixtures("nothing_runs")
def test_more_objectives_than_the_searcher_optimizes_are_refused(capsys):
    err = refused(["sweep", "--task", "mnist", "--space", "report", "--objectives",
                   "val_mse,params"], capsys)
    assert "--search grid cannot optimize 2 metrics" in err


def test_settings_built_without_the_command_line_are_checked_too():
    with pytest.raises(UserError, match="unknown metric"):
        prepare(SweepSettings(task="mnist", objectives=("val_mse", "size"), storage="/x"))
    with pytest.raises((UserError, SweepError), match="cannot optimize 2"):
        prepare(SweepSettings(task="mnist", space="report", search="grid",
                              objectives=OBJECTIVES, storage="/x"))


# --- ParetoASHA ----------------------------------------------------------------------------------
def test_front_ranks_and_crowding_follow_nsga2():
    points = [(0.1, 9.0), (0.2, 5.0), (0.3, 1.0), (0.3, 9.0), (0.4, 10.0)]
    assert front_ranks(points) == [0, 0, 0, 1, 2]
    spread = crowding(points[:3])
    assert spread[0] == spread[2] == math.inf and spread[1] == pytest.approx(2.0)


def test_a_rung_keeps_its_front_first_and_its_two_ends_before_the_middle():
    rung = {"good": (0.1, 12_000.0), "middle": (0.13, 7_000.0), "small": (0.2, 4_900.0),
            "dominated": (0.3, 13_000.0)}
    kept = [t for t in rung if promoted(rung, t, 2)]  # top half of four: two
    assert kept == ["good", "small"]
    assert [t for t in rung if promoted(rung, t, 4)] == ["good"]


def _trial(trial_id: str, config: dict[str, Any] | None = None) -> Any:
    return SimpleNamespace(trial_id=trial_id, config=config or {})


def test_pareto_asha_stops_at_rungs_by_both_objectives_and_completes_at_max_t():
    asha = ParetoASHA(time_attr=C.TRAINING_ITERATION, objectives=OBJECTIVES, max_t=9,
                      grace_period=1, reduction_factor=3)
    at = C.TRAINING_ITERATION
    assert asha.on_trial_result(None, _trial("a"), {at: 1, C.VAL_MSE: 0.1, C.PARAMS: 9e4}) \
        == TrialScheduler.CONTINUE
    # dominated by "a": stopped, as single-metric ASHA would stop them too
    assert asha.on_trial_result(None, _trial("c"), {at: 1, C.VAL_MSE: 0.3, C.PARAMS: 1e5}) \
        == TrialScheduler.STOP
    assert asha.on_trial_result(None, _trial("d"), {at: 1, C.VAL_MSE: 0.15, C.PARAMS: 2e5}) \
        == TrialScheduler.STOP
    # the worst val_mse of the four, which ASHA on val_mse would stop; but the smallest, an
    # end of the rung's front, and a third of four rounds up to two: it goes on
    assert asha.on_trial_result(None, _trial("b"), {at: 1, C.VAL_MSE: 0.4, C.PARAMS: 1e3}) \
        == TrialScheduler.CONTINUE
    # a trial already judged at rung 1 is not judged there again
    assert asha.on_trial_result(None, _trial("a"), {at: 2, C.VAL_MSE: 0.5, C.PARAMS: 9e4}) \
        == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, _trial("a"), {at: 9, C.VAL_MSE: 0.1, C.PARAMS: 9e4}) \
        == TrialScheduler.STOP  # its whole budget: complete


def test_pareto_asha_never_stops_a_warm_start_point():
    asha = ParetoASHA(time_attr=C.TRAINING_ITERATION, objectives=OBJECTIVES, max_t=9,
                      grace_period=1, protect=[{"row": 1}])
    at = C.TRAINING_ITERATION
    asha.on_trial_result(None, _trial("a"), {at: 1, C.VAL_MSE: 0.1, C.PARAMS: 10.0})
    assert asha.on_trial_result(None, _trial("w", {"row": 1}),
                                {at: 1, C.VAL_MSE: 0.3, C.PARAMS: 20.0}) == TrialScheduler.CONTINUE


def test_pareto_asha_refuses_a_single_objective():
    with pytest.raises(ValueError, match="two objectives"):
        ParetoASHA(time_attr=C.TRAINING_ITERATION, objectives=(C.VAL_MSE,), max_t=9,
                   grace_period=1)


# --- what the searcher is told -------------------------------------------------------------------
def test_a_stopped_trial_is_pruned_and_a_full_one_complete_on_every_objective():
    full = {C.VAL_MSE: 0.1, C.PARAMS: 100, C.TRAINING_ITERATION: 4}
    assert optuna_state(full, list(OBJECTIVES), 4, False) == TrialState.COMPLETE
    assert optuna_state({**full, C.TRAINING_ITERATION: 2}, list(OBJECTIVES), 4, False) \
        == TrialState.PRUNED
    assert optuna_state({**full, C.PARAMS: None}, list(OBJECTIVES), 4, False) == TrialState.FAIL


@pytest.mark.parametrize("search", ["tpe", "random"])
def test_the_searcher_keeps_stopped_trials_off_its_front(search):
    settings = prepare(SweepSettings(task="mnist", search=search, max_epochs=2,
                                     objectives=OBJECTIVES, storage="/nonexistent", name="t"))
    searcher, _ = searchers.make(settings)
    assert isinstance(searcher, FidelityOptunaSearch)
    searcher.set_search_properties(None, None, {})
    full = settings.max_reports
    for i in range(6):
        searcher.suggest(f"t{i}")
        reports = full if i % 2 else 1  # every other trial stopped after one report
        # the stopped ones would dominate the whole front, had they counted
        searcher.on_trial_complete(f"t{i}", {C.VAL_MSE: 0.01 if i % 2 == 0 else 0.1 + i,
                                             C.PARAMS: 10 if i % 2 == 0 else 1000 - i,
                                             C.TRAINING_ITERATION: reports})
    study = searcher._ot_study
    assert study is not None and len(study.directions) == 2
    states = [t.state for t in study.trials]
    assert states.count(TrialState.PRUNED) == 3 and states.count(TrialState.COMPLETE) == 3
    assert all(t.values[0] >= 0.1 for t in study.best_trials)


# --- the front in results/ -----------------------------------------------------------------------
def _trials(rows: list[tuple[str, float, int, float, int]]) -> pd.DataFrame:
    return pd.DataFrame([{C.TRIAL_ID: t, "status": "TERMINATED", "notation": f"m{t}",
                          C.VAL_MSE: v, C.PARAMS: p, "epochs": e, "target_epochs": target,
                          "report_model": ""} for t, v, p, e, target in rows])


def test_the_front_holds_whole_budget_trials_only_smallest_first():
    trials = _trials([("a", 0.10, 9000, 2, 2), ("b", 0.20, 3000, 2, 2),
                      ("c", 0.30, 5000, 2, 2),  # dominated by b
                      ("d", 0.05, 100, 0.5, 2)])  # stopped early: would dominate all
    front = front_table(trials, OBJECTIVES)
    assert front[C.TRIAL_ID].tolist() == ["b", "a"]
    assert front.columns[:3].tolist() == ["notation", C.PARAMS, C.VAL_MSE]


def test_nondominated_keeps_ties_and_skips_missing_values():
    frame = pd.DataFrame({"x": [1, 1, 2, None], "y": [1, 1, 0, 0]})
    assert nondominated(frame, ["x", "y"]).index.tolist() == [0, 1, 2]


def test_study_dominance_names_the_smallest_covering_front_model():
    front = pd.DataFrame({"notation": ["s", "l"], C.PARAMS: [100, 900], C.VAL_MSE: [0.2, 0.1]})
    rows = pd.DataFrame({"report_model": ["r1", "r2"], "notation": ["x", "y"],
                         C.PARAMS: [1000, 50], C.VAL_MSE: [0.3, 0.01]})
    table = study_dominance(front, rows)
    assert table["covered"].tolist() == [True, False]
    assert table.loc[0, "front_notation"] == "s"


def test_hypervolume_2d_is_the_staircases_area():
    assert hypervolume_2d([(1, 3), (2, 1)], (4, 4)) == pytest.approx(3 * 1 + 2 * 2)
    assert hypervolume_2d([(5, 5)], (4, 4)) == 0
    assert hypervolume_2d([(1, 1), (2, 2)], (3, 3)) == pytest.approx(4)


@pytest.mark.slow
def test_a_multi_objective_sweep_writes_its_front(tmp_path, data_dir, capsys):
    """A real tiny sweep on two objectives: the searcher gets metric lists, ParetoASHA stops
    some trials, and `python -m results` writes the front of the trials that finished."""
    import ray

    from results import generate
    from search import Sweep

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = Sweep(task="mnist-denoise", objectives="val_mse,params", num_samples=6,
                       max_epochs=2, subset=128, val_subset=64, report_images=64,
                       max_params=20_000, storage=str(tmp_path), name="mo",
                       data_dir=str(data_dir)).run()
    finally:
        ray.shutdown()
    assert "front on val_mse, params: " in capsys.readouterr().out  # the sweep's last lines
    meta = json.loads((result.experiment_dir / C.SWEEP_FILE).read_text())
    assert meta["objectives"] == list(OBJECTIVES)
    outputs = generate([result.experiment_dir])
    front = read_csv(result.experiment_dir / C.TABLES_DIR / "front.csv")
    board = result.leaderboard
    whole = board[board["epochs"] >= 2]
    assert 1 <= len(front) <= len(whole)
    assert set(front[C.TRIAL_ID]) <= set(whole[C.TRIAL_ID])
    assert "front of mo on val_mse, params" in outputs.summary
    assert board[C.LATENCY].dropna().gt(0).all()


def test_a_sweep_recorded_before_objectives_existed_resumes_as_single_objective(
        tmp_path, monkeypatch):
    """sweep.json files written before --objectives lack the key: such a sweep optimized
    val_mse alone, and resuming it so is not a change of settings."""
    from search import sweep

    settings = SweepSettings(task="mnist", storage=str(tmp_path), name="old", max_epochs=2)
    meta = sweep._sweep_meta(settings, finished=False)
    del meta["objectives"]
    settings.experiment_dir.mkdir(parents=True)
    (settings.experiment_dir / C.SWEEP_FILE).write_text(json.dumps(meta))
    monkeypatch.setattr(sweep.tune.Tuner, "can_restore", staticmethod(lambda path: True))
    monkeypatch.setattr(sweep, "_check_ray_state", lambda settings: None)
    sweep._check_resume(settings, resume=True)  # no refusal
    two = dataclasses.replace(settings, objectives=OBJECTIVES)
    with pytest.raises(SweepError, match="--objectives was"):
        sweep._check_resume(two, resume=True)
