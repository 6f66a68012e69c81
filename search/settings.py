"""What every trial of a sweep is told besides its config and the data.

Kept apart from `search/sweep.py` and `search/trainable.py` so that building it imports neither
Ray nor TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

from search.options import default_of


@dataclass(frozen=True)
class TrialSettings:
    """The sweep's per-trial options, shipped to each trial by `tune.with_parameters`.

    Frozen, so that no trial can change what the others see.
    """

    max_epochs: int  # every trial's epoch budget (the sweep always sets it)
    max_params: int  # the resource guard's limits, checked again where the trial runs
    max_activation_mb: float
    guard_shape: tuple[int, int]  # the image size the guard sizes models at
    # epochs between checkpoints (the last epoch is always saved)
    checkpoint_every: int = default_of("checkpoint_every")
    seed: int = default_of("seed")  # the sweep's; repeats of a grid point add their number
    report_images: int | None = None  # training examples between reports (None: an epoch)
    precision: str = default_of("precision")  # search.precision: decided where trials run
