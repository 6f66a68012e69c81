"""Concurrent trials with TensorFlow's thread pools sized to their CPUs, against unsized pools.

    python bench/bench_threads.py [--trials 2] [--data-dir DIR]

Runs `--trials` single-configuration trainings at once, with `--cpus-per-trial`
(cores / trials: what a sweep does) and with TensorFlow's default pools (every trial takes
every core), alternating the two `--repeats` times, and prints the median wall time of each and
their ratio, measured in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "search" / "run.py"


def _round(trials: int, cpus: float | None, args: argparse.Namespace, storage: str) -> float:
    command = [sys.executable, str(RUN), "--task", "mnist-denoise", "--config",
               "4L,32,32,64,128F(3X3)", "--epochs", "1", "--subset", str(args.subset),
               "--val-subset", "500", "--storage", storage]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if cpus is not None:
        command += ["--cpus-per-trial", str(cpus)]
    start = time.perf_counter()
    procs = [subprocess.Popen([*command, "--name", f"t{i}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(trials)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a trial failed:\n{err[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--subset", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    sized, unsized = [], []
    with tempfile.TemporaryDirectory() as storage:
        for _ in range(args.repeats):
            sized.append(_round(args.trials, max(1.0, cores / args.trials), args, storage))
            unsized.append(_round(args.trials, None, args, storage))
    print(f"sized rounds: {', '.join(f'{t:.1f}' for t in sized)} s; "
          f"default rounds: {', '.join(f'{t:.1f}' for t in unsized)} s")
    sized_s, unsized_s = statistics.median(sized), statistics.median(unsized)
    print(f"{args.trials} concurrent trials on {cores} cores, 1 epoch of "
          f"4L,32,32,64,128F(3X3) on {args.subset} noisy MNIST images each")
    print(f"thread pools sized to cores/trials, median: {sized_s:.1f} s")
    print(f"default thread pools (each trial takes every core), median: {unsized_s:.1f} s")
    print(f"ratio default/sized: {unsized_s / sized_s:.2f}x")


if __name__ == "__main__":
    main()
