"""Does a trial cost the same at the end of a long sweep as at its start? (issue 25)

    python bench/scale.py [--n 100 500 2000] [--trials {fixed,random}] [--storage DIR]
                          [--searchers random tpe] [--searcher-n 2000] [--worker-trials K]
                          [--skip-sweeps] [--driver-from DIR] [--data-dir DIR]

For each N, one sweep of N tiny trials on one machine:

    python search/run.py --task mnist --num-samples N --max-epochs 1 --subset 64
        --val-subset 64 --space report --search grid --rows mnist/1.1/1
        --name scale-N --storage DIR --address local

`--trials fixed` (the default) repeats one tiny study row (4,385 parameters, a seed each), so
that every trial does the same work and what grows is the framework's; `--trials random`
runs the issue's `--search random` over the default space instead, where the first and last
10% train different models (and the sweep's figures swing with them).

then, from the sweep's own files and the driver process:
  setup_growth       median `setup_seconds` (configure the backend, clear the session, build
                     the model, look for checkpoints) of the last 10% of trials, by start
                     time, over that of the first 10% (target <= 1.1)
  trial_rate_growth  wall seconds per trial over the last 10% of trial starts, over the first
                     10% (target <= 1.1): a slot that frees starts the next trial, so the
                     driver's and the workers' slowdowns show up here (starts, not ends: the
                     sweep's last trials end one by one as slots stay empty)
  driver peak RSS    the driver's VmHWM (/proc/PID/status), read until it exits
  disk per trial     the sweep dir's bytes (du) over N, after the sweep
  results_s          wall seconds of `python -m results SWEEP_DIR` (target < 10 s at 2,000)
and, without Ray, each searcher's own seconds per suggestion at n = 100, 500, ... trials told
(suggest + on_trial_complete with made-up results), since a model-based searcher's fit grows
with the trials it has seen. Prints `RESULT setup_growth=...` and `RESULT
trial_rate_growth=...` for each N (the largest N last). Benchmarks print ratios; no timing
is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from results.sweepdir import read_results, trial_dirs  # noqa: E402
from spaces import constants as C  # noqa: E402


def _vm_hwm_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


TRIALS = {"fixed": ["--space", "report", "--search", "grid", "--rows", "mnist/1.1/1"],
          "random": ["--search", "random"]}


def run_sweep(n: int, storage: Path, trials: str, data_dir: str | None,
              extra: list[str]) -> dict[str, Any]:
    """Run one sweep of `n` tiny trials; its wall time and the driver's peak RSS."""
    name = f"scale-{n}"
    shutil.rmtree(storage / name, ignore_errors=True)
    argv = [sys.executable, str(REPO / "search" / "run.py"), "--task", "mnist",
            "--num-samples", str(n), "--max-epochs", "1", "--subset", "64",
            "--val-subset", "64", *TRIALS[trials], "--name", name,
            "--storage", str(storage), "--address", "local", *extra]
    if data_dir:
        argv += ["--data-dir", data_dir]
    print("$ " + " ".join(argv[1:]), flush=True)
    log = (storage / f"{name}.log").open("w")
    began = time.monotonic()
    process = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _vm_hwm_kb(process.pid) or 0)
        time.sleep(1.0)
    wall = time.monotonic() - began
    log.close()
    if process.returncode != 0:
        raise SystemExit(f"the sweep failed ({process.returncode}); see {log.name}")
    return {"dir": storage / name, "wall_s": wall, "driver_peak_rss_mb": peak / 1024}


