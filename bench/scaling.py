"""Trials per hour on a 1-node against a 2-node local Ray cluster, the same CPUs per node.

    python bench/scaling.py [--cpus-per-node 1] [--trials 6] [--rounds 3] [--pin] [--data-dir DIR]

Each round starts a private cluster (`ray.cluster_utils.Cluster`: its own processes, ports
and temp dir, shut down by its handle; never `ray stop`) with one node, then one with two
nodes (the order alternates between rounds), and runs the same sweep in this process on each
(`search.sweep.run_sweep`): `--trials` repeats of one study row (`--space report`, FIFO,
`--epochs` epochs, one CPU per trial). Trials/hour is trials / the sweep's wall time, from
the Tuner's start to its end (the cluster's start is not counted). Each round also measures
the machine's own ceiling: the row trained by plain Keras in two 1-thread processes at once
against one alone (two local "nodes" share this machine's cores, caches and memory
bandwidth; real nodes do not). With `--pin` (Linux; for machines of many cores), each node's
processes, and each ceiling process, are pinned to cores of their own, as on separate machines:
this also bounds backends that size their thread pools to the cores they may run on (Keras'
JAX backend on CPUs) rather than to a trial's CPUs. Prints each round (with a trial's mean
time in Ray and in training, and how busy the trial slots were: time lost between trials
against time lost inside them), the medians, and last
  RESULT scaling_ratio=<median 2-node trials/hour / median 1-node>  (target >= 1.8)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from search.data import DataOptions, load_task
from search.sweep import SweepSettings, run_sweep
from spaces import constants as C


def cores_of(index: int, width: int, pin: bool) -> set[int] | None:
    """The cores that node (or ceiling process) `index` runs on with --pin; None: any."""
    if not pin:
        return None
    cores = sorted(os.sched_getaffinity(0))
    if (index + 1) * width > len(cores):
        raise SystemExit(f"--pin needs {(index + 1) * width} cores, this machine has {len(cores)}")
    return set(cores[index * width:(index + 1) * width])


@contextlib.contextmanager
def pinned(cores: set[int] | None):
    """Processes started inside (a node's raylet and the workers it forks later) inherit
    `cores` as their CPU affinity; this process gets its own back after."""
    if cores is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def one_cluster(nodes: int, args: argparse.Namespace, data, options: DataOptions,
                storage: str, name: str) -> tuple[float, set[str], dict[str, float]]:
    import ray
    from ray.cluster_utils import Cluster

    with pinned(cores_of(0, args.cpus_per_node, args.pin)):
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": args.cpus_per_node, "num_gpus": 0, "include_dashboard": False})
    try:
        for i in range(1, nodes):
            with pinned(cores_of(i, args.cpus_per_node, args.pin)):
                cluster.add_node(num_cpus=args.cpus_per_node, num_gpus=0)
        cluster.wait_for_nodes()
        if args.pin:  # what the nodes' raylets (and so their workers) may run on
            raylets = [n.all_processes["raylet"][0].process.pid
                       for n in (cluster.head_node, *cluster.worker_nodes)]
            print(f"{nodes} node(s) pinned: raylet cores "
                  f"{[sorted(os.sched_getaffinity(pid)) for pid in raylets]}", flush=True)
        ray.init(address=cluster.address, log_to_driver=False)
        settings = SweepSettings(task=args.task, space="report", search="grid",
                                 scheduler="fifo", rows=(args.row,), num_samples=args.trials,
                                 max_epochs=args.epochs, cpus_per_trial=1.0, storage=storage,
                                 name=name, data=options)
        start = time.perf_counter()
        grid, _ = run_sweep(settings, data)
        # A ResultGrid is indexed, not iterated; a trial that ran has metrics.
        results = [grid[i] for i in range(len(grid))]
        wall = time.perf_counter() - start
        failed = [r for r in results if r.error is not None]
        if failed:
            raise SystemExit(f"{len(failed)} trial(s) failed: {failed[0].error}")
        metrics = [r.metrics or {} for r in results]
        used = {m.get("node", "?") for m in metrics}
        trial_s = [m["time_total_s"] for m in metrics]
        train_s = [m[C.SECONDS] for m in metrics]
        return wall, used, {"trial": statistics.mean(trial_s), "train": statistics.mean(train_s),
                            "busy": sum(trial_s) / (nodes * args.cpus_per_node * wall)}
    finally:
        ray.shutdown()
        cluster.shutdown()


def plain_worker(spec: dict) -> None:
    """One process of the machine's ceiling: the row trained with plain Keras on one
    TensorFlow thread, as a 1-CPU trial is; prints its training seconds."""
    from search.models import build_model
    from search.trial import configure_backend
    from spaces import study

    configure_backend(1.0)
    import keras

    data = load_task(spec["task"], DataOptions(**spec["options"]))
    config = study.row(spec["row"]).config
    keras.utils.set_random_seed(0)
    model = build_model(config, data.input_shape)
    x, y = data.training_groups(0)[0]
    start = time.perf_counter()
    model.fit(x, y, batch_size=config.batch_size, epochs=spec["epochs"], verbose=0)
    print(time.perf_counter() - start)


def ceiling(args: argparse.Namespace, options: DataOptions) -> float:
    """What this machine itself allows: two plain 1-thread training processes at once against
    one alone, in images/s (2.0 where two cores are two independent cores)."""
    spec = json.dumps({"task": args.task, "row": args.row, "epochs": args.epochs,
                       "options": dataclasses.asdict(options)})

    def run(n: int) -> list[float]:
        procs = []
        for i in range(n):
            with pinned(cores_of(i, 1, args.pin)):
                procs.append(subprocess.Popen(
                    [sys.executable, __file__, "--plain-worker", spec],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]

    alone = run(1)[0]
    pair = run(2)
    return sum(alone / t for t in pair)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--row", default="mnist/1.2/2")
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--subset", type=int, default=1500)
    parser.add_argument("--val-subset", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pin", action="store_true",
                        help="pin each node to cores of its own (Linux)")
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    parser.add_argument("--plain-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_worker:
        plain_worker(json.loads(args.plain_worker))
        return
    options = DataOptions(data_dir=args.data_dir, subset=args.subset, val_subset=args.val_subset)
    data = load_task(args.task, options)
    print(f"{args.trials} trials of {args.row}, {args.epochs} epoch(s) on {args.subset} "
          f"images; {args.cpus_per_node} CPU(s) per node, 1 CPU per trial; "
          f"{len(os.sched_getaffinity(0))} cores here"
          f"{'; each node pinned to cores of its own' if args.pin else ''}", flush=True)
    rates: dict[int, list[float]] = {1: [], 2: []}
    ceilings = []
    with tempfile.TemporaryDirectory() as storage:
        for i in range(args.rounds):
            ceilings.append(ceiling(args, options))
            print(f"round {i + 1}, the machine's ceiling: two plain 1-thread trainings at once "
                  f"give {ceilings[-1]:.2f}x one alone", flush=True)
            for nodes in ((1, 2) if i % 2 == 0 else (2, 1)):
                wall, used, t = one_cluster(nodes, args, data, options, storage,
                                            f"r{i}-{nodes}")
                rates[nodes].append(args.trials / wall * 3600)
                print(f"round {i + 1}, {nodes} node(s): {wall:.1f} s, "
                      f"{rates[nodes][-1]:.0f} trials/hour, trials ran on {len(used)} node(s); "
                      f"a trial {t['trial']:.1f} s ({t['train']:.1f} s training); trial slots "
                      f"busy {t['busy']:.0%} of the sweep", flush=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"median trials/hour: 1 node {one:.0f}, 2 nodes {two:.0f}; the machine's ceiling "
          f"{statistics.median(ceilings):.2f}x (2 nodes' share of it: "
          f"{two / one / statistics.median(ceilings):.0%})")
    print(f"RESULT scaling_ratio={two / one:.3f}")


if __name__ == "__main__":
    main()
