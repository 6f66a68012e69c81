"""What a running sweep shows and leaves behind: a line per ended trial, a progress line,
statuses, the leaderboard.

Ray writes trial results to a staging directory and syncs them to storage now and then, so the
live leaderboard is built from Ray's in-memory trials (immediate and authoritative) with the same
`results.leaderboard` code that rebuilds it from files afterwards.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune
from ray.tune import ProgressReporter

from results.leaderboard import leaderboard, trials_frame, write_leaderboard
from results.leaderboard import trial_record as record_from
from results.render import atomic_write_text
from search.console import Budget, Console, Progress
from spaces import constants as C

# Set when Ctrl-C (SIGINT) stops the sweep. Ray's own SIGINT handler replaces any of ours while
# `Tuner.fit` runs, and says so in its log; `watch_interrupts` listens there.
INTERRUPTED = threading.Event()
# Ray's messages after an interrupt that contradict ours ("Resume experiment with:
# Tuner.restore(...)") or list unfinished trials as if they had failed.
_RAY_HINTS = ("Experiment has been interrupted", "Training has been interrupted",
              "Trials did not complete")


# The share of the driver's time the status file and leaderboard rewrites may take.
WRITE_SHARE = 0.05

# What the console says instead of Ray's timestamped "WARNING tune.py:... Stop signal received".
STOPPING = ("Ctrl-C: stopping the sweep and saving its state (Ctrl-C again skips the save; "
            "finished trials are kept either way)")


class _RayInterruptLog(logging.Filter):
    verbose = False  # keep Ray's own interrupt warning

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Stop signal received"):
            INTERRUPTED.set()
            if self.verbose:
                return True
            tty = sys.stdout.isatty()
            sys.stdout.write(("\n" if tty else "") + STOPPING + "\n")
            sys.stdout.flush()
            return False
        return not (INTERRUPTED.is_set() and message.startswith(_RAY_HINTS))


_FILTER = _RayInterruptLog()


def watch_interrupts(verbose: bool = False) -> None:
    """Clear `INTERRUPTED` and listen for Ray's interrupt (call before `Tuner.fit`)."""
    INTERRUPTED.clear()
    _FILTER.verbose = verbose
    logger = logging.getLogger("ray.tune.tune")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


def _error_line(trial: Any) -> str:
    """The last line of the trial's error.txt (the exception), or ''."""
    try:
        lines = Path(trial.error_file).read_text(errors="replace").strip().splitlines()
        return lines[-1].strip()[:300] if lines else ""
    except Exception:  # noqa: BLE001 - no file yet, or Ray's attribute moved
        return ""


def trial_record(trial: Any, meta: dict[str, Any], status: str) -> dict[str, Any]:
    """One live Ray trial as a `results.leaderboard` row (the same row the files give later)."""
    rows = [trial.last_result] if C.EPOCH in (trial.last_result or {}) else []
    error = (_error_line(trial) or "failed") if status in C.FAILED else None
    return record_from(trial.config, rows, trial_id=trial.trial_id, status=status,
                       error=error, meta=meta)


class SilentReporter(ProgressReporter):
    """Ray's progress reporter that never prints: our callback prints instead.

    Ray's newer console engine ignores reporters and always prints its experiment header, so
    `quiet_ray_console` switches to the engine that honours them.
    """

    def should_report(self, trials: list, done: bool = False) -> bool:
        return False

    def report(self, trials: list, done: bool, *sys_info: Any) -> None:
        return None


def quiet_ray_console(verbose: bool) -> ProgressReporter | None:
    """The progress reporter for `tune.RunConfig`: None (Ray's own) when `verbose`."""
    if verbose:
        return None
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # read by Tuner.fit in this (the driver) process
    return SilentReporter()