def _tenth(values: list[float]) -> int:
    return max(2, len(values) // 10)


def trial_figures(sweep_dir: Path) -> dict[str, Any]:
    """Setup and pace over the sweep, from each trial's result.json."""
    trials = []
    for trial_dir in trial_dirs(sweep_dir):
        rows = [r for r in read_results(trial_dir) if C.SETUP_SECONDS in r]
        if rows:
            first, last = rows[0], rows[-1]
            trials.append((float(first[C.STARTED_AT]), float(first[C.SETUP_SECONDS]),
                           float(first[C.STARTED_AT]) + float(last["time_total_s"])))
    trials.sort()
    setups = [s for _, s, _ in trials]
    k = _tenth(setups)
    starts = [s for s, _, _ in trials]
    first_pace = (starts[k - 1] - starts[0]) / (k - 1)
    last_pace = (starts[-1] - starts[-k]) / (k - 1)
    fifths = [statistics.median(part) for part in
              (setups[i * len(setups) // 5:(i + 1) * len(setups) // 5] for i in range(5))]
    return {"trials": len(trials), "setup_first": statistics.median(setups[:k]),
            "setup_last": statistics.median(setups[-k:]),
            "setup_growth": statistics.median(setups[-k:]) / statistics.median(setups[:k]),
            "pace_first": first_pace, "pace_last": last_pace,
            "trial_rate_growth": last_pace / first_pace, "setup_fifths": fifths}


def disk_bytes(path: Path) -> int:
    done = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0])


def results_seconds(sweep_dir: Path) -> tuple[float, float]:
    """`python -m results SWEEP_DIR`: (wall seconds, CPU seconds of the process). On a shared
    machine the CPU seconds are what the command itself costs."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    subprocess.run([sys.executable, "-m", "results", str(sweep_dir)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cloned_sweep(source: Path, n: int, target: Path) -> Path:
    """A sweep dir of `n` trials made of `source`'s: its files, and its trials' results and
    params copied under new ids (checkpoints left out), for timing `python -m results` at an
    n no sweep here reached."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
    if (source / C.BEST_DIR).is_dir():
        shutil.copytree(source / C.BEST_DIR, target / C.BEST_DIR)
    originals = [d for d in trial_dirs(source) if read_results(d)]  # trials that reported
    statuses = {}
    for i in range(n):
        origin = originals[i % len(originals)]
        trial_id = f"clone_{i:05d}"
        folder = target / f"trial_{trial_id}"
        folder.mkdir()
        for name in (C.PARAMS_FILE, "progress.csv"):
            if (origin / name).is_file():
                shutil.copy2(origin / name, folder / name)
        rows = [{**r, C.TRIAL_ID: trial_id} for r in read_results(origin)]
        (folder / C.RESULT_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
        statuses[trial_id] = C.Status.TERMINATED
    (target / C.STATUS_FILE).write_text(json.dumps(statuses))
    return target


def searcher_seconds(search: str, marks: list[int], seed: int = 0,
                     journal: Path | None = None) -> dict[int, float]:
    """CPU seconds per suggestion (suggest + on_trial_complete), the mean of the 20 before
    each of `marks` trials told. CPU time, since the searcher runs in one thread of the
    driver and a shared machine's wall clock would time its neighbours too. With `journal`,
    the study lives in that journal file, as a sweep's does (`search/journal.py`)."""
    from search.searchers import make
    from search.sweep import SweepSettings

    settings = SweepSettings(task="mnist", search=search, num_samples=max(marks),
                             max_epochs=1, seed=seed)
    searcher, space = make(settings, journal)
    if searcher is None:
        return {}
    searcher.set_search_properties(C.OBJECTIVE, C.MODE, space or {})
    rng = random.Random(seed)
    out: dict[int, float] = {}
    window: list[float] = []
    for i in range(1, max(marks) + 1):
        began = time.process_time()
        config = searcher.suggest(f"t{i:05d}")
        result = {C.OBJECTIVE: rng.uniform(0.01, 0.1), C.TRAINING_ITERATION: 1,
                  C.EPOCH: 1.0, C.IMAGES: 64, "config": config}
        searcher.on_trial_complete(f"t{i:05d}", result)
        window.append(time.process_time() - began)
        if i in marks:
            out[i] = statistics.mean(window[-min(20, len(window)):])
    return out


def bookkeeping_seconds(sweep_dir: Path, ns: list[int]) -> dict[int, tuple[float, float]]:
    """The driver's rewrite of the status file and leaderboard with n ended trials (made of
    the sweep's own configs and results): (the first rewrite, a later one), in seconds."""
    import tempfile
    from types import SimpleNamespace

    from results.sweepdir import read_params
    from search.progress import SweepCallback

    seeds = [(read_params(d), rows[-1]) for d in trial_dirs(sweep_dir)
             if (rows := read_results(d))]
    meta = json.loads((sweep_dir / C.SWEEP_FILE).read_text())
    out = {}
    for n in ns:
        trials = [SimpleNamespace(trial_id=f"t{i:05d}", config=seeds[i % len(seeds)][0],
                                  last_result=seeds[i % len(seeds)][1],
                                  status=C.Status.TERMINATED, error_file=None)
                  for i in range(n)]
        with tempfile.TemporaryDirectory() as tmp:
            callback = SweepCallback(tmp, meta)
            callback._ended_before = set()
            times = []
            for _ in range(2):
                began = time.perf_counter()
                callback._update(trials, force=True)
                times.append(time.perf_counter() - began)
        out[n] = (times[0], times[1])
    return out


def ray_state(sweep_dir: Path) -> tuple[int, float, int]:
    """Ray's newest experiment state: (bytes, seconds to parse and dump it again, trials)."""
    newest = sorted(sweep_dir.glob("experiment_state-*.json"))[-1]
    text = newest.read_text()
    began = time.perf_counter()
    state = json.loads(text)
    json.dumps(state)
    return len(text.encode()), time.perf_counter() - began, len(state["trial_data"])


_WORKER = """
import gc, json, sys, time
from search import worker
from search.data import DataOptions, load_task
from search.trial import Trial, configure_backend
from spaces import study

if sys.argv[3] == "unfixed":  # what the trainable did before: clear the session, nothing more
    worker.leaked_gradients = lambda: []
    worker.gc.freeze = lambda: None
data = load_task("mnist", DataOptions(data_dir=sys.argv[1], subset=64, val_subset=64))
config = study.row("mnist/1.1/1").config.replace(epochs=1, batch_size=32)
for i in range(int(sys.argv[2])):
    began = time.perf_counter()
    configure_backend(1, None)
    worker.fresh_session()
    trial = Trial(config, data, report_images=64, seed=i)
    setup = time.perf_counter() - began
    for metrics in trial.reports():
        pass
    del trial
    print("TRIAL " + json.dumps({"setup": setup, "tracked": len(gc.get_objects())}), flush=True)
"""


def worker_loop(trials: int, arm: str, data_dir: str | None) -> list[dict[str, float]]:
    """One reused worker without Ray: `trials` tiny trials in one process, as the trainable
    starts them (`fresh_session`), or as it did before issue 25 (`arm` 'unfixed')."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", _WORKER, str(data_dir), str(trials), arm],
                          cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return [json.loads(line[6:]) for line in done.stdout.splitlines()
            if line.startswith("TRIAL ")]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--storage", type=Path, default=REPO / "runs" / "scale")
    parser.add_argument("--trials", choices=tuple(TRIALS), default="fixed")
    parser.add_argument("--searchers", nargs="*", default=["random", "tpe"],
                        help="searchers timed per suggestion (none: skip)")
    parser.add_argument("--searcher-n", type=int, default=None,
                        help="suggestions to time (default: the largest --n)")
    parser.add_argument("--skip-sweeps", action="store_true")
    parser.add_argument("--evaluate", type=Path, nargs="*", default=[],
                        help="sweep dirs already run (a stopped one too): their figures, "
                        "without the driver's RSS")
    parser.add_argument("--results-at", type=int, nargs="*", default=[2000, 10000],
                        help="also time python -m results on sweeps of this many trials "
                        "cloned from the last sweep's (none: skip)")
    parser.add_argument("--driver-from", type=Path, default=None,
                        help="time the driver's bookkeeping with this sweep dir's trials "
                        "(default: the last sweep run here)")
    parser.add_argument("--worker-trials", type=int, default=0,
                        help="also time one reused worker's setup over this many trials, "
                        "without Ray, as fixed and as before the fix (0: skip)")
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    parser.add_argument("sweep_args", nargs="*", help="after --: more flags for each sweep")
    return parser


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True).stdout.strip()


def _worker_arms(trials: int, data_dir: str | None) -> None:
    for arm in ("unfixed", "fixed"):
        rows = worker_loop(trials, arm, data_dir)
        setups = [r["setup"] for r in rows]
        k = _tenth(setups)
        print(f"worker {arm}: setup median first 10% {statistics.median(setups[:k]):.3f} s, "
              f"last 10% {statistics.median(setups[-k:]):.3f} s "
              f"(growth {statistics.median(setups[-k:]) / statistics.median(setups[:k]):.2f}); "
              f"objects the collector tracks after trial 2: {int(rows[1]['tracked']):,}, after "
              f"trial {len(rows)}: {int(rows[-1]['tracked']):,}", flush=True)


def _sweep_row(label: str, sweep_dir: Path, n: int | None = None,
               sweep: dict[str, Any] | None = None) -> dict[str, Any]:
    """The figures of one sweep dir, printed on one line."""
    trial = trial_figures(sweep_dir)
    count = n or trial["trials"]
    disk = disk_bytes(sweep_dir)
    res, res_cpu = results_seconds(sweep_dir)
    ran = (f" in {sweep['wall_s']:.0f} s, driver peak RSS {sweep['driver_peak_rss_mb']:.0f} MB"
           if sweep else "")
    print(f"{label}: {trial['trials']} trials{ran}; setup median first 10% "
          f"{trial['setup_first']:.3f} s, last 10% {trial['setup_last']:.3f} s (fifths "
          f"{', '.join(f'{x:.3f}' for x in trial['setup_fifths'])}); wall per trial first 10% "
          f"{trial['pace_first']:.3f} s, last 10% {trial['pace_last']:.3f} s; disk "
          f"{disk / 1e6:.1f} MB ({disk / count / 1024:.0f} KB a trial); python -m results "
          f"{res:.1f} s ({res_cpu:.1f} CPU s)", flush=True)
    return {"n": count, **{k: v for k, v in (sweep or {}).items() if k != "dir"}, **trial,
            "disk_per_trial_kb": disk / count / 1024, "results_s": res,
            "results_cpu_s": res_cpu}


def _driver(source: Path, storage: Path, results_at: list[int]) -> None:
    size, parse, count = ray_state(source)
    print(f"Ray's experiment state of {source.name}: {size / 1e6:.2f} MB for {count} "
          f"trials ({size / count / 1024:.1f} KB a trial), parsed and dumped again in "
          f"{parse:.3f} s", flush=True)
    for n in results_at:
        clone = cloned_sweep(source, n, storage / f"clone-{n}")
        wall, cpu = results_seconds(clone)
        print(f"python -m results on {n} trials cloned from {source.name}: {wall:.1f} s "
              f"({cpu:.1f} CPU s)", flush=True)
        shutil.rmtree(clone)
    for n, (first, later) in bookkeeping_seconds(source, [100, 500, 2000, 10000]).items():
        print(f"driver bookkeeping at n={n}: status file + leaderboard rewrite "
              f"{first:.3f} s (first), {later:.3f} s (an ended trial's row cached)",
              flush=True)


def main() -> None:
    args = _parser().parse_args()
    args.storage.mkdir(parents=True, exist_ok=True)
    print(f"commit {_commit()}, {os.cpu_count()} CPUs, storage {args.storage}", flush=True)
    if args.worker_trials:
        _worker_arms(args.worker_trials, args.data_dir)
    figures = []
    for n in ([] if args.skip_sweeps else args.n):
        print(f"N={n} at commit {_commit()}", flush=True)
        sweep = run_sweep(n, args.storage, args.trials, args.data_dir, args.sweep_args)
        figures.append(_sweep_row(f"N={n}", sweep["dir"], n, sweep))
    for sweep_dir in args.evaluate:
        figures.append(_sweep_row(str(sweep_dir), sweep_dir))
    source = args.driver_from or (args.storage / f"scale-{args.n[-1]}"
                                  if figures and not args.evaluate else
                                  (args.evaluate[-1] if args.evaluate else None))
    if source is not None:
        _driver(source, args.storage, args.results_at)
    top = args.searcher_n or max(args.n)
    marks = [m for m in (100, 500, 1000, 2000, 5000) if m <= top] or [top]
    for search in args.searchers:
        for where in ("memory", "journal"):
            with tempfile.TemporaryDirectory() as folder:
                journal = Path(folder) / "optuna.journal" if where == "journal" else None
                per = searcher_seconds(search, marks, journal=journal)
                size = f"; the journal {disk_bytes(journal) / max(marks):,.0f} bytes a trial" \
                    if journal else ""
            print(f"searcher {search} ({where}): CPU seconds per suggestion " +
                  ", ".join(f"{s * 1000:.1f} ms at n={n}" for n, s in per.items()) + size,
                  flush=True)
    for row in figures:
        print(f"RESULT n={row['n']} setup_growth={row['setup_growth']:.3f} "
              f"trial_rate_growth={row['trial_rate_growth']:.3f}")
    if figures:
        print(json.dumps(figures, default=float))
        last = figures[-1]
        print(f"RESULT setup_growth={last['setup_growth']:.3f}")
        print(f"RESULT trial_rate_growth={last['trial_rate_growth']:.3f}")


if __name__ == "__main__":
    main()
