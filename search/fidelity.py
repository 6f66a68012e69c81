"""What the searcher learns from a trial that ASHA stopped early; a whole-sweep budget; ASHA
that lets warm-start trials finish.

Ray's `OptunaSearch` tells Optuna that every ended trial is COMPLETE with its last value, so
TPE ranks a trial stopped after a quarter epoch beside one trained to the end, as if their
losses were comparable. Native Optuna marks such trials PRUNED, and TPE then ranks every
complete trial above every pruned one, and pruned ones by how far they got, then by their
last intermediate value (optuna/samplers/_tpe/sampler.py, `_get_pruned_trial_score`).
`FidelityOptunaSearch` restores that: early stopping stays with Ray's scheduler (no Optuna
pruner runs inside Ray), and the searcher reads its verdicts.
"""

from __future__ import annotations

import json
import math
import pickle
import warnings
from pathlib import Path
from typing import Any

from optuna.trial import TrialState
from ray.tune import Stopper
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from results.render import atomic_write_text
from search import internals, journal
from spaces import constants as C


def optuna_state(result: dict[str, Any] | None, metric: str | list[str], max_t: float,
                 error: bool, *, time_attr: str = C.TRAINING_ITERATION) -> TrialState:
    """How Optuna should see an ended trial, from its last result.

    COMPLETE: trained to `max_t` (reports, or seconds where `time_attr` says so) with a
    finite value (of every metric, in a multi-objective sweep). PRUNED: stopped earlier (by
    the scheduler, the budget, or because it collapsed); TPE then uses its intermediate
    values, and a multi-objective study keeps it off its Pareto front. FAIL: raised, or
    diverged (NaN/inf): TPE ignores it.
    """
    result = result or {}
    values = [result.get(m) for m in ([metric] if isinstance(metric, str) else metric)]
    if error or any(v is None or not math.isfinite(v) for v in values):
        return TrialState.FAIL
    if result.get(C.VERDICT) == C.Status.DIVERGED:
        return TrialState.FAIL
    if result.get(C.VERDICT) or result.get(time_attr, 0) < max_t:
        return TrialState.PRUNED
    return TrialState.COMPLETE


def step_of(result: dict[str, Any], time_attr: str = C.TRAINING_ITERATION) -> int | None:
    """The step Optuna files an intermediate value under: the report's number, or with
    seconds as the unit, milliseconds of training. TPE ranks a pruned trial by the last step
    it reached, so the step must be the unit ASHA judged it in: in reports, a cheap model
    would look further along than a costly one stopped at the same rung."""
    value = result.get(time_attr)
    if value is None or not math.isfinite(value):
        return None
    return int(value) if time_attr == C.TRAINING_ITERATION else int(round(value * 1000))


def _report_last(trial: Any, result: dict[str, Any] | None, metric: str,
                 time_attr: str = C.TRAINING_ITERATION) -> None:
    """Give a stopped trial the result it was stopped on as an intermediate value.

    Ray hands the result on which the scheduler stops a trial to `on_trial_complete` only,
    never to `on_trial_result`, so a trial ASHA stops at its first report would reach Optuna
    with no intermediate value, and TPE would rank it below every pruned trial, however good.
    Native Optuna reports before it prunes; this does the same.
    """
    result = result or {}
    value, step = result.get(metric), step_of(result, time_attr)
    if value is None or step is None or not math.isfinite(value):
        return
    with warnings.catch_warnings():  # a step reported already keeps its value, with a warning
        warnings.simplefilter("ignore", UserWarning)
        trial.report(float(value), int(step))


class FidelityOptunaSearch(OptunaSearch):
    """`OptunaSearch` that tells stopped trials PRUNED and diverged ones FAIL."""

    def __init__(self, *args: Any, max_t: float, time_attr: str = C.TRAINING_ITERATION,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_t = max_t
        self._time_attr = time_attr

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self._time_attr == C.TRAINING_ITERATION or isinstance(self._metric, list):
            super().on_trial_result(trial_id, result)
            return
        asked = internals.optuna_trials(self)
        step, value = step_of(result, self._time_attr), result.get(str(self._metric))
        if trial_id in asked and trial_id not in internals.completed_trials(self) \
                and step is not None and value is not None:
            with warnings.catch_warnings():  # two reports in one millisecond: the first kept
                warnings.simplefilter("ignore", UserWarning)
                asked[trial_id].report(float(value), step)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        completed, asked = internals.completed_trials(self), internals.optuna_trials(self)
        if trial_id in completed or trial_id not in asked:
            super().on_trial_complete(trial_id, result, error)
            return
        metric: str | list[str] = self._metric if isinstance(self._metric, list) \
            else str(self._metric)
        state = optuna_state(result, metric, self._max_t, error, time_attr=self._time_attr)
        value: float | list[float] | None = None
        if state == TrialState.COMPLETE and result:
            value = ([float(result[m]) for m in metric] if isinstance(metric, list)
                     else float(result[str(metric)]))
        study = internals.optuna_study(self)
        if study is None:  # set by OptunaSearch once it has a space, before any trial
            raise RuntimeError("OptunaSearch has no study yet")
        if state == TrialState.PRUNED and not isinstance(metric, list):
            _report_last(asked[trial_id], result, str(metric), self._time_attr)
        journal.mark(asked[trial_id], trial_id, result, state)  # the dashboard's status
        study.tell(asked[trial_id], value, state=state)
        completed.add(trial_id)


class BudgetStopper(Stopper):
    """Ends the sweep once its trials together have trained on `max_images` examples.

    "Equal budget" in images seen: the study's rows replayed for E epochs on N images cost
    rows*E*N, and a search given the same budget may spend it on many short trials. The counts
    per trial are kept in `budget.json` so that a resumed sweep keeps its spent budget.
    """

    def __init__(self, max_images: int, path: str | Path) -> None:
        self.max_images = int(max_images)
        self.path = Path(path)
        self._seen: dict[str, int] | None = None

    def _load(self) -> dict[str, int]:
        if self._seen is None:
            try:
                self._seen = {k: int(v) for k, v in json.loads(self.path.read_text()).items()}
            except (OSError, ValueError, AttributeError):
                self._seen = {}
        return self._seen

    @property
    def spent(self) -> int:
        return sum(self._load().values())

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        seen = self._load()
        seen[trial_id] = max(seen.get(trial_id, 0), int(result.get(C.IMAGES, 0)))
        atomic_write_text(self.path, json.dumps(seen))
        return self.stop_all()

    def stop_all(self) -> bool:
        return self.spent >= self.max_images


class PickledState:
    """A scheduler's save/restore as Ray's own ASHA does it: its whole state, pickled, so that
    a resumed sweep's scheduler remembers each rung's trials."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as out:
            pickle.dump(self.__dict__, out)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as source:
            self.__dict__.update(pickle.load(source))


def protected(config: dict[str, Any], points: list[dict[str, Any]]) -> bool:
    """Whether a trial's config is one of the warm-start `points` (the study's rows)."""
    return any(all(config.get(k) == v for k, v in point.items()) for point in points)


class WarmStartASHA(ASHAScheduler):
    """ASHA that never stops the warm-start trials (the study's rows, enqueued first).

    They train to the end, so a warm-started sweep always holds their final results and its
    best can never be worse than the rows it replayed; every other trial is judged as usual.
    """

    def __init__(self, *args: Any, protect: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._protect = [dict(point) for point in protect]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP and protected(trial.config, self._protect):
            reached = result.get(C.TRAINING_ITERATION, 0) >= self._max_t
            return action if reached else TrialScheduler.CONTINUE
        return action
