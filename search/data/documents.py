"""The `text` task: Kaggle "Denoising Dirty Documents" pages, noisy scans -> clean targets.

Reads `train/` and `train_cleaned/` from a data dir (or its `dirty-documents/` subfolder), each
as a folder of pages or as the competition's zip (`train.zip`, whose members may sit in a folder).
A page is a PNG, JPEG or TIFF file; every page, from a folder or a zip, goes through `_decode`,
which reads it by its real range (8-bit, 16-bit or float grey, colour by luma, alpha over white)
or refuses it by name.
Pages keep their native size (540 wide, 420 or 258 high) unless `resize` is given. Decoded pages
are cached on disk, outside the (read-only) data dir, so that repeated runs (and sweeps that
are resumed) decode them once; within a sweep only the driver loads them.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from search.data.base import (
    DataError,
    DataOptions,
    Group,
    Split,
    resolve_data_dir,
    split_record,
)

INPUTS, TARGETS = "train", "train_cleaned"
SUBFOLDER = "dirty-documents"
CACHE_ENV = "SEARCH_CACHE_DIR"
DEFAULT_CACHE = Path("~/.cache/autoencoder-search")
PAGE_SUFFIX = ".png"  # the data set's; any of PAGE_SUFFIXES is read
PAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# 2: pages decode by their real range (16-bit grey, colour by luma, alpha over white) into
# uint8, uint16 or float32 arrays; version 1 caches hold 16-bit pages clipped to white.
_CACHE_VERSION = 2
_GREY_8 = ("L", "1", "P", "RGB", "RGBX", "YCbCr")  # converted to 'L' by Pillow (luma)
_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")  # composited over white, then luma
_GREY_16 = ("I;16", "I;16B", "I;16L", "I;16N")
_SPLIT_STREAM = 0x5917  # keeps the split's draws apart from other seeded draws

# A decoded page: uint8 pixels (resized if asked) and the page's native (H, W).
_Decoded = tuple[np.ndarray, tuple[int, int]]


def page_sort_key(name: str) -> tuple[int, int, str]:
    """Order pages by numeric stem where stems are numbers ("2.png" before "10.png")."""
    stem = PurePosixPath(name).stem
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def cache_dir() -> Path:
    """Where decoded pages are cached: `$SEARCH_CACHE_DIR`, else ~/.cache/autoencoder-search."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else DEFAULT_CACHE.expanduser()


# --- reading pages from a folder or a zip --------------------------------------------------------


def _is_page(name: str) -> bool:
    path = PurePosixPath(name)
    return (path.suffix.lower() in PAGE_SUFFIXES and not path.name.startswith(".")
            and "__MACOSX" not in path.parts)


def _describe(image: Image.Image) -> str:
    """What a refused image is, for its error message: format, mode, size (and frames)."""
    frames = getattr(image, "n_frames", 1)
    return (f"{image.format or 'an image'} of mode {image.mode!r}, {image.width}x{image.height}"
            + (f", {frames} frames" if frames > 1 else ""))


def _on_white(image: Image.Image) -> Image.Image:
    """Alpha composited over white paper, then grey: a transparent pixel is blank paper."""
    rgba = image.convert("RGBA")
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(paper, rgba).convert("L")


def _pixels(image: Image.Image, label: str) -> np.ndarray:
    """The page's grey levels in a dtype that says their range (see `_unit`).

    uint8 for every 8-bit mode ('L', '1', 'P', 'LA', 'RGB', 'RGBA', ...: colour by Pillow's
    ITU-R 601-2 luma, alpha over white), uint16 for 16-bit grey ('I;16', 'I;16B', 'I;16L', and
    'I' as old Pillows read 16-bit PNGs), float32 for 'F' pages already in [0, 1]. Any other
    mode (CMYK, LAB, HSV, ...) or a value outside its range is a DataError.
    """
    mode = image.mode
    if mode in _ALPHA or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        return np.asarray(_on_white(image), dtype=np.uint8)  # before 'P': palettes may hold it
    if mode in _GREY_8:
        return np.asarray(image if mode == "L" else image.convert("L"), dtype=np.uint8)
    if mode in _GREY_16:
        return np.asarray(image).astype(np.uint16)  # native byte order, whatever the file's
    if mode in ("I", "F"):
        values = np.asarray(image)
        low, high = (0, 65535) if mode == "I" else (0.0, 1.0)
        finite = bool(np.isfinite(values).all())
        if values.size and finite and low <= values.min() and values.max() <= high:
            return values.astype(np.uint16 if mode == "I" else np.float32)
        found = ("no pixels" if not values.size else "non-finite values" if not finite
                 else f"values {values.min()}..{values.max()}")
        raise DataError(f"{label}: {_describe(image)} ({values.dtype}) has {found}; a page in "
                        f"mode {mode!r} must hold {low}..{high} (grey levels)")
    raise DataError(f"{label}: {_describe(image)} is not a supported page: expected a grey, "
                    f"palette, RGB(A) or 16-bit grey image (convert CMYK and other colour "
                    f"spaces to RGB or grey first)")


