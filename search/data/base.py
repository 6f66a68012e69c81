"""What every loader returns and shares: the error type, the data options and `TaskData`.

Kept apart from `search/data/__init__.py` so the loader modules can import it without a cycle.
`TaskData` is pickled into Ray's object store and shipped to every trial, so it holds only plain
numpy arrays, tuples and ints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.options import check_value, default_of
from spaces.errors import UserError

DATA_DIR_ENV = "SEARCH_DATA_DIR"

# (x, y) of images that share one size, NHWC float32 in [0, 1].
Group = tuple[np.ndarray, np.ndarray]


class DataError(UserError):
    """Data that cannot be loaded as asked: missing or bad files, impossible options."""


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """The data dir to read: the argument, else `$SEARCH_DATA_DIR`, else None."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


@dataclass(frozen=True)
class DataOptions:
    """Everything that decides the data a run trains and validates on: the data flags.

    Built once from the command line; `load_task` hands it to every loader (each uses the
    fields its task needs), and a sweep records it in sweep.json (`dataclasses.asdict`) so
    that `--resume` can refuse to continue on other data. Plain JSON-able values only.

    `subset`/`val_subset` keep the first N training/validation images (or pages); `seed` fixes
    everything random about the data (denoising noise, the text split, patches), so trials that
    share it see the same data. `noise` is mnist-denoise's Gaussian sigma; `val_fraction` is
    the validation split carved from the training data (every task), `test_fraction` the text
    task's test pages (MNIST's test split is the official one); `val_fraction`,
    `patch_size`, `patches_per_page` and `resize=(H, W)` are for the text task's pages.
    """

    data_dir: str | Path | None = None  # recorded as text (None: loaders read $SEARCH_DATA_DIR)
    subset: int | None = None
    val_subset: int | None = None
    noise: float = default_of("noise")
    val_fraction: float = default_of("val_fraction")
    test_fraction: float = default_of("test_fraction")
    patch_size: int | None = None
    patches_per_page: int = default_of("patches_per_page")
    resize: tuple[int, int] | None = None
    seed: int = default_of("seed")

    def __post_init__(self) -> None:
        # The options' own checks (search/options.py), for DataOptions built without the CLI;
        # noise may be 0 here (a noiseless reference), never on the command line.
        for name in ("subset", "val_subset", "patch_size", "patches_per_page", "seed"):
            check_value(name, getattr(self, name))
        normal = {
            "data_dir": None if self.data_dir is None else str(self.data_dir),
            "noise": float(self.noise),
            "val_fraction": float(self.val_fraction),
            "test_fraction": float(self.test_fraction),
            "resize": None if self.resize is None else (int(self.resize[0]),
                                                        int(self.resize[1])),
        }
        for name, value in normal.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_options(cls, options: Any) -> DataOptions:
        """The data options (and the seed) of a run's `search.options.Options`."""
        return cls(**{f.name: getattr(options, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Split:
    """A loader's answer: training, validation and test groups, the validation and test page
    names, and `record`: what the three-way split is (see `split_record`)."""

    train: tuple[Group, ...]
    val: tuple[Group, ...]
    val_names: tuple[str, ...] = ()
    test: tuple[Group, ...] = ()
    test_names: tuple[str, ...] = ()
    record: dict[str, Any] = dataclasses.field(default_factory=dict)


SPLIT_SCHEME = "train/val/test-v1"  # sweeps before it validated MNIST on the official test split


def split_record(train: Any, val: Any, test: Any, **recipe: Any) -> dict[str, Any]:
    """What sweep.json records of a three-way split: its sizes before any subset, the recipe
    (seed, fractions) and a fingerprint of its members (image indices or page names), so that
    a resume or a finalists run on another split is refused rather than mixed."""
    digest = hashlib.sha256(SPLIT_SCHEME.encode())
    for part in (train, val, test):
        digest.update(b"\0" + "\n".join(str(m) for m in part).encode())
    return {"scheme": SPLIT_SCHEME, "train": len(train), "val": len(val), "test": len(test),
            **recipe, "fingerprint": digest.hexdigest()[:16]}


def _common(sizes: list[int]) -> int | None:
    return sizes[0] if len(set(sizes)) == 1 else None


@dataclass(frozen=True, eq=False)
class TaskData:
    """One task's data, ready to train on: images grouped by size, validated on whole images.

    With `patch_size` set, an epoch trains on `patches_per_page` random aligned crops of each
    training page instead of the pages themselves (see `training_groups`).
    """

    task: str
    train: tuple[Group, ...]
    val: tuple[Group, ...]
    val_names: tuple[str, ...] = ()
    patch_size: int | None = None
    patches_per_page: int = default_of("patches_per_page")
    seed: int = default_of("seed")
    # The untouched test split: loaded only for the finalists stage (`load_task(test=True)`).
    test: tuple[Group, ...] = ()
    test_names: tuple[str, ...] = ()
    splits: dict[str, Any] = dataclasses.field(default_factory=dict)  # `split_record`

    @property
    def n_train(self) -> int:
        """Training images (MNIST) or pages (text), before any patching."""
        return sum(len(x) for x, _ in self.train)

    @property
    def epoch_size(self) -> int:
        """Training examples in one epoch: images, or patches when training on patches."""
        if self.patch_size is None:
            return self.n_train
        return self.n_train * self.patches_per_page

    @property
    def n_val(self) -> int:
        return sum(len(x) for x, _ in self.val)

    @property
    def input_shape(self) -> tuple[int | None, int | None]:
        """(H, W) the model sees in training and validation; None where the size varies.

        With patches, training and validation sizes differ, so both dimensions vary.
        """
        if self.patch_size is not None:
            return (None, None)
        groups = self.train + self.val
        return (
            _common([x.shape[1] for x, _ in groups]),
            _common([x.shape[2] for x, _ in groups]),
        )

    def with_validation_in_training(self) -> TaskData:
        """All labelled images in training (for refitting a final model); validation unchanged.

        Metrics measured on `val` afterwards are no longer held out: report them as such.
        """
        by_size: dict[tuple[int, int], list[Group]] = {}
        for x, y in self.train + self.val:
            by_size.setdefault(x.shape[1:3], []).append((x, y))
        train = tuple(
            (np.concatenate([x for x, _ in groups]), np.concatenate([y for _, y in groups]))
            for _, groups in sorted(by_size.items(), reverse=True)
        )
        return dataclasses.replace(self, train=train)

    def training_groups(self, epoch: int) -> list[Group]:
        """What epoch `epoch` trains on: the training groups, or this epoch's patches.

        Patches come from an RNG seeded by (seed, epoch), so every trial, in any process, trains
        on the same crops in the same epoch and trials differ only by their configs.
        """
        if self.patch_size is None:
            return list(self.train)
        if epoch < 0:
            raise DataError(f"epoch must be >= 0, got {epoch}")
        rng = np.random.default_rng((self.seed, epoch))
        p, k = self.patch_size, self.patches_per_page
        first_x, first_y = self.train[0]
        shape = (sum(len(x) for x, _ in self.train) * k, p, p, first_x.shape[3])
        xs, ys = np.empty(shape, dtype=first_x.dtype), np.empty(shape, dtype=first_y.dtype)
        j = 0
        for x, y in self.train:
            n, height, width = x.shape[:3]
            tops = rng.integers(0, height - p + 1, size=(n, k))
            lefts = rng.integers(0, width - p + 1, size=(n, k))
            # One slice copy a patch: a fancy index over every pixel took 40-150 ms an epoch
            # of 384 96x96 patches, inside the trial's training time (bench/throughput.py).
            for i in range(n):
                for t, left in zip(tops[i].tolist(), lefts[i].tolist(), strict=True):
                    xs[j] = x[i, t:t + p, left:left + p]
                    ys[j] = y[i, t:t + p, left:left + p]
                    j += 1
        return [(xs, ys)]
