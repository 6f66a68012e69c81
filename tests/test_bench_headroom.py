"""bench/headroom.py's reading of a sweep folder and its arithmetic, on made-up trials (the
benchmark itself trains each candidate for a minute)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.headroom import candidates, summarize
from spaces import constants as C

A = {"family": "conv", "filters": [16, 16], "lr": 0.001}
B = {"family": "conv", "filters": [32, 32], "lr": 0.003}
C_ = {"family": "conv", "filters": [64], "lr": 0.01}


def _trial(sweep: Path, name: str, model: dict, reports: list[tuple[float, float]], *,
           exploit: bool = False, verdict: str | None = None) -> None:
    folder = sweep / f"trial_{name}"
    folder.mkdir(parents=True)
    params = {C.MODEL_KEY: model, **({C.EXPLOIT: True} if exploit else {})}
    (folder / "params.json").write_text(json.dumps(params))
    lines: list[dict[str, object]] = [{C.SECONDS: s, C.VAL_MSE: v} for s, v in reports]
    if verdict:
        lines[-1][C.VERDICT] = verdict
    (folder / "result.json").write_text("\n".join(json.dumps(line) for line in lines) + "\n")


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A 240 s sweep: rungs at 2.96 and 8.89 s of training."""
    sweep = tmp_path / "mnist-0-tpe"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"time_budget_s": 240.0}))
    _trial(sweep, "a", A, [(3.0, 0.05), (9.0, 0.020)])
    _trial(sweep, "b", B, [(3.1, 0.04), (9.2, 0.015)])
    _trial(sweep, "c", A, [(3.0, 0.05), (8.95, 0.018)])  # A again, better at the rung
    _trial(sweep, "d", C_, [(3.0, 0.03), (9.1, 0.001)], verdict="COLLAPSED")
    _trial(sweep, "e", C_, [(3.0, 0.09)])  # stopped at the first rung
    _trial(sweep, "x", B, [(5.0, 0.012), (100.0, 0.004)], exploit=True)  # trained on
    return sweep


def test_candidates_are_distinct_healthy_configs_ranked_at_the_top_rung(sweep):
    found, pick = candidates(sweep, top=3)
    assert pick == B
    assert [(c["model"], c["rung"], c["trial"]) for c in found] == [
        (B, 0.015, "trial_b"), (A, 0.018, "trial_c")]


def test_the_pick_is_kept_even_below_the_top(sweep):
    """A pick that did not lead at the rung (a resumed sweep's, say) is still trained long:
    its regret needs it."""
    (sweep / "trial_x" / "params.json").write_text(
        json.dumps({C.MODEL_KEY: A, C.EXPLOIT: True}))
    found, pick = candidates(sweep, top=1)
    assert pick == A and [c["model"] for c in found] == [B, A]


def _result(task: str, seed: int, arm: str, rank: int, value: float, pick: bool) -> dict:
    return {"task": task, "seed": seed, "arm": arm, "rank": rank, "pick": pick,
            "reports": [{"t": 1.0, "images": 10, "trial": f"{arm}{rank}", "value": value,
                         "ok": True}]}


def test_summary_separates_the_candidates_from_the_pick():
    results = [
        # tpe's pick (rank 0) was its best long-run; random's pick lost to its rank 1
        _result("text", 0, "tpe", 0, 0.004, True), _result("text", 0, "tpe", 1, 0.006, False),
        _result("text", 0, "random", 0, 0.010, True),
        _result("text", 0, "random", 1, 0.005, False),
        # within 5% of its best candidate: picked right
        _result("mnist", 0, "tpe", 0, 0.00104, True), _result("mnist", 0, "tpe", 1, 0.001, False),
    ]
    lines = summarize(results)
    result = dict(line.removeprefix("RESULT ").split("=") for line in lines
                  if line.startswith("RESULT "))
    assert float(result["pick_right"]) == pytest.approx(2 / 3, abs=1e-3)
    assert float(result["pick_regret"]) == pytest.approx(1.04)  # median of 1.0, 1.04 and 2.0
    assert float(result["candidates_vs_random"]) == pytest.approx(0.8)  # 0.004 / 0.005
    assert float(result["pick_vs_random"]) == pytest.approx(0.4)  # 0.004 / 0.010
    assert not math.isnan(float(result["pick_regret"]))
