"""bench/searchers.py's arithmetic: the leaderboard at a time or an image count, the time to
reach a target, and the RESULT lines, on made-up reports (the benchmark itself runs sweeps)."""

from __future__ import annotations

import argparse
import math
from types import SimpleNamespace

from bench.searchers import _command, _sweep_reports, best_at, summarize, time_to_reach
from spaces import constants as C


def _r(t: float, images: int, trial: str, value: float, ok: bool = True) -> dict[str, object]:
    return {"t": t, "images": images, "trial": trial, "value": value, "ok": ok}


REPORTS = [_r(1, 100, "a", 0.05), _r(2, 200, "b", 0.02, ok=False), _r(3, 300, "a", 0.04),
           _r(5, 400, "c", 0.03), _r(8, 500, "c", 0.035)]


def test_best_at_is_the_leaderboard_then_healthy_last_reports_only():
    assert best_at(REPORTS, t=0.5) == math.inf
    assert best_at(REPORTS, t=2) == 0.05  # b collapsed: never ranked
    assert best_at(REPORTS, t=5) == 0.03
    assert best_at(REPORTS) == 0.035  # c's last report, as the leaderboard ranks it
    assert best_at(REPORTS, images=300) == 0.04


def test_a_run_that_collapses_later_never_counts_by_its_earlier_reports():
    """The best row alone reports as it trains; when it collapses at last, its earlier figures
    are a collapsed trial's, as the leaderboard would rank it: never the best."""
    reports = [{"t": 1.0, "images": 100, "trial": "row", "value": 0.11, "ok": True},
               {"t": 2.0, "images": 200, "trial": "row", "value": 0.11, "ok": False}]
    assert best_at(reports, t=1.5) == math.inf


def test_time_to_reach_is_a_fraction_of_the_budget():
    assert time_to_reach(REPORTS, 0.04, budget=10) == 0.3
    assert time_to_reach(REPORTS, 0.01, budget=10) == math.inf


def test_summarize_compares_each_pair_at_equal_time():
    def job(arm: str, seed: int, scale: float) -> dict[str, object]:
        reports = [{**r, "value": r["value"] * scale} for r in REPORTS]  # type: ignore[operator]
        return {"task": "mnist", "seed": seed, "arm": arm, "time_budget": 10,
                "reports": reports}

    jobs = [job("tpe", 0, 1.0), job("random", 0, 2.0), job("tpe", 1, 1.2), job("random", 1, 1.0),
            job("best-row", 0, 4.0), job("best-row", 1, 4.0)]
    lines = summarize(jobs)
    results = dict(line.removeprefix("RESULT ").split("=") for line in lines
                   if line.startswith("RESULT"))
    assert float(results["search_vs_random"]) == (0.5 + 1.2) / 2
    assert results["search_losses"] == "1"  # seed 1: 1.2 > 1.05
    assert float(results["search_vs_best_row"]) == 0.275  # median over tasks of seed medians
    assert "warm_start_vs_tpe" not in results  # no tpe-warm arm ran
    # A task whose best row did not run counts in no median over tasks (it was a NaN).
    text = [{**j, "task": "text"} for j in jobs if j["arm"] != "best-row"]
    results = dict(line.removeprefix("RESULT ").split("=") for line in summarize(jobs + text)
                   if line.startswith("RESULT"))
    assert float(results["search_vs_best_row"]) == 0.275


def test_a_sweeps_reports_say_which_came_from_a_trained_on_trial():
    """The mark a trained-on trial's config carries (search/exploit.py) reaches its reports,
    placed in time by when the trial started plus its time so far."""
    import pandas as pd

    def result(trial: str, exploit: bool, started: float) -> SimpleNamespace:
        frame = pd.DataFrame({C.VAL_MSE: [0.2, 0.1], C.IMAGES: [100, 200],
                              C.STARTED_AT: [started, started], "time_total_s": [1.0, 2.0]})
        return SimpleNamespace(metrics_dataframe=frame, error=None, path=trial,
                               metrics={C.TRIAL_ID: trial},
                               config={"model": {}, **({C.EXPLOIT: True} if exploit else {})})

    reports = _sweep_reports([result("a", False, 100.0), result("b", True, 104.0)], start=100.0)
    assert [(r["trial"], r["t"], r["exploit"]) for r in reports] == [
        ("a", 1.0, False), ("a", 2.0, False), ("b", 5.0, True), ("b", 6.0, True)]
    assert reports[-1]["images"] == 400  # both trials' images by then


