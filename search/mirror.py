"""A grid's trials, mirrored into the sweep's Optuna journal so that `aesearch dashboard` shows
grids too.

A grid (`--search grid`, the study's rows) has no Optuna searcher, so nothing writes a study;
`JournalMirror`, a Ray callback, writes one of the same shape as a searcher's: a trial asked when
Ray starts one, each report as an intermediate value, and at the end the state
`search.fidelity.optuna_state` gives and the status attributes of `search.journal`.

The trial's row id is its one parameter: a categorical over the sweep's rows, so that the
dashboard's plots group trials by row (Optuna requires a categorical's choices to be the same in
every trial of a study, so a single-choice distribution per trial would be refused); the
model's notation is a user attribute. The mirror keeps no state of its own that a resume needs:
each Optuna trial carries Ray's trial id, and a restored sweep finds its running trials by it.
Anything that fails in here is logged once and the mirror stops; it never raises into Ray.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

from search import internals, journal
from search.fidelity import optuna_state
from search.options import ASHA, GRID
from spaces import constants as C

if TYPE_CHECKING:
    from search.sweep import SweepSettings

log = logging.getLogger(__name__)


class JournalMirror(tune.Callback):
    """Writes a grid's trials into the sweep's journal; `path` is re-pointed by `_relocate`."""

    def __init__(self, path: str | Path, study_name: str, rows: tuple[str, ...],
                 max_t: float, stopped: str = journal.STOPPED_EARLY,
                 time_attr: str = C.TRAINING_ITERATION) -> None:
        self.path = Path(path)
        self.study_name = study_name  # kept when a sweep is renamed: the journal's study
        self.rows = tuple(rows)
        self.max_t = max_t
        self.time_attr = time_attr  # max_t's unit: reports, or seconds under a time budget
        self.stopped = stopped  # what a trial ended before max_t without a verdict is
        self._fresh()

    def _fresh(self) -> None:
        """What lives only in this driver: the study, Ray id -> trial number, the failure."""
        self._study: Any = None
        self._storage: Any = None
        self._numbers: dict[str, int] = {}
        self._ended: set[str] = set()  # told already: later events of theirs are ignored
        self._broken = False
        self._reconciled = False

    def __getstate__(self) -> dict[str, Any]:
        keep = ("path", "study_name", "rows", "max_t", "stopped", "time_attr")
        return {key: self.__dict__[key] for key in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"time_attr": C.TRAINING_ITERATION, **state})
        self._fresh()

    # --- Ray's hooks: each guarded -------------------------------------------------------------
    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if not self._reconciled:
            self._reconciled = True
            self._guarded(self._reconcile, trials)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id not in self._ended:
            self._guarded(self._number, trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self._guarded(self._report, trial, result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._guarded(self._end, trial, False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._guarded(self._end, trial, True)

    def _guarded(self, step: Any, *args: Any) -> None:
        if self._broken:
            return
        try:
            step(*args)
        except Exception as exc:  # noqa: BLE001 - the dashboard's mirror never stops a sweep
            self._broken = True
            log.warning("dashboard: stopped mirroring the grid into %s (%s: %s); the sweep "
                        "goes on", self.path, type(exc).__name__, exc)

    # --- the study ---------------------------------------------------------------------------
    def _get_study(self) -> Any:
        if self._study is None:
            import optuna

            storage = self._storage = journal.open_storage(self.path)
            sampler = optuna.samplers.RandomSampler()  # never samples: every value is fixed
            try:
                self._study = optuna.load_study(study_name=self.study_name, storage=storage,
                                                sampler=sampler)
            except KeyError:  # a new sweep, or a fresh journal
                self._study = optuna.create_study(storage=storage, sampler=sampler,
                                                  study_name=self.study_name,
                                                  direction="minimize" if C.MODE == "min"
                                                  else "maximize")
                journal.name_metrics(self._study, C.OBJECTIVE)
        return self._study

    def _reconcile(self, trials: list) -> None:
        """A restored sweep: continue the journal's running trials, and leave alone the ones
        it holds as ended (the journal may be ahead of Ray's saved state); tell those Ray ended
        before the driver stopped (their ending was not mirrored), and FAIL those Ray does not
        know (created just before the driver died: Ray will not run them)."""
        from optuna.trial import TrialState

        for recorded in self._get_study().get_trials(deepcopy=False):
            ray_id = recorded.user_attrs.get(journal.RAY_TRIAL_ID)
            if ray_id is None:
                continue
            if recorded.state == TrialState.RUNNING:
                self._numbers[str(ray_id)] = recorded.number
            elif recorded.state.is_finished():
                self._ended.add(str(ray_id))
        known = {trial.trial_id for trial in trials}
        for trial in trials:
            if trial.trial_id in self._numbers and trial.status in (C.Status.TERMINATED,
                                                                    C.Status.ERROR):
                self._end(trial, trial.status == C.Status.ERROR)
        for ray_id, number in list(self._numbers.items()):
            if ray_id not in known:
                self._storage.set_trial_user_attr(self._trial_id(number), journal.STATUS,
                                                  journal.ABANDONED)
                self._get_study().tell(number, state=TrialState.FAIL)
                del self._numbers[ray_id]

    def _number(self, trial: Any) -> int:
        """The Optuna trial mirroring Ray's `trial`: asked now if there is none."""
        number = self._numbers.get(trial.trial_id)
        if number is not None:
            return number
        from optuna.distributions import CategoricalDistribution

        study = self._get_study()
        row = trial.config.get(C.REPORT_KEY)
        study.enqueue_trial({C.REPORT_KEY: row})
        asked = study.ask({C.REPORT_KEY: CategoricalDistribution(self.rows)})
        asked.set_user_attr(journal.RAY_TRIAL_ID, trial.trial_id)
        model = _notation(trial.config)
        if model:
            asked.set_user_attr(journal.MODEL, model)
        self._numbers[trial.trial_id] = asked.number
        return asked.number

    def _trial_id(self, number: int) -> int:
        """The storage's id of the study's trial `number` (what the storage's writes take)."""
        study_id = internals.study_id(self._get_study())
        return self._storage.get_trial_id_from_study_id_trial_number(study_id, number)

    def _report(self, trial: Any, result: dict[str, Any]) -> None:
        value, step = result.get(C.OBJECTIVE), result.get(C.TRAINING_ITERATION)
        if value is None or step is None or trial.trial_id in self._ended:
            return
        trial_id = self._trial_id(self._number(trial))
        self._storage.set_trial_intermediate_value(trial_id, int(step), float(value))

    def _end(self, trial: Any, error: bool) -> None:
        from optuna.trial import TrialState

        if trial.trial_id in self._ended:
            return
        number = self._number(trial)
        result = trial.last_result or {}
        self._report(trial, result)  # Ray gives a trial's last result to on_trial_complete only
        state = optuna_state(result, C.OBJECTIVE, self.max_t, error, time_attr=self.time_attr)
        trial_id = self._trial_id(number)
        for key, value in journal.status_attrs(trial.trial_id, result, state,
                                               stopped=self.stopped).items():
            self._storage.set_trial_user_attr(trial_id, key, value)
        value = float(result[C.OBJECTIVE]) if state == TrialState.COMPLETE else None
        self._get_study().tell(number, value, state=state)
        self._numbers.pop(trial.trial_id, None)
        self._ended.add(trial.trial_id)


def _notation(config: dict[str, Any]) -> str | None:
    """The notation of a grid point's model (its config's `model`), or None."""
    model = config.get(C.MODEL_KEY)
    if not isinstance(model, dict):
        return None
    from spaces.config import ModelConfig
    from spaces.notation import describe

    return describe(ModelConfig.from_dict(model))


def mirror_for(settings: SweepSettings, rows: list[str]) -> list[tune.Callback]:
    """The callback a new sweep gets: a grid's mirror where its dir is local, else none."""
    if settings.search != GRID or settings.is_uri:
        return []
    stopped = journal.STOPPED_BY_ASHA if settings.scheduler == ASHA else journal.STOPPED_EARLY
    time_attr, max_t = settings.fidelity
    return [JournalMirror(journal.journal_path(settings.experiment_dir), settings.name,
                          tuple(rows), max_t, stopped, time_attr)]
