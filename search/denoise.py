"""Clean scanned pages with a trained autoencoder: PNGs, a Kaggle submission, the RMSE.

    python -m search.denoise --model best/model.keras --input test.zip --output cleaned/ \\
        [--submission submission.csv] [--targets train_cleaned/] [--batch-pages 4]

Pages are cleaned at their native size (the conv models are fully convolutional), so pages of
different heights need no resizing. The pure parts (`clean_pages`, `submission_frame`, `rmse`)
are functions of arrays; `main` only parses flags and wires files to them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from search.data import DataError, load_pages
from search.data.documents import page_sort_key
from search.trial import squared_error

Page = tuple[str, np.ndarray]  # (file name, float32 HxW in [0, 1])
SUBMISSION_COLUMNS = ("id", "value")
VALUE_DECIMALS = 6  # far below one grey level (1/255); keeps the CSV short


def clean_pages(model: Any, pages: Sequence[Page], batch_pages: int = 4) -> list[Page]:
    """Run `model` on every page at its native size; same names and order, values in [0, 1].

    Pages of one size are predicted together, `batch_pages` at a time.
    """
    if batch_pages < 1:
        raise ValueError(f"batch_pages must be >= 1, got {batch_pages}")
    _, want_h, want_w, _ = model.input_shape
    cleaned: dict[int, np.ndarray] = {}
    by_size: dict[tuple[int, int], list[int]] = {}
    for index, (name, pixels) in enumerate(pages):
        height, width = pixels.shape
        if (want_h or height, want_w or width) != (height, width):
            raise DataError(f"page {name} is {height}x{width} but the model only takes "
                            f"{want_h}x{want_w} inputs (it is not fully convolutional)")
        by_size.setdefault((height, width), []).append(index)
    for indices in by_size.values():
        batch = np.stack([pages[i][1] for i in indices])[..., None].astype(np.float32)
        output = np.asarray(model.predict(batch, batch_size=batch_pages, verbose=0))
        for i, page in zip(indices, output[..., 0], strict=True):
            cleaned[i] = np.clip(page, 0.0, 1.0).astype(np.float32)
    return [(name, cleaned[i]) for i, (name, _) in enumerate(pages)]


def _id_suffixes(height: int, width: int) -> np.ndarray:
    """'_<row>_<col>' (1-based) for every pixel of an HxW page, row-major."""
    rows = np.arange(1, height + 1).astype(np.str_)[:, None]
    cols = np.arange(1, width + 1).astype(np.str_)[None, :]
    return np.strings.add(np.strings.add(np.strings.add("_", rows), "_"), cols).ravel()


def submission_frame(pages: Sequence[Page]) -> pd.DataFrame:
    """Kaggle rows `id,value` for `pages`: ids `<stem>_<row>_<col>`, by image, row, col.

    Images are ordered by numeric stem where stems are numbers.
    """
    frames = []
    suffixes: dict[tuple[int, int], np.ndarray] = {}
    for name, pixels in sorted(pages, key=lambda page: page_sort_key(page[0])):
        if pixels.shape not in suffixes:
            suffixes[pixels.shape] = _id_suffixes(*pixels.shape)
        ids = np.strings.add(PurePosixPath(name).stem, suffixes[pixels.shape])
        values = np.round(np.clip(pixels, 0.0, 1.0).astype(np.float64).ravel(), VALUE_DECIMALS)
        frames.append(pd.DataFrame({SUBMISSION_COLUMNS[0]: ids, SUBMISSION_COLUMNS[1]: values}))
    if not frames:
        return pd.DataFrame(columns=list(SUBMISSION_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def write_submission(pages: Sequence[Page], path: Path) -> int:
    """Write the submission CSV page by page (memory stays one page); returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with path.open("w", newline="") as out:
        out.write(",".join(SUBMISSION_COLUMNS) + "\n")
        for page in sorted(pages, key=lambda page: page_sort_key(page[0])):
            frame = submission_frame([page])
            frame.to_csv(out, header=False, index=False)
            rows += len(frame)
    return rows


def rmse(predicted: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> float:
    """Root of the per-pixel mean squared error over all pixels of all pages (Kaggle's metric)."""
    if len(predicted) != len(targets) or not predicted:
        raise ValueError(f"need as many targets as pages (and at least one), got "
                         f"{len(targets)} targets for {len(predicted)} pages")
    squared, count = 0.0, 0
    for index, (p, t) in enumerate(zip(predicted, targets, strict=True)):
        if p.shape != t.shape:
            raise ValueError(f"page {index}: prediction {p.shape} and target {t.shape} differ")
        squared += squared_error(p, t)
        count += p.size
    return float(np.sqrt(squared / count))


def write_pages(pages: Sequence[Page], output: Path) -> None:
    """Save each page as an 8-bit greyscale PNG under its own name."""
    output.mkdir(parents=True, exist_ok=True)
    for name, pixels in pages:
        grey = np.rint(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
        Image.fromarray(grey).save(output / name)


def match_targets(pages: Sequence[Page], targets: Sequence[Page], source: Path) -> list[np.ndarray]:
    """The target of every page, by file name; a page without one is an error naming both."""
    by_name = dict(targets)
    missing = [name for name, _ in pages if name not in by_name]
    if missing:
        raise DataError(f"--targets {source} has no target for page {missing[0]}"
                        + (f" (nor for {len(missing) - 1} more)" if len(missing) > 1 else ""))
    matched = []
    for name, pixels in pages:
        if by_name[name].shape != pixels.shape:
            raise DataError(f"--targets {source}: target {name} is {by_name[name].shape} but the "
                            f"page is {pixels.shape}")
        matched.append(by_name[name])
    return matched


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m search.denoise",
        description="Clean document pages with a trained autoencoder, at native size.",
    )
    parser.add_argument("--model", type=Path, required=True, help="saved model (.keras)")
    parser.add_argument("--input", type=Path, required=True, help="folder or zip of PNG pages")
    parser.add_argument("--output", type=Path, required=True, help="folder for the cleaned PNGs")
    parser.add_argument("--submission", type=Path, help="also write a Kaggle submission CSV")
    parser.add_argument("--targets", type=Path,
                        help="folder or zip of clean pages (same names): print the RMSE")
    parser.add_argument("--batch-pages", type=int, default=4, help="pages per forward pass")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.model.is_file():
        raise SystemExit(f"error: --model {args.model}: no such file")
    if args.batch_pages < 1:
        raise SystemExit(f"error: --batch-pages must be >= 1, got {args.batch_pages}")
    try:
        pages = load_pages(args.input)
        # Read targets before the (slow) model so a bad --targets fails at once.
        targets = (match_targets(pages, load_pages(args.targets), args.targets)
                   if args.targets else None)
    except DataError as exc:
        raise SystemExit(f"error: {exc}") from exc

    from search.models import load_model  # lazily: --help and flag errors stay fast

    try:
        model = load_model(args.model)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot load --model {args.model}: {exc}") from exc
    try:
        cleaned = clean_pages(model, pages, args.batch_pages)
    except DataError as exc:
        raise SystemExit(f"error: {exc}") from exc
    write_pages(cleaned, args.output)
    print(f"cleaned {len(cleaned)} pages -> {args.output}")
    if args.submission:
        rows = write_submission(cleaned, args.submission)
        print(f"submission: {rows} rows -> {args.submission}")
    if targets is not None:
        score = rmse([pixels for _, pixels in cleaned], targets)
        print(f"RMSE over {len(cleaned)} pages: {score:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
