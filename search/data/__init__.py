"""Task data: one loader per task, all returning `TaskData` (plain arrays, cheap to pickle).

`import search.data` loads neither TensorFlow nor Ray; the MNIST loader imports Keras only if it
has to download the data set.
"""

from __future__ import annotations

from collections.abc import Callable

from search.data.base import DataError, DataOptions, Split, TaskData, resolve_data_dir
from search.data.documents import load_pages, load_text
from search.data.mnist import load_mnist, load_mnist_denoise

__all__ = ["LOADERS", "DataError", "DataOptions", "TaskData", "load_pages", "load_task",
           "resolve_data_dir"]

# Keyed by the names of spaces.tasks.REGISTRY (a test checks that they cover exactly those).
LOADERS: dict[str, Callable[[DataOptions], Split]] = {
    "mnist": load_mnist,
    "mnist-denoise": load_mnist_denoise,
    "text": load_text,
}


def load_task(task: str, options: DataOptions, *, test: bool = False) -> TaskData:
    """Load `task`'s training and validation data as `options` ask (see `DataOptions`), and
    with `test` the untouched test split too (the finalists stage's; trials never get it)."""
    loader = LOADERS.get(task)
    if loader is None:
        raise DataError(f"unknown task {task!r}: expected one of {', '.join(LOADERS)}")
    split = loader(options)
    patch_size = options.patch_size
    if patch_size is not None:
        smallest = min(min(x.shape[1:3]) for x, _ in split.train)
        if patch_size > smallest:
            raise DataError(f"--patch-size {patch_size} exceeds the smallest training image "
                            f"side ({smallest} pixels)")
    return TaskData(
        task=task,
        train=split.train,
        val=split.val,
        val_names=split.val_names,
        patch_size=patch_size,
        patches_per_page=options.patches_per_page,
        seed=options.seed,
        test=split.test if test else (),
        test_names=split.test_names if test else (),
        splits=split.record,
    )
