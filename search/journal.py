"""A sweep's Optuna journal, `<sweep dir>/optuna.journal`: what `aesearch dashboard` shows.

An Optuna-backed searcher keeps its own study there (`search.searchers.base`), so the dashboard
shows what TPE sees: each trial's parameters, its learning curve (Ray's OptunaSearch reports the
objective at every report) and how it ended, COMPLETE, PRUNED or FAIL as
`search.fidelity.optuna_state` decides. A grid has no Optuna searcher; `search.mirror` writes
its trials into a study of the same shape. Status user attributes (`status_attrs`) tell apart
what Optuna's three states merge: stopped by ASHA or collapsed (both PRUNED), diverged or
failed (both FAIL).

The journal is a convenience and must never harm a sweep: a damaged one is set aside when the
sweep resumes (`resume_check`), and the sweep goes on with a fresh journal. A sweep whose
storage is a URI has none (the driver's `runs/<name>/` is not the sweep's home).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spaces import constants as C
from spaces.errors import UserError

if TYPE_CHECKING:
    from optuna.storages import JournalStorage
    from optuna.trial import TrialState

log = logging.getLogger(__name__)

DAMAGED_SUFFIX = ".damaged"  # where a damaged journal is set aside: optuna.journal.damaged
LOCK_SUFFIX = ".lock"  # Optuna's JournalFileSymlinkLock: <journal>.lock while a write runs

# The user attributes every ended trial gets (the dashboard lists them beside its params).
STATUS = "status"  # one of the statuses below
MODEL = "model"  # the study's notation, e.g. 4L,32F(3X3)
PARAM_COUNT = "param_count"  # the model's parameters (Optuna's own "params" are the search's)
RAY_TRIAL_ID = "ray_trial_id"  # the trial's id in the leaderboard and its trial_<id>/ folder
REASON = "reason"  # why a trial collapsed, diverged or failed, where the trial said
# The statuses: Optuna's COMPLETE is "finished"; PRUNED is "stopped by ASHA" (or "stopped
# early" without ASHA: the budget) or "collapsed"; FAIL is "diverged" or "failed".
FINISHED = "finished"
STOPPED_BY_ASHA = "stopped by ASHA"
STOPPED_EARLY = "stopped early"
COLLAPSED = "collapsed"
DIVERGED = "diverged"
FAILED = "failed"
ABANDONED = "abandoned"  # created just before the driver died, and not Ray's to continue


class JournalError(UserError):
    """A journal that is missing or cannot be read; the message names the file."""


def journal_path(experiment_dir: str | Path) -> Path:
    return Path(experiment_dir) / C.JOURNAL_FILE


def open_storage(path: Path) -> JournalStorage:
    """Optuna's journal storage on `path` (created, with its folder, if missing)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def _bad_line(data: bytes) -> str | None:
    """What is wrong with the records of a journal's bytes, or None."""
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):  # the last piece has no newline
        try:
            record = json.loads(line)
        except ValueError:
            return f"line {number} is not a journal record"
        if not isinstance(record, dict) or not isinstance(record.get("op_code"), int):
            return f"line {number} is not a journal record"
    return None


