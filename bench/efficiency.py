"""The search against the study's rows at equal budget: does it find better models sooner?

    python bench/efficiency.py --task mnist-denoise [--seeds 0 1 2]
    python bench/efficiency.py --task text [--seeds 0 1 2]
    python bench/efficiency.py --task mnist --keep runs/bench   # keep the sweeps for tables

For each seed, in one run, on one embedded Ray instance and the same data:
  (a) study: the study's rows of the task replayed as a grid for `--epochs` epochs each (FIFO).
      The budget B is what that costs: rows x epochs x images per epoch.
  (b) random: random search over the default space with ASHA, stopped once B is spent.
  (c) search: the default searcher (`search.searchers.DEFAULT_SEARCH`, with ASHA), stopped
      once B is spent.
Then, once, `--spearman-trials` random default-space configs trained to the end (FIFO): the
Spearman rank correlation between their first-report and final validation MSE says whether
ASHA's early rungs predict the final ranking.

Every arm is measured in images trained (the budget) and wall seconds. Prints a table per
seed, then
  RESULT efficiency_ratio=<median over seeds of best(c) / best(a)>   (target <= 0.9)
  RESULT budget_to_match=<median fraction of B that (c) needed to reach best(a)>  (<= 0.5)
A trial's result is its last report, as the leaderboard ranks it; collapsed, diverged and
failed trials never count as best.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from search.data import DataOptions, load_task
from search.searchers import DEFAULT_SEARCH
from search.sweep import SweepSettings, run_sweep
from spaces import constants as C

DEFAULTS = {  # small enough for minutes per arm on a 2-core CPU
    "mnist": {"subset": 4000, "val_subset": 1000, "epochs": 3},
    "mnist-denoise": {"subset": 4000, "val_subset": 1000, "epochs": 3},
    "text": {"subset": 40, "val_subset": 4, "epochs": 2, "patch_size": 48},
}


def reports(results: Any) -> pd.DataFrame:
    """Every report of every trial, in the order they arrived, with the images each added."""
    frames = []
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or frame.empty or C.VAL_MSE not in frame:
            continue
        frame = frame.copy()
        frame["trial"] = result.metrics.get(C.TRIAL_ID, str(result.path))
        frame["healthy"] = result.error is None and not (
            C.VERDICT in frame and frame[C.VERDICT].notna().any())
        frame["new_images"] = frame[C.IMAGES].diff().fillna(frame[C.IMAGES])
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["timestamp", "trial", C.VAL_MSE, "new_images", "healthy"])
    out = pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")
    out["spent"] = out["new_images"].cumsum()
    return out.reset_index(drop=True)


def trained_rows(frame: pd.DataFrame) -> int:
    """Trials that trained on at least one example (a refused row reports 0 images)."""
    return int((frame.groupby("trial")[C.IMAGES].max() > 0).sum())


def best_final(frame: pd.DataFrame) -> float:
    """The best healthy trial's last reported validation MSE (what the leaderboard ranks)."""
    finals = frame[frame["healthy"]].groupby("trial")[C.VAL_MSE].last()
    finals = finals[finals.map(math.isfinite)]
    return float(finals.min()) if len(finals) else math.inf


def budget_to_reach(frame: pd.DataFrame, target: float, budget: float) -> float:
    """The fraction of `budget` spent when some healthy report first reached `target`."""
    hit = frame[frame["healthy"] & (frame[C.VAL_MSE] <= target)]
    return float(hit["spent"].iloc[0] / budget) if len(hit) else math.inf


def spearman(a: list[float], b: list[float]) -> float:
    return float(pd.Series(a).rank().corr(pd.Series(b).rank()))


