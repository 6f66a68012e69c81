"""What a run prints: one line per finished trial, one live progress line, nothing else.

Ray's status tables, the workers' output and TensorFlow's start-up lines stay out of the
terminal unless `--verbose` is given; the workers' output is kept in Ray's session log files
and TensorFlow's native start-up lines in the driver go to a log file beside the results.

Pure Python (no Ray, no TensorFlow), so that `search/single.py` can use it too and the
formatting is tested without a sweep.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from spaces import constants as C

NON_TTY_EVERY_S = 30.0  # a plain progress line at most this often where stdout is no terminal
TTY_EVERY_S = 1.0  # the in-place line is redrawn at most this often
PROGRESS_PREFIX = "progress:"


def quiet_libraries(verbose: bool) -> None:
    """Optuna's per-trial INFO lines and Python warnings off, unless `verbose`.

    TensorFlow's own C++ log level is left alone: `quiet_native_stderr` keeps its start-up
    lines out of the terminal, and the workers' lines stay in Ray's log files.
    """
    if verbose:
        return
    import warnings

    with contextlib.suppress(ImportError):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("absl").setLevel(logging.ERROR)
    # Module-level filters, not lambdas: `addFilter` skips one already there, so a second call
    # (a sweep, then its finalists stage) adds nothing.
    from search.internals import RAY_TOKEN_LOGGER

    logging.getLogger(RAY_TOKEN_LOGGER).addFilter(_not_token_notice)
    logging.getLogger("ray.tune.execution.experiment_state").addFilter(_not_snapshot_notice)
    logging.getLogger("ray.tune.analysis.experiment_analysis").addFilter(_not_unstarted_trials)


def _not_token_notice(record: logging.LogRecord) -> bool:
    """Ray says at every local start that it turned token authentication on: nothing to act
    on. Its warning that authentication is off stays."""
    return "Token authentication is enabled" not in record.getMessage()


def _not_snapshot_notice(record: logging.LogRecord) -> bool:
    """With `num_to_keep` set (a trial keeps its last checkpoints), Tune snapshots the
    experiment each time a short trial has checkpointed that often, and warns when that is
    more than once in 5 s. The snapshots are what makes a resume exact; nothing to act on."""
    return "snapshotting has been triggered" not in record.getMessage()


def _not_unstarted_trials(record: logging.LogRecord) -> bool:
    """A trial the budget ended before it started has an empty folder, which Ray reports as a
    FileNotFoundError when the sweep ends; the leaderboard lists it as stopped, with why."""
    return not only_unstarted_trials(record.getMessage())


_NOT_FOUND = re.compile(r"^- \S+: FileNotFoundError\('Could not fetch metrics for \S+: both "
                        r"\S+ and \S+ were not found at (?P<path>[^']+)'\)$")


def only_unstarted_trials(message: str) -> bool:
    """Whether Ray's "Failed to fetch metrics" warning names only trials whose folder is
    there and empty: trials created for a slot that never freed up. Any other failure (a
    trial whose files went missing, another error, remote storage) keeps the warning."""
    head, *lines = message.splitlines()
    if not head.startswith("Failed to fetch metrics") or not lines:
        return False
    for line in lines:
        match = _NOT_FOUND.match(line)
        if match is None:
            return False
        folder = Path(match["path"])
        if not folder.is_dir() or any(folder.iterdir()):
            return False
    return True


@contextlib.contextmanager
def quiet_native_stderr(log_file: Path | None, verbose: bool = False) -> Iterator[None]:
    """Send file descriptor 2 (where TensorFlow's C++ start-up lines go: oneDNN, CUDA, CPU
    features) to `log_file` while the block runs; exceptions still propagate and print after.

    No-op when `verbose`, when `log_file` is None, or where stderr has no file descriptor.
    """
    if verbose or log_file is None:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _epochs(value: Any) -> str:
    return f"{float(value):.3g}" if value is not None else "0"


@dataclass
class Budget:
    """How the sweep ends: after `trials` trials, or once a time or epoch budget is spent."""

    trials: int | None = None  # None: no fixed count (num_samples -1 with a budget)
    time_s: float | None = None
    images: int | None = None  # --budget-epochs times the epoch size
    epoch_size: int | None = None
    max_epochs: float | None = None  # a trial's full length, to tell early stops apart


@dataclass
class Progress:
    """The state the progress line is drawn from; fed by the sweep's callback."""

    budget: Budget
    scheduler: str = "asha"
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    done: int = 0  # trials ended (finished, stopped, failed, collapsed, diverged)
    running_epochs: dict[str, float] = field(default_factory=dict)  # trial id -> epochs
    images: dict[str, int] = field(default_factory=dict)  # trial id -> examples seen
    best: tuple[float, str, str] | None = None  # (val_mse, notation, trial id), finished only
    running: int = 0  # trials running now
    # What a resumed sweep had done before this run: the estimate counts only this run's pace.
    done_before: int = 0
    fraction_before: float = 0.0

    def __post_init__(self) -> None:
        if not self.started:
            self.started = self.clock()

    def restart_clock(self) -> None:
        self.started = self.clock()

    def mark_start(self) -> None:
        """What is counted so far was done before this run (a resumed sweep's ended trials)."""
        self.done_before = self.done
        self.fraction_before = self.fraction() or 0.0

    def elapsed(self) -> float:
        return self.clock() - self.started

    def fraction(self) -> float | None:
        """How much of the sweep is done, in [0, 1], or None where nothing says yet."""
        parts = []
        if self.budget.time_s:
            parts.append(self.elapsed() / self.budget.time_s)
        if self.budget.images:
            parts.append(sum(self.images.values()) / self.budget.images)
        if self.budget.trials:
            partial = 0.0
            if self.budget.max_epochs:
                partial = sum(min(e / self.budget.max_epochs, 1.0)
                              for e in self.running_epochs.values())
            parts.append((self.done + partial) / self.budget.trials)
        return min(max(parts), 1.0) if parts else None

    def budget_spent(self) -> bool:
        return bool((self.budget.time_s and self.elapsed() >= self.budget.time_s * 0.99)
                    or (self.budget.images
                        and sum(self.images.values()) >= self.budget.images))

    def line(self) -> str:
        """'progress: 5/12 trials | best 0.01234 (4L,32F(3X3)) | 1m02s elapsed, ~2m30s left'."""
        b = self.budget
        parts = [f"{self.done}/{b.trials} trials" if b.trials else f"{self.done} trials"]
        if b.time_s:
            parts.append(f"time {duration(min(self.elapsed(), b.time_s))} of "
                         f"{duration(b.time_s)}")
        if b.images and b.epoch_size:
            spent = sum(self.images.values()) / b.epoch_size
            parts.append(f"budget {spent:.3g} of {b.images / b.epoch_size:g} epochs")
        if self.running:
            parts.append(f"{self.running} running")
        if self.best:
            parts.append(f"best {self.best[0]:.5f} ({self.best[1]})")
        else:
            parts.append("best: none finished yet")
        timing = f"{duration(self.elapsed())} elapsed"
        fraction = self.fraction()
        # Counted in trials alone, the estimate assumes every running trial trains to the
        # end; before ASHA has stopped any, that is several times too long. Wait for one.
        trials_only = not (b.time_s or b.images)
        if fraction is not None and fraction < 1:
            now = fraction - self.fraction_before  # done in this run
            if now > 0.02 and not (trials_only and self.done == self.done_before):
                timing += f", ~{duration(self.elapsed() * (1 - fraction) / now)} left"
        parts.append(timing)
        return f"{PROGRESS_PREFIX} " + " | ".join(parts)

    def trial_line(self, trial_id: str, result: dict[str, Any], status: str) -> str:
        """One finished trial: '[3/12] trial ab12cd34  4L,32F(3X3)  val_mse 0.01234 ...'."""
        n = f"[{self.done}/{self.budget.trials}]" if self.budget.trials else f"[{self.done}]"
        notation = result.get(C.NOTATION) or "?"
        epoch = result.get(C.EPOCH)
        if status in C.FAILED:
            how = f"ERROR after {_epochs(epoch)} epochs"
        elif result.get(C.VERDICT):
            how = f"{result[C.VERDICT]} at epoch {_epochs(epoch)}: {result.get(C.REASON, '')}"
        elif (self.budget.max_epochs and epoch is not None
              and float(epoch) < self.budget.max_epochs - 1e-6):
            by = ("the budget" if self.budget_spent()
                  else "ASHA" if self.scheduler == "asha" else "the scheduler")
            how = f"stopped early by {by} at epoch {_epochs(epoch)}"
        else:
            how = f"finished {_epochs(epoch)} epoch(s)"
        figures = []
        val = result.get(C.VAL_MSE)
        if (val is not None and math.isfinite(float(val))
                and C.VAL_MSE not in how):  # a verdict's reason may already give it
            figures.append(f"val_mse {float(val):.5f}")
        if result.get(C.PARAMS):
            figures.append(f"params {int(result[C.PARAMS]):,}")
        if result.get(C.SECONDS) is not None:
            figures.append(f"{float(result[C.SECONDS]):.1f}s")
        config = result.get("config")
        if isinstance(config, dict) and config.get(C.EXPLOIT):  # search/exploit.py
            how = f"a top-rung config, trained on: {how}"
        return f"{n} trial {trial_id}  {notation}  {how}" + (
            "  " + "  ".join(figures) if figures else "")

    def finish(self, trial_id: str, result: dict[str, Any], status: str) -> str:
        """Count a trial as ended, keep the best finished result; its line."""
        self.running_epochs.pop(trial_id, None)
        if result.get(C.IMAGES) is not None:
            self.images[trial_id] = max(self.images.get(trial_id, 0), int(result[C.IMAGES]))
        self.done += 1
        val = result.get(C.VAL_MSE)
        healthy = status not in C.FAILED and not result.get(C.VERDICT)
        if healthy and val is not None and math.isfinite(float(val)) and (
                self.best is None or float(val) < self.best[0]):
            self.best = (float(val), str(result.get(C.NOTATION) or "?"), trial_id)
        return self.trial_line(trial_id, result, status)

    def record(self, trial_id: str, result: dict[str, Any]) -> None:
        """A running trial's report: how far it is, for the estimate and the budget."""
        if result.get(C.EPOCH) is not None:
            self.running_epochs[trial_id] = float(result[C.EPOCH])
        if result.get(C.IMAGES) is not None:
            self.images[trial_id] = max(self.images.get(trial_id, 0), int(result[C.IMAGES]))


