"""`python -m results <sweep dir> [<sweep dir> ...] [--top-k K] [--out DIR]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--top-k must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m results",
        description="Regenerate leaderboards, the study's comparison tables, importance and "
        "plots from the files of one or more sweep directories (of one task).",
    )
    parser.add_argument("sweep_dirs", nargs="+", metavar="SWEEP_DIR",
                        help="<storage>/<name> directories written by a sweep")
    parser.add_argument("--top-k", type=_positive, default=5,
                        help="trials in the learning-curve plot and the discoveries table")
    parser.add_argument("--out", default=None,
                        help="where tables/ and plots/ go (default: the first sweep dir)")
    args = parser.parse_args(argv)

    from results.generator import generate
    from results.sweepdir import ResultsError

    try:
        outputs = generate(args.sweep_dirs, out=args.out, top_k=args.top_k)
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(outputs.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
