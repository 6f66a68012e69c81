"""A sweep from the command line: connect to Ray, load the data once, run, export the best."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from search import internals
from search.checks import InputError, NameLock, check_address, check_output, unplaceable
from search.data import DataOptions, load_task
from search.precision import FLOAT32
from search.precision import describe as describe_precision
from search.single import default_patches, guard_limits, guard_shape
from spaces import constants as C
from spaces.config import ModelConfig

if TYPE_CHECKING:
    from search.sweep import SweepSettings

DRIVER_LOG = "driver-stderr.log"  # TensorFlow's native start-up lines from the driver


def connect(address: str | None, verbose: bool = True) -> str:
    """Attach to the Ray cluster the flags ask for and say which one it is.

    A bare `ray.init()` would silently join any cluster running on this machine; the choice is
    made explicit here: --address, else RAY_ADDRESS, else the cluster this machine belongs to
    (`ray start` / `ray submit` record it), else a new local Ray.

    Unless `verbose`, the workers' output (TensorFlow's start-up lines, Ray's checkpoint
    messages) stays in Ray's session log files and Ray's driver logs only warnings.
    """
    import logging

    import ray

    if address is None:
        if os.environ.get("RAY_ADDRESS"):
            address, how = os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
        elif internals.recorded_ray_address():
            address, how = "auto", "the cluster this machine belongs to"
        else:
            address, how = "local", "no cluster found"
    else:
        how = "--address"
    level = logging.INFO if verbose else logging.WARNING
    if address == "local":
        ray.init(address="local", include_dashboard=False, log_to_driver=verbose,
                 logging_level=level)
        print(f"Ray: started a local instance ({how}); {_resources()}")
    else:
        try:
            ray.init(address=address, log_to_driver=verbose, logging_level=level)
        except ConnectionError as exc:  # `auto` with no cluster running, a cluster gone since
            raise InputError(f"{how} {address}: {str(exc).splitlines()[0]}") from None
        print(f"Ray: joined the cluster at {address} ({how}); {_resources()}")
    if not verbose:
        print(f"worker output (TensorFlow, Ray): {internals.worker_logs_dir()}/worker-*.err and "
              f".out on each node; --verbose shows it here")
    return address


def _resources() -> str:
    import ray

    have = ray.cluster_resources()
    return (f"{have.get('CPU', 0):g} CPUs, {have.get('GPU', 0):g} GPUs, "
            f"{len(ray.nodes())} node(s)")


def settings_from(args: argparse.Namespace):
    from search.sweep import SweepSettings

    report = args.space == "report"

    def given(value, default):
        return default if value is None else value

    return SweepSettings(
        task=args.task,
        space=args.space,
        search=args.search or ("grid" if report else "optuna"),
        scheduler=args.scheduler or ("fifo" if report else "asha"),
        # With a time or trial budget and no --num-samples, trials go on until it is spent.
        num_samples=given(args.num_samples, 1 if report else
                          -1 if args.time_budget or args.budget_epochs else 20),
        max_epochs=args.max_epochs,
        grace_period=args.grace_period,
        checkpoint_every=args.checkpoint_every,
        cpus_per_trial=given(args.cpus_per_trial, 1.0),
        gpus_per_trial=given(args.gpus_per_trial, 0.0),
        max_concurrent=args.max_concurrent,
        seed=args.seed,
        storage=args.storage,
        name=args.name or f"{args.task}-{args.space}",
        warm_start=args.warm_start,
        rows=args.rows,
        guard_shape=guard_shape(args),
        **guard_limits(args),
        data=DataOptions.from_args(args),
        report_images=args.report_images,
        budget_epochs=args.budget_epochs,
        time_budget_s=args.time_budget,
        precision=args.precision,
    )


def launch_sweep(args: argparse.Namespace) -> int:
    """Check the flags, the resume request, the output folder and the address, then run."""
    from search.console import quiet_libraries
    from search.sweep import prepare

    quiet_libraries(bool(getattr(args, "verbose", False)))
    # Text on CPUs trains on patches unless told otherwise; said once Ray is up.
    args.patches_note = default_patches(args, gpu=bool(args.gpus_per_trial))
    settings = prepare(settings_from(args), resume=args.resume)  # before Ray and the data
    check_output(settings.storage, settings.name)
    check_address(args.address)
    return run_prepared(args, settings)


def _can_grow(address: str) -> bool:
    """Whether the cluster may add nodes: never a local Ray this driver started."""
    return address != "local" and internals.cluster_can_grow()


def run_prepared(args: argparse.Namespace, settings: SweepSettings) -> int:
    """Hold the name, load the data, join Ray and run the sweep; export its best."""
    import dataclasses

    import ray

    from search.console import quiet_native_stderr
    from search.sweep import SweepError, run_sweep, was_interrupted, with_data

    verbose = bool(getattr(args, "verbose", False))
    with NameLock(settings.experiment_dir, settings.name):
        data = load_task(settings.task, settings.data)
        settings = with_data(settings, data)
        address = connect(args.address, verbose=verbose)
        patches = getattr(args, "patches_note", None)
        if patches:
            print(patches)
        try:
            can_grow = _can_grow(address)
            if args.gpus_per_trial is None:
                if ray.cluster_resources().get("GPU", 0) > 0:
                    settings = dataclasses.replace(settings, gpus_per_trial=1.0)
                elif can_grow:
                    print("no GPUs in the cluster now: trials run on CPUs (on an autoscaling "
                          "GPU cluster, pass --gpus-per-trial so that GPU workers are started)")
                else:
                    print("no GPUs: trials run on CPUs")
            why = unplaceable(ray.nodes(), settings.cpus_per_trial, settings.gpus_per_trial)
            if why and not can_grow:
                raise SweepError(f"{why}, and this cluster cannot add nodes: its trials would "
                                 f"wait forever")
            if why:
                print(f"{why} yet: trials wait until the autoscaler adds one", flush=True)
            precision = describe_precision(settings.precision, settings.gpus_per_trial)
            print(f"sweep {settings.name}: task {settings.task}, space {settings.space}, "
                  f"search {settings.search}, scheduler {settings.scheduler}, "
                  f"{settings.cpus_per_trial:g} CPU + {settings.gpus_per_trial:g} GPU per "
                  f"trial, precision {precision}; outputs in {settings.experiment_dir}")
            print(f"a report every {settings.report_images:,} training examples "
                  f"({settings.reports_per_epoch} per epoch of {settings.epoch_size:,}): ASHA's "
                  f"unit; --report-images changes it")
            results, finished = run_sweep(settings, data, resume=args.resume, verbose=verbose)
            if not finished:
                # The one way to continue (Ray's own `Tuner.restore(...)` hint is filtered
                # out). best/ is left alone: an interrupted trial's checkpoint is not a
                # finished model.
                how = "was interrupted" if was_interrupted() else "ended before every trial did"
                print(f"the sweep {how}; its finished trials are kept. Continue it with the "
                      f"same command and --resume (storage {settings.storage}, name "
                      f"{settings.name})", flush=True)
                return INTERRUPTED_EXIT if was_interrupted() else 1
            # TensorFlow's start-up lines in this process go to a log file, not the terminal.
            with quiet_native_stderr(settings.experiment_dir / DRIVER_LOG, verbose):
                export_best(results, data, settings.experiment_dir, refit=args.refit,
                            seed=args.seed)
        finally:
            ray.shutdown()
    return 0


INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for a program Ctrl-C ended


def export_best(results, data, experiment_dir: Path, *, refit: bool = False,
                seed: int = 0) -> None:
    """Write best/ from the best trial's last checkpoint, or retrain its config on all pages."""
    from search.export import ExportError, refit_best, write_best

    errors = sum(r.error is not None for r in results)
    # Ray's get_best_result does not skip failed trials; the leaderboard ranks them last.
    # Nor do they skip trials that stopped themselves (collapsed, diverged): never exported.
    candidates = [r for r in results if r.error is None and r.checkpoint is not None
                  and not r.metrics.get(C.VERDICT)
                  and math.isfinite(r.metrics.get(C.OBJECTIVE, math.nan))]
    if not candidates:
        print(f"no trial finished with a checkpoint ({errors} failed); nothing exported")
        return
    best = min(candidates, key=lambda r: r.metrics[C.OBJECTIVE])
    m = best.metrics
    if refit:
        epochs = max(1, math.ceil(m[C.EPOCH] - 1e-9))  # whole epochs: a refit trains no halves
        config = ModelConfig.from_dict(best.config[C.MODEL_KEY]).replace(epochs=epochs)
        print(f"refitting {m.get(C.NOTATION)} on all {data.n_train + data.n_val} pages "
              f"for {config.epochs} epochs in {m.get(C.PRECISION) or FLOAT32}")
        target = refit_best(config, data, m, experiment_dir / C.BEST_DIR, seed=seed)
    else:
        with best.checkpoint.as_directory() as checkpoint:
            try:
                # Trials save reconstructions with each checkpoint: then no TensorFlow here.
                target = write_best(Path(checkpoint), None, data, m,
                                    experiment_dir / C.BEST_DIR, trial_id=m.get(C.TRIAL_ID))
            except Exception as exc:  # the sweep is done: say where its best is
                raise ExportError(
                    f"could not write {experiment_dir / C.BEST_DIR} ({type(exc).__name__}: "
                    f"{exc}); the leaderboard and checkpoints are intact, and the best trial's "
                    f"checkpoint is {best.checkpoint.path}"
                ) from exc
    print(f"best: {m.get(C.NOTATION)}  val_mse {m[C.VAL_MSE]:.5f}  val_rmse {m[C.VAL_RMSE]:.5f}  "
          f"params {m.get(C.PARAMS, 0):,}  ({len(results)} trials, {errors} failed)")
    print(f"leaderboard: {experiment_dir / C.LEADERBOARD_FILE}")
    print(f"best model: {target / C.MODEL_FILE}")
    print(f"tables and plots in the study's format: python -m results {experiment_dir}")
