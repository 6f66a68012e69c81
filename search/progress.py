"""What a running sweep shows and leaves behind after each trial: a line, statuses, leaderboard.

Ray writes trial results to a staging directory and syncs them to storage now and then, so the
live leaderboard is built from Ray's in-memory trials (immediate and authoritative) with the same
`results.leaderboard` code that rebuilds it from files afterwards.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune

from results.leaderboard import leaderboard, trials_frame, write_leaderboard
from results.leaderboard import trial_record as record_from
from results.render import atomic_write_text
from spaces import constants as C

# Set when Ctrl-C (SIGINT) stops the sweep. Ray's own SIGINT handler replaces any of ours while
# `Tuner.fit` runs, and says so in its log; `watch_interrupts` listens there.
INTERRUPTED = threading.Event()
# Ray's messages after an interrupt that contradict ours ("Resume experiment with:
# Tuner.restore(...)") or list unfinished trials as if they had failed.
_RAY_HINTS = ("Experiment has been interrupted", "Training has been interrupted",
              "Trials did not complete")


class _RayInterruptLog(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Stop signal received"):
            INTERRUPTED.set()
            return True
        return not (INTERRUPTED.is_set() and message.startswith(_RAY_HINTS))


_FILTER = _RayInterruptLog()


def watch_interrupts() -> None:
    """Clear `INTERRUPTED` and listen for Ray's interrupt (call before `Tuner.fit`)."""
    INTERRUPTED.clear()
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


class SweepCallback(tune.Callback):
    """Prints one line per finished trial (and the best so far); keeps the files current."""

    def __init__(self, experiment_dir: str | Path, meta: dict[str, Any]) -> None:
        self.experiment_dir = Path(experiment_dir)
        self.meta = meta  # sweep.json's content: task, max_epochs, ...
        self._printed: set[str] = set()
        self._ended: set[str] = set()  # trials that completed or failed in this session
        self._ended_before: set[str] | None = None  # ended in an earlier session (resume)

    def __setstate__(self, state: dict[str, Any]) -> None:  # tuner.pkl of an older version
        self.__dict__.update({"_ended": set(), "_ended_before": None, **state})

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self._ended_before is None:
            self._ended_before = {t.trial_id for t in trials
                                  if t.status in (C.Status.TERMINATED, C.Status.ERROR)}

    def _cut_short(self, trial: Any) -> bool:
        """A trial Ray ended only because the sweep was interrupted: Ray's cleanup calls it
        TERMINATED without it ever completing."""
        return (INTERRUPTED.is_set() and trial.status in (C.Status.TERMINATED, C.Status.ERROR)
                and trial.trial_id not in self._ended
                and trial.trial_id not in (self._ended_before or set()))

    def _update(self, trials: list[Any], ended: Any = None,
                status: str | None = None) -> pd.DataFrame | None:
        """Rewrite the status file and leaderboard; a failure here is reported, never raised,
        so that bookkeeping can never bring the sweep down.

        Ray calls on_trial_complete/on_trial_error before it updates the trial's status, so
        the trial that just `ended` is given its final `status` here.
        """
        statuses = {t.trial_id: C.Status.INTERRUPTED if self._cut_short(t) else t.status
                    for t in trials}
        if ended is not None:
            self._ended.add(ended.trial_id)
            statuses[ended.trial_id] = status
        try:
            atomic_write_text(self.experiment_dir / C.STATUS_FILE,
                              json.dumps(statuses, indent=1))
            board = leaderboard(trials_frame(
                [trial_record(t, self.meta, statuses[t.trial_id]) for t in trials]))
            write_leaderboard(board, self.experiment_dir / C.LEADERBOARD_FILE)
            return board
        except Exception as exc:  # noqa: BLE001 - keep the sweep alive, say what failed
            print(f"warning: could not update {self.experiment_dir / C.LEADERBOARD_FILE}: "
                  f"{type(exc).__name__}: {exc}", flush=True)
            return None

    def _announce(self, trials: list[Any], trial: Any, board: pd.DataFrame | None,
                  how: str) -> None:
        if trial.trial_id in self._printed:
            return
        self._printed.add(trial.trial_id)
        done = sum(t.status in C.ENDED or t is trial for t in trials)
        r = trial.last_result or {}
        if how == "failed":
            error = _error_line(trial)
            line = (f"trial {trial.trial_id} failed after {r.get(C.EPOCH, 0)} epochs"
                    + (f": {error}" if error else ""))
        elif r.get(C.VERDICT):
            line = (f"trial {trial.trial_id} {r.get(C.NOTATION, '?')}: {r[C.VERDICT]} after "
                    f"{r.get(C.EPOCH, 0)} epochs: {r.get(C.REASON, '')}")
        else:
            line = (f"trial {trial.trial_id} {r.get(C.NOTATION, '?')}: "
                    f"val_mse {r.get(C.VAL_MSE, float('nan')):.5f} "
                    f"val_rmse {r.get(C.VAL_RMSE, float('nan')):.4f} "
                    f"params {r.get(C.PARAMS, 0):,} epochs {r.get(C.EPOCH, 0)} "
                    f"{r.get(C.SECONDS, 0.0):.1f}s")
        best = (board.iloc[0] if board is not None and len(board)
                and pd.notna(board.iloc[0][C.VAL_MSE]) else None)
        best_text = (f" | best {best['notation']} val_mse {best[C.VAL_MSE]:.5f}"
                     if best is not None else "")
        print(f"[{done}/{len(trials)}] {line}{best_text}", flush=True)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._announce(trials, trial, self._update(trials, trial, C.Status.TERMINATED), "done")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._announce(trials, trial, self._update(trials, trial, C.Status.ERROR), "failed")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._update(trials)
