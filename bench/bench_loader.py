"""How much the decoded-page cache saves: a cold text load against a warm one, in one run.

    python bench/bench_loader.py [--data-dir DIR]

Prints seconds for each and their ratio (cold / warm). Uses a fresh temporary cache dir, so
the user's cache is neither used nor touched.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SEARCH_CACHE_DIR"] = cache
        from search.data import DataOptions, load_task

        start = time.perf_counter()
        data = load_task("text", DataOptions(data_dir=args.data_dir))
        cold = time.perf_counter() - start
        warm = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            load_task("text", DataOptions(data_dir=args.data_dir))
            warm.append(time.perf_counter() - start)
    best = min(warm)
    pages = data.n_train + data.n_val
    print(f"text pages: {pages} ({data.n_train} train, {data.n_val} val)")
    print(f"cold load (decode PNGs, write cache): {cold:.2f} s")
    print(f"warm load (cache hit), best of {args.repeats}: {best:.3f} s")
    print(f"ratio cold/warm: {cold / best:.1f}x")


if __name__ == "__main__":
    main()
