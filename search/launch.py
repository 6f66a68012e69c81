"""A sweep from the command line: connect to Ray, load the data once, run, export the best."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from search.data import DataOptions, load_task
from search.single import guard_limits, guard_shape
from spaces import constants as C
from spaces.config import ModelConfig


def connect(address: str | None) -> str:
    """Attach to the Ray cluster the flags ask for and say which one it is.

    A bare `ray.init()` would silently join any cluster running on this machine; the choice is
    made explicit here: --address, else RAY_ADDRESS, else the cluster this machine belongs to
    (`ray start` / `ray submit` record it), else a new local Ray.
    """
    import ray
    from ray._private.utils import read_ray_address

    if address is None:
        if os.environ.get("RAY_ADDRESS"):
            address, how = os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
        elif read_ray_address():
            address, how = "auto", "the cluster this machine belongs to"
        else:
            address, how = "local", "no cluster found"
    else:
        how = "--address"
    if address == "local":
        ray.init(address="local", include_dashboard=False, log_to_driver=True)
        print(f"Ray: started a local instance ({how}); resources {ray.cluster_resources()}")
    else:
        ray.init(address=address, log_to_driver=True)
        print(f"Ray: joined the cluster at {address} ({how}); resources {ray.cluster_resources()}")
    return address


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
    )


def launch_sweep(args: argparse.Namespace) -> int:
    import dataclasses

    import ray

    from search.sweep import SweepError, prepare, run_sweep, with_data

    settings = prepare(settings_from(args), resume=args.resume)  # before Ray and the data
    if args.refit and args.task != "text":
        raise SweepError("--refit retrains on the validation pages too; it is for --task text "
                         "(MNIST validates on the official test split, which must stay unseen)")
    data = load_task(settings.task, settings.data)
    settings = with_data(settings, data)
    connect(args.address)
    try:
        if args.gpus_per_trial is None:
            if ray.cluster_resources().get("GPU", 0) > 0:
                settings = dataclasses.replace(settings, gpus_per_trial=1.0)
            else:
                print("no GPUs in the cluster now: trials run on CPUs (on an autoscaling GPU "
                      "cluster, pass --gpus-per-trial so that GPU workers are started)")
        print(f"sweep {settings.name}: task {settings.task}, space {settings.space}, "
              f"search {settings.search}, scheduler {settings.scheduler}, "
              f"{settings.cpus_per_trial:g} CPU + {settings.gpus_per_trial:g} GPU per trial; "
              f"outputs in {settings.experiment_dir}")
        print(f"a report every {settings.report_images:,} training examples "
              f"({settings.reports_per_epoch} per epoch of {settings.epoch_size:,}): ASHA's "
              f"unit; --report-images changes it")
        results, finished = run_sweep(settings, data, resume=args.resume)
        if not finished:
            print(f"the sweep was interrupted before every trial ended; continue it with the "
                  f"same command and --resume (storage {settings.storage}, name {settings.name})")
        export_best(results, data, settings.experiment_dir, refit=args.refit and finished,
                    seed=args.seed)
    finally:
        ray.shutdown()
    return 0


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
        config = ModelConfig.from_dict(best.config[C.MODEL_KEY]).replace(epochs=m[C.EPOCH])
        print(f"refitting {m.get(C.NOTATION)} on all {data.n_train + data.n_val} pages "
              f"for {config.epochs} epochs")
        target = refit_best(config, data, m, experiment_dir / C.BEST_DIR, seed=seed)
    else:
        with best.checkpoint.as_directory() as checkpoint:
            try:
                # Trials save reconstructions with each checkpoint: then no TensorFlow here.
                model = None
                if not (Path(checkpoint) / C.RECONSTRUCTIONS_FILE).is_file():
                    from search.models import load_model

                    model = load_model(Path(checkpoint) / C.MODEL_FILE)
                target = write_best(Path(checkpoint), model, data, m,
                                    experiment_dir / C.BEST_DIR, trial_id=m.get(C.TRIAL_ID))
            except Exception as exc:  # noqa: BLE001 - the sweep is done; say where its best is
                raise ExportError(
                    f"could not write {experiment_dir / C.BEST_DIR} ({type(exc).__name__}: "
                    f"{exc}); the leaderboard and checkpoints are intact, and the best trial's "
                    f"checkpoint is {best.checkpoint.path}"
                ) from exc
    print(f"best: {m.get(C.NOTATION)}  val_mse {m[C.VAL_MSE]:.5f}  val_rmse {m[C.VAL_RMSE]:.5f}  "
          f"params {m.get(C.PARAMS, 0):,}  ({len(results)} trials, {errors} failed)")
    print(f"leaderboard: {experiment_dir / C.LEADERBOARD_FILE}")
    print(f"best model: {target / C.MODEL_FILE}")
