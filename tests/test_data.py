"""Loaders: MNIST (plain and noisy) and document pages, from the real shared data."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.cli import parse
from search.data import (
    LOADERS,
    DataError,
    DataOptions,
    TaskData,
    documents,
    load_pages,
    load_task,
    resolve_data_dir,
)
from search.data.documents import split_pages
from search.data.mnist import split_indices
from spaces.errors import UserError
from spaces.tasks import REGISTRY

HEIGHTS = {420, 258}


def _grey(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255


def _heights(x_groups: tuple) -> set[int]:
    return {x.shape[1] for x, _ in x_groups}


@pytest.fixture(scope="module")
def docs(data_dir: Path) -> Path:
    return data_dir / "dirty-documents"


@pytest.fixture(scope="module")
def few(docs: Path) -> list[str]:
    """Three training page names of each height (reading PNG headers only)."""
    picked: dict[int, list[str]] = {h: [] for h in HEIGHTS}
    for path in sorted((docs / "train").glob("*.png"), key=lambda p: int(p.stem)):
        with Image.open(path) as image:
            height = image.height
        if len(picked[height]) < 3:
            picked[height].append(path.name)
    return picked[420] + picked[258]


def _copy_pages(docs: Path, dest: Path, names: list[str]) -> Path:
    for folder in ("train", "train_cleaned"):
        (dest / folder).mkdir(parents=True)
        for name in names:
            shutil.copy2(docs / folder / name, dest / folder / name)
    return dest


@pytest.fixture(scope="module")
def text(data_dir: Path) -> TaskData:
    return load_task("text", DataOptions(data_dir=data_dir, patch_size=32, patches_per_page=2))


# --- MNIST ---------------------------------------------------------------------------------------


def test_mnist_shapes_range_and_subsets(data_dir: Path) -> None:
    data = load_task("mnist", DataOptions(data_dir=data_dir, subset=200, val_subset=50))
    ((x, y),), ((vx, vy),) = data.train, data.val
    assert x.shape == (200, 28, 28, 1) and vx.shape == (50, 28, 28, 1)
    assert x.dtype == np.float32 and vx.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(vx, vy)
    with np.load(data_dir / "mnist.npz") as raw:
        train_idx, val_idx = split_indices(len(raw["x_train"]), 0.2, seed=0)
        np.testing.assert_allclose(x[..., 0], raw["x_train"][train_idx[:200]] / 255, rtol=1e-6)
        np.testing.assert_allclose(vx[..., 0], raw["x_train"][val_idx[:50]] / 255, rtol=1e-6)
    assert (data.n_train, data.input_shape, data.val_names) == (200, (28, 28), ())
    assert data.training_groups(3)[0][0] is x


def test_mnist_validates_on_a_fifth_of_the_training_images_and_tests_on_the_official_split(
        data_dir: Path) -> None:
    data = load_task("mnist", DataOptions(data_dir=data_dir, subset=10))
    assert data.val[0][0].shape == (4_000, 28, 28, 1) and data.test == ()  # 0.2 of 20,000
    final = load_task("mnist", DataOptions(data_dir=data_dir, subset=10), test=True)
    with np.load(data_dir / "mnist.npz") as raw:
        np.testing.assert_array_equal(final.test[0][0][..., 0], raw["x_test"] / np.float32(255))


def test_mnist_denoise_noise_is_fixed_per_image(data_dir: Path) -> None:
    small = load_task("mnist-denoise", DataOptions(data_dir=data_dir, subset=100, val_subset=20))
    large = load_task("mnist-denoise", DataOptions(data_dir=data_dir, subset=300, val_subset=40))
    again = load_task("mnist-denoise", DataOptions(data_dir=data_dir, subset=100, val_subset=20))
    clean = load_task("mnist", DataOptions(data_dir=data_dir, subset=100, val_subset=20))
    (x, y), (vx, vy) = small.train[0], small.val[0]
    np.testing.assert_array_equal(x, large.train[0][0][:100])
    np.testing.assert_array_equal(vx, large.val[0][0][:20])
    np.testing.assert_array_equal(x, again.train[0][0])
    np.testing.assert_array_equal(y, clean.train[0][0])  # targets are the clean images
    np.testing.assert_array_equal(vy, clean.val[0][0])
    assert x.min() == 0.0 and x.max() == 1.0  # clipped, and clipping did happen
    inside = (x > 0) & (x < 1)
    assert 0.3 < np.std((x - y)[inside]) < 0.5  # sigma 0.5, truncated by the clip
    other = load_task("mnist-denoise",
                      DataOptions(data_dir=data_dir, subset=100, val_subset=20, seed=1))
    assert not np.array_equal(x, other.train[0][0])
    quiet = load_task("mnist-denoise",
                      DataOptions(data_dir=data_dir, subset=100, val_subset=20, noise=0.0))
    np.testing.assert_array_equal(quiet.train[0][0], y)


def test_mnist_explicit_data_dir_needs_npz(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path / "mnist.npz")):
        load_task("mnist", DataOptions(data_dir=tmp_path))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"subset": 16_001}, "subset 16001 exceeds the 16000 MNIST training images"),
        ({"val_subset": 4_001}, "subset 4001 exceeds the 4000 MNIST validation images"),
        ({"subset": 0}, "--subset must be at least 1, got 0"),
        ({"seed": -1}, "--seed must be"),
        ({"resize": (32, 32)}, "resize applies to the text task only"),
    ],
)
def test_mnist_rejects_bad_options(data_dir: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):  # a DataError, or the options' InputError
        load_task("mnist", DataOptions(data_dir=data_dir, **kwargs))


def test_unknown_task_names_the_valid_ones() -> None:
    with pytest.raises(DataError, match=r"'mnsit'.*mnist, mnist-denoise, text"):
        load_task("mnsit", DataOptions())


def test_data_options_come_from_the_data_flags() -> None:
    """The parser's defaults are DataOptions' defaults; sweep.json records the options as JSON."""
    args, _ = parse(["--task", "text", "--data-dir", "d", "--subset", "3",
                                      "--resize", "420x540", "--seed", "2"])
    options = DataOptions.from_options(args)
    assert options == DataOptions(data_dir="d", subset=3, resize=(420, 540), seed=2)
    recorded = json.loads(json.dumps(dataclasses.asdict(options)))
    assert recorded == {"data_dir": "d", "subset": 3, "val_subset": None, "noise": 0.5,
                        "val_fraction": 0.2, "test_fraction": 0.2, "patch_size": None,
                        "patches_per_page": 8,
                        "resize": [420, 540], "seed": 2}
    assert DataOptions(data_dir=Path("d")).data_dir == "d"  # a path records as its text


def test_loaders_cover_exactly_the_registered_tasks() -> None:
    assert sorted(LOADERS) == sorted(REGISTRY)


def test_resolve_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEARCH_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path) == tmp_path
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("SEARCH_DATA_DIR")
    assert resolve_data_dir(None) is None


# --- text pages: the shared folders --------------------------------------------------------------


def test_text_pairs_pages_by_name(text: TaskData, docs: Path) -> None:
    assert text.n_train + text.n_val + text.splits["test"] == 120 and text.n_val == 24
    pages = [(x[i, ..., 0], y[i, ..., 0]) for x, y in text.val for i in range(len(x))]
    assert len(pages) == len(text.val_names)
    for name, (x, y) in list(zip(text.val_names, pages, strict=True))[::6]:
        np.testing.assert_array_equal(x, _grey(docs / "train" / name))
        np.testing.assert_array_equal(y, _grey(docs / "train_cleaned" / name))


def test_text_both_heights_in_train_and_val(text: TaskData) -> None:
    assert _heights(text.train) == HEIGHTS and _heights(text.val) == HEIGHTS
    assert [len(x) for x, _ in text.train] == [48, 24]  # 420 first, stratified 80/40 pages
    assert [len(x) for x, _ in text.val] == [16, 8]
    whole_pages = dataclasses.replace(text, patch_size=None)
    assert whole_pages.input_shape == (None, 540)  # heights vary, width does not
    for x, y in text.train + text.val:
        assert x.dtype == y.dtype == np.float32 and x.shape == y.shape
        assert x.min() >= 0.0 and x.max() <= 1.0


def test_text_split_is_seeded_and_independent_of_subset(data_dir: Path, text: TaskData) -> None:
    small = load_task("text", DataOptions(data_dir=data_dir, subset=4, val_subset=3))
    assert small.n_train == 4 and _heights(small.train) == HEIGHTS  # prefixes keep both sizes
    assert small.val_names == text.val_names[:2] + text.val_names[16:17]  # 2x420 then 1x258
    full_train = [x[i] for x, _ in text.train for i in range(len(x))]
    for x, _ in small.train:  # the subset's pages are training pages of the full split
        for page in x:
            assert any(page.shape == other.shape and np.array_equal(page, other)
                       for other in full_train)
    reseeded = load_task("text", DataOptions(data_dir=data_dir, seed=1))
    assert set(reseeded.val_names) != set(text.val_names)


def test_split_pages_holds_out_each_height() -> None:
    heights = {f"{i}.png": 420 if i % 3 else 258 for i in range(1, 31)}
    train, val = split_pages(heights, 0.2, seed=0)
    assert sorted(train + val) == sorted(heights) and not set(train) & set(val)
    assert sorted(heights[n] for n in val) == [258, 258] + [420] * 4
    assert split_pages(heights, 0.2, seed=0) == (train, val)


def test_text_patches_per_epoch(text: TaskData) -> None:
    ((x, y),) = text.training_groups(0)
    assert x.shape == y.shape == (text.n_train * 2, 32, 32, 1)
    np.testing.assert_array_equal(x, text.training_groups(0)[0][0])
    assert not np.array_equal(x, text.training_groups(1)[0][0])
    # the model trains on 32x32 patches and validates on whole pages: both sizes vary
    assert text.input_shape == (None, None)


def test_patches_are_aligned_windows(docs: Path) -> None:
    """Target = each pixel's own coordinates, so a target patch says where it was cut."""
    page = _grey(docs / "train" / "2.png")
    height, width = page.shape
    rows, cols = np.mgrid[0:height, 0:width]
    where = (rows * width + cols).astype(np.float32)
    data = TaskData(task="text", train=((page[None, ..., None], where[None, ..., None]),),
                    val=(), patch_size=24, patches_per_page=5, seed=7)
    ((x, y),) = data.training_groups(2)
    assert x.shape == (5, 24, 24, 1)
    for patch_x, patch_y in zip(x[..., 0], y[..., 0], strict=True):
        top, left = divmod(int(patch_y[0, 0]), width)
        np.testing.assert_array_equal(patch_y, where[top:top + 24, left:left + 24])
        np.testing.assert_array_equal(patch_x, page[top:top + 24, left:left + 24])
    twin = TaskData(task="text", train=data.train, val=(), patch_size=24, patches_per_page=5,
                    seed=7)
    np.testing.assert_array_equal(twin.training_groups(2)[0][1], y)
    other = TaskData(task="text", train=data.train, val=(), patch_size=24, patches_per_page=5,
                     seed=8)
    assert not np.array_equal(other.training_groups(2)[0][1], y)


