"""The `mnist-denoise` task's bounds and its full space: the same 28x28 images as `mnist`,
so the same bounds; only the task (noisy inputs, clean targets) differs."""

from __future__ import annotations

import dataclasses
from typing import Any

from spaces import mnist
from spaces.full import SuggestTrial, sample

BOUNDS = dataclasses.replace(mnist.BOUNDS, task="mnist-denoise")
DEFAULT = dataclasses.replace(mnist.DEFAULT, task="mnist-denoise")


def full_space(trial: SuggestTrial) -> dict[str, Any]:
    """Define-by-run space for Ray's `OptunaSearch(space=full_space)`."""
    return sample(trial, BOUNDS)
