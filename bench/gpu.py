"""The framework's GPU path, timed: trials (`search.trial.Trial`, what every Ray trial runs) on
the study's best models, on one GPU, against a plain Keras `fit` loop in the same process.

    python bench/gpu.py [--data-dir DIR] [--epochs 3]

Cases, each a fresh model of the study's row, seeded, trained `--epochs` epochs; the first
epoch includes compiling, so figures are the median of the later epochs:
  mnist: `mnist-denoise/2.2/3` (4L 32,32,64,128F 3x3, 103,073 parameters, batch 128) with
      binary cross-entropy (under MSE it collapses) on every training image of the data dir:
      images/s inside a trial and with `model.fit`.
  text: `text/3.3/5` (the same layers, batch 16) on whole native-size pages (420x540 and
      258x540, no patches): seconds per epoch inside a trial.
  shared: two trial processes at once on the same GPU, as Ray runs two trials given
      `--gpus-per-trial 0.5` (each sets memory growth through `configure_backend`), against one
      alone: their summed images/s over one process's.
  ray: the framework's own placement, end to end: the same sweep (`--ray-trials` repeats of
      `mnist/1.2/2`, 2 epochs, precision auto) on the embedded Ray, its trials given the whole
      GPU, then a quarter of it (`--gpus-per-trial 0.25`): trials/hour, how many trials ran at
      once, and their training images/s. Ray is told of one GPU (so on a CPU machine this
      case checks the plumbing only, its trials training on the CPU).
Prints the figures, then
  RESULT gpu_mnist_images_per_s=<trial images/s>
Runs on TensorFlow or on Keras' JAX backend (`KERAS_BACKEND=jax`), whichever is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MNIST_ROW, TEXT_ROW = "mnist-denoise/2.2/3", "text/3.3/5"
# The MNIST row collapses under MSE (its sigmoid output sticks at 0, and the trial stops at its
# first report), so it trains with binary cross-entropy here, as the default space does.
LOSS = {MNIST_ROW: "bce", TEXT_ROW: "mse"}


def options(task: str, args: argparse.Namespace) -> Any:
    """The data options of `task` for `--subset` (text pages: 1/64th of it)."""
    from search.data import DataOptions

    subset = args.subset and (args.subset if task != "text" else max(2, args.subset // 64))
    return DataOptions(data_dir=args.data_dir, subset=subset,
                       val_subset=subset and max(1, subset // 4))


def load(task: str, args: argparse.Namespace) -> Any:
    from search.data import load_task

    return load_task(task, options(task, args))


def trial_epochs(row_id: str, data: Any, epochs: int,
                 policy: str = "float32") -> list[dict[str, Any]]:
    """One report per epoch of a fresh trial of the row."""
    import keras

    from search.trial import Trial
    from spaces import study

    keras.backend.clear_session()
    config = study.row(row_id).config.replace(epochs=epochs, loss=LOSS[row_id])
    return list(Trial(config, data, seed=0, precision=policy).reports())


def plain_epochs(row_id: str, data: Any, epochs: int, policy: str = "float32") -> list[float]:
    """Seconds of each epoch of `model.fit` on a fresh model (training only)."""
    import keras

    from search.models import build_model
    from spaces import study

    config = study.row(row_id).config.replace(loss=LOSS[row_id])
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model(config, data.input_shape, precision=policy)
    x, y = data.training_groups(0)[0]
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=config.batch_size, epochs=1, shuffle=True, verbose=0)
        seconds.append(time.perf_counter() - start)
    return seconds


def later(values: list[float]) -> float:
    return statistics.median(values[1:] if len(values) > 1 else values)


def worker(args: argparse.Namespace) -> None:
    """One process of the `shared` case: configure as a Ray trial with a GPU share would."""
    from search.trial import configure_backend
    from spaces import constants as C

    configure_backend(1.0, args.gpus)
    data = load("mnist-denoise", args)
    reports = trial_epochs(MNIST_ROW, data, args.epochs)
    seconds = [r[C.EPOCH_SECONDS] for r in reports]
    print(json.dumps({"images_per_s": data.epoch_size / later(seconds)}))


def shared(args: argparse.Namespace, processes: int, gpus: float) -> list[float]:
    """Images/s of each of `processes` concurrent worker processes."""
    command = [sys.executable, __file__, "--worker", "--gpus", str(gpus),
               "--epochs", str(args.epochs)] + (["--data-dir", args.data_dir]
                                                if args.data_dir else []) \
        + (["--subset", str(args.subset)] if args.subset else [])
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
               for _ in range(processes)]
    out = []
    for process in running:
        stdout, _ = process.communicate()
        if process.returncode:
            raise SystemExit(f"worker failed ({process.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1])["images_per_s"])
    return out


RAY_ROW = "mnist/1.2/2"  # 6L,16F 3x3, BCE: the mnist task's rows replay healthy


def peak_overlap(spans: list[tuple[float, float]]) -> int:
    """The most intervals (start, end) open at one time."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def ray_sweeps(args: argparse.Namespace, shares: tuple[float, ...] = (1.0, 0.25)) -> None:
    """One sweep per GPU share on one embedded Ray: trials/hour, trials at once, images/s."""
    import tempfile

    import ray

    from search.data import load_task
    from search.sweep import SweepSettings, run_sweep
    from spaces import constants as C

    data_options = options("mnist", args)
    data = load_task("mnist", data_options)
    ray.init(num_gpus=1, include_dashboard=False, log_to_driver=False)
    rates = {}
    try:
        with tempfile.TemporaryDirectory() as storage:
            for share in shares:
                settings = SweepSettings(
                    task="mnist", space="report", search="grid", scheduler="fifo",
                    rows=(RAY_ROW,), num_samples=args.ray_trials, max_epochs=2,
                    cpus_per_trial=1.0, gpus_per_trial=share, storage=storage,
                    name=f"gpu-{share:g}", data=data_options)
                start = time.perf_counter()
                grid, _ = run_sweep(settings, data)
                results = [grid[i] for i in range(len(grid))]  # indexed, not iterable
                wall = time.perf_counter() - start
                metrics = [r.metrics for r in results if r.error is None and r.metrics]
                if len(metrics) < args.ray_trials:
                    raise SystemExit(f"{args.ray_trials - len(metrics)} trial(s) failed at "
                                     f"--gpus-per-trial {share:g}")
                spans = [(m[C.STARTED_AT], m[C.STARTED_AT] + m["time_total_s"])
                         for m in metrics]
                speed = statistics.median(m[C.IMAGES] / m[C.SECONDS] for m in metrics)
                rates[share] = len(metrics) / wall * 3600
                print(f"ray sweep, {len(metrics)} trials of {RAY_ROW} ({metrics[0][C.PRECISION]}"
                      f"), {share:g} GPU each: {wall:.1f} s, {rates[share]:.0f} trials/hour; "
                      f"at most {peak_overlap(spans)} trials at once; a trial's training "
                      f"{speed:,.0f} images/s", flush=True)
    finally:
        ray.shutdown()
    gain = rates[shares[-1]] / rates[shares[0]]
    print(f"ray sweep: {shares[-1]:g} GPU a trial gives {gain:.2f}x the trials/hour of "
          f"{shares[0]:g}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, help="MNIST images (text pages: 1/64th), for a "
                                                   "quick check on a CPU")
    parser.add_argument("--cases", nargs="+", choices=("mnist", "text", "shared", "ray"),
                        default=["mnist", "text", "shared"])
    parser.add_argument("--ray-trials", type=int, default=8, help="trials per sweep (`ray`)")
    parser.add_argument("--dtype-policy", default="float32",
                        help="Keras dtype policy, e.g. mixed_bfloat16 (not for `shared`)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gpus", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import keras

    from search.trial import configure_backend
    from spaces import constants as C

    configure_backend(1.0, 1.0)
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, dtype policy "
          f"{args.dtype_policy}", flush=True)
    if keras.backend.backend() == "jax":
        import jax

        print(f"devices: {jax.devices()}", flush=True)
    rate = None
    if "mnist" in args.cases:
        data = load("mnist-denoise", args)
        reports = trial_epochs(MNIST_ROW, data, args.epochs, args.dtype_policy)
        seconds = [r[C.EPOCH_SECONDS] for r in reports]
        plain = plain_epochs(MNIST_ROW, data, args.epochs, args.dtype_policy)
        rate, base = data.epoch_size / later(seconds), data.epoch_size / later(plain)
        print(f"mnist {MNIST_ROW} ({reports[0][C.PARAMS]:,} parameters), {data.epoch_size:,} "
              f"images an epoch, batch 128, bce:\n"
              f"  trial epochs {', '.join(f'{s:.2f}' for s in seconds)} s; plain fit "
              f"{', '.join(f'{s:.2f}' for s in plain)} s\n"
              f"  images/s after the first epoch: trial {rate:,.0f}, plain {base:,.0f} "
              f"(trial/plain {rate / base:.3f}); validation of {data.n_val:,} images "
              f"{later([r[C.VAL_SECONDS] for r in reports]):.2f} s", flush=True)
    if "text" in args.cases:
        data = load("text", args)
        reports = trial_epochs(TEXT_ROW, data, args.epochs, args.dtype_policy)
        seconds = [r[C.EPOCH_SECONDS] for r in reports]
        print(f"text {TEXT_ROW} on {data.epoch_size} whole pages (native sizes), batch 16:\n"
              f"  epochs {', '.join(f'{s:.2f}' for s in seconds)} s: {later(seconds):.2f} s an "
              f"epoch after compiling; validation of {data.n_val} pages "
              f"{later([r[C.VAL_SECONDS] for r in reports]):.2f} s; val_mse after "
              f"{args.epochs} epochs {reports[-1][C.VAL_MSE]:.5f}", flush=True)
    if "shared" in args.cases:
        alone = shared(args, 1, 1.0)
        pair = shared(args, 2, 0.5)
        print(f"shared GPU: one trial process {alone[0]:,.0f} images/s; two at once (0.5 GPU "
              f"each) {' + '.join(f'{r:,.0f}' for r in pair)} = {sum(pair):,.0f} images/s: "
              f"{sum(pair) / alone[0]:.2f}x", flush=True)
    if "ray" in args.cases:
        ray_sweeps(args)
    if rate is not None:
        print(f"RESULT gpu_mnist_images_per_s={rate:.0f}")


if __name__ == "__main__":
    main()
