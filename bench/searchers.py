"""Searchers against random search, the study's rows and the study's best row, at equal time.

    python bench/searchers.py [--tasks mnist mnist-denoise text] [--seeds 0 1 2 3 4]
        [--time-budget 90] [--slots 2] [--trials-at-once 1]
        [--arms tpe random study best-row best-row-bce] [--address auto] [--keep DIR]
    python bench/searchers.py --summarize DIR      # the tables and RESULT lines again

Each job is one (task, seed, arm) in its own process, given `--time-budget` wall seconds:
  tpe / optuna / random: a sweep of the default space with that searcher and ASHA, on small
      subsets (below). With a time budget, ASHA's rungs are in seconds fitted to it
      (search/time_asha.py) and the best config at the top rung trains on until the time is
      up (search/exploit.py), as the best row does; `tpe-warm` is tpe with --warm-start
      report (the study's best row first);
      with --budget-images, trials of at most `DEFAULTS[task]["epochs"]` epochs;
  study: the study's rows of the task as a grid (FIFO), the same epochs each, in table order;
  best-row: the study's best row of the task, trained alone (no Ray, on one CPU thread as a
      trial) until the time is up, with its own loss; best-row-bce: the same with binary
      cross-entropy, the default space's recipe (the best MNIST denoiser collapses under MSE).
`--slots` jobs run at once; a search arm runs `--trials-at-once` trials at once (default 1),
each trial on one CPU (and `--gpus-per-trial` of a GPU). With `--address`, the sweeps share
that Ray cluster (start it with as many CPUs as slots); else each job starts its own Ray. Jobs
are ordered so that each wave runs every arm of a (task, seed) together: equal conditions.

A result at time t is the leaderboard then: the best healthy trial's last report so far
(collapsed, diverged and failed trials never count). Prints a table per task (mean ± std over
seeds), then
  RESULT search_vs_random=<median over task-seed pairs of best(tpe)/best(random) at equal time>
  RESULT search_losses=<pairs where best(tpe) > 1.05 x best(random)>
  RESULT time_to_match_random=<median fraction of the time tpe took to reach random's final>
  RESULT trained_on_from=<median fraction of the time at which tpe's first trained-on trial
      reported: the floor under time_to_match_random, as random search's final is a trained-on
      trial's>
  RESULT wall_time_to_match_random=<the same in wall seconds against random's whole run, from
      paired jobs run side by side: with --budget-images, the time comparison under load>
  RESULT warm_start_vs_random, warm_start_vs_tpe=<the same median for tpe-warm (tpe with
      --warm-start report) over random, and over tpe: what the study's row first adds>
  RESULT search_vs_best_row=<median over tasks of best(tpe)/best row alone, at equal time>
  RESULT row_time_to_match_random=<median fraction of the time the study's best row, trained
      alone from the start, took to reach random's final: what time_to_match_random asks of a
      good config given the whole budget, no search first>
  RESULT efficiency_ratio=<median over pairs of best(tpe)/best(study's rows), equal time>
and the same ratios at equal images (each pair cut at the images the smaller arm trained).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Small enough for a few dozen trials per job on one CPU core in a few minutes: the regime
# of a short search on a laptop, where a searcher has to earn its keep early.
DEFAULTS: dict[str, dict[str, int]] = {
    "mnist": {"subset": 1000, "val_subset": 300, "epochs": 2},
    "mnist-denoise": {"subset": 1000, "val_subset": 300, "epochs": 2},
    "text": {"subset": 20, "val_subset": 2, "epochs": 2, "patch_size": 48},
}

ROW_EPOCHS = 10_000  # "until the time is up": more than any job's budget trains

SEARCH_ARMS = ("tpe", "optuna", "random")
# tpe-warm: the default searcher with `--warm-start report` (the study's best row first).
WARM = {"tpe-warm": "tpe"}
# tpe-mo: the default searcher on two objectives, val_mse and params (bench/pareto.py reads it).
MULTI_OBJECTIVE = {"tpe-mo": ("val_mse", "params")}
ARMS = (*SEARCH_ARMS, *WARM, "study", "best-row", "best-row-bce", *MULTI_OBJECTIVE)
# t (s since the job's start), images (spent so far), trial, value, ok; a sweep's reports also
# say whether they came from a trained-on trial (exploit: search/exploit.py)
Report = dict[str, Any]


def _options(task: str, data_dir: str | None) -> Any:
    from search.data import DataOptions

    d = DEFAULTS[task]
    return DataOptions(data_dir=data_dir, subset=d["subset"], val_subset=d["val_subset"],
                       patch_size=d.get("patch_size"))


def _sweep_reports(results: Any, start: float) -> list[Report]:
    from search.exploit import is_exploit
    from spaces import constants as C

    out = []
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or frame.empty or C.VAL_MSE not in frame:
            continue
        ok = result.error is None and not (C.VERDICT in frame and frame[C.VERDICT].notna().any())
        trial = str(result.metrics.get(C.TRIAL_ID, result.path))
        exploit = is_exploit({"config": result.config})  # a top-rung config, trained on
        for _, row in frame.iterrows():
            at = float(row.get(C.STARTED_AT, start)) + float(row["time_total_s"]) - start
            out.append({"t": at, "trial_images": int(row[C.IMAGES]), "trial": trial,
                        "value": float(row[C.VAL_MSE]), "ok": bool(ok), "exploit": exploit})
    return _with_spent(out)


def _with_spent(reports: list[Report]) -> list[Report]:
    """Sorted by time, with `images`: what the arm had trained on in all by then."""
    reports.sort(key=lambda r: r["t"])
    seen: dict[str, int] = {}
    for r in reports:
        seen[r["trial"]] = max(seen.get(r["trial"], 0), r.pop("trial_images"))
        r["images"] = sum(seen.values())
    return reports


def _run_sweep(task: str, seed: int, arm: str, args: argparse.Namespace) -> list[Report]:
    import ray

    from search.data import load_task
    from search.sweep import SweepSettings, run_sweep

    options = _options(task, args.data_dir)
    data = load_task(task, options)
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=args.trials_at_once, include_dashboard=False,
                 log_to_driver=False)
    grid = arm == "study"
    settings = SweepSettings(
        task=task, name=f"{task}-{seed}-{arm}", storage=args.storage, seed=seed, data=options,
        # Under a time budget only the time ends a search's trial, as for the best row alone.
        max_epochs=DEFAULTS[task]["epochs"] if args.budget_images or grid else ROW_EPOCHS,
        cpus_per_trial=1.0, max_concurrent=args.trials_at_once,
        gpus_per_trial=args.gpus_per_trial,
        space="report" if grid else "default",
        search="grid" if grid else WARM.get(arm, arm.removesuffix("-mo")),
        warm_start="report" if arm in WARM else None,
        objectives=MULTI_OBJECTIVE.get(arm, ("val_mse",)),
        scheduler="fifo" if grid else "asha", num_samples=1 if grid else -1,
        time_budget_s=None if args.budget_images else args.time_budget,
        budget_epochs=args.budget_images / data.epoch_size if args.budget_images else None,
    )
    start = time.time()
    results, _ = run_sweep(settings, data)
    ray.shutdown()
    return _sweep_reports(results, start)


def train_alone(task: str, seed: int, config: Any, *, seconds: float,
                budget_images: int | None = None, data_dir: str | None = None,
                label: str = "alone") -> list[Report]:
    """`config` (a ModelConfig) trained alone on the bench's data of `task`, until `seconds`
    of wall time (validation included) or `budget_images` examples: no Ray, one process on
    one CPU thread, as each trial gets. The study's best row and bench/headroom.py's
    candidates train so."""
    import keras

    from search.data import load_task
    from search.sweep import SweepSettings, report_images, with_data
    from search.trial import Trial, configure_backend
    from spaces import constants as C

    keras.config.disable_interactive_logging()
    configure_backend(cpus=1.0)  # one CPU, as each search trial gets: else it takes them all
    options = _options(task, data_dir)
    data = load_task(task, options)
    settings = with_data(SweepSettings(task=task, data=options), data)
    trial = Trial(config.replace(epochs=ROW_EPOCHS), data, seed=seed,
                  report_images=report_images(settings, data))
    start, out = time.perf_counter(), []
    for metrics in trial.reports():
        t = time.perf_counter() - start
        if (t > seconds if not budget_images else metrics[C.IMAGES] > budget_images):
            break
        out.append({"t": t, "trial_images": int(metrics[C.IMAGES]), "trial": label,
                    "value": float(metrics[C.VAL_MSE]), "ok": C.VERDICT not in metrics})
    return _with_spent(out)


def _run_row(task: str, seed: int, arm: str, args: argparse.Namespace) -> list[Report]:
    """The study's best row alone, trained until the time is up (no Ray, one process)."""
    from spaces import study_rows

    row = next(r for r in study_rows(task) if r.best)
    config = row.config.replace(**({"loss": "bce"} if arm.endswith("bce") else {}))
    return train_alone(task, seed, config, seconds=args.time_budget,
                       budget_images=args.budget_images, data_dir=args.data_dir, label=row.id)


