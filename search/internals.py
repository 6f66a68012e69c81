"""Every private Ray and Optuna name this project relies on, in one place.

Ray Tune and Ray's OptunaSearch have no public way to do some things a sweep needs: find the
cluster this machine belongs to, ask whether it can add nodes, reach a restored tuner's run
config (to relocate a moved sweep and give it this run's console), rewrite a restored search
algorithm's storage, or tell Optuna a trial was PRUNED. Each such use goes through a function
here, so that an upgrade has one file to read. `READ_AGAINST` holds the versions these were
read against; `pyproject.toml` caps Ray and Optuna below the next minor release accordingly;
`missing()` lists what moved, and `tests/test_internals.py` fails with that list.

Nothing here imports Ray or Optuna at module level: `search` stays cheap to import.
"""

from __future__ import annotations

import importlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READ_AGAINST = {"ray": "2.60.0", "optuna": "5.1.0"}


@dataclass(frozen=True)
class Internal:
    """A private name: `module`, then `attribute` on it (a dotted path). With `assigned`,
    the attribute is an instance's, set in the class's source as `self.<assigned> =`."""

    module: str
    attribute: str
    used_for: str
    assigned: str | None = None

    @property
    def name(self) -> str:
        return f"{self.module}.{self.attribute}" + (f".{self.assigned}" if self.assigned else "")

    def present(self) -> bool:
        try:
            target: Any = importlib.import_module(self.module)
            for part in self.attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError):
            return False
        if self.assigned is None:
            return True
        try:
            source = inspect.getsource(target)
        except (OSError, TypeError):
            return False
        return f"self.{self.assigned} =" in source or f"self.{self.assigned}:" in source


INTERNALS = (
    Internal("ray._private.utils", "read_ray_address",
             "which cluster this machine belongs to (search.launch.connect)"),
    Internal("ray._private.worker", "_global_node",
             "where the workers' logs are (search.launch)"),
    Internal("ray._private.state", "state.get_cluster_config",
             "whether an autoscaler can add nodes (search.launch)"),
    Internal("ray.tune.execution.cluster_info", "_is_ray_cluster",
             "whether the Ray launcher started this cluster (search.launch)"),
    Internal("ray.train._internal.storage", "get_fs_and_path",
             "a moved sweep's storage (search.relocate)"),
    Internal("ray.train._internal.session", "get_session",
             "the trial's own folder, for its newest checkpoint (search.trainable)"),
    Internal("ray.tune.tuner", "Tuner", "a restored tuner's run config", "_local_tuner"),
    Internal("ray.tune.impl.tuner_internal", "TunerInternal",
             "a restored tuner's search algorithm", "_tune_config"),
    Internal("ray.tune.search.basic_variant", "BasicVariantGenerator",
             "a restored grid's specs (search.relocate)", "_iterators"),
    Internal("ray.tune.search.search_generator", "SearchGenerator",
             "a restored searcher's spec (search.relocate)", "_experiment"),
    Internal("ray.tune.search.optuna", "OptunaSearch",
             "telling Optuna a trial was PRUNED (search.fidelity)", "_ot_study"),
    Internal("ray.tune.search.optuna", "OptunaSearch",
             "Optuna's trial for a Ray trial (search.fidelity)", "_ot_trials"),
    Internal("ray.tune.search.optuna", "OptunaSearch",
             "trials already told to Optuna (search.fidelity)", "_completed_trials"),
    Internal("ray.tune.search.optuna", "OptunaSearch",
             "a restored searcher's storage: the sweep's journal now (search.relocate)",
             "_storage"),
    Internal("optuna.study.study", "Study",
             "a restored study's storage: the sweep's journal now (search.relocate)",
             "_storage"),
    Internal("optuna.study.study", "Study",
             "whether a journal holds a restored study (search.relocate)", "_study_id"),
    Internal("optuna.study._frozen", "FrozenStudy",
             "a study's id in several sweeps' journals served as one (search.union_storage)",
             "_study_id"),
    Internal("optuna.trial._trial", "Trial",
             "a restored trial's storage: the sweep's journal now (search.relocate)",
             "storage"),
    Internal("ray.tune.execution.tune_controller", "TuneController.CKPT_FILE_TMPL",
             "Ray's experiment state file, checked before a resume (search.sweep)"),
    Internal("ray.tune.search.searcher", "Searcher.CKPT_FILE_TMPL",
             "Ray's searcher state file, checked before a resume"),
    Internal("ray.tune.search.search_generator", "SearchGenerator.CKPT_FILE_TMPL",
             "Ray's search generator state file, checked before a resume"),
    Internal("ray.tune.search.basic_variant", "BasicVariantGenerator.CKPT_FILE_TMPL",
             "Ray's grid state file, checked before a resume"),
    Internal("ray._private.authentication.authentication_token_setup", "logger",
             "the logger whose start-up notice a quiet console filters (search.console)"),
)
RAY_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"

