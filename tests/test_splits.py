"""Three-way splits: validation carved from the training data, a test split no trial sees,
seeded, recorded (splits.json) and checked on resume and by the finalists stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from search import splits
from search.data import DataOptions, load_task
from search.data.documents import split_pages3
from search.data.mnist import split_indices
from spaces import constants as C


def _rows(groups: tuple) -> set[bytes]:
    return {image.tobytes() for x, _ in groups for image in x}


def test_mnist_validation_is_seeded_and_disjoint_from_training(data_dir: Path) -> None:
    train, val = split_indices(20_000, 0.2, seed=0)
    assert len(val) == 4_000 and len(train) == 16_000
    assert not set(train.tolist()) & set(val.tolist())
    assert sorted([*train.tolist(), *val.tolist()]) == list(range(20_000))
    again, other = split_indices(20_000, 0.2, seed=0), split_indices(20_000, 0.2, seed=1)
    assert np.array_equal(again[1], val) and not np.array_equal(other[1], val)
    data = load_task("mnist", DataOptions(data_dir=data_dir, subset=500, val_subset=500),
                     test=True)
    assert not _rows(data.train) & _rows(data.val)
    with np.load(data_dir / "mnist.npz") as raw:  # the official test split, whole
        assert data.test[0][0].shape == (len(raw["x_test"]), 28, 28, 1)


def test_text_split_is_stratified_seeded_and_disjoint() -> None:
    heights = {f"{i}.png": 420 if i < 80 else 258 for i in range(120)}
    train, val, test = split_pages3(heights, 0.2, 0.2, seed=0)
    assert (len(train), len(val), len(test)) == (72, 24, 24)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert sum(heights[n] == 258 for n in test) == 8  # a fifth of each height
    assert split_pages3(heights, 0.2, 0.2, seed=0) == (train, val, test)
    assert split_pages3(heights, 0.2, 0.2, seed=1)[2] != test


def test_text_test_pages_are_loaded_only_when_asked(data_dir: Path) -> None:
    options = DataOptions(data_dir=data_dir, subset=2, val_subset=2)
    trials = load_task("text", options)
    final = load_task("text", options, test=True)
    assert trials.test == () and len(final.test_names) == 24
    assert not set(final.test_names) & set(final.val_names)
    assert final.splits == trials.splits and final.splits["test"] == 24


def test_the_recorded_split_refuses_another(tmp_path: Path, data_dir: Path) -> None:
    now = load_task("mnist", DataOptions(data_dir=data_dir, subset=10)).splits
    splits.record(tmp_path, now, resume=False)
    assert json.loads((tmp_path / C.SPLITS_FILE).read_text()) == now
    splits.check(tmp_path, now, what="the finalists stage")  # the same split: accepted
    other = load_task("mnist", DataOptions(data_dir=data_dir, subset=10, seed=1)).splits
    with pytest.raises(splits.SplitError, match=f"^{tmp_path}: --resume refused: the sweep's "
                                                f"split was"):
        splits.record(tmp_path, other, resume=True)
    with pytest.raises(splits.SplitError, match="has none: it ran before the train/validation"):
        splits.check(tmp_path / "old", now, what="the finalists stage")