def run_job(task: str, seed: int, arm: str, args: argparse.Namespace) -> None:
    began = time.time()
    runner = _run_row if arm.startswith("best-row") else _run_sweep
    reports = runner(task, seed, arm, args)
    record = {"task": task, "seed": seed, "arm": arm, "time_budget": args.time_budget,
              "budget_images": args.budget_images, "wall_s": time.time() - began,
              "reports": reports}
    Path(args.out).write_text(json.dumps(record))


# --- the comparison ---------------------------------------------------------------------------
def best_at(reports: list[Report], *, t: float = math.inf, images: float = math.inf) -> float:
    """The leaderboard's best (a healthy trial's last report) at time `t` / after `images`.
    A trial that ended collapsed or diverged never counts, not even by its reports before
    (as the leaderboard ranks it, and as a sweep's reports are flagged, by how it ended)."""
    unhealthy = {r["trial"] for r in reports if not r["ok"]}
    last: dict[str, float] = {}
    for r in reports:
        if r["t"] > t or r["images"] > images:
            break
        if r["trial"] not in unhealthy and math.isfinite(r["value"]):
            last[r["trial"]] = r["value"]
    return min(last.values(), default=math.inf)


def time_to_reach(reports: list[Report], target: float, budget: float,
                  axis: str = "t") -> float:
    """The fraction of `budget` (seconds, or images with `axis="images"`) after which the
    leaderboard's best was at most `target`."""
    for r in reports:
        if r[axis] <= budget and best_at(reports, **{axis: r[axis]}) <= target:
            return float(r[axis]) / budget
    return math.inf


