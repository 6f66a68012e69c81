"""The `mnist` task's bounds and its full space (28x28 digit reconstruction)."""

from __future__ import annotations

from typing import Any

from spaces.axes import TaskBounds
from spaces.default import DefaultBounds
from spaces.full import SuggestTrial, sample

BOUNDS = TaskBounds(
    task="mnist",
    input_shape=(28, 28),
    families=("conv", "dense"),
    max_depth=14,  # the study's deepest model, 14L,16F
    # 28 -> 14 -> 7: a third pooling would pad 7 to 8 and pool an almost empty border.
    max_pool=2,
    batch_sizes=(32, 64, 128, 256),  # the study used 128
    epochs=50,  # the study's; the sweep overrides it
    # A few million: the study's 10L(28*28) dense model (6.2M) fits, its 6L(28*28)(28*28*28)
    # (1.5 billion) does not.
    max_params=10_000_000,
    max_activation_mb=2048,
    max_dense_depth=10,  # the study's 10L(28*28)
    dense_widths=(64, 128, 256, 512, 784, 1024, 2048),  # 784 = 28*28, the study's width
)


def full_space(trial: SuggestTrial) -> dict[str, Any]:
    """Define-by-run space for Ray's `OptunaSearch(space=full_space)`."""
    return sample(trial, BOUNDS)


# The default space: 28x28 digits need no pooling (the study's best MNIST models have none).
DEFAULT = DefaultBounds(task="mnist", input_shape=(28, 28), depths=(2, 6),
                        batch_sizes=(16, 32, 64, 128))