def _decode(blob: bytes | Path, label: str, resize: tuple[int, int] | None) -> _Decoded:
    """One page file (PNG, JPEG or TIFF, from a folder or a zip) -> grey pixels, native (H, W).

    The folder and zip readers both come here, so a page decodes the same from either.
    """
    try:
        with Image.open(io.BytesIO(blob) if isinstance(blob, bytes) else blob) as image:
            if getattr(image, "n_frames", 1) > 1:
                raise DataError(f"{label}: {_describe(image)} is not a single page: "
                                f"save each frame as its own file")
            image.load()
            pixels = _pixels(image, label)
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{label} is not a readable image (PNG, JPEG or TIFF): {exc}") from exc
    native = (pixels.shape[0], pixels.shape[1])
    if resize is not None:
        # Keras' load_img(target_size=...) as the study called it: nearest-neighbour. Pillow
        # resizes uint8 ('L'), uint16 ('I;16') and float32 ('F') arrays without changing them.
        resized = Image.fromarray(pixels).resize((resize[1], resize[0]),
                                                 Image.Resampling.NEAREST)
        pixels = np.asarray(resized).astype(pixels.dtype)
    return pixels, native


def _iter_source(source: Path, resize: tuple[int, int] | None) -> Iterator[tuple[str, _Decoded]]:
    """(file name, decoded page) for every page of a folder or zip, each decoded once."""
    if source.is_dir():
        for path in sorted((p for p in source.iterdir() if _is_page(p.name) and p.is_file()),
                           key=lambda p: page_sort_key(p.name)):
            yield path.name, _decode(path, str(path), resize)
        return
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot open {source} as a folder or zip of pages: {exc}") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and _is_page(m.filename)]
        seen: dict[str, str] = {}
        for member in sorted(members, key=lambda m: page_sort_key(PurePosixPath(m.filename).name)):
            name = PurePosixPath(member.filename).name
            if name in seen:
                raise DataError(f"{source} holds two pages named {name}: "
                                f"{seen[name]} and {member.filename}")
            seen[name] = member.filename
            label = f"{source}:{member.filename}"
            try:
                blob = archive.read(member)
            except (OSError, zipfile.BadZipFile) as exc:
                raise DataError(f"cannot read {label}: {exc}") from exc
            yield name, _decode(blob, label, resize)


def _read_source(source: Path, resize: tuple[int, int] | None) -> dict[str, _Decoded]:
    if not source.exists():
        raise DataError(f"no folder or zip of pages at {source}")
    pages = dict(_iter_source(source, resize))
    if not pages:
        raise DataError(f"{source} holds no {PAGE_SUFFIX} pages (nor any of "
                        f"{', '.join(PAGE_SUFFIXES[1:])})")
    return pages


