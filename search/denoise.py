"""Clean scanned pages with a trained autoencoder: PNGs, a Kaggle submission, the RMSE.

    python -m search.denoise --model best/model.keras --input test.zip --output cleaned/ \\
        [--submission submission.csv] [--targets train_cleaned/] [--batch-pages 4]

Pages are cleaned at their native size (the conv models are fully convolutional), so pages of
different heights need no resizing. The pure parts (`clean_pages`, `submission_frame`, `rmse`)
are functions of arrays; `main` only parses flags and wires files to them.
"""

from __future__ import annotations

import argparse
import os
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
from spaces.errors import UserError

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
    parser.add_argument("--finalists", type=Path, metavar="SWEEP_DIR",
                        help="clean the sweep's held-out test pages (text) with the best "
                        "finalist of its finalists stage (aesearch refit), and print their "
                        "RMSE; --model, --input and --targets then come from the sweep, and "
                        "--output defaults to SWEEP_DIR/finalists/cleaned-test")
    parser.add_argument("--held-out", type=Path, metavar="SWEEP_DIR",
                        help="the same with the sweep's own best/ (the search's winner, as it "
                        "trained in the sweep, no refit); --output defaults to "
                        "SWEEP_DIR/cleaned-test")
    parser.add_argument("--model", type=Path, help="saved model (.keras)")
    parser.add_argument("--input", type=Path, help="folder or zip of PNG pages")
    parser.add_argument("--output", type=Path, help="folder for the cleaned PNGs")
    parser.add_argument("--submission", type=Path, help="also write a Kaggle submission CSV")
    parser.add_argument("--targets", type=Path,
                        help="folder or zip of clean pages (same names): print the RMSE")
    parser.add_argument("--batch-pages", type=int, default=4, help="pages per forward pass")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up lines (by default they are dropped, "
                        f"or kept in SWEEP_DIR/{STDERR_LOG} with --held-out or --finalists)")
    return parser


CLEANED_TEST_DIR = "cleaned-test"
RMSE_FILE = "test-rmse.json"
STDERR_LOG = "denoise-stderr.log"  # in the sweep's folder: TensorFlow's native start-up lines


def _load_model(path: Path, log_file: Path, verbose: bool) -> Any:
    """The model at `path`, TensorFlow's start-up lines (oneDNN, CUDA, CPU features) sent to
    `log_file` rather than between the command's own lines, unless `verbose`. Python's
    errors still print."""
    from search.console import quiet_native_stderr

    with quiet_native_stderr(log_file, verbose):
        from search.models import load_model  # imports TensorFlow: its lines come here

        return load_model(path)


def held_out_pages(sweep_dir: Path, *, finalists: bool = True
                   ) -> tuple[Path, list[Page], list[np.ndarray]]:
    """The best finalist's model (or, without `finalists`, the sweep's own best/) and the
    sweep's test pages with their targets, by name: the labelled pages no trial and no
    selection saw (the split the sweep recorded)."""
    import json

    from search import splits
    from search.data import DataOptions, load_task
    from spaces import constants as C

    folder = sweep_dir / C.FINALISTS_DIR if finalists else sweep_dir
    record_file = folder / (C.FINALISTS_FILE if finalists else C.SWEEP_FILE)
    flag = "--finalists" if finalists else "--held-out"
    model = folder / C.BEST_DIR / C.MODEL_FILE
    if not model.is_file():
        how = f"run `aesearch refit {sweep_dir}` first" if finalists else \
            "the sweep exported no best model yet"
        raise DataError(f"{sweep_dir}: no best {'finalist' if finalists else 'model'} "
                        f"({model} is missing): {how}")
    try:
        record = json.loads(record_file.read_text())
        options = dict(record["data"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{sweep_dir}: {record_file.name} cannot be read ({exc})") from None
    if record.get("task") != "text":
        raise DataError(f"{sweep_dir}: a {record.get('task')} sweep; {flag} cleans the "
                        f"text task's held-out pages")
    options["resize"] = tuple(options["resize"]) if options.get("resize") else None
    data = load_task("text", DataOptions(**options), test=True)
    splits.check(sweep_dir, data.splits, what=flag)
    inputs = [x[i, ..., 0] for x, _ in data.test for i in range(len(x))]
    targets = [y[i, ..., 0] for _, y in data.test for i in range(len(y))]
    return model, list(zip(data.test_names, inputs, strict=True)), targets


def _held_out(args: argparse.Namespace, sweep_dir: Path, *, finalists: bool) -> int:
    """--finalists / --held-out SWEEP_DIR: clean the held-out test pages, write them and their
    RMSE."""
    import json

    from spaces import constants as C

    flag = "--finalists" if finalists else "--held-out"
    given = [f for f in ("model", "input", "targets", "submission") if getattr(args, f)]
    if given:
        raise SystemExit(f"error: --{given[0]} comes from the sweep with {flag}")
    try:
        model_path, pages, targets = held_out_pages(sweep_dir, finalists=finalists)
    except UserError as exc:  # a DataError, or the split's SplitError
        raise SystemExit(f"error: {exc}") from exc
    output = args.output or (sweep_dir / C.FINALISTS_DIR if finalists else sweep_dir) \
        / CLEANED_TEST_DIR
    cleaned = clean_pages(_load_model(model_path, sweep_dir / STDERR_LOG, args.verbose), pages,
                          args.batch_pages)
    write_pages(cleaned, output)
    score = rmse([pixels for _, pixels in cleaned], targets)
    (output / RMSE_FILE).write_text(json.dumps({"rmse": score, "pages": len(cleaned),
                                                "model": str(model_path)}, indent=2))
    which = "the best finalist" if finalists else "the sweep's best model"
    print(f"cleaned {len(cleaned)} held-out test pages -> {output}")
    print(f"test RMSE of {which} over {len(cleaned)} pages: {score:.6f}")
    return 0


def _check_files(args: argparse.Namespace) -> None:
    """Without --finalists, the model and the pages are the user's to name."""
    missing = [f"--{f}" for f in ("model", "input", "output") if getattr(args, f) is None]
    if missing:
        raise SystemExit(f"error: {', '.join(missing)} required (or --finalists or --held-out "
                         f"SWEEP_DIR)")
    if not args.model.is_file():
        raise SystemExit(f"error: --model {args.model}: no such file")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.batch_pages < 1:
        raise SystemExit(f"error: --batch-pages must be >= 1, got {args.batch_pages}")
    if args.finalists is not None and args.held_out is not None:
        raise SystemExit("error: --finalists and --held-out each name the model: give one")
    if args.finalists is not None:
        return _held_out(args, args.finalists, finalists=True)
    if args.held_out is not None:
        return _held_out(args, args.held_out, finalists=False)
    _check_files(args)
    try:
        pages = load_pages(args.input)
        # Read targets before the (slow) model so a bad --targets fails at once.
        targets = (match_targets(pages, load_pages(args.targets), args.targets)
                   if args.targets else None)
    except DataError as exc:
        raise SystemExit(f"error: {exc}") from exc

    try:
        model = _load_model(args.model, Path(os.devnull), args.verbose)
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
