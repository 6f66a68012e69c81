"""Search algorithms whose restored state follows a moved sweep to where it is now.

Ray (2.60) restores a search algorithm's state with the experiment spec pickled when the sweep
started, storage included. In a sweep moved or copied elsewhere and resumed, the trials it
creates next would write to the original folder, and fail at their first checkpoint where
that is gone. Ray relocates the trials it restores itself (`TuneController._restore_trials`),
not the ones still to come. `search.sweep._relocate` sets `storage_path` and `name` on the
restored algorithm before Ray calls `set_state`; these classes rewrite the spec's storage then.

The same holds for an Optuna searcher's journal (`search.journal`): Ray pickles the searcher,
its study's `JournalStorage` with it, and that holds the journal's absolute path. Unpickled, it
reads nothing until used; `attach_journal` points the study and its unfinished trials at the
journal where the sweep is now, once Ray has restored the searcher's saved state.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ray.tune.search import BasicVariantGenerator, SearchGenerator

from search import internals, journal


def moved_storage(storage: Any, storage_path: str, name: str | None) -> Any:
    """A copy of Ray's `StorageContext` pointing at `storage_path/name` (a path or URI)."""
    moved = copy.copy(storage)
    moved.storage_filesystem, moved.storage_fs_path = internals.fs_and_path(storage_path)
    moved.experiment_dir_name = name or storage.experiment_dir_name
    return moved


class _Relocatable:
    storage_path: str | None = None  # the sweep's --storage now (a path or URI)
    name: str | None = None  # the sweep's --name

    def _moved(self, storage: Any) -> Any:
        if storage is None or self.storage_path is None:
            return storage
        return moved_storage(storage, self.storage_path, self.name)


class RelocatableSearchGenerator(_Relocatable, SearchGenerator):
    """Ray's SearchGenerator (the wrapper around a Searcher such as OptunaSearch), relocatable."""

    journal: Path | None = None  # the sweep's journal now (`point_journal`)

    def point_journal(self, path: Path, experiment_dir: Path) -> None:
        """Use the journal at `path`: now, if Ray has no saved searcher state to restore from
        `experiment_dir`, else once it has restored it (`set_state` comes last)."""
        self.journal = path
        if not self.has_checkpoint(str(experiment_dir)):
            attach_journal(base_searcher(self), path)

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        if self.journal is not None:  # the searcher's saved state is restored by now
            attach_journal(base_searcher(self), self.journal)
        experiment = internals.search_experiment(self)
        if experiment is None or experiment.spec.get("storage") is None:
            return
        experiment.spec["storage"] = experiment.storage = self._moved(experiment.spec["storage"])


class RelocatableVariantGenerator(_Relocatable, BasicVariantGenerator):
    """Ray's BasicVariantGenerator (grids: `--space report`), relocatable.

    Its state holds the spec twice over: each iterator's unresolved spec, and the resolved
    spec of every grid point not yet made a trial (a grid larger than Ray's pending-trial
    limit creates its later trials only after a resume).
    """

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        for iterator in internals.variant_iterators(self):
            specs = [iterator.unresolved_spec]
            variants = iterator.variants
            if variants is not None and not variants.lazy_eval:
                specs += [spec for _, spec in variants.iterable]
            for spec in specs:
                if spec.get("storage") is not None:
                    spec["storage"] = self._moved(spec["storage"])


# --- an Optuna searcher's journal ---------------------------------------------------------------
def base_searcher(searcher: Any) -> Any:
    """The searcher inside Ray's wrappers (SearchGenerator, ConcurrencyLimiter)."""
    while hasattr(searcher, "searcher"):
        searcher = searcher.searcher
    return searcher


def attach_journal(searcher: Any, path: Path) -> None:
    """Point a restored OptunaSearch's study at the journal `path`.

    Where the journal holds the study (the sweep's own, or a copy of it), the study and its
    trials just read and write it there; trials it holds as RUNNING that the searcher does not
    (created after Ray last saved the searcher, before the driver died) will never be told,
    and are told FAIL. Where it does not (a fresh journal: the old one was damaged or deleted),
    the searcher starts over: a new study of the same name, sampler and directions, holding
    the trials Ray will still run. A study kept in memory (a sweep older than journals) is
    left as it is.
    """
    from optuna.storages import JournalStorage
    from ray.tune.search.optuna import OptunaSearch

    study = internals.optuna_study(searcher) if isinstance(searcher, OptunaSearch) else None
    if study is None or not isinstance(internals.study_storage(study), JournalStorage):
        return
    storage = journal.open_storage(path)
    asked = internals.optuna_trials(searcher)
    completed = internals.completed_trials(searcher)
    pending = {tid: trial for tid, trial in asked.items() if tid not in completed}
    try:
        same = storage.get_study_id_from_name(study.study_name) == internals.study_id(study)
    except KeyError:
        same = False
    if same:
        internals.point_study(study, asked.values(), storage)
        _reconcile(study, pending, completed)
    else:
        _start_over(searcher, study, storage, pending)


def _reconcile(study: Any, pending: dict[str, Any], completed: set[str]) -> None:
    """The journal is written as the searcher goes, Ray saves the searcher now and then: after
    a driver died, the journal may be ahead of the restored searcher. A trial the searcher
    still waits for but the journal holds as ended was told before the driver died: it counts
    as told (telling it again would raise). A RUNNING trial the searcher never heard of will
    never be told: FAIL, `abandoned`."""
    from optuna.trial import TrialState

    trials = {trial.number: trial for trial in study.get_trials(deepcopy=False)}
    for trial_id, trial in pending.items():
        if trial.number in trials and trials[trial.number].state.is_finished():
            completed.add(trial_id)
    waiting = {trial.number for trial in pending.values()}
    storage = internals.study_storage(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    for number, trial in trials.items():
        if trial.state == TrialState.RUNNING and number not in waiting:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
            storage.set_trial_user_attr(trial_id, journal.STATUS, journal.ABANDONED)
            study.tell(number, state=TrialState.FAIL)


def _start_over(searcher: Any, study: Any, storage: Any, pending: dict[str, Any]) -> None:
    import optuna

    fresh = optuna.create_study(storage=storage, sampler=study.sampler, pruner=study.pruner,
                                study_name=study.study_name, directions=study.directions)
    asked = internals.optuna_trials(searcher)
    for trial_id, trial in pending.items():  # Ray continues them: they must be in the study
        fresh.enqueue_trial(trial.params)
        asked[trial_id] = fresh.ask(trial.distributions)
    journal.name_metrics(fresh, searcher.metric)
    internals.replace_optuna_study(searcher, fresh)


def point_journals(callbacks: list[Any], search_alg: Any, experiment_dir: Path) -> None:
    """A restored sweep's journal writers (its Optuna searcher, or a grid's mirror) use the
    journal where the sweep is now."""
    from search.mirror import JournalMirror

    path = journal.journal_path(experiment_dir)
    for callback in callbacks:
        if isinstance(callback, JournalMirror):
            callback.path = path
    if isinstance(search_alg, RelocatableSearchGenerator):
        search_alg.point_journal(path, experiment_dir)
