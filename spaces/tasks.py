"""The task registry: every task by name, with its bounds, full space and a one-line description.

The single table the rest of the code derives its tasks from: `spaces.TASKS`, the CLI's
`--task` choices and help, and the data loaders (a test checks that they cover exactly these).
The names themselves are in `spaces.constants.TASKS`, which `spaces.config` validates against
without importing the task modules; this module refuses to load if the two differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spaces import constants as C
from spaces import mnist, mnist_denoise, text
from spaces.axes import TaskBounds
from spaces.default import DefaultBounds
from spaces.full import SuggestTrial


@dataclass(frozen=True)
class TaskSpec:
    """What the sweep and the CLI need to know about one task."""

    name: str
    description: str  # one line, shown by --help
    bounds: TaskBounds  # the study-axes space's bounds and the resource guard's defaults
    full_space: Callable[[SuggestTrial], dict[str, Any]]  # define-by-run, for OptunaSearch
    default: DefaultBounds  # the default space's bounds (spaces/default.py)

    def __post_init__(self) -> None:
        for bounds in (self.bounds, self.default):
            if bounds.task != self.name:
                raise RuntimeError(f"task {self.name!r} was given the bounds of {bounds.task!r}")


REGISTRY: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("mnist", "reconstruct MNIST digits", mnist.BOUNDS, mnist.full_space,
                 mnist.DEFAULT),
        TaskSpec("mnist-denoise", "remove Gaussian noise from MNIST digits",
                 mnist_denoise.BOUNDS, mnist_denoise.full_space, mnist_denoise.DEFAULT),
        TaskSpec("text", "clean scanned document pages (Kaggle's Denoising Dirty Documents)",
                 text.BOUNDS, text.full_space, text.DEFAULT),
    )
}

if tuple(REGISTRY) != C.TASKS:
    raise RuntimeError(f"spaces.tasks.REGISTRY has tasks {tuple(REGISTRY)}, but "
                       f"spaces.constants.TASKS names {C.TASKS}: they must be the same, in order")
