"""The trained-on best of a time-budgeted search cools its learning rate down before the end.

Why: that trial (search/exploit.py) trains at its config's learning rate, up to 1e-2, held
constant, so its validation swings from report to report (noisy MNIST, seed 0: 0.01333,
0.01335, 0.01527, 0.01317 in its last four reports), and the sweep's result was whichever
report the clock cut. Lowering the rate near a budget's end settles the weights: the last
phase of a warmup-stable-decay schedule, and the finding of budgeted training (Li, Yumer and
Ramanan, ICLR 2020) that a rate decayed to the budget's end beats a constant one.

The rate stays as the config has it for the first `COOLDOWN[0]` of the time between the trial's
start and the sweep's deadline, falls linearly to `FLOOR` of it by `COOLDOWN[1]`, and stays there:
the last tenth leaves room for a report of the cooled model before the clock stops the trial
(`report_cap` puts one there).
A cosine decay over the whole time was tried first and lost to the constant rate (120 s, one
thread, noisy MNIST 0.01261 against 0.01188, text 0.00054 against 0.00050): at this budget the
models are far from converged and a lower rate early only slows them. docs/results.md has the
benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

COOLDOWN = (0.65, 0.9)  # where the decay starts and ends, as shares of the trial's time left
FLOOR = 0.05  # the rate at the end, as a share of the config's


def lr_factor(now: float, *, start: float, deadline: float) -> float:
    """The share of the config's learning rate at wall time `now`, for a trial that started at
    `start` and is stopped at `deadline` (1 before the cooldown, `FLOOR` after it)."""
    span = deadline - start
    if span <= 0:
        return FLOOR
    at = (now - start) / span
    begin, end = COOLDOWN
    if at <= begin:
        return 1.0
    if at >= end:
        return FLOOR
    return 1.0 - (1.0 - FLOOR) * (at - begin) / (end - begin)


def cooldown_callback(lr: float, *, start: float, deadline: float,
                      clock: Callable[[], float] = time.time) -> Any:
    """A Keras callback that sets the optimizer's rate to `lr * lr_factor(...)` before each
    batch (batches, not reports: the trained-on best reports seconds apart). Its `scale` is
    the factor last set, `start` and `deadline` the window it cools in."""
    import keras

    class Cooldown(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.start, self.deadline = start, deadline
            self.scale: float | None = None

        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            scale = lr_factor(clock(), start=start, deadline=deadline)
            if scale != self.scale:  # a resumed checkpoint may hold another rate
                self.model.optimizer.learning_rate.assign(lr * scale)
                self.scale = scale

    return Cooldown()


def report_cap(images: int, seconds: float, *, now: float, start: float,
               deadline: float) -> int | None:
    """At most how many examples until the next report, so that one lands where the rate has
    cooled (`COOLDOWN[1]`) rather than a paced report's spacing past it, at the trial's pace
    (`images` in `seconds` of training); None once it has cooled."""
    cooled = start + COOLDOWN[1] * (deadline - start)
    if seconds <= 0 or now >= cooled:
        return None
    return max(1, round((cooled - now) * images / seconds))
