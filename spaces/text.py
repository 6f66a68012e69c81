"""The `text` task's bounds and its full space (cleaning scanned document pages).

Conv models only: the pages come in two sizes (258x540 and 420x540), and fully convolutional
models train on patches and predict whole pages of either size, while a dense model is tied to
one flattened size. The study's dense text models (output 420*540 = 226,800 wide, about 0.9
billion parameters) also lie far beyond any sensible guard: the `report` space keeps them as
printed, and the guard refuses them unless --max-params allows them.
"""

from __future__ import annotations

from typing import Any

from spaces.axes import TaskBounds
from spaces.default import DefaultBounds
from spaces.full import SuggestTrial, sample

BOUNDS = TaskBounds(
    task="text",
    # The guard sizes models on whole pages of the larger size, as validation predicts them.
    input_shape=(420, 540),
    families=("conv",),
    max_depth=10,  # deeper than the study's deepest page model (8L); memory grows with depth
    max_pool=4,  # the study's 8L with 4+4: 540 -> 34 columns (padded to 544)
    batch_sizes=(4, 8, 16),  # the study used 16, and 8 for its best run
    epochs=25,  # the study's; the sweep overrides it
    # Conv models stay small (the study's best has 103,073); page activations are what's big.
    max_params=5_000_000,
    # The study's largest page model (4L,16,16,32,128F with 4 BatchNormalization layers) needs
    # about 5.3 GB of layer outputs for a batch of 16 whole pages.
    max_activation_mb=8192,
)


def full_space(trial: SuggestTrial) -> dict[str, Any]:
    """Define-by-run space for Ray's `OptunaSearch(space=full_space)`."""
    return sample(trial, BOUNDS)


# The default space: trained on patches, so small batches give enough steps; U-Net levels and
# the input skip widen the receptive field beyond the study's plain stacks.
DEFAULT = DefaultBounds(task="text", input_shape=(420, 540), depths=(2, 8),
                        batch_sizes=(4, 8, 16), unet_levels=(0, 1, 2),
                        max_activation_mb=BOUNDS.max_activation_mb)
