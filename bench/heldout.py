"""A text sweep's best model on the pages it never saw: the held-out figure.

    python bench/heldout.py runs/text-default [--data-dir DIR]

A text sweep trains on the first `--subset` pages of its training split and validates on the
first `--val-subset` pages of its validation split (sweep.json records both). Every other
labelled page was neither trained nor validated on, so the best model's RMSE there is an
honest estimate of how it cleans new pages. Prints the page counts and
    RESULT heldout_rmse=<per-pixel RMSE over the held-out pages>
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from search.data import DataOptions
from search.data.base import resolve_data_dir
from search.data.documents import _root, _unit, load_pairs, split_pages
from search.denoise import clean_pages
from search.models import load_model
from search.trial import squared_error
from spaces import constants as C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    args = parser.parse_args()
    meta = json.loads((args.sweep_dir / C.SWEEP_FILE).read_text())
    if meta.get("task") != "text":
        raise SystemExit(f"{args.sweep_dir} is a {meta.get('task')} sweep; this is for text")
    options = DataOptions(**{**meta["data"],
                             "data_dir": args.data_dir or meta["data"]["data_dir"]})
    data_dir = resolve_data_dir(options.data_dir)
    if data_dir is None:
        raise SystemExit("no data dir: pass --data-dir or set SEARCH_DATA_DIR")
    pairs = load_pairs(_root(data_dir), options.resize)
    heights = {name: size[0] for name, (_, size), _ in pairs}
    train, val = split_pages(heights, options.val_fraction, options.seed)
    held = train[options.subset or len(train):] + val[options.val_subset or len(val):]
    if not held:
        raise SystemExit("the sweep used every labelled page: nothing is held out")
    pages = {name: (x, y) for name, (x, _), (y, _) in pairs}

    model = load_model(args.sweep_dir / C.BEST_DIR / C.MODEL_FILE)
    cleaned = dict(clean_pages(model, [(n, _unit(pages[n][0])) for n in held]))
    sq = sum(squared_error(cleaned[n], _unit(pages[n][1])) for n in held)
    pixels = sum(pages[n][1].size for n in held)
    notation = (args.sweep_dir / C.BEST_DIR / C.NOTATION_FILE).read_text().strip()
    used = (options.subset or len(train)) + (options.val_subset or len(val))
    print(f"{notation}: {len(held)} held-out pages ({used} of {len(pairs)} were trained or "
          f"validated on)")
    print(f"RESULT heldout_rmse={math.sqrt(sq / pixels):.5f}")


if __name__ == "__main__":
    main()
