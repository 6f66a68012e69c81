"""ASHA fitted to a time budget: rungs in seconds of training.

With `--time-budget`, epochs are the wrong unit for ASHA. A 64-filter conv layer costs 16 times
a 16-filter one per image, so rungs in reports give the slow configs many times the seconds, and
`max_t` at the study's 25 or 50 epochs says nothing of how many configs the budget can afford.

Here the unit is a trial's seconds of training (`C.SECONDS`, timed by the trial around its
`fit` calls): not the worker's TensorFlow import, which took 50 s on a loaded machine and is
no config's cost, nor validation, which every config pays on the same images. The rungs follow
the budget B: the top rung at B/27, the others a factor 3 apart down to `MIN_RUNG_S`. A trial
continues past a rung when it is in the best third of those recorded there, and stops at the
top rung: configs are compared at equal cost. What wins then trains for the rest of the budget,
and on free slots the rest of the top rung's best third (`search/exploit.py`): those trials
are never stopped here. The study's rows of `--warm-start`
are never stopped below the top rung, and stop there like every other trial: a slow starter
is still ranked at equal cost, and a row that wins the ranking is what trains on.

Why B/27: trained alone on MNIST for 200 s, the configs a search finds (lr near 5e-3, batch
32) led the study's best row at 9 s as they did at 200 s, and ended 4 to 13 times better;
what loses is training the winner too little, not ranking configs early. The budget's first
third then compares a dozen configs or more on one CPU.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.fidelity import PickledState, protected
from spaces import constants as C

ETA = 3  # rungs a factor 3 apart; the best third of a rung goes on
TOP_SHARE = 1 / 27  # the top rung, as a share of the time budget (why: module docstring)
MIN_RUNG_S = 2.0  # no rung below this: a report takes about that long on a small model


def time_rungs(budget_s: float) -> tuple[float, ...]:
    """The rungs, in seconds of training, ascending; the last is the top (`max_t`)."""
    if not math.isfinite(budget_s) or budget_s <= 0:
        raise ValueError(f"time budget must be a positive number of seconds, got {budget_s}")
    rungs = [budget_s * TOP_SHARE]
    while rungs[0] / ETA >= MIN_RUNG_S:
        rungs.insert(0, rungs[0] / ETA)
    return tuple(rungs)


class TimeASHA(PickledState, FIFOScheduler):
    """ASHA on seconds of training (module docstring). Never stops a trial whose config
    carries `C.EXPLOIT` (the winner, trained on), nor one of `protect` (the warm-start rows)
    below the top rung."""

    def __init__(self, rungs: tuple[float, ...], *, metric: str = C.OBJECTIVE,
                 mode: str = C.MODE, time_attr: str = C.SECONDS,
                 protect: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        if not rungs or list(rungs) != sorted(rungs) or rungs[0] <= 0:
            raise ValueError(f"rungs must be positive and ascending, got {rungs}")
        self.rungs = tuple(float(r) for r in rungs)
        self._metric: str = metric
        self._mode, self._time_attr = mode, time_attr
        self._protect = [dict(point) for point in protect or []]
        self._recorded: list[dict[str, float]] = [{} for _ in self.rungs]  # trial -> score

    @property
    def max_t(self) -> float:
        return self.rungs[-1]

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        return True

    def _score(self, result: dict[str, Any]) -> float:
        """Higher is better; a missing or non-finite value is the worst."""
        value = result.get(self._metric)
        if value is None or not math.isfinite(value):
            return -math.inf
        return -float(value) if self._mode == "min" else float(value)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        t = result.get(self._time_attr)
        if t is None or self._metric not in result:
            return TrialScheduler.CONTINUE
        action = self._judge(trial.trial_id, float(t), self._score(result))
        config = trial.config or {}
        if action == TrialScheduler.STOP and (
                config.get(C.EXPLOIT)
                or (protected(config, self._protect) and float(t) < self.max_t)):
            return TrialScheduler.CONTINUE
        return action

    def _judge(self, trial_id: str, t: float, score: float) -> str:
        if t >= self.max_t:
            if trial_id not in self._recorded[-1]:
                self._recorded[-1][trial_id] = score  # what ranks the configs at equal cost
            return TrialScheduler.STOP
        crossed = [i for i, rung in enumerate(self.rungs) if t >= rung]
        if not crossed or trial_id in self._recorded[crossed[-1]]:
            return TrialScheduler.CONTINUE
        recorded = self._recorded[crossed[-1]]
        cutoff = _quantile(list(recorded.values()), 1 - 1 / ETA)
        recorded[trial_id] = score
        return TrialScheduler.STOP if cutoff is not None and score < cutoff \
            else TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        rungs = ", ".join(f"{r:.0f}s: {len(rec)}" for r, rec in zip(self.rungs, self._recorded,
                                                                    strict=True))
        return f"TimeASHA: trials recorded at each rung: {rungs}"


def _quantile(values: list[float], q: float) -> float | None:
    """The `q` quantile of `values`, interpolated as numpy's; None if empty. Next to a -inf
    (a trial without a finite value) it is the finite neighbour."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = ordered[math.floor(pos)], ordered[math.ceil(pos)]
    if lo == hi or lo == -math.inf:
        return hi
    return lo + (hi - lo) * (pos - math.floor(pos))
