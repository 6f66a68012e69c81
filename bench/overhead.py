"""The framework's overhead: study rows as plain Keras `fit` calls against a sweep of them.

    python bench/overhead.py [--rows ID,ID,...] [--subset 4000] [--val-subset 2000]
                             [--epochs 2] [--rounds 3] [--data-dir DIR]

Each round runs, as subprocesses, one after the other (the order alternates between rounds):
  (a) plain: one Python process that imports Keras, loads the data and trains the rows one
      after the other with `model.fit(..., validation_data=...)`, TensorFlow's default threads;
  (b) sweep: `search/run.py --space report --rows ... --address local`, a grid sweep of the
      same rows on a new embedded Ray (one CPU per trial, as many trials at once as cores),
      with `--precision float32` as (a) trains, so that the ratio is the framework's own cost
      (`bench/throughput.py` measures what `--precision auto` gains on CPUs with AMX).
Both count everything from the process start to its exit. Prints each round, the median wall
time of each arm, and where the sweep's time went, from timestamps the trials record
(`started_at`, `import_seconds`, `setup_seconds`, `epoch_seconds`, `val_seconds`,
`checkpoint_seconds`), Ray's `time_total_s`, and the wall clock:
  driver      process start to Ray up (imports, data load, ray.init), read from the time the
              driver printed its Ray line
  to trials   Ray up to the first trial's start (Tune's setup, worker start)
  per trial   core-seconds summed over trials: TensorFlow import, setup, training, validation,
              checkpoint writes, and Ray's share (time_total_s minus all of ours: data
              transfer, result and checkpoint handling)
  idle slots  trial slots left idle between the first trial's start and the last one's end
              (a core waiting on the last trial)
  finish      the last trial's end to the process exit (export best/, leaderboard, shutdown)
Last line: RESULT overhead_ratio=<median sweep / median plain> (target <= 1.15).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "search" / "run.py"
ROWS = "mnist/1.1/1,mnist/1.2/2,mnist/1.2/3,mnist/1.3/6,mnist/1.3/7"


def plain(spec: dict[str, Any]) -> None:
    """Arm (a), run in its own process: the rows as plain Keras, sequentially; prints JSON."""
    began = time.perf_counter()
    import keras

    from search.data import DataOptions, load_task
    from search.models import build_model
    from spaces import study

    imported = time.perf_counter()
    datasets: dict[str, Any] = {}
    timings = []
    for row_id in spec["rows"]:
        config = study.row(row_id).config.replace(epochs=spec["epochs"])
        if config.task not in datasets:
            datasets[config.task] = load_task(config.task, DataOptions(
                data_dir=spec["data_dir"], subset=spec["subset"], val_subset=spec["val_subset"]))
        data = datasets[config.task]
        start = time.perf_counter()
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = build_model(config, data.input_shape)
        (x, y), (vx, vy) = data.train[0], data.val[0]
        model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs, shuffle=True,
                  validation_data=(vx, vy), verbose=0)
        timings.append(time.perf_counter() - start)
    print(json.dumps({"import": imported - began, "trials": timings}))


def run_plain(args: argparse.Namespace, rows: list[str]) -> dict[str, Any]:
    spec = {"rows": rows, "epochs": args.epochs, "subset": args.subset,
            "val_subset": args.val_subset, "data_dir": args.data_dir}
    start = time.time()
    proc = subprocess.run([sys.executable, __file__, "--plain", json.dumps(spec)],
                          capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode:
        raise SystemExit(f"plain arm failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall": wall, "tf_import": out["import"], "trials": sum(out["trials"])}


def _results(trial_dir: Path) -> list[dict[str, Any]]:
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_sweep(args: argparse.Namespace, rows: list[str], storage: str, name: str,
              task: str) -> dict[str, Any]:
    command = [sys.executable, str(RUN), "--task", task, "--space", "report",
               "--rows", ",".join(rows), "--max-epochs", str(args.epochs),
               "--subset", str(args.subset), "--val-subset", str(args.val_subset),
               "--address", "local", "--storage", storage, "--name", name,
               "--precision", "float32"]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.time()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    ray_up = None
    assert proc.stdout is not None
    for line in proc.stdout:  # stamped as they come: the driver prints once Ray is up
        if ray_up is None and line.startswith("Ray"):
            ray_up = time.time()
    _, err = proc.communicate()
    end = time.time()
    if proc.returncode:
        raise SystemExit(f"sweep arm failed:\n{err[-3000:]}")
    trials = [r for d in sorted((Path(storage) / name).glob("trial_*"))
              if (r := _results(d))]
    spans, parts = [], dict.fromkeys(("tf_import", "setup", "train", "validation",
                                      "checkpoint", "ray"), 0.0)
    for results in trials:
        first, last = results[0], results[-1]
        ours = {"tf_import": first["import_seconds"], "setup": first["setup_seconds"],
                "train": sum(r["epoch_seconds"] for r in results),
                "validation": sum(r["val_seconds"] for r in results),
                "checkpoint": sum(r["checkpoint_seconds"] for r in results)}
        for key, value in ours.items():
            parts[key] += value
        parts["ray"] += last["time_total_s"] - sum(ours.values())
        spans.append((first["started_at"], first["started_at"] + last["time_total_s"]))
    first_start = min(s for s, _ in spans)
    last_end = max(e for _, e in spans)
    slots = len(os.sched_getaffinity(0))
    busy = sum(e - s for s, e in spans)
    return {"wall": end - start, "driver": (ray_up or first_start) - start,
            "to_trials": first_start - (ray_up or first_start), **parts,
            "idle_slots": slots * (last_end - first_start) - busy,
            "finish": end - last_end, "n_trials": len(trials)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=ROWS)
    parser.add_argument("--subset", type=int, default=4000)
    parser.add_argument("--val-subset", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    parser.add_argument("--plain", help=argparse.SUPPRESS)  # arm (a)'s own process
    args = parser.parse_args()
    if args.plain:
        plain(json.loads(args.plain))
        return
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    tasks = sorted({r.split("/")[0] for r in rows})
    if len(tasks) != 1:  # one sweep is one task
        raise SystemExit(f"--rows must all be of one task, got {', '.join(tasks)}")
    print(f"{len(rows)} study rows of {tasks[0]}, {args.epochs} epochs on {args.subset} images "
          f"(validation {args.val_subset}), {len(os.sched_getaffinity(0))} cores; "
          f"{args.rounds} rounds, alternating", flush=True)
    plains: list[dict[str, Any]] = []
    sweeps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as storage:
        for i in range(args.rounds):
            for arm in (("plain", "sweep") if i % 2 == 0 else ("sweep", "plain")):
                if arm == "plain":
                    plains.append(run_plain(args, rows))
                    print(f"round {i + 1} plain: {plains[-1]['wall']:.1f} s", flush=True)
                else:
                    sweeps.append(run_sweep(args, rows, storage, f"r{i}", tasks[0]))
                    print(f"round {i + 1} sweep: {sweeps[-1]['wall']:.1f} s", flush=True)

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    a, b = med(plains, "wall"), med(sweeps, "wall")
    print(f"\nplain, median of {len(plains)}: {a:.1f} s (TensorFlow import "
          f"{med(plains, 'tf_import'):.1f} s; data, training, validation "
          f"{med(plains, 'trials'):.1f} s)")
    print(f"sweep, median of {len(sweeps)}: {b:.1f} s; its breakdown (medians, seconds):")
    for key, what in (("driver", "driver start to Ray up (imports, data, ray.init)"),
                      ("to_trials", "Ray up to the first trial (Tune setup, worker start)"),
                      ("tf_import", "TensorFlow import in workers (core-s, all trials)"),
                      ("setup", "trial setup: session, guard, build (core-s)"),
                      ("train", "training (core-s)"),
                      ("validation", "validation (core-s)"),
                      ("checkpoint", "checkpoint writes (core-s)"),
                      ("ray", "Ray's share: data transfer, results, checkpoint persist (core-s)"),
                      ("idle_slots", "trial slots idle while trials ran (core-s)"),
                      ("finish", "last trial's end to exit (export, leaderboard, shutdown)")):
        print(f"  {what:<68} {med(sweeps, key):7.1f}")
    print(f"RESULT overhead_ratio={b / a:.3f}")


if __name__ == "__main__":
    main()
