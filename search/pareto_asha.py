"""ASHA for a multi-objective sweep: successive halving that ranks on several metrics at once.

Ray's ASHA compares one metric at each rung, so in a sweep for small and good models it would
stop every small model that is not also among the most accurate, and the front would lose its
small end before it was ever trained. Here a trial that reaches a rung is ranked among the
rung's trials by non-dominated sorting (its Pareto front at that rung, then its first
objective), and continues when it is in the top 1/eta: the selection of multi-objective ASHA
(Schmucker et al., 2021) with NSGA-II's ranking, fronts first and, within a front, the most
isolated points (crowding distance), so that both ends of the front go on. A model on the
rung's own front may be stopped only when more than 1/eta of the rung is on the front too.

Stopped trials end PRUNED for the searcher (`search.fidelity.optuna_state`), and `results/`
builds the front from trials that trained their whole budget only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.fidelity import PickledState, protected

Point = tuple[float, ...]


def dominates(a: Point, b: Point) -> bool:
    """`a` is at least as good as `b` everywhere and better somewhere (all minimized)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def front_ranks(points: Sequence[Point]) -> list[int]:
    """Each point's non-dominated front: 0 for the Pareto front, 1 for the front of the rest,
    and so on (NSGA-II's sorting; quadratic, which a rung of a sweep affords)."""
    ranks = [-1] * len(points)
    left = set(range(len(points)))
    rank = 0
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def crowding(points: Sequence[Point]) -> list[float]:
    """NSGA-II's crowding distance of each point within its set: the ends of every objective
    get infinity, the others the summed normalized gap between their neighbours. Within a
    front, the more isolated points are kept first, so the front keeps its two ends."""
    distance = [0.0] * len(points)
    for k in range(len(points[0]) if points else 0):
        order = sorted(range(len(points)), key=lambda i: points[i][k])
        span = points[order[-1]][k] - points[order[0]][k]
        distance[order[0]] = distance[order[-1]] = math.inf
        for before, i, after in zip(order, order[1:], order[2:], strict=False):
            if span > 0:
                distance[i] += (points[after][k] - points[before][k]) / span
    return distance


def promoted(rung: Mapping[str, Point], trial_id: str, reduction_factor: float) -> bool:
    """Whether `trial_id` is in the top 1/reduction_factor of `rung` (which holds it): by
    front, then the most isolated within a front (crowding), then the first objective."""
    ids = list(rung)
    points = [rung[i] for i in ids]
    ranks = front_ranks(points)
    spread = [0.0] * len(ids)
    for rank in set(ranks):
        members = [i for i in range(len(ids)) if ranks[i] == rank]
        for i, d in zip(members, crowding([points[i] for i in members]), strict=True):
            spread[i] = d
    order = sorted(range(len(ids)), key=lambda i: (ranks[i], -spread[i], points[i][0], ids[i]))
    keep = max(1, math.ceil(len(ids) / reduction_factor))
    return ids.index(trial_id) in order[:keep]


class ParetoASHA(PickledState, FIFOScheduler):
    """Asynchronous successive halving on `objectives` (all minimized), one bracket.

    The rungs are ASHA's: `grace_period * reduction_factor**k` reports below `max_t`. A trial
    is judged once per rung, against the trials that reached it before (and itself); at `max_t`
    it stops, complete. Warm-start points (`protect`) are never stopped early.
    """

    def __init__(self, *, time_attr: str, objectives: Sequence[str], max_t: int,
                 grace_period: int, reduction_factor: float = 3,
                 protect: Sequence[dict[str, Any]] = ()) -> None:
        if len(objectives) < 2:
            raise ValueError("ParetoASHA ranks on two objectives or more; use ASHA for one")
        if reduction_factor <= 1 or grace_period < 1 or max_t < grace_period:
            raise ValueError(f"ParetoASHA needs reduction_factor > 1 and 1 <= grace_period <= "
                             f"max_t, got {reduction_factor}, {grace_period}, {max_t}")
        super().__init__()
        self._time_attr = time_attr
        self._objectives = tuple(objectives)
        self._max_t = max_t
        self._rf = reduction_factor
        self._protect = [dict(point) for point in protect]
        milestones = []
        milestone = float(grace_period)
        while milestone < max_t:
            milestones.append(milestone)
            milestone *= reduction_factor
        self._rungs: dict[float, dict[str, Point]] = {m: {} for m in milestones}
        self.num_stopped = 0

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # ranks on its own objectives, whatever the tuner's single metric

    def _point(self, result: dict[str, Any]) -> Point | None:
        values = [result.get(m) for m in self._objectives]
        if any(v is None or not math.isfinite(float(v)) for v in values):
            return None
        return tuple(float(v) for v in values if v is not None)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        at = result.get(self._time_attr)
        point = self._point(result)
        if at is None or point is None:
            return TrialScheduler.CONTINUE
        if at >= self._max_t:
            return TrialScheduler.STOP
        reached = [m for m in self._rungs if at >= m and trial.trial_id not in self._rungs[m]]
        if not reached:
            return TrialScheduler.CONTINUE
        rung = self._rungs[max(reached)]
        rung[trial.trial_id] = point
        if promoted(rung, trial.trial_id, self._rf) or protected(trial.config, self._protect):
            return TrialScheduler.CONTINUE
        self.num_stopped += 1
        return TrialScheduler.STOP

    def debug_string(self) -> str:
        sizes = ", ".join(f"{m:g}: {len(r)}" for m, r in self._rungs.items())
        return f"ParetoASHA on {', '.join(self._objectives)}: stopped {self.num_stopped}; " \
               f"trials per rung {sizes}"
