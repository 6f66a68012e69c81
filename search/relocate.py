"""Search algorithms whose restored state follows a moved sweep to where it is now.

Ray (2.60) restores a search algorithm's state with the experiment spec pickled when the sweep
started, storage included. In a sweep moved or copied elsewhere and resumed, the trials it
creates next would write to the original folder, and fail at their first checkpoint where
that is gone. Ray relocates the trials it restores itself (`TuneController._restore_trials`),
not the ones still to come. `search.sweep._relocate` sets `storage_path` and `name` on the
restored algorithm before Ray calls `set_state`; these classes rewrite the spec's storage then.
"""

from __future__ import annotations

import copy
from typing import Any

from ray.tune.search import BasicVariantGenerator, SearchGenerator

from search import internals


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

    def set_state(self, state: dict) -> None:
        super().set_state(state)
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