class Console:
    """Prints trial lines and keeps one progress line current.

    On a terminal the progress line is rewritten in place (`\\r`) and trial lines are printed
    above it; elsewhere (CI, a log file) it is printed as a plain line at most every
    `NON_TTY_EVERY_S` seconds, and once at the end.
    """

    def __init__(self, progress: Progress, stream: TextIO | None = None,
                 tty: bool | None = None) -> None:
        self.progress = progress
        self.stream = stream or sys.stdout
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self._drawn = False  # a progress line is on screen (TTY) and must be cleared first
        self._last = -math.inf

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self._write("\r\x1b[2K")
            self._drawn = False

    def line(self, text: str) -> None:
        """A line of its own, above the progress line."""
        self._clear()
        self._write(text + "\n")
        self.refresh(force=self.tty)

    def refresh(self, force: bool = False) -> None:
        now = self.progress.clock()
        every = TTY_EVERY_S if self.tty else NON_TTY_EVERY_S
        if not force and now - self._last < every:
            return
        self._last = now
        text = self.progress.line()
        if self.tty:
            self._write("\r\x1b[2K" + text)
            self._drawn = True
        else:
            self._write(text + "\n")

    def close(self) -> None:
        """The final progress line, ended with a newline."""
        if self.tty:
            self.refresh(force=True)
            self._write("\n")
            self._drawn = False
        else:
            self._last = -math.inf
            self.refresh(force=True)
