"""What every trial of a sweep is told besides its config and the data.

Kept apart from `search/sweep.py` and `search/trainable.py` so that building it imports neither
Ray nor TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrialSettings:
    """The sweep's per-trial options, shipped to each trial by `tune.with_parameters`.

    Frozen, so that no trial can change what the others see.
    """

    max_epochs: int  # every trial's epoch budget (the sweep always sets it)
    max_params: int  # the resource guard's limits, checked again where the trial runs
    max_activation_mb: float
    guard_shape: tuple[int, int]  # the image size the guard sizes models at
    checkpoint_every: int = 1  # epochs between checkpoints (the last epoch is always saved)
    seed: int = 0  # the sweep's seed; repeats of a grid point add their number to it
    report_images: int | None = None  # training examples between reports (None: an epoch)
    precision: str = "auto"  # search.precision: decided where each trial runs