def test_patch_larger_than_a_page_is_rejected(data_dir: Path) -> None:
    with pytest.raises(DataError, match="--patch-size 300 exceeds"):
        load_task("text", DataOptions(data_dir=data_dir, patch_size=300))


# --- text pages: zips, resize, cache -------------------------------------------------------------


def test_text_from_zips(tmp_path: Path, docs: Path, few: list[str], text: TaskData) -> None:
    for folder in ("train", "train_cleaned"):
        with zipfile.ZipFile(tmp_path / f"{folder}.zip", "w") as archive:
            archive.writestr(f"{folder}/", "")
            for name in few:
                archive.write(docs / folder / name, f"{folder}/{name}")
    data = load_task("text", DataOptions(data_dir=tmp_path, val_fraction=0.34, test_fraction=0))
    assert data.n_train == 4 and _heights(data.train) == HEIGHTS
    assert set(data.val_names) <= set(few) and len(data.val_names) == 2
    val = [(x[i, ..., 0], y[i, ..., 0]) for x, y in data.val for i in range(len(x))]
    for name, (x, y) in zip(data.val_names, val, strict=True):
        np.testing.assert_array_equal(x, _grey(docs / "train" / name))
        np.testing.assert_array_equal(y, _grey(docs / "train_cleaned" / name))
    zipped = dict(load_pages(tmp_path / "train.zip"))
    assert sorted(zipped) == sorted(few)


