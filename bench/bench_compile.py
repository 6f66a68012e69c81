"""Training images/s of one config under Keras' compile options and dtype policies, on a CPU.

    python bench/bench_compile.py [--case mnist|text-patches] [--rounds 3] [--data-dir DIR]

What `--precision auto` and the trial's `compile` rest on. One process, one TensorFlow
thread (as a 1-CPU trial has), the case's study row (`bench/throughput.py`'s cases); each
round trains a fresh model of each arm, the arms' order turning each round, first a warm-up
`fit` of two batches (tracing), then one timed epoch of `fit`:
  default            compile() as the project does (jit_compile="auto"), float32
  jit off / jit on   jit_compile=False / True (XLA on the CPU)
  steps 8            steps_per_execution=8
  bf16               the mixed_bfloat16 policy (float32 weights, the output layer float32)
Prints each arm's images/s, its median over the default's, and last
  RESULT bf16_speedup=<median bf16 / median default>
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from throughput import CASES  # bench/ is not a package: its folder is on sys.path

ARMS: dict[str, dict[str, Any]] = {
    "default": {},
    "jit off": {"jit_compile": False},
    "jit on": {"jit_compile": True},
    "steps 8": {"steps_per_execution": 8},
    "bf16": {"precision": "mixed_bfloat16"},
}


def images_per_s(config: Any, data: Any, options: dict[str, Any]) -> float:
    import keras

    from search.models import LOSSES, OPTIMIZERS, build_model

    options = dict(options)
    precision = options.pop("precision", "float32")
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model(config, data.input_shape, compile=False, precision=precision)
    model.compile(optimizer=OPTIMIZERS[config.optimizer](learning_rate=config.lr),
                  loss=LOSSES[config.loss], **options)
    x, y = data.training_groups(0)[0]
    warm = 2 * config.batch_size
    model.fit(x[:warm], y[:warm], batch_size=config.batch_size, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=config.batch_size, epochs=1, shuffle=True, verbose=0)
    return len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=tuple(CASES), default="mnist")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    args = parser.parse_args()

    from search.data import DataOptions, load_task
    from search.trial import configure_backend
    from spaces import study

    configure_backend(1.0)
    task, row_id, options = CASES[args.case]
    data = load_task(task, DataOptions(data_dir=args.data_dir, **options))
    config = study.row(row_id).config
    print(f"{args.case}: {row_id}, batch {config.batch_size}, {data.epoch_size} examples, "
          f"1 thread", flush=True)
    names = list(ARMS)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for i in range(args.rounds):
        for name in names[i % len(names):] + names[: i % len(names)]:
            rates[name].append(images_per_s(config, data, ARMS[name]))
    base = statistics.median(rates["default"])
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"  {name:>8}: {', '.join(f'{v:.0f}' for v in values)} images/s; median "
              f"{median:.0f} = {median / base:.2f}x default", flush=True)
    print(f"RESULT bf16_speedup={statistics.median(rates['bf16']) / base:.3f}")


if __name__ == "__main__":
    main()