def trained_on_from(reports: list[Report], budget: float) -> float:
    """The fraction of `budget` at which the first trained-on trial reported (NaN where the
    reports do not say, as in runs before this was recorded). `time_to_match_random` cannot
    fall below it unless an exploring trial of a few seconds beats random search's final."""
    if not any("exploit" in r for r in reports):
        return math.nan
    times = [r["t"] for r in reports if r.get("exploit")]
    return min(times) / budget if times else math.inf


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.inf


def _mean_std(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "none"
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    lost = f" ({len(values) - len(finite)} none)" if len(finite) < len(values) else ""
    return f"{statistics.mean(finite):.5f} ± {std:.5f}{lost}"


def _budget(jobs: list[dict[str, Any]]) -> tuple[str, float]:
    """The axis the jobs were budgeted on ("t" or "images") and the budget."""
    images = {j.get("budget_images") for j in jobs}
    if len(images) > 1:
        raise ValueError("these jobs ran with different budgets: summarize them apart")
    given = images.pop()
    if given is not None:
        return "images", float(given)
    return "t", max(float(j["time_budget"]) for j in jobs)


def arm_table(jobs: list[dict[str, Any]], axis: str, budget: float) -> Any:
    """One row per job: its leaderboard's best at the budget, trials and images."""
    import pandas as pd

    return pd.DataFrame([
        {"task": j["task"], "seed": j["seed"], "arm": j["arm"],
         "best": best_at(j["reports"], **{axis: budget}),
         "trials": len({r["trial"] for r in j["reports"]}),
         "images": j["reports"][-1]["images"] if j["reports"] else 0,
         "seconds": j["reports"][-1]["t"] if j["reports"] else 0.0}
        for j in jobs])


def _last_images(job: dict[str, Any]) -> int:
    return int(job["reports"][-1]["images"]) if job["reports"] else 0


def pair_table(jobs: list[dict[str, Any]], axis: str, budget: float) -> Any:
    """One row per (task, seed): tpe's best over each other arm's, and the time (or images)
    tpe took to reach random search's final best."""
    import pandas as pd

    by = {(j["task"], j["seed"], j["arm"]): j for j in jobs}
    pairs = []
    for task, seed in sorted({(t, s) for t, s, _ in by}):
        get = {arm: by.get((task, seed, arm)) for arm in ARMS}
        tpe, rnd = get["tpe"], get["random"]
        if tpe is None:
            continue
        pair: dict[str, Any] = {"task": task, "seed": seed}
        best = best_at(tpe["reports"], **{axis: budget})
        if rnd is not None:
            target = best_at(rnd["reports"], **{axis: budget})
            pair["vs_random"] = _ratio(best, target)
            pair["time_to_match"] = time_to_reach(tpe["reports"], target, budget, axis)
            floor = trained_on_from(tpe["reports"], budget) if axis == "t" else math.nan
            if not math.isnan(floor):  # runs before the mark was recorded have none
                pair["trained_on_from"] = floor
            # Seconds: random search's whole run against when tpe first matched its final best.
            # Paired jobs run at the same time on the same machine, so this holds under load.
            random_s = rnd["reports"][-1]["t"] if rnd["reports"] else math.inf
            pair["wall_to_match"] = time_to_reach(tpe["reports"], target, random_s, "t")
            spent = min(_last_images(tpe), _last_images(rnd))
            pair["vs_random_images"] = _ratio(best_at(tpe["reports"], images=spent),
                                              best_at(rnd["reports"], images=spent))
            warm = get["tpe-warm"]
            if warm is not None:  # what the study's best row as first trial adds
                pair["warm_vs_random"] = _ratio(best_at(warm["reports"], **{axis: budget}),
                                                target)
                pair["warm_vs_tpe"] = _ratio(best_at(warm["reports"], **{axis: budget}), best)
        if get["study"] is not None:
            pair["vs_study"] = _ratio(best, best_at(get["study"]["reports"], **{axis: budget}))
        row = next(((job, value) for job in (get["best-row"], get["best-row-bce"])
                    if job is not None  # own loss, else the BCE recipe
                    and math.isfinite(value := best_at(job["reports"], **{axis: budget}))), None)
        if row is not None:
            pair["vs_best_row"] = _ratio(best, row[1])
            if rnd is not None and axis == "t":  # the reference for time_to_match
                pair["row_to_match"] = time_to_reach(row[0]["reports"], target, budget, axis)
        pairs.append(pair)
    return pd.DataFrame(pairs)


def result_lines(frame: Any) -> list[str]:
    """The RESULT lines of a pair table."""
    def med(column: str) -> float:
        known = frame[column].dropna() if column in frame else []
        return statistics.median(known) if len(known) else math.nan

    lines = []
    if "vs_random" in frame:
        per_task = frame.groupby("task")["vs_random"].median()
        lines.append("median vs random per task: " + ", ".join(
            f"{t} {v:.3f}" for t, v in per_task.items()))
        lines.append(f"RESULT search_vs_random={med('vs_random'):.3f}")
        lines.append(f"RESULT search_losses={int((frame['vs_random'] > 1.05).sum())}")
        lines.append(f"RESULT time_to_match_random={med('time_to_match'):.3f}")
        if "trained_on_from" in frame and frame["trained_on_from"].notna().any():
            lines.append(f"RESULT trained_on_from={med('trained_on_from'):.3f}")
        lines.append(f"RESULT search_vs_random_equal_images={med('vs_random_images'):.3f}")
        lines.append(f"RESULT wall_time_to_match_random={med('wall_to_match'):.3f}")
    if "warm_vs_tpe" in frame:
        lines.append(f"RESULT warm_start_vs_random={med('warm_vs_random'):.3f}")
        lines.append(f"RESULT warm_start_vs_tpe={med('warm_vs_tpe'):.3f}")
    if "vs_best_row" in frame:
        # Over the tasks whose best row ran: a task without one has no ratio, not a NaN.
        per_task = frame.groupby("task")["vs_best_row"].median().dropna()
        lines.append("median vs the best row per task: " + ", ".join(
            f"{t} {v:.3f}" for t, v in per_task.items()))
        lines.append(f"RESULT search_vs_best_row={statistics.median(per_task):.3f}")
    if "row_to_match" in frame:
        lines.append(f"RESULT row_time_to_match_random={med('row_to_match'):.3f}")
    if "vs_study" in frame:
        lines.append(f"RESULT efficiency_ratio={med('vs_study'):.3f}")
    return lines


def summarize(jobs: list[dict[str, Any]]) -> list[str]:
    """The tables and RESULT lines of finished jobs."""
    axis, budget = _budget(jobs)
    unit = "images" if axis == "images" else "s"
    table = arm_table(jobs, axis, budget)
    lines = []
    for task in sorted(set(table["task"])):
        lines.append(f"\n{task}: leaderboard best val_mse after {budget:g} {unit}, mean ± std "
                     f"over seeds")
        part = table[table["task"] == task]
        for arm in [a for a in ARMS if a in set(part["arm"])]:
            sub = part[part["arm"] == arm]
            lines.append(f"  {arm:13s} {_mean_std(sub['best'].tolist()):28s} trials "
                         f"{sub['trials'].median():5.1f}  images {sub['images'].median():9,.0f}"
                         f"  seconds {sub['seconds'].median():6.0f}")
    frame = pair_table(jobs, axis, budget)
    lines.append(f"\nper task and seed, at equal {'images' if axis == 'images' else 'time'}: "
                 f"tpe's best over the other arm's (below 1: tpe better)")
    lines.append(frame.to_string(index=False, float_format="{:.3f}".format))
    return lines + result_lines(frame)


def _best_row_loss(task: str) -> str:
    from spaces import study_rows

    return next(r for r in study_rows(task) if r.best).config.loss


def _command(args: argparse.Namespace, out: Path, task: str, seed: int, arm: str) -> list[str]:
    command = [sys.executable, __file__, "--job", f"{task},{seed},{arm}",
               "--out", str(out / f"{task}-{seed}-{arm}.json"),
               "--time-budget", str(args.time_budget), "--storage", str(out / "sweeps")]
    if args.trials_at_once != 1:
        command += ["--trials-at-once", str(args.trials_at_once)]
    if args.budget_images:
        command += ["--budget-images", str(args.budget_images)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if args.address:
        command += ["--address", args.address, "--gpus-per-trial", str(args.gpus_per_trial)]
    return command


def _groups(args: argparse.Namespace, out: Path) -> list[tuple[tuple[str, int], list[str]]]:
    """The arms still to run of each (task, seed), in seed order."""
    groups: dict[tuple[str, int], list[str]] = {}
    for seed in args.seeds:
        for task in args.tasks:
            for arm in args.arms:
                same_as_best_row = arm == "best-row-bce" and _best_row_loss(task) == "bce"
                if not same_as_best_row and not (out / f"{task}-{seed}-{arm}.json").is_file():
                    groups.setdefault((task, seed), []).append(arm)
    return list(groups.items())


def _launch(args: argparse.Namespace, out: Path) -> None:
    """Every job, at most `--slots` at a time; the arms of a (task, seed) start together (a
    group waits for room for all of them), so that they run under the same load."""
    pending = _groups(args, out)
    running: list[tuple[subprocess.Popen[bytes], str]] = []
    while pending or running:
        while pending and (not running or len(running) + len(pending[0][1]) <= args.slots):
            (task, seed), arms = pending.pop(0)
            for arm in arms:
                name = f"{task}-{seed}-{arm}"
                log = (out / f"{name}.log").open("wb")
                proc = subprocess.Popen(_command(args, out, task, seed, arm), stdout=log,
                                        stderr=subprocess.STDOUT)
                running.append((proc, name))
        time.sleep(1)
        for proc, name in list(running):
            if proc.poll() is not None:
                running.remove((proc, name))
                status = "done" if proc.returncode == 0 else f"FAILED ({proc.returncode})"
                load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
                print(f"{time.strftime('%H:%M:%S')} {name} {status} (load {load})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=tuple(DEFAULTS), default=list(DEFAULTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--arms", nargs="+", choices=ARMS,
                        default=["tpe", "random", "study", "best-row", "best-row-bce"])
    parser.add_argument("--time-budget", type=float, default=90.0, help="seconds per job")
    parser.add_argument("--budget-images", type=int,
                        help="instead of a time budget, stop each job after this many training "
                             "examples: equal work, unaffected by a busy machine")
    parser.add_argument("--slots", type=int, default=1, help="jobs at once (one CPU each)")
    parser.add_argument("--trials-at-once", type=int, default=1,
                        help="trials a search arm runs at once, one CPU each (its Ray gets as "
                             "many): more than 1 measures what a sweep does with several slots; "
                             "the best row alone still trains on one thread")
    parser.add_argument("--address", help="a running Ray cluster for the sweeps")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0,
                        help="a share of a GPU for each sweep's trial (with --address)")
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    parser.add_argument("--keep", help="write jobs and sweeps here (default: a temp folder)")
    parser.add_argument("--summarize", help="print the tables of the jobs in this folder")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trials_at_once < 1:
        parser.error(f"--trials-at-once must be at least 1, got {args.trials_at_once}")
    if args.job:
        task, seed, arm = args.job.split(",")
        run_job(task, int(seed), arm, args)
        return
    if args.summarize:
        folder = Path(args.summarize)
    else:
        folder = Path(args.keep or tempfile.mkdtemp(prefix="searchers-"))
        folder.mkdir(parents=True, exist_ok=True)
        budget = (f"{args.budget_images:,} images" if args.budget_images
                  else f"{args.time_budget:g} s")
        print(f"jobs of {budget}, {args.slots} at a time; outputs in {folder}", flush=True)
        _launch(args, folder)
    jobs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    if not jobs:
        parser.exit(2, f"{folder}: no finished job (a job writes TASK-SEED-ARM.json at its "
                       f"end)\n")
    for line in summarize(jobs):
        print(line)


if __name__ == "__main__":
    main()
