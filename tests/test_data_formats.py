"""Data in any format is read by its real range, or refused with a message naming the file.

Every file here is built for real (Pillow, numpy.savez) in tmp_path and read through the public
loaders (`load_pages`, `load_task`), checking the values the model would see.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from search.data import DataError, DataOptions, TaskData, documents, load_pages, load_task

H, W = 6, 8  # small pages: what matters is the values
RED_LUMA = 76 / 255  # Pillow's ITU-R 601-2 luma of (255, 0, 0): 0.299 * 255, rounded down


def _save(image: Image.Image | list[Image.Image], path: Path, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(image, list):
        image[0].save(path, save_all=True, append_images=image[1:], **kwargs)
    else:
        image.save(path, **kwargs)
    return path


def _load_one(path: Path, how: str) -> np.ndarray:
    """The single page in `path`'s folder, read from the folder itself or from a zip of it."""
    if how == "zip":
        archive = path.parent.with_suffix(".zip")
        with zipfile.ZipFile(archive, "w") as out:
            out.write(path, f"{path.parent.name}/{path.name}")
        source = archive
    else:
        source = path.parent
    ((name, pixels),) = load_pages(source)
    assert name == path.name and pixels.dtype == np.float32 and pixels.shape == (H, W)
    return pixels


def _grey16(value: int, mode: str = "I;16") -> Image.Image:
    """A 16-bit grey page; 'I;16B' from big-endian bytes (Pillow's convert would clip to 255)."""
    if mode == "I;16B":
        return Image.frombytes(mode, (W, H), np.full((H, W), value, ">u2").tobytes())
    return Image.fromarray(np.full((H, W), value, dtype=np.uint16))


def _palette(transparent: bool) -> Image.Image:
    image = Image.new("P", (W, H), 0)
    image.putpalette([255, 0, 0] + [0, 0, 0] * 255)  # index 0 is red
    if transparent:
        image.info["transparency"] = 0
    return image


def _keyed(image: Image.Image) -> Image.Image:
    """A PNG colour key (tRNS): pixels of the page's own value are transparent."""
    image.info["transparency"] = image.getpixel((0, 0))
    return image