def test_text_resize_reproduces_the_study(tmp_path: Path, docs: Path, few: list[str]) -> None:
    data_dir = _copy_pages(docs, tmp_path / "data", few)
    data = load_task("text", DataOptions(data_dir=data_dir, resize=(420, 540), val_fraction=0.34,
                                         test_fraction=0))
    assert data.input_shape == (420, 540) and len(data.train) == len(data.val) == 1
    assert data.n_train == 4 and data.val[0][0].shape == (2, 420, 540, 1)
    # One validation page is natively 258 high, stretched to 420 as the study's
    # keras load_img(target_size=(420, 540)) did (nearest neighbour).
    (short,) = set(data.val_names) & set(few[3:])
    with Image.open(docs / "train" / short) as image:
        want = np.asarray(image.convert("L").resize((540, 420), Image.Resampling.NEAREST)) / 255
    got = data.val[0][0][data.val_names.index(short), ..., 0]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_cache_hit_returns_equal_arrays_and_misses_on_change(
    tmp_path: Path, docs: Path, few: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = _copy_pages(docs, tmp_path / "data", few)
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    first = load_task("text", DataOptions(data_dir=data_dir, val_fraction=0.34, test_fraction=0))
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded a page despite a fresh cache")

    monkeypatch.setattr(documents, "_decode", no_decoding)
    second = load_task("text", DataOptions(data_dir=data_dir, val_fraction=0.34, test_fraction=0))
    assert second.val_names == first.val_names
    for (x1, y1), (x2, y2) in zip(first.train + first.val, second.train + second.val, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    touched = data_dir / "train" / few[0]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="despite a fresh cache"):
        load_task("text", DataOptions(data_dir=data_dir, val_fraction=0.34, test_fraction=0))


# --- text pages: bad inputs ----------------------------------------------------------------------


def _missing_folder(root: Path, few: list[str]) -> str:
    shutil.rmtree(root / "train_cleaned")
    return re.escape(str(root / "train_cleaned.zip"))


def _unpaired(root: Path, few: list[str]) -> str:
    (root / "train_cleaned" / few[1]).unlink()
    return re.escape(f"{few[1]} has no partner in {root / 'train_cleaned'}")


def _corrupt(root: Path, few: list[str]) -> str:
    (root / "train_cleaned" / few[2]).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return re.escape(str(root / "train_cleaned" / few[2]))


def _not_an_image(root: Path, few: list[str]) -> str:
    (root / "train" / few[0]).write_text("hello")
    return re.escape(str(root / "train" / few[0]))


def _size_mismatch(root: Path, few: list[str]) -> str:
    shutil.copy2(root / "train_cleaned" / few[3], root / "train_cleaned" / few[0])
    return re.escape(f"{few[0]} is 258x540") + ".* is 420x540"


@pytest.mark.parametrize("breakage", [_missing_folder, _unpaired, _corrupt, _not_an_image,
                                      _size_mismatch])
def test_bad_pages_name_the_file(tmp_path: Path, docs: Path, few: list[str], breakage) -> None:
    root = _copy_pages(docs, tmp_path / "data" / "dirty-documents", few)
    match = breakage(root, few)
    with pytest.raises(DataError, match=match):
        load_task("text", DataOptions(data_dir=tmp_path / "data"))


def test_no_pages_anywhere(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dirty-documents"):
        load_task("text", DataOptions(data_dir=tmp_path))
    with pytest.raises(DataError, match=r"holds no \.png pages"):
        load_pages(tmp_path)