def sweep(name: str, storage: str, data: Any, options: DataOptions,
          args: argparse.Namespace, seed: int, **kwargs: Any) -> tuple[pd.DataFrame, float]:
    settings = SweepSettings(
        task=args.task, name=name, storage=storage, seed=seed, max_epochs=args.epochs,
        data=options,
        cpus_per_trial=1.0, max_concurrent=args.concurrent, **kwargs,
    )
    start = time.perf_counter()
    results, _ = run_sweep(settings, data)
    return reports(results), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=tuple(DEFAULTS), default="mnist-denoise")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--subset", type=int)
    parser.add_argument("--val-subset", type=int)
    parser.add_argument("--epochs", type=int, help="epochs per study row (and per trial)")
    parser.add_argument("--patch-size", type=int)
    parser.add_argument("--concurrent", type=int, default=2, help="trials at once")
    parser.add_argument("--spearman-trials", type=int, default=6)
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    parser.add_argument("--keep", help="write the sweeps here (for `python -m results`) "
                                       "instead of a temporary folder")
    args = parser.parse_args()
    for key, value in DEFAULTS[args.task].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)

    import ray

    options = DataOptions(data_dir=args.data_dir, subset=args.subset,
                          val_subset=args.val_subset, patch_size=args.patch_size)
    data = load_task(args.task, options)
    ray.init(address="local", num_cpus=args.concurrent, include_dashboard=False,
             log_to_driver=False)
    print(f"task {args.task}: {data.epoch_size:,} training examples an epoch, "
          f"{data.n_val} validation images, {args.epochs} epochs per row/trial, "
          f"{args.concurrent} trials at once, seeds {args.seeds}", flush=True)
    rows, ratios, fractions = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        storage = str(Path(args.keep).resolve()) if args.keep else scratch
        for seed in args.seeds:
            study, study_s = sweep(f"study-{seed}", storage, data, options, args, seed,
                                   space="report", search="grid", scheduler="fifo",
                                   num_samples=1)
            # B: what replaying the rows costs, E epochs each (a row that collapses and stops
            # early still counts its E epochs; a row the guard refuses trained on nothing and
            # is not counted).
            budget = float(args.epochs * data.epoch_size * trained_rows(study))
            target = best_final(study)
            arms = {"study": (study, study_s)}
            for arm, search in (("random", "random"), ("search", DEFAULT_SEARCH)):
                arms[arm] = sweep(f"{arm}-{seed}", storage, data, options, args, seed,
                                  space="default", search=search, scheduler="asha",
                                  num_samples=-1,
                                  budget_epochs=budget / data.epoch_size)
            for arm, (frame, seconds) in arms.items():
                best = best_final(frame)
                rows.append({"seed": seed, "arm": arm, "trials": trained_rows(frame),
                             "images": int(frame["new_images"].sum()),
                             "budget_used": frame["new_images"].sum() / budget,
                             "best_val_mse": best, "vs_study": best / target,
                             "budget_to_match": budget_to_reach(frame, target, budget),
                             "seconds": seconds})
            ratios.append(rows[-1]["vs_study"])
            fractions.append(rows[-1]["budget_to_match"])
            print(pd.DataFrame(rows[-3:]).to_string(index=False, float_format="{:.4g}".format),
                  flush=True)

        if args.spearman_trials >= 3:
            frame, _ = sweep("spearman", storage, data, options, args, 0, space="default",
                             search="random", scheduler="fifo",
                             num_samples=args.spearman_trials)
            trials = frame[frame["healthy"]].groupby("trial")[C.VAL_MSE]
            first, last = trials.first().tolist(), trials.last().tolist()
            print(f"early-rung ranking vs final ranking of {len(first)} random configs "
                  f"trained to the end: Spearman {spearman(first, last):.2f}")

    table = pd.DataFrame(rows)
    print()
    print(table.groupby("arm", sort=False)[["best_val_mse", "vs_study", "budget_to_match",
                                             "budget_used", "trials", "seconds"]]
          .median().to_string(float_format="{:.4g}".format))
    print(f"RESULT efficiency_ratio={statistics.median(ratios):.3f}")
    print(f"RESULT budget_to_match={statistics.median(fractions):.3f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