def _two_tones() -> Image.Image:
    """'1' bilevel: the left half black, the right half white."""
    pixels = np.zeros((H, W), dtype=bool)
    pixels[:, W // 2:] = True
    return Image.fromarray(pixels)


# (file name, image, expected values the model sees, tolerance)
GOOD_PAGES: dict[str, tuple[str, Callable[[], Image.Image], np.ndarray | float, float]] = {
    "L 8-bit": ("p.png", lambda: Image.new("L", (W, H), 128), 128 / 255, 0),
    "I;16 16-bit PNG": ("p.png", lambda: _grey16(32768), 32768 / 65535, 1e-7),
    "I;16 16-bit black": ("p.png", lambda: _grey16(0), 0.0, 0),
    "I;16 16-bit white": ("p.png", lambda: _grey16(65535), 1.0, 0),
    "I;16B big-endian TIFF": ("p.tif", lambda: _grey16(300, "I;16B"), 300 / 65535, 1e-7),
    "I 32-bit TIFF, 16-bit range": (
        "p.tif", lambda: Image.fromarray(np.full((H, W), 40000, np.int32)), 40000 / 65535, 1e-7),
    "P palette": ("p.png", lambda: _palette(False), RED_LUMA, 0),
    "P palette, transparent index": ("p.png", lambda: _palette(True), 1.0, 0),
    "L with a tRNS colour key": ("p.png", lambda: _keyed(Image.new("L", (W, H), 40)), 1.0, 0),
    "LA opaque": ("p.png", lambda: Image.new("LA", (W, H), (40, 255)), 40 / 255, 0),
    "LA transparent is white paper": ("p.png", lambda: Image.new("LA", (W, H), (0, 0)), 1.0, 0),
    "RGB red": ("p.png", lambda: Image.new("RGB", (W, H), (255, 0, 0)), RED_LUMA, 0),
    "RGB grey": ("p.png", lambda: Image.new("RGB", (W, H), (90, 90, 90)), 90 / 255, 0),
    "RGBA half-transparent black over white": (
        "p.png", lambda: Image.new("RGBA", (W, H), (0, 0, 0, 128)), 127 / 255, 1 / 255),
    "1 bilevel": ("p.png", _two_tones, np.repeat([[0.0] * (W // 2) + [1.0] * (W // 2)], H, 0), 0),
    "JPEG L": ("p.jpg", lambda: Image.new("L", (W, H), 200), 200 / 255, 2 / 255),
    "JPEG RGB": ("p.jpeg", lambda: Image.new("RGB", (W, H), (255, 0, 0)), RED_LUMA, 3 / 255),
    "F float TIFF in [0, 1]": (
        "p.tif", lambda: Image.fromarray(np.full((H, W), 0.25, np.float32)), 0.25, 0),
}


@pytest.mark.parametrize("how", ["folder", "zip"])
@pytest.mark.parametrize("case", GOOD_PAGES, ids=str)
def test_page_formats_load_by_their_real_range(tmp_path: Path, case: str, how: str) -> None:
    name, make, expected, tolerance = GOOD_PAGES[case]
    path = _save(make(), tmp_path / "pages" / name)
    pixels = _load_one(path, how)
    np.testing.assert_allclose(pixels, np.broadcast_to(expected, (H, W)), rtol=0,
                               atol=max(tolerance, 1e-7))  # float32 of k/255


def _frames(path: Path) -> Path:
    return _save([Image.new("L", (W, H), c) for c in (0, 255)], path)


# (file name, how to write it, what the message must say besides the file's name)
BAD_PAGES: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "F above 1": (
        "p.tif", lambda p: _save(Image.fromarray(np.full((H, W), 2.5, np.float32)), p),
        r"mode 'F'.*float32.*values 2\.5\.\.2\.5.*0\.0\.\.1\.0"),
    "F negative": (
        "p.tif", lambda p: _save(Image.fromarray(np.full((H, W), -0.5, np.float32)), p),
        r"mode 'F'.*values -0\.5"),
    "F NaN": (
        "p.tif", lambda p: _save(Image.fromarray(np.full((H, W), np.nan, np.float32)), p),
        r"mode 'F'.*non-finite"),
    "I beyond 16 bits": (
        "p.tif", lambda p: _save(Image.fromarray(np.full((H, W), 70000, np.int32)), p),
        r"mode 'I'.*int32.*values 70000\.\.70000.*0\.\.65535"),
    "I negative": (
        "p.tif", lambda p: _save(Image.fromarray(np.full((H, W), -3, np.int32)), p),
        r"mode 'I'.*values -3\.\.-3"),
    "CMYK JPEG": (
        "p.jpg", lambda p: _save(Image.new("CMYK", (W, H), (0, 0, 0, 255)), p),
        r"JPEG of mode 'CMYK', 8x6 is not a supported page"),
    "animated PNG": ("p.png", _frames, r"PNG of mode 'L', 8x6, 2 frames is not a single page"),
    "multi-page TIFF": ("p.tif", _frames, r"TIFF .*2 frames is not a single page"),
    "text named .jpg": ("p.jpg", lambda p: (p.write_text("hello"), p)[1], "not a readable image"),
}


@pytest.mark.parametrize("how", ["folder", "zip"])
@pytest.mark.parametrize("case", BAD_PAGES, ids=str)
def test_unsupported_pages_are_refused_by_name(tmp_path: Path, case: str, how: str) -> None:
    name, write, found = BAD_PAGES[case]
    (tmp_path / "pages").mkdir()
    path = write(tmp_path / "pages" / name)
    label = (f"{tmp_path / 'pages.zip'}:pages/{name}" if how == "zip"
             else str(tmp_path / "pages" / name))
    with pytest.raises(DataError, match=re.escape(label) + ".*" + found):
        _load_one(path, how)


def _pages(root: Path, values: dict[str, tuple[int, int]]) -> None:
    """train/ and train_cleaned/ pages: name -> (input value, target value), 8- or 16-bit as the
    name says (`a16.png` is 16-bit, `a8.png` 8-bit)."""
    for folder, index in (("train", 0), ("train_cleaned", 1)):
        for name, pair in values.items():
            image = _grey16(pair[index]) if "16" in name else Image.new("L", (W, H), pair[index])
            _save(image, root / folder / name)


MIXED = {"a8.png": (51, 255), "b16.png": (13107, 65535), "c8.png": (102, 204),
         "d16.png": (32768, 0)}  # 0.2/1, 0.2/1, 0.4/0.8, ~0.5/0


def _values_by_name(
    data: TaskData,
) -> tuple[dict[str, tuple[float, float]], list[tuple[float, float]]]:
    """Every validation page's single (input, target) value by name, and the training pages'
    values in sorted order."""
    found = {}
    names = iter(data.val_names)
    for x, y in data.val:
        for page_x, page_y in zip(x, y, strict=True):
            assert page_x.min() == page_x.max() and page_y.min() == page_y.max()
            found[next(names)] = (float(page_x.flat[0]), float(page_y.flat[0]))
    train = sorted((float(x.flat[0]), float(y.flat[0])) for group in data.train
                   for x, y in zip(*group, strict=True))
    return found, train


def test_text_task_mixes_8_and_16_bit_pages_of_one_size(tmp_path: Path) -> None:
    """Pages of one size are stacked into one array: each keeps its own range."""
    _pages(tmp_path, MIXED)
    data = load_task("text", DataOptions(data_dir=tmp_path, val_fraction=0.5, test_fraction=0))
    expected = {name: (x / (65535 if "16" in name else 255), y / (65535 if "16" in name else 255))
                for name, (x, y) in MIXED.items()}
    val, train = _values_by_name(data)
    assert len(val) == 2 and len(train) == 2
    for name, pair in val.items():
        np.testing.assert_allclose(pair, expected[name], atol=1e-6)
    others = sorted(v for name, v in expected.items() if name not in val)
    np.testing.assert_allclose(train, others, atol=1e-6)


def test_resize_keeps_16_bit_values(tmp_path: Path) -> None:
    _pages(tmp_path, MIXED)
    data = load_task("text", DataOptions(data_dir=tmp_path, val_fraction=0.5, test_fraction=0,
                                         resize=(9, 5)))
    assert data.input_shape == (9, 5)
    val, _ = _values_by_name(data)
    for name, (x, _) in val.items():
        assert x == pytest.approx(MIXED[name][0] / (65535 if "16" in name else 255), abs=1e-6)


def test_page_cache_from_an_older_decoder_is_not_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 1 read a 16-bit page as white; its cache must miss once decoding changed."""
    _pages(tmp_path, MIXED)
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    with monkeypatch.context() as old:
        old.setattr(documents, "_CACHE_VERSION", 1)
        old.setattr(documents, "_pixels",
                    lambda image, label: np.asarray(image.convert("L"), dtype=np.uint8))
        stale = load_task("text", DataOptions(data_dir=tmp_path, val_fraction=0.5, test_fraction=0))
    assert max(x.max() for x, _ in stale.train + stale.val) == 1.0  # white, as version 1 saw it
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    fresh = load_task("text", DataOptions(data_dir=tmp_path, val_fraction=0.5, test_fraction=0))
    val, train = _values_by_name(fresh)
    assert max(x for x, _ in [*val.values(), *train]) == pytest.approx(32768 / 65535)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


def test_jpeg_pages_pair_by_name(tmp_path: Path) -> None:
    for folder, value in (("train", 60), ("train_cleaned", 250)):
        for name in ("1.jpg", "2.jpg"):
            _save(Image.new("L", (W, H), value), tmp_path / folder / name)
    data = load_task("text", DataOptions(data_dir=tmp_path, val_fraction=0.5, test_fraction=0))
    assert sorted(data.val_names) in (["1.jpg"], ["2.jpg"])
    (x, y), = data.val
    np.testing.assert_allclose(x, 60 / 255, atol=2 / 255)
    np.testing.assert_allclose(y, 250 / 255, atol=2 / 255)


# --- mnist.npz -----------------------------------------------------------------------------------


def _npz(path: Path, **changes: object) -> Path:
    """An mnist.npz of 5 training and 3 test images; `changes` replace (or, as None, drop) keys."""
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {
        "x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 5, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    arrays.update(changes)
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "mnist.npz", **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_mnist_uint8_is_scaled_by_255(tmp_path: Path) -> None:
    images = np.arange(5 * 28 * 28).reshape(5, 28, 28).astype(np.uint8)
    npz = _npz(tmp_path, x_test=images, y_test=np.zeros(5, np.uint8))
    data = load_task("mnist", DataOptions(data_dir=npz), test=True)
    np.testing.assert_allclose(data.test[0][0][..., 0], images / 255, rtol=1e-6)
    assert data.train[0][0].shape == (4, 28, 28, 1) and data.val[0][0].shape == (1, 28, 28, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("task", ["mnist", "mnist-denoise"])
def test_mnist_floats_in_unit_range_are_used_as_they_are(
    tmp_path: Path, dtype: type, task: str
) -> None:
    images: np.ndarray = np.linspace(0, 1, 5 * 28 * 28).reshape(5, 28, 28).astype(dtype)
    tests: np.ndarray = np.full((3, 28, 28), 0.5, dtype=dtype)
    npz = _npz(tmp_path, x_train=tests, y_train=np.zeros(3, np.uint8), x_test=images,
               y_test=np.zeros(5, np.uint8))
    data = load_task(task, DataOptions(data_dir=npz, noise=0.1), test=True)
    (x, y), ((vx, vy),) = data.test[0], data.val
    assert x.dtype == vx.dtype == np.float32
    np.testing.assert_array_equal(y[..., 0], images.astype(np.float32))  # not divided by 255
    np.testing.assert_array_equal(vy[..., 0], np.full((1, 28, 28), 0.5, np.float32))
    if task == "mnist-denoise":
        assert not np.array_equal(vx, vy) and vx.min() >= 0 and vx.max() <= 1


GOOD = np.zeros((5, 28, 28), np.uint8)
BAD_NPZ: dict[str, tuple[dict[str, object], str]] = {
    "uint16": ({"x_train": GOOD.astype(np.uint16)},
               r"x_train is a uint16 array of shape \(5, 28, 28\)"),
    "int64": ({"x_test": np.zeros((3, 28, 28), np.int64)}, r"x_test is a int64 array"),
    "bool": ({"x_train": GOOD.astype(bool)}, r"x_train is a bool array"),
    "float above 1": ({"x_train": np.full((5, 28, 28), 255.0)}, r"x_train .*values 255\.\.255"),
    "float below 0": ({"x_test": np.full((3, 28, 28), -0.5, np.float32)},
                      r"x_test .*values -0\.5\.\.-0\.5"),
    "NaN": ({"x_train": np.full((5, 28, 28), np.nan)}, r"x_train .*NaN or infinite"),
    "inf": ({"x_test": np.full((3, 28, 28), np.inf, np.float32)}, r"x_test .*NaN or infinite"),
    "flat images": ({"x_train": np.zeros((5, 784), np.uint8)},
                    r"x_train is a uint8 array of shape \(5, 784\), expected \(N, 28, 28\)"),
    "wrong size": ({"x_test": np.zeros((3, 32, 32), np.uint8)}, r"x_test .*shape \(3, 32, 32\)"),
    "channel axis": ({"x_train": np.zeros((5, 28, 28, 1), np.uint8)},
                     r"x_train .*shape \(5, 28, 28, 1\)"),
    "no images": ({"x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0)},
                  r"x_train .*shape \(0, 28, 28\).*N >= 1"),
    "missing key": ({"y_test": None}, r"lacks y_test.*it holds x_train, y_train, x_test"),
    "x/y mismatch": ({"y_train": np.zeros(4, np.uint8)},
                     r"y_train is a uint8 array of shape \(4,\), expected one label per image \(5"),
    "2-D labels": ({"y_test": np.zeros((3, 10), np.uint8)}, r"y_test .*shape \(3, 10\)"),
}


@pytest.mark.parametrize("case", BAD_NPZ, ids=str)
def test_bad_mnist_npz_is_refused_naming_file_and_key(tmp_path: Path, case: str) -> None:
    changes, found = BAD_NPZ[case]
    data_dir = _npz(tmp_path, **changes)
    with pytest.raises(DataError, match=re.escape(str(data_dir / "mnist.npz")) + ".*" + found):
        load_task("mnist", DataOptions(data_dir=data_dir))


def test_mnist_npz_that_is_not_an_archive(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", GOOD)
    (tmp_path / "x.npy").rename(tmp_path / "mnist.npz")
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "mnist.npz")) + ".*single array"):
        load_task("mnist", DataOptions(data_dir=tmp_path))
    objects = _npz(tmp_path / "objects", x_train=np.array([GOOD, None], dtype=object))
    with pytest.raises(DataError, match=re.escape(f"cannot read {objects / 'mnist.npz'}")):
        load_task("mnist", DataOptions(data_dir=objects))
