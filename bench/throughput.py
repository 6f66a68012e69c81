"""Training images/s inside a trial (`Trial.reports`) against a plain Keras `fit` loop.

    python bench/throughput.py [--rounds 3] [--data-dir DIR]

Per case (MNIST images; 96x96 text patches), in one process with the same threads, for
`--rounds` rounds alternating which goes first: a fresh model of the same config and seed
trains one epoch (a) with `model.fit(x, y, batch_size, epochs=1, shuffle=True)` and (b) as a
trial, whose `epoch_seconds` count only its training (not its validation). Prints images/s
for each, their medians and ratio per case, and last
  RESULT throughput_ratio=<the smaller of the cases' median trial / plain>  (target >= 1.0)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

CASES = {  # (task, study row, data options): small enough for seconds a round on a CPU
    "mnist": ("mnist", "mnist/1.2/2", {"subset": 3000, "val_subset": 200}),
    "text-patches": ("text", "text/3.1/10", {"subset": 12, "val_subset": 1, "patch_size": 96,
                                            "patches_per_page": 8}),
}


def plain(config: Any, data: Any) -> float:
    """Images/s of one epoch of `model.fit` on a fresh model."""
    import keras

    from search.models import build_model

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model(config, data.input_shape)
    x, y = data.training_groups(0)[0]
    start = time.perf_counter()
    model.fit(x, y, batch_size=config.batch_size, epochs=1, shuffle=True, verbose=0)
    return data.epoch_size / (time.perf_counter() - start)


def trial(config: Any, data: Any) -> float:
    """Images/s of one epoch inside a trial, from its own training seconds."""
    import keras

    from search.trial import Trial
    from spaces import constants as C

    keras.backend.clear_session()
    reports = list(Trial(config, data, seed=0, report_images=data.epoch_size).reports())
    return data.epoch_size / sum(r[C.EPOCH_SECONDS] for r in reports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", nargs="+", choices=tuple(CASES), default=list(CASES))
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    args = parser.parse_args()

    from search.data import DataOptions, load_task
    from spaces import report

    ratios = []
    for case in args.cases:
        task, row_id, options = CASES[case]
        data = load_task(task, DataOptions(data_dir=args.data_dir, **options))
        config = report.row(row_id).config.replace(epochs=1)
        n = data.epoch_size

        rates: dict[str, list[float]] = {"plain": [], "trial": []}
        for i in range(args.rounds):
            for arm, run in (("plain", plain), ("trial", trial))[:: 1 if i % 2 == 0 else -1]:
                rates[arm].append(run(config, data))
        a, b = statistics.median(rates["plain"]), statistics.median(rates["trial"])
        ratios.append(b / a)
        print(f"{case}: {config.batch_size}-image batches of {row_id}, {n} examples an epoch")
        for arm, values in rates.items():
            print(f"  {arm:>5}: {', '.join(f'{v:.1f}' for v in values)} images/s")
        print(f"  median trial / plain: {b:.1f} / {a:.1f} = {b / a:.3f}", flush=True)
    print(f"RESULT throughput_ratio={min(ratios):.3f}")


if __name__ == "__main__":
    main()
