"""Task data: one loader per task, all returning `TaskData` (plain arrays, cheap to pickle).

`import search.data` loads neither TensorFlow nor Ray; the MNIST loader imports Keras only if it
has to download the data set.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from search.data.base import DataError, LoadOptions, Split, TaskData, resolve_data_dir
from search.data.documents import load_pages, load_text
from search.data.mnist import load_mnist, load_mnist_denoise

__all__ = ["LOADERS", "DataError", "TaskData", "load_pages", "load_task", "resolve_data_dir"]

LOADERS: dict[str, Callable[[LoadOptions], Split]] = {
    "mnist": load_mnist,
    "mnist-denoise": load_mnist_denoise,
    "text": load_text,
}


def _positive(value: object, flag: str, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"{flag} must be a positive integer, got {value!r}")


def load_task(
    task: str,
    *,
    data_dir: str | Path | None = None,
    subset: int | None = None,
    val_subset: int | None = None,
    seed: int = 0,
    noise: float = 0.5,
    val_fraction: float = 0.2,
    patch_size: int | None = None,
    patches_per_page: int = 8,
    resize: tuple[int, int] | None = None,
) -> TaskData:
    """Load `task`'s training and validation data.

    `subset`/`val_subset` keep the first N training/validation images (or pages); `seed` fixes
    everything random about the data (denoising noise, the text split, patches), so trials that
    share it see the same data. `noise` is mnist-denoise's Gaussian sigma; `val_fraction`,
    `patch_size` and `resize=(H, W)` are for the text task's pages.
    """
    loader = LOADERS.get(task)
    if loader is None:
        raise DataError(f"unknown task {task!r}: expected one of {', '.join(LOADERS)}")
    _positive(subset, "--subset")
    _positive(val_subset, "--val-subset")
    _positive(patch_size, "--patch-size")
    _positive(patches_per_page, "--patches-per-page", optional=False)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"--seed must be an integer >= 0, got {seed!r}")
    options = LoadOptions(
        data_dir=Path(data_dir) if data_dir is not None else None,
        subset=subset,
        val_subset=val_subset,
        seed=seed,
        noise=float(noise),
        val_fraction=float(val_fraction),
        resize=(int(resize[0]), int(resize[1])) if resize is not None else None,
    )
    split = loader(options)
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
        patches_per_page=patches_per_page,
        seed=seed,
    )
