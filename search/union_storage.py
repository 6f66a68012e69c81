"""Several sweeps' journals as one read-only Optuna storage, for one dashboard.

Optuna's dashboard serves one storage. A search and the grid replay of the study's rows are two
sweeps, each with its own journal; to compare them in one view (the study list, "compare
studies", the same plots side by side), `aesearch dashboard A B` serves this union: every
sweep's study under an id of its own, read live from its journal. Every write is refused, as
for one sweep's journal (`search.dashboard`).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any, NoReturn

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState

from search import internals


class UnionError(RuntimeError):
    """A write, or a lookup by trial id, which a union of journals cannot answer."""


class UnionStorage(BaseStorage):
    """`storages` (label, storage) as one: study ids are interleaved (`local * n + index`),
    and a study whose name another already has is listed as `name (label)`."""

    def __init__(self, storages: Sequence[tuple[str, BaseStorage]]) -> None:
        if not storages:
            raise ValueError("UnionStorage needs at least one storage")
        self._labels = [label for label, _ in storages]
        self._storages = [storage for _, storage in storages]

    # --- ids and names ----------------------------------------------------------------------
    def _split(self, study_id: int) -> tuple[BaseStorage, int]:
        index, local = study_id % len(self._storages), study_id // len(self._storages)
        return self._storages[index], local

    def _join(self, index: int, local: int) -> int:
        return local * len(self._storages) + index

    def get_all_studies(self) -> list[FrozenStudy]:
        studies, seen = [], set()
        for index, storage in enumerate(self._storages):
            for study in storage.get_all_studies():
                listed = internals.with_study_id(
                    study, self._join(index, internals.study_id(study)))
                if study.study_name in seen:
                    listed.study_name = f"{study.study_name} ({self._labels[index]})"
                seen.add(listed.study_name)
                studies.append(listed)
        return studies

    def get_study_id_from_name(self, study_name: str) -> int:
        for study in self.get_all_studies():
            if study.study_name == study_name:
                return internals.study_id(study)
        raise KeyError(f"no study named {study_name!r} in {', '.join(self._labels)}")

    def get_study_name_from_id(self, study_id: int) -> str:
        for study in self.get_all_studies():
            if internals.study_id(study) == study_id:
                return study.study_name
        raise KeyError(f"no study with id {study_id}")

    # --- reads, by study ------------------------------------------------------------------
    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        storage, local = self._split(study_id)
        return storage.get_study_directions(local)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        storage, local = self._split(study_id)
        return storage.get_study_user_attrs(local)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        storage, local = self._split(study_id)
        return storage.get_study_system_attrs(local)

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        storage, local = self._split(study_id)
        return storage.get_all_trials(local, deepcopy=deepcopy, states=states)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        raise UnionError("sweeps served together have no common trial ids: read a study's "
                         "trials (get_all_trials)")

    # --- writes: refused ------------------------------------------------------------------
    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UnionError("aesearch dashboard is read only: it never writes a sweep's journal")

    def create_new_study(self, directions: Sequence[StudyDirection],
                         study_name: str | None = None) -> int:
        self._refuse()

    def delete_study(self, study_id: int) -> None:
        self._refuse()

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._refuse()

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._refuse()

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        self._refuse()

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        self._refuse()

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        self._refuse()

    def set_trial_intermediate_value(self, trial_id: int, step: int,
                                     intermediate_value: float) -> None:
        self._refuse()

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._refuse()

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._refuse()
