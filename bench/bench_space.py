"""The full space's define-by-run cost per call, against Ray's warning threshold.

    python bench/bench_space.py [--draws 200]

Ray's OptunaSearch calls the space on the driver for every trial and warns when one call takes
over a second. Prints the mean and worst call time per task and the threshold's ratio to the
worst, measured in one run (replaying TPE draws through FixedTrial, as Ray's restore does).
"""

from __future__ import annotations

import argparse
import time

import optuna

import spaces

RAY_WARN_SECONDS = 1.0  # ray.tune.search.optuna.optuna_search.DEFINE_BY_RUN_WARN_THRESHOLD_S


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for task in spaces.TASKS:
        space = spaces.get_space("study-axes", task)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
        points = []
        for _ in range(args.draws):
            trial = study.ask()
            space(trial)
            points.append(trial.params)
            study.tell(trial, 0.0)
        times = []
        for params in points:
            start = time.perf_counter()
            space(optuna.trial.FixedTrial(params))
            times.append(time.perf_counter() - start)
        mean, worst = sum(times) / len(times), max(times)
        print(f"{task:>14}: mean {mean * 1e6:.0f} us, worst {worst * 1e6:.0f} us per call; "
              f"Ray's {RAY_WARN_SECONDS:g} s threshold / worst = {RAY_WARN_SECONDS / worst:,.0f}x")


if __name__ == "__main__":
    main()