class SweepCallback(tune.Callback):
    """Keeps the files current, prints one line per ended trial and a live progress line.

    The console is built in `setup` (also after a restore: Ray pickles callbacks with the
    experiment, and a stream does not pickle), from plain settings kept here.
    """

    def __init__(self, experiment_dir: str | Path, meta: dict[str, Any],
                 budget: Budget | None = None) -> None:
        self.experiment_dir = Path(experiment_dir)
        self.meta = meta  # sweep.json's content: task, max_epochs, ...
        self.budget = budget or Budget(trials=meta.get("num_samples"))
        self._printed: set[str] = set()
        self._console: Console | None = None
        self._ended: set[str] = set()  # trials that completed or failed in this session
        self._ended_before: set[str] | None = None  # ended in an earlier session (resume)
        self._fresh_files()

    def _fresh_files(self) -> None:
        """The write throttle and the rows of ended trials, kept between writes (never
        pickled: a restored sweep builds them again)."""
        self._records: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._written_at = -math.inf  # time.monotonic() of the last write
        self._write_seconds = 0.0  # what it took
        self._pending = False  # an update was deferred: written at the next due step

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_console"] = None
        for name in ("_records", "_written_at", "_write_seconds", "_pending"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Also restores callbacks pickled by older versions (no console, no interrupt sets)."""
        self.__dict__.update({"_ended": set(), "_ended_before": None, **state})
        self.__dict__.setdefault("budget", Budget(trials=self.meta.get("num_samples")))
        self.__dict__["_console"] = None
        self._fresh_files()

    @property
    def console(self) -> Console:
        if self._console is None:
            progress = Progress(self.budget, scheduler=str(self.meta.get("scheduler", "")))
            self._console = Console(progress)
        return self._console

    def setup(self, stop: Any = None, num_samples: int | None = None,
              total_num_samples: int | None = None, **info: Any) -> None:
        self._console = None  # a fresh clock and count for this run (also after a restore)
        self._printed = set()

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self._ended_before is None:
            self._ended_before = {t.trial_id for t in trials
                                  if t.status in (C.Status.TERMINATED, C.Status.ERROR)}
            self._count_earlier(trials)  # a resumed sweep's progress starts from what it has
            self.console.progress.mark_start()

    def _cut_short(self, trial: Any) -> bool:
        """A trial Ray ended only because the sweep was interrupted: Ray's cleanup calls it
        TERMINATED without it ever completing."""
        return (INTERRUPTED.is_set() and trial.status in (C.Status.TERMINATED, C.Status.ERROR)
                and trial.trial_id not in self._ended
                and trial.trial_id not in (self._ended_before or set()))

    def _record(self, trial: Any, status: str) -> dict[str, Any]:
        """The trial's leaderboard row; an ended trial's is built once (its result is final)."""
        result = trial.last_result or {}
        key = (status, result.get(C.TRAINING_ITERATION), result.get("time_total_s"))
        cached = self._records.get(trial.trial_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        record = trial_record(trial, self.meta, status)
        if status in C.ENDED:
            self._records[trial.trial_id] = (key, record)
        return record

    def _update(self, trials: list[Any], ended: Any = None, status: str | None = None, *,
                force: bool = False) -> pd.DataFrame | None:
        """Rewrite the status file and leaderboard; a failure here is reported, never raised,
        so that bookkeeping can never bring the sweep down.

        Ray calls on_trial_complete/on_trial_error before it updates the trial's status, so
        the trial that just `ended` is given its final `status` here. Both files are whole
        rewrites, whose cost grows with the trials (0.4 s at 2,000 on the 2-core VM, in
        Ray's driver loop): unless `force`d, a rewrite waits until `WRITE_SHARE` of the time
        since the last one would have paid for it, and a later step writes it.
        """
        if ended is not None:
            self._ended.add(ended.trial_id)
        now = time.monotonic()
        if not force and now - self._written_at < self._write_seconds / WRITE_SHARE:
            self._pending = True
            return None
        statuses = {t.trial_id: C.Status.INTERRUPTED if self._cut_short(t) else t.status
                    for t in trials}
        if ended is not None:
            statuses[ended.trial_id] = status
        try:
            atomic_write_text(self.experiment_dir / C.STATUS_FILE,
                              json.dumps(statuses, indent=1))
            board = leaderboard(trials_frame(
                [self._record(t, statuses[t.trial_id]) for t in trials]))
            write_leaderboard(board, self.experiment_dir / C.LEADERBOARD_FILE)
            return board
        except Exception as exc:  # noqa: BLE001 - keep the sweep alive, say what failed
            self.console.line(f"warning: could not update "
                              f"{self.experiment_dir / C.LEADERBOARD_FILE}: "
                              f"{type(exc).__name__}: {exc}")
            return None
        finally:
            self._pending = False
            self._written_at = time.monotonic()
            self._write_seconds = self._written_at - now

    def _count_earlier(self, trials: list[Any]) -> None:
        """Trials that ended before this run (a resumed sweep) count, silently, once. Only
        those: a trial the time budget stopped is TERMINATED before its line is printed."""
        earlier = self._ended_before or set()
        for t in trials:
            if t.trial_id not in self._printed and t.status in C.ENDED \
                    and t.trial_id in earlier:
                self._printed.add(t.trial_id)
                self.console.progress.finish(t.trial_id, t.last_result or {}, t.status)

    def _announce(self, trials: list[Any], trial: Any, status: str) -> None:
        self._count_earlier([t for t in trials if t is not trial])
        if trial.trial_id in self._printed:
            return
        self._printed.add(trial.trial_id)
        line = self.console.progress.finish(trial.trial_id, trial.last_result or {}, status)
        if status in C.FAILED:
            error = _error_line(trial)
            line += f": {error}" if error else ""
        self.console.line(line)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trials)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.console.progress.record(trial.trial_id, result)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.console.progress.running = sum(t.status == C.Status.RUNNING for t in trials)
        self.console.refresh()
        if self._pending:
            self._update(trials)  # a deferred rewrite, once it is due

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trials, trial, C.Status.TERMINATED)
        self._announce(trials, trial, C.Status.TERMINATED)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trials, trial, C.Status.ERROR)
        self._announce(trials, trial, C.Status.ERROR)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._update(trials, force=True)
        if not INTERRUPTED.is_set():
            # Trials the time budget stopped end without on_trial_complete: their lines too
            # (the trained-on best among them, search/exploit.py); not those it stopped
            # before their first report.
            for trial in trials:
                if trial.status == C.Status.TERMINATED and C.VAL_MSE in (trial.last_result or {}):
                    self._announce(trials, trial, C.Status.TERMINATED)
        self.console.close()
