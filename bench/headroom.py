"""What the pick at the top rung leaves on the table: each search arm's candidates, trained long.

    python bench/headroom.py runs/bench/searchers-head [--tasks mnist mnist-denoise text]
        [--seeds 0 1 2 3 4] [--arms tpe random] [--top 2] [--seconds 80] [--slots 2]
        [--keep DIR]
    python bench/headroom.py --summarize DIR

In bench/searchers.py a search arm trains on the one config that led at ASHA's top rung (9 s
of training in a 240 s budget), so its figure mixes two things: how good the configs its
searcher proposed are (the searcher's work) and whether 9 s ranked them as the rest of the
budget would (the schedule's). Only the pick trains long, so that bench cannot tell them apart.
Here, for each (task, seed, arm) of a searchers folder (its `--keep`, which holds the sweeps),
the `--top` distinct configs that led at the top rung are each trained alone from the start,
for `--seconds` of wall time on one CPU thread (as the study's best row trains there), and
their last healthy report is their long-run value. Prints a table per task, and
  RESULT pick_right=<share of (task, seed, arm) whose pick ended within 5% of its best
      candidate long-run (the margin bench/searchers.py's search_losses allows)>
  RESULT pick_regret=<median of long-run(pick) / long-run(best candidate); 1: picked right>
  RESULT candidates_vs_random=<median over (task, seed) of tpe's best candidate long-run over
      random search's: below 1, tpe proposed better configs whatever the rung picked>
  RESULT pick_vs_random=<the same for the two picks: bench/searchers.py's comparison, each
      config trained alone under equal conditions>
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.searchers import DEFAULTS, best_at, train_alone
from results.sweepdir import read_params, read_results, read_sweep_meta, trial_dirs
from spaces import constants as C
from spaces.config import ModelConfig

TIE = 1.05  # a pick within 5% of its arm's best candidate long-run picked right
Candidate = dict[str, Any]  # trial, model (a ModelConfig dict), rung (val_mse at the top rung)


def candidates(sweep: Path, top: int) -> tuple[list[Candidate], dict[str, Any] | None]:
    """The `top` distinct configs with the lowest val_mse at the top rung of `sweep` (a sweep
    folder of bench/searchers.py), best first, and the config the sweep trained on (its
    pick). A config is ranked by a healthy trial's first report at or past the top rung:
    ASHA stops trials there, so it is the one ExploitBest ranks them by."""
    from search.time_asha import time_rungs

    top_s = time_rungs(float(read_sweep_meta(sweep)["time_budget_s"]))[-1]
    pick: dict[str, Any] | None = None
    found: dict[str, Candidate] = {}
    for trial_dir in trial_dirs(sweep):
        params = read_params(trial_dir)
        model = params[C.MODEL_KEY]
        if params.get(C.EXPLOIT):
            pick = model
            continue
        results = read_results(trial_dir)
        if any(r.get(C.VERDICT) for r in results):
            continue  # collapsed, diverged: never ranked
        at_rung = [r for r in results if float(r.get(C.SECONDS, 0.0)) >= top_s]
        value = float(at_rung[0][C.VAL_MSE]) if at_rung else math.nan
        if not math.isfinite(value):
            continue
        key = json.dumps(model, sort_keys=True)
        if key not in found or value < found[key]["rung"]:
            found[key] = {"trial": trial_dir.name, "model": model, "rung": value}
    ranked = sorted(found.values(), key=lambda c: float(c["rung"]))
    chosen = ranked[:top]
    if pick is not None and all(c["model"] != pick for c in chosen):
        chosen += [c for c in ranked if c["model"] == pick]
    return chosen, pick


def _jobs(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    jobs = []
    for task in args.tasks:
        for seed in args.seeds:
            for arm in args.arms:
                sweep = Path(args.folder) / "sweeps" / f"{task}-{seed}-{arm}"
                if not (sweep / "sweep.json").is_file():
                    print(f"no sweep {sweep}: skipped", flush=True)
                    continue
                found, pick = candidates(sweep, args.top)
                for rank, cand in enumerate(found):
                    name = f"{task}-{seed}-{arm}-{rank}"
                    jobs.append({"name": name, "task": task, "seed": seed, "arm": arm,
                                 "rank": rank, "pick": cand["model"] == pick,
                                 "seconds": args.seconds, "data_dir": args.data_dir,
                                 "out": str(out / f"{name}.json"), **cand})
    return jobs


def run_job(job: dict[str, Any]) -> None:
    config = ModelConfig.from_dict(job["model"])
    reports = train_alone(job["task"], job["seed"], config, seconds=job["seconds"],
                          data_dir=job["data_dir"], label=job["trial"])
    Path(job["out"]).write_text(json.dumps({**job, "reports": reports}))


def _launch(jobs: list[dict[str, Any]], out: Path, slots: int) -> None:
    pending = [j for j in jobs if not Path(j["out"]).is_file()]
    running: list[tuple[subprocess.Popen[bytes], str]] = []
    while pending or running:
        while pending and len(running) < slots:
            job = pending.pop(0)
            spec = out / f"{job['name']}.job"
            spec.write_text(json.dumps(job))
            log = (out / f"{job['name']}.log").open("wb")
            running.append((subprocess.Popen([sys.executable, __file__, "--job", str(spec)],
                                             stdout=log, stderr=subprocess.STDOUT), job["name"]))
        time.sleep(1)
        for proc, name in list(running):
            if proc.poll() is not None:
                running.remove((proc, name))
                status = "done" if proc.returncode == 0 else f"FAILED ({proc.returncode})"
                print(f"{time.strftime('%H:%M:%S')} {name} {status}", flush=True)


# --- the comparison ---------------------------------------------------------------------------
def arm_table(results: list[dict[str, Any]]) -> Any:
    """One row per (task, seed, arm): its pick and best candidate, long-run."""
    import pandas as pd

    rows = []
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["task"], r["seed"], r["arm"]), []).append(r)
    for (task, seed, arm), cands in sorted(groups.items()):
        long = {c["rank"]: best_at(c["reports"]) for c in cands}
        picks = [c["rank"] for c in cands if c["pick"]]
        best = min(long.values())
        pick = long[picks[0]] if picks else math.nan
        rows.append({"task": task, "seed": seed, "arm": arm, "candidates": len(cands),
                     "pick": pick, "best": best,
                     "regret": pick / best if math.isfinite(best) and best > 0 else math.nan,
                     "right": bool(picks) and math.isfinite(pick) and pick <= TIE * best,
                     "best_rank": min(long, key=lambda k: long[k])})
    return pd.DataFrame(rows)


def pair_table(arms: Any) -> Any:
    """One row per (task, seed): tpe over random search, best candidate and pick."""
    import pandas as pd

    by = {(r.task, r.seed, r.arm): r for r in arms.itertuples()}
    rows = []
    for task, seed in sorted({(t, s) for t, s, _ in by}):
        tpe, rnd = by.get((task, seed, "tpe")), by.get((task, seed, "random"))
        if tpe is None or rnd is None:
            continue
        rows.append({"task": task, "seed": seed,
                     "candidates_vs_random": tpe.best / rnd.best,
                     "pick_vs_random": tpe.pick / rnd.pick})
    return pd.DataFrame(rows)


def summarize(results: list[dict[str, Any]]) -> list[str]:
    arms = arm_table(results)
    lines = ["per (task, seed, arm): the pick and the best of its candidates, val_mse after "
             "training alone; best_rank is the best's place at the top rung (0 = the pick's)",
             arms.to_string(index=False, float_format="{:.5f}".format)]
    pairs = pair_table(arms)
    if not pairs.empty:
        lines += ["", "per (task, seed): tpe over random search (below 1: tpe better)",
                  pairs.to_string(index=False, float_format="{:.3f}".format)]
        for task, part in pairs.groupby("task"):
            lines.append(f"{task}: median candidates_vs_random "
                         f"{statistics.median(part['candidates_vs_random']):.3f}, "
                         f"pick_vs_random {statistics.median(part['pick_vs_random']):.3f}")
    regret = arms["regret"].dropna()
    lines.append(f"RESULT pick_right={arms['right'].mean():.3f}")
    lines.append(f"RESULT pick_regret={statistics.median(regret) if len(regret) else math.nan:.3f}")
    if not pairs.empty:
        lines.append("RESULT candidates_vs_random="
                     f"{statistics.median(pairs['candidates_vs_random']):.3f}")
        lines.append(f"RESULT pick_vs_random={statistics.median(pairs['pick_vs_random']):.3f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="a bench/searchers.py --keep folder")
    parser.add_argument("--tasks", nargs="+", choices=tuple(DEFAULTS),
                        default=list(DEFAULTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--arms", nargs="+", default=["tpe", "random"])
    parser.add_argument("--top", type=int, default=2, help="candidates per arm")
    parser.add_argument("--seconds", type=float, default=80.0,
                        help="wall seconds each candidate trains alone")
    parser.add_argument("--slots", type=int, default=2, help="candidates at once (one CPU each)")
    parser.add_argument("--data-dir")
    parser.add_argument("--keep", help="where the results go (default: FOLDER/headroom)")
    parser.add_argument("--summarize", metavar="DIR", help="print the tables of DIR again")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        run_job(json.loads(Path(args.job).read_text()))
        return
    if args.summarize:
        out = Path(args.summarize)
    else:
        if not args.folder or not (Path(args.folder) / "sweeps").is_dir():
            parser.error(f"{args.folder!r} holds no sweeps/: give a bench/searchers.py "
                         "--keep folder")
        if args.top < 1 or args.seconds <= 0:
            parser.error("--top and --seconds must be positive")
        out = Path(args.keep or Path(args.folder) / "headroom")
        out.mkdir(parents=True, exist_ok=True)
        jobs = _jobs(args, out)
        print(f"{len(jobs)} candidates of {args.seconds:g} s, {args.slots} at a time; "
              f"outputs in {out}", flush=True)
        _launch(jobs, out, args.slots)
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    if not results:
        sys.exit(f"no results in {out}")
    print("\n".join(summarize(results)))


if __name__ == "__main__":
    main()