def _unit(pixels: np.ndarray) -> np.ndarray:
    """Decoded grey levels -> float32 in [0, 1] by their dtype's range: uint8 k / 255 (exactly
    Keras' img_to_array / 255), uint16 k / 65535; float32 pages are in [0, 1] already."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / np.float32(255.0)
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / np.float32(65535.0)
    if pixels.dtype == np.float32:
        return pixels
    raise DataError(f"decoded pages are uint8, uint16 or float32, got {pixels.dtype}")


def load_pages(source: str | Path) -> list[tuple[str, np.ndarray]]:
    """Every page (PNG, JPEG, TIFF) in a folder or zip, by page order, as (file name, float32 HxW
    array in [0, 1])."""
    pages = _read_source(Path(source), resize=None)
    return [(name, _unit(pixels)) for name, (pixels, _) in pages.items()]


# --- locating and pairing the training pages -----------------------------------------------------


def _root(data_dir: Path) -> Path:
    """The data dir itself or its `dirty-documents/` subfolder, whichever holds the pages."""
    candidates = (data_dir, data_dir / SUBFOLDER)
    for root in candidates:
        if any((root / n).is_dir() or (root / f"{n}.zip").is_file() for n in (INPUTS, TARGETS)):
            return root
    raise DataError(
        f"no document pages under {data_dir}: expected folders {INPUTS}/ and {TARGETS}/ "
        f"(or {INPUTS}.zip and {TARGETS}.zip) in {data_dir} or {data_dir / SUBFOLDER}"
    )


def source_path(root: Path, name: str) -> Path:
    """`<root>/<name>/` if it is a folder, else `<root>/<name>.zip`."""
    folder, archive = root / name, root / f"{name}.zip"
    if folder.is_dir():
        return folder
    if archive.is_file():
        return archive
    raise DataError(f"missing {name!r} pages: expected folder {folder} or zip {archive}")


def _pair(inputs: dict[str, _Decoded], targets: dict[str, _Decoded],
          sources: tuple[Path, Path]) -> list[tuple[str, _Decoded, _Decoded]]:
    for names, others, other in ((inputs, targets, sources[1]), (targets, inputs, sources[0])):
        unpaired = sorted(set(names) - set(others), key=page_sort_key)
        if unpaired:
            raise DataError(f"{unpaired[0]} has no partner in {other}"
                            + (f" (nor do {len(unpaired) - 1} more)" if len(unpaired) > 1 else ""))
    pairs = []
    for name in sorted(inputs, key=page_sort_key):
        (_, in_size), (_, out_size) = inputs[name], targets[name]
        if in_size != out_size:
            raise DataError(f"{sources[1]}/{name} is {out_size[0]}x{out_size[1]} (HxW) but its "
                            f"input {sources[0]}/{name} is {in_size[0]}x{in_size[1]}")
        pairs.append((name, inputs[name], targets[name]))
    return pairs


# --- on-disk cache of decoded pairs --------------------------------------------------------------


def _fingerprint(sources: tuple[Path, Path], resize: tuple[int, int] | None) -> str:
    """Hash of every source file's name, size and mtime (and resize): any change misses."""
    digest = hashlib.sha256(f"v{_CACHE_VERSION} resize={resize}".encode())
    for source in sources:
        files = (sorted(p for p in source.iterdir() if _is_page(p.name))
                 if source.is_dir() else [source])
        digest.update(f"\0{source.resolve()}".encode())
        for path in files:
            stat = path.stat()
            digest.update(f"\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def _cache_read(path: Path) -> list[tuple[str, _Decoded, _Decoded]] | None:
    try:
        with np.load(path) as cached:
            names, sizes = cached["names"], cached["sizes"]
            return [(str(name), (cached[f"x{i}"], tuple(size)), (cached[f"y{i}"], tuple(size)))
                    for i, (name, size) in enumerate(zip(names, sizes.tolist(), strict=True))]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # absent, or broken: rebuilt, never trusted


def _cache_write(path: Path, pairs: list[tuple[str, _Decoded, _Decoded]]) -> None:
    arrays: dict[str, np.ndarray] = {
        "names": np.array([name for name, _, _ in pairs]),
        "sizes": np.array([size for _, (_, size), _ in pairs], dtype=np.int64),
    }
    for i, (_, (x, _), (y, _)) in enumerate(pairs):
        arrays[f"x{i}"], arrays[f"y{i}"] = x, y
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
        np.savez(partial, **arrays)  # type: ignore[arg-type]  # stubs: **kwds vs allow_pickle
        os.replace(partial, path)  # atomic: concurrent workers never see half a file
    except OSError as exc:
        warnings.warn(f"cannot cache decoded pages at {path} ({exc}); decoding every time",
                      stacklevel=3)


def load_pairs(root: Path, resize: tuple[int, int] | None = None
               ) -> list[tuple[str, _Decoded, _Decoded]]:
    """(name, input, target) for every training page under `root`, from the cache if fresh."""
    sources = (source_path(root, INPUTS), source_path(root, TARGETS))
    cached = cache_dir() / f"documents-{_fingerprint(sources, resize)}.npz"
    pairs = _cache_read(cached)
    if pairs is None:
        pairs = _pair(_read_source(sources[0], resize), _read_source(sources[1], resize), sources)
        _cache_write(cached, pairs)
    return pairs


# --- split and grouping --------------------------------------------------------------------------


def _interleave(strata: list[list[str]]) -> list[str]:
    """Merge strata so that every prefix holds them in proportion (page j of n at (j+.5)/n)."""
    keyed = [((j + 0.5) / len(names), s, name)
             for s, names in enumerate(strata) for j, name in enumerate(names)]
    return [name for _, _, name in sorted(keyed)]


def split_pages(heights: dict[str, int], val_fraction: float, seed: int
                ) -> tuple[list[str], list[str]]:
    """(train, val) page names: `val_fraction` of each native height held out, seeded (the
    two-way split of sweeps before the test split; `split_pages3` with no test pages)."""
    train, val, _ = split_pages3(heights, val_fraction, 0.0, seed)
    return train, val


def split_pages3(heights: dict[str, int], val_fraction: float, test_fraction: float,
                 seed: int) -> tuple[list[str], list[str], list[str]]:
    """(train, val, test) page names: of each native height, `test_fraction` held out for the
    test split and `val_fraction` for validation, seeded.

    Stratified by height so that every split holds both page sizes, and each list interleaves
    the heights so that any prefix (a `subset`) keeps both sizes. A height keeps at least one
    training and one validation page: with too few pages it gives none to the test split.
    Depends only on the pages, the fractions and the seed.
    """
    rng = np.random.default_rng((seed, _SPLIT_STREAM))
    train, val, test = [], [], []
    for height in sorted(set(heights.values()), reverse=True):
        names = sorted((n for n, h in heights.items() if h == height), key=page_sort_key)
        names = [names[i] for i in rng.permutation(len(names))]
        tested = min(max(len(names) - 2, 0),
                     max(1, round(test_fraction * len(names))) if test_fraction > 0 else 0)
        rest = names[tested:]
        held = min(len(rest) - 1, max(1, round(val_fraction * len(names))))
        test.append(names[:tested])
        val.append(rest[:held])
        train.append(rest[held:])
    return _interleave(train), _interleave(val), _interleave(test)


def _groups(names: list[str], pages: dict[str, tuple[np.ndarray, np.ndarray]]
            ) -> tuple[tuple[Group, ...], tuple[str, ...]]:
    """Stack pages into one (x, y) group per size, tallest first; also the names in that order."""
    sizes = sorted({pages[n][0].shape for n in names}, reverse=True)
    groups, ordered = [], []
    for size in sizes:
        members = [n for n in names if pages[n][0].shape == size]
        # Each page is scaled by its own range before stacking: pages of one size may mix
        # 8-bit and 16-bit files, and stacking first would read a uint8 page as 16-bit.
        x = np.stack([_unit(pages[n][0]) for n in members])[..., None]
        y = np.stack([_unit(pages[n][1]) for n in members])[..., None]
        groups.append((x, y))
        ordered.extend(members)
    return tuple(groups), tuple(ordered)


def _take(names: list[str], count: int | None, what: str) -> list[str]:
    if count is not None and count > len(names):
        raise DataError(f"{what} subset {count} exceeds the {len(names)} {what} pages")
    return names[:count]


def load_text(options: DataOptions) -> Split:
    """The `text` task's pages, split by page into training and validation."""
    data_dir = resolve_data_dir(options.data_dir)
    if data_dir is None:
        raise DataError("the text task needs a data dir: pass data_dir or set $SEARCH_DATA_DIR")
    if not 0 < options.val_fraction < 1:
        raise DataError(f"val_fraction must be in (0, 1), got {options.val_fraction}")
    if options.resize is not None and min(options.resize) < 1:
        raise DataError(f"resize must be (height, width) > 0, got {options.resize}")
    if not 0 <= options.test_fraction < 1 - options.val_fraction:
        raise DataError(f"test_fraction {options.test_fraction:g} and val_fraction "
                        f"{options.val_fraction:g} leave no pages to train on")
    pairs = load_pairs(_root(data_dir), options.resize)
    heights = {name: size[0] for name, (_, size), _ in pairs}
    train, val, test = split_pages3(heights, options.val_fraction, options.test_fraction,
                                    options.seed)
    if not val:
        raise DataError(f"no page size has 2 pages or more, so none can be held out for "
                        f"validation ({len(pairs)} pages under {data_dir})")
    record = split_record(sorted(train, key=page_sort_key), sorted(val, key=page_sort_key),
                          sorted(test, key=page_sort_key), seed=options.seed,
                          val_fraction=options.val_fraction,
                          test_fraction=options.test_fraction,
                          test_source="labelled pages held out (Kaggle's test/ has no targets)")
    pages = {name: (x, y) for name, (x, _), (y, _) in pairs}
    train_groups, _ = _groups(_take(train, options.subset, "training"), pages)
    val_groups, val_names = _groups(_take(val, options.val_subset, "validation"), pages)
    test_groups, test_names = _groups(test, pages) if test else ((), ())
    return Split(train=train_groups, val=val_groups, val_names=val_names, test=test_groups,
                 test_names=test_names, record=record)