# Ray's experiment state in a sweep dir (ray/tune: impl/tuner_internal.py `_TUNER_PKL`, then
# the CKPT_FILE_TMPL of tune_controller.py, searcher.py, search_generator.py and
# basic_variant.py). On resume Ray reads the newest of each pattern.
RAY_STATE_FILES = ("tuner.pkl", "experiment_state-*.json", "searcher-state-*.pkl",
                   "search_gen_state-*.json", "basic-variant-state-*.json")


def installed_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {package: version(package) for package in READ_AGAINST}


def missing() -> list[str]:
    """One line for each internal that is gone from the installed Ray/Optuna: [] if none."""
    return [f"{i.name} ({i.used_for})" for i in INTERNALS if not i.present()]


# --- Ray: the cluster ---------------------------------------------------------------------------
def recorded_ray_address() -> str | None:
    """The address of the cluster this machine belongs to (`ray start`/`ray up` record it)."""
    from ray._private.utils import read_ray_address

    return read_ray_address() or None


def worker_logs_dir() -> str:
    """Where this machine's Ray workers write their stdout and stderr."""
    try:
        from ray._private import worker

        return str(Path(worker._global_node.get_session_dir_path()) / "logs")  # type: ignore
    except Exception:  # noqa: BLE001 - a private API: fall back to Ray's default place
        return "/tmp/ray/session_latest/logs"


def cluster_can_grow() -> bool:
    """Whether the cluster `ray.init` joined may add nodes: one the Ray launcher started (its
    head has ~/ray_bootstrap_config.yaml, as Tune checks), or one that reports node groups to
    Ray's autoscaler (KubeRay, autoscaler v2)."""
    from ray._private.state import state
    from ray.tune.execution.cluster_info import _is_ray_cluster

    if _is_ray_cluster():
        return True
    try:
        config = state.get_cluster_config()
    except Exception:  # noqa: BLE001 - an older or partial GCS: assume it cannot grow
        return False
    return bool(config is not None and config.node_group_configs)


def fs_and_path(storage_path: str) -> tuple[Any, str]:
    """Ray's own split of a path or URI into a filesystem and a path (as RunConfig does)."""
    from ray.train._internal.storage import get_fs_and_path

    return get_fs_and_path(storage_path)


def trial_session() -> Any:
    """The Ray Train session of the trial this code runs in (None outside a trial)."""
    from ray.train._internal.session import get_session

    return get_session()


# --- Ray Tune: a restored tuner -----------------------------------------------------------------
def restored_run_config(tuner: Any) -> Any:
    """The run config a restored `Tuner` brought back (None in Ray client mode)."""
    local = getattr(tuner, "_local_tuner", None)
    return local.get_run_config() if local is not None else None


def restored_search_alg(tuner: Any) -> Any:
    """The search algorithm a restored `Tuner` will run (None in Ray client mode)."""
    local = getattr(tuner, "_local_tuner", None)
    return local._tune_config.search_alg if local is not None else None


def variant_iterators(generator: Any) -> list[Any]:
    """A BasicVariantGenerator's iterators, each with its unresolved spec and variants."""
    return list(generator._iterators)


def search_experiment(generator: Any) -> Any:
    """A SearchGenerator's experiment (its spec holds the storage), or None."""
    return generator._experiment


def recorded_statuses(experiment_dir: Path) -> dict[str, str]:
    """Each trial's status in Ray's newest experiment state file ({} if there is none)."""
    found = sorted(experiment_dir.glob(RAY_STATE_FILES[1]))
    if not found:
        return {}
    try:
        state = json.loads(found[-1].read_text())
        trials = [json.loads(trial_json) for trial_json, _ in state["trial_data"]]
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # being written: the caller asks again
    return {str(t.get("trial_id")): str(t.get("status")) for t in trials}


# --- Ray's OptunaSearch ---------------------------------------------------------------------------
def optuna_study(searcher: Any) -> Any:
    """The Optuna study behind an OptunaSearch (None until it has a space)."""
    return searcher._ot_study


def optuna_trials(searcher: Any) -> dict[str, Any]:
    """Ray trial id -> the Optuna trial an OptunaSearch asked for it."""
    return searcher._ot_trials


def completed_trials(searcher: Any) -> set[str]:
    """The Ray trial ids an OptunaSearch has already told Optuna about."""
    return searcher._completed_trials


def replace_optuna_study(searcher: Any, study: Any) -> None:
    """Give an OptunaSearch another study (the one a fresh journal holds), and its storage."""
    searcher._ot_study = study
    searcher._storage = study._storage


# --- Optuna: a restored study and its trials ------------------------------------------------------
def study_storage(study: Any) -> Any:
    """The storage an Optuna study reads and writes."""
    return study._storage


def study_id(study: Any) -> int:
    """An Optuna study's id in its storage."""
    return study._study_id


def with_study_id(study: Any, new_id: int) -> Any:
    """A copy of a `FrozenStudy` under another id (FrozenStudy's id has no public setter)."""
    import copy

    listed = copy.copy(study)
    listed._study_id = new_id
    return listed


def point_study(study: Any, trials: Any, storage: Any) -> None:
    """Point a study and its `optuna.Trial`s at `storage` (the same journal, where it is now).
    Each trial keeps the storage it was created with, besides its study's."""
    study._storage = storage
    for trial in trials:
        trial.study = study
        trial.storage = storage