def test_the_floor_under_time_to_match_is_when_the_first_trained_on_trial_reported():
    """Random search's final is its trained-on trial's, so tpe matches it no earlier than its
    own trained-on trial first reports; runs that did not record the mark print no floor."""
    def job(arm: str, scale: float, *, marked: bool = True) -> dict[str, object]:
        reports = [{**r, "value": float(r["value"]) * scale} for r in REPORTS]  # type: ignore[arg-type]
        if marked:
            reports = [{**r, "exploit": r["trial"] == "c"} for r in reports]
        return {"task": "mnist", "seed": 0, "arm": arm, "time_budget": 10, "reports": reports}

    lines = summarize([job("tpe", 1.0), job("random", 1.0)])
    assert "RESULT trained_on_from=0.500" in lines  # c's first report at 5 s of 10
    assert "RESULT time_to_match_random=0.500" in lines  # not below the floor
    unmarked = summarize([job("tpe", 1.0, marked=False), job("random", 1.0, marked=False)])
    assert not any(line.startswith("RESULT trained_on_from") for line in unmarked)


def test_the_best_rows_time_to_match_random_is_the_reference_for_tpes():
    """The study's best row, trained alone from the start, against random search's final:
    what `time_to_match_random` asks of a good config with the whole budget and no search.
    A row that never reaches it counts as inf, and the MSE-collapsed row's BCE twin stands in."""
    def job(arm: str, scale: float, seed: int = 0, task: str = "mnist") -> dict[str, object]:
        reports = [{**r, "value": float(r["value"]) * scale} for r in REPORTS]  # type: ignore[arg-type]
        return {"task": task, "seed": seed, "arm": arm, "time_budget": 10, "reports": reports}

    # random's final is 0.035 x 1.0; the row at half the values reaches 0.035 at t=1 (0.025)
    jobs = [job("tpe", 1.0), job("random", 1.0), job("best-row", 0.5)]
    frame_lines = summarize(jobs)
    assert "RESULT row_time_to_match_random=0.100" in frame_lines
    # Seed 1: the row never gets there (inf); the median of 0.1 and inf is inf.
    jobs += [job("tpe", 1.0, 1), job("random", 1.0, 1), job("best-row", 10.0, 1)]
    assert "RESULT row_time_to_match_random=inf" in summarize(jobs)
    # A row that collapsed under its own loss: its BCE twin is the reference.
    collapsed = {**job("best-row", 0.5, task="text"),
                 "reports": [{**r, "ok": False} for r in REPORTS]}
    text = [job("tpe", 1.0, task="text"), job("random", 1.0, task="text"), collapsed,
            job("best-row-bce", 0.8, task="text")]
    assert "RESULT row_time_to_match_random=0.300" in summarize(text)  # 0.04 x 0.8 at t=3


def test_the_warm_arm_says_what_the_studys_row_first_adds():
    """tpe-warm is tpe with the study's best row as first trial: over tpe, what the warm
    start adds."""
    def job(arm: str, scale: float) -> dict[str, object]:
        return {"task": "text", "seed": 0, "arm": arm, "time_budget": 10,
                "reports": [{**r, "value": float(r["value"]) * scale} for r in REPORTS]}  # type: ignore[arg-type]

    lines = summarize([job("tpe", 2.0), job("tpe-warm", 1.0), job("random", 4.0)])
    assert "RESULT search_vs_random=0.500" in lines
    assert "RESULT warm_start_vs_random=0.250" in lines
    assert "RESULT warm_start_vs_tpe=0.500" in lines


def test_a_job_runs_the_trials_at_once_it_was_given(tmp_path):
    """`--trials-at-once` reaches each job's command line (its Ray and max_concurrent), and
    the default adds nothing, so the one-slot commands of the earlier runs are unchanged."""

    args = argparse.Namespace(time_budget=240.0, budget_images=None, data_dir=None,
                              address=None, gpus_per_trial=0.0, trials_at_once=2)
    command = _command(args, tmp_path, "text", 3, "tpe")
    assert command[command.index("--trials-at-once") + 1] == "2"
    args.trials_at_once = 1
    assert "--trials-at-once" not in _command(args, tmp_path, "text", 3, "tpe")
