"""Small and good at once: a multi-objective sweep's front against the study's rows and
against a single-objective sweep, at equal wall-clock time.

    python bench/pareto.py [--task mnist-denoise] [--seeds 0 1 2 3 4] [--time-budget 240]
        [--slots 2] [--keep DIR]
    python bench/pareto.py --summarize DIR      # the figures again, from the sweeps' files

Runs `bench/searchers.py` with the arms it needs, each job given the same seconds: `tpe-mo`
(the default searcher on val_mse and params, with ParetoASHA), `tpe` (the default searcher on
val_mse alone, with ASHA) and `study` (the study's rows of the task as a grid, the same epochs
each). Jobs already in DIR are kept. Then, per seed, from the sweeps' files alone:
  covered: the share of the study's rows (those that trained their whole budget, healthy) for
      which the front holds a model at most as large and at most as bad;
  hypervolume: the area the front dominates in (log10 params, val_mse), both arms against the
      same reference point (the worst of each coordinate over both arms' and the rows' points,
      pushed out by 5% of its range), for the multi-objective front and for the
      single-objective sweep's trials (its own front of the trials that trained their whole
      budget: the same rule, so a trial ASHA stopped counts in neither).
Prints a line per seed, then
  RESULT front_dominates_study=<median over seeds of the share of study rows covered>
  RESULT hypervolume_ratio=<median over seeds of hypervolume(tpe-mo) / hypervolume(tpe)>
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results.front import front_table, full_budget, hypervolume_2d, study_dominance
from results.leaderboard import load_trials
from spaces import constants as C

OBJECTIVES = (C.VAL_MSE, C.PARAMS)
ARMS = ("tpe-mo", "tpe", "study")


def _trials(folder: Path, task: str, seed: int, arm: str) -> pd.DataFrame | None:
    sweep = folder / "sweeps" / f"{task}-{seed}-{arm}"
    return load_trials(sweep) if (sweep / C.SWEEP_FILE).is_file() else None


def _points(frame: pd.DataFrame) -> list[tuple[float, float]]:
    return [(math.log10(p), v) for p, v in zip(frame[C.PARAMS], frame[C.VAL_MSE], strict=True)]


def reference(*sets: list[tuple[float, float]]) -> tuple[float, float]:
    """The worst of each coordinate over every point, pushed out by 5% of its range."""
    points = [p for s in sets for p in s]
    ref = []
    for k in (0, 1):
        values = [p[k] for p in points]
        span = (max(values) - min(values)) or abs(max(values)) or 1.0
        ref.append(max(values) + 0.05 * span)
    return ref[0], ref[1]


def seed_figures(folder: Path, task: str, seed: int) -> dict[str, float] | None:
    """One seed's share of study rows covered and the two hypervolumes; None where an arm is
    missing."""
    multi, single, study = (_trials(folder, task, seed, arm) for arm in ARMS)
    if multi is None or single is None or study is None:
        return None
    front = front_table(multi, OBJECTIVES)
    single_front = front_table(single, OBJECTIVES)
    rows = full_budget(study)
    covered = study_dominance(front, rows) if len(rows) else pd.DataFrame({"covered": []})
    if len(front) and len(single_front):
        ref = reference(_points(front), _points(single_front), _points(rows))
        hv_multi = hypervolume_2d(_points(front), ref)
        hv_single = hypervolume_2d(_points(single_front), ref)
    else:  # an arm with no trial of the whole budget: nothing to compare
        hv_multi = hv_single = math.nan
    return {"seed": seed, "front": len(front), "single_front": len(single_front),
            "rows": len(rows), "covered": float(covered["covered"].mean()) if len(rows)
            else math.nan, "hv_multi": hv_multi, "hv_single": hv_single,
            "hv_ratio": hv_multi / hv_single if hv_single > 0 else math.nan,
            "trials_multi": len(multi), "trials_single": len(single)}


def summarize(folder: Path, task: str, seeds: list[int]) -> list[str]:
    figures = [f for f in (seed_figures(folder, task, s) for s in seeds) if f is not None]
    if not figures:
        return [f"no seed of {task} has all of {', '.join(ARMS)} in {folder}"]
    frame = pd.DataFrame(figures)
    lines = [f"{task}, {len(frame)} seed(s): the front of tpe-mo against the study's rows "
             f"and against tpe's trials, at equal time",
             frame.to_string(index=False, float_format="{:.4g}".format)]
    covered = frame["covered"].dropna()
    lines.append(f"RESULT front_dominates_study="
                 f"{statistics.median(covered) if len(covered) else math.nan:.3f}")
    ratios = frame["hv_ratio"].dropna()
    lines.append(f"RESULT hypervolume_ratio="
                 f"{statistics.median(ratios) if len(ratios) else math.nan:.3f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist-denoise",
                        choices=("mnist", "mnist-denoise", "text"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--time-budget", type=float, default=240.0, help="seconds per job")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    parser.add_argument("--keep", default="runs/bench/pareto", help="jobs and sweeps go here")
    parser.add_argument("--summarize", help="only print the figures of the sweeps in DIR")
    args = parser.parse_args()
    folder = Path(args.summarize or args.keep)
    if not args.summarize:
        command = [sys.executable, str(Path(__file__).with_name("searchers.py")), "--tasks",
                   args.task, "--arms", *ARMS, "--seeds", *map(str, args.seeds),
                   "--time-budget", str(args.time_budget), "--slots", str(args.slots),
                   "--keep", str(folder)]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        subprocess.run(command, check=True)
    for line in summarize(folder, args.task, args.seeds):
        print(line)


if __name__ == "__main__":
    main()