def check(path: Path, *, torn_tail_ok: bool = False) -> None:
    """Raise `JournalError` naming `path` unless Optuna can read every record of it.

    Optuna's `JournalFileBackend.read_logs` raises on a record that is not JSON only once a
    later line follows it (it skips a bad last line), so a journal with garbage at its end reads
    until the next record is written, then fails every reader: each line is checked here, then
    the whole journal is replayed. A last line without its newline is a write in progress
    (`torn_tail_ok`, for a reader beside a running sweep) or a write a crash cut short.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"no journal at {path}: the sweep has not started, or started "
                           f"before sweeps kept one") from None
    except OSError as exc:
        raise JournalError(f"cannot read the journal {path}: {exc.strerror or exc}") from None
    what = _bad_line(data)
    if what is None and data and not data.endswith(b"\n") and not torn_tail_ok:
        what = "its last record is incomplete"
    if what is None:
        what = _replay_error(path)
    if what is not None:
        raise JournalError(f"the journal {path} is damaged ({what})")


def _replay_error(path: Path) -> str | None:
    """Replay the journal as Optuna does; what failed, or None."""
    try:
        storage = open_storage(path)
        for study in storage.get_all_studies():
            storage.get_all_trials(storage.get_study_id_from_name(study.study_name),
                                   deepcopy=False)
    except Exception as exc:  # noqa: BLE001 - whatever Optuna's replay raises, it is damage
        return f"Optuna cannot replay it: {type(exc).__name__}: {exc}"
    return None


def set_aside(path: Path) -> Path:
    """Move a damaged journal to `<name>.damaged` (`.damaged-2`, ... if taken); the new name."""
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    n = 2
    while target.exists():
        target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}-{n}")
        n += 1
    os.replace(path, target)
    return target


def resume_check(path: Path) -> str | None:
    """Before a sweep resumes: a damaged journal is set aside, so that the sweep goes on with a
    fresh one. Returns the one line that says so, or None when the journal is intact or
    missing (a missing one is created, and its study starts over).

    Optuna's write lock (a `.lock` symlink beside the journal) left by a driver that died while
    writing is removed: the driver's name lock says no other writer exists (the dashboard only
    reads), and Optuna would otherwise wait 30 s before it breaks the lock.
    """
    lock = path.with_name(path.name + LOCK_SUFFIX)
    if lock.is_symlink() or lock.exists():
        lock.unlink()
    if not path.exists():
        return None
    try:
        check(path)
    except JournalError as exc:
        aside = set_aside(path)
        return (f"dashboard: {exc}; moved to {aside.name}. The sweep goes on with a fresh "
                f"journal, whose study starts over: the searcher forgets the trials before "
                f"(they stay in the leaderboard)")
    return None


def for_new_sweep(experiment_dir: Path, is_uri: bool) -> Path | None:
    """The journal a new sweep starts, or None for a sweep whose storage is a URI.

    A journal already there is a leftover of an earlier start of the same name that stopped
    before it wrote sweep.json (so before any trial): nothing in it is worth keeping.
    """
    if is_uri:
        return None
    path = journal_path(experiment_dir)
    path.unlink(missing_ok=True)
    return path


def name_metrics(study: Any, metric: str | list[str]) -> None:
    """Name the study's objective(s) after the sweep's metric(s): the dashboard then says
    val_mse rather than "Objective 0" (a study system attribute, written once)."""
    import warnings

    import optuna

    with warnings.catch_warnings():  # experimental in Optuna 5.1
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([metric] if isinstance(metric, str) else list(metric))


def how_to_watch(experiment_dir: Path, is_uri: bool) -> str:
    """The sweep's console line that says how to open its dashboard."""
    if is_uri:
        return ("dashboard: none (the storage is a URI; the Optuna journal that `aesearch "
                "dashboard` reads is kept for a sweep folder on this machine only)")
    return (f"dashboard: aesearch dashboard {experiment_dir} (or optuna-dashboard "
            f"{journal_path(experiment_dir)})")


# --- how a trial ended, as user attributes ------------------------------------------------------
def status_of(state: TrialState, result: dict[str, Any] | None, *,
              stopped: str = STOPPED_BY_ASHA) -> str:
    """The status a trial Optuna sees in `state` ended with; `stopped`: what a PRUNED trial
    without a verdict is (the scheduler or the budget stopped it)."""
    from optuna.trial import TrialState

    verdict = (result or {}).get(C.VERDICT)
    if state == TrialState.COMPLETE:
        return FINISHED
    if state == TrialState.PRUNED:
        return COLLAPSED if verdict == C.Status.COLLAPSED else (FAILED if verdict else stopped)
    return DIVERGED if verdict == C.Status.DIVERGED else FAILED


def status_attrs(ray_trial_id: str, result: dict[str, Any] | None, state: TrialState, *,
                 stopped: str = STOPPED_BY_ASHA) -> dict[str, Any]:
    """The user attributes of an ended trial: its status, Ray's trial id, and where the result
    has them, the model's notation, its parameter count and the trial's reason."""
    result = result or {}
    attrs: dict[str, Any] = {STATUS: status_of(state, result, stopped=stopped),
                             RAY_TRIAL_ID: ray_trial_id}
    if result.get(C.NOTATION):
        attrs[MODEL] = str(result[C.NOTATION])
    count = result.get(C.PARAMS)
    if isinstance(count, int | float) and math.isfinite(count):
        attrs[PARAM_COUNT] = int(count)
    if result.get(C.REASON):
        attrs[REASON] = str(result[C.REASON])[:300]
    return attrs


def mark(trial: Any, ray_trial_id: str, result: dict[str, Any] | None,
         state: TrialState) -> None:
    """Set an ended Optuna trial's status attributes (before it is told). A journal that cannot
    be written is logged, never raised: the searcher's own `tell` follows."""
    try:
        for key, value in status_attrs(ray_trial_id, result, state).items():
            trial.set_user_attr(key, value)
    except Exception as exc:  # noqa: BLE001 - the dashboard's attributes never stop a sweep
        log.warning("dashboard: could not mark trial %s in the journal: %s: %s",
                    ray_trial_id, type(exc).__name__, exc)
