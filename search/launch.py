"""A sweep: check what it asks, join Ray, load the data once, run, export the best.

`launch_sweep` is the command line's (an exit status); `start` is the Python API's (an
`Outcome`). Both take `search.options.Options`; neither sees argparse.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search import cluster, journal, splits
from search.data import DataOptions, load_task
from search.lock import NameLock
from search.options import InputError, Options
from search.outputs import check_output
from search.precision import describe as describe_precision
from search.searchers import SEARCHERS
from search.single import default_patches, guard_limits, guard_shape
from spaces import constants as C

if TYPE_CHECKING:
    from search.sweep import SweepSettings

DRIVER_LOG = "driver-stderr.log"  # TensorFlow's native start-up lines from the driver


@dataclass(frozen=True)
class Outcome:
    """How a sweep run ended: where its files are, and whether every trial ended."""

    experiment_dir: Path
    finished: bool
    interrupted: bool = False

    @property
    def exit_status(self) -> int:
        if self.finished:
            return 0
        return INTERRUPTED_EXIT if self.interrupted else 1


def settings_from(options: Options) -> SweepSettings:
    """The sweep's settings, complete but for what only the data and Ray tell."""
    from search.options import SWEEP_CPUS_PER_TRIAL
    from search.sweep import SweepSettings

    return SweepSettings(
        task=options.task,
        space=options.space,
        search=options.resolved_search,
        scheduler=options.resolved_scheduler,
        num_samples=options.resolved_num_samples,
        max_epochs=options.max_epochs,
        grace_period=options.grace_period,
        checkpoint_every=options.checkpoint_every,
        keep_checkpoints=options.keep_checkpoints,
        cpus_per_trial=(SWEEP_CPUS_PER_TRIAL if options.cpus_per_trial is None
                        else options.cpus_per_trial),
        gpus_per_trial=options.gpus_per_trial or 0.0,
        max_concurrent=options.max_concurrent,
        seed=options.seed,
        storage=options.storage,
        name=options.resolved_name,
        warm_start=options.warm_start,
        objectives=options.objectives or (C.OBJECTIVE,),
        rows=options.rows,
        guard_shape=guard_shape(options),
        **guard_limits(options),
        data=DataOptions.from_options(options),
        report_images=options.report_images,
        budget_epochs=options.budget_epochs,
        time_budget_s=options.time_budget,
        precision=options.precision,
    )


def prepared(options: Options) -> tuple[Options, SweepSettings, str | None]:
    """Check the resume request, the output folder and the address, before Ray and the data.
    Returns the options (text on CPUs trains on patches unless told otherwise), the settings
    and the sentence that says so."""
    import ray

    from search.sweep import prepare

    options, patches = default_patches(options, gpu=bool(options.gpus_per_trial))
    settings = prepare(settings_from(options), resume=options.resume)
    check_output(settings.storage, settings.name)
    if ray.is_initialized():
        if options.address is not None:
            raise InputError(f"--address {options.address}: this process has joined a Ray "
                             f"cluster already (ray.init), and the sweep runs on it")
    else:
        cluster.check_address(options.address)
    return options, settings, patches


def launch_sweep(options: Options) -> int:
    """The command line's sweep: an exit status (0, 1 when trials ended early, 130 on Ctrl-C)."""
    return start(options).exit_status


def start(options: Options) -> Outcome:
    """Run (or resume) the sweep `options` ask for, on the Ray this process joined, else on
    the cluster `--address` names (or a new local Ray, stopped again at the end)."""
    from search.console import quiet_libraries

    quiet_libraries(options.verbose)
    options, settings, patches = prepared(options)
    return run_prepared(options, settings, patches)


def _place(options: Options, settings: SweepSettings, address: str) -> SweepSettings:
    """GPUs per trial where the user left it to the cluster; refuse trials no node can run."""
    import ray

    from search.sweep import SweepError

    can_grow = cluster.can_grow(address)
    if options.gpus_per_trial is None:
        if ray.cluster_resources().get("GPU", 0) > 0:
            settings = dataclasses.replace(settings, gpus_per_trial=1.0)
        elif can_grow:
            print("no GPUs in the cluster now: trials run on CPUs (on an autoscaling "
                  "GPU cluster, pass --gpus-per-trial so that GPU workers are started)")
        else:
            print("no GPUs: trials run on CPUs")
    why = cluster.unplaceable(ray.nodes(), settings.cpus_per_trial, settings.gpus_per_trial)
    if why and not can_grow:
        raise SweepError(f"{why}, and this cluster cannot add nodes: its trials would "
                         f"wait forever")
    if why:
        print(f"{why} yet: trials wait until the autoscaler adds one", flush=True)
    return settings


def _announce(settings: SweepSettings) -> None:
    precision = describe_precision(settings.precision, settings.gpus_per_trial)
    print(f"sweep {settings.name}: task {settings.task}, space {settings.space}, "
          f"search {settings.search}, scheduler {settings.scheduler}, "
          f"{settings.cpus_per_trial:g} CPU + {settings.gpus_per_trial:g} GPU per "
          f"trial, precision {precision}; outputs in {settings.experiment_dir}")
    print(f"searcher {settings.search}: {SEARCHERS[settings.search].why}", flush=True)
    print(journal.how_to_watch(settings.experiment_dir, settings.is_uri), flush=True)
    per_epoch = settings.reports_per_epoch
    reports = (f"a report every {(settings.epoch_size or 0) / per_epoch:,.0f} training examples "
               f"({per_epoch} per epoch of {settings.epoch_size:,})")
    if settings.time_rungs and settings.time_budget_s:
        from search.exploit import EXPLORE_SHARE

        rungs = settings.time_rungs
        print(f"{reports}; ASHA's unit: seconds of training, fitted to --time-budget: rungs at "
              f"{', '.join(f'{r:.0f}' for r in rungs)} s. After "
              f"{settings.time_budget_s * EXPLORE_SHARE:.0f} s, the best config at "
              f"{rungs[-1]:.0f} s trains again until the budget ends, and each slot that "
              f"frees up the next of the best third there")
    else:
        print(f"{reports}: ASHA's unit; --report-images changes it")


def run_prepared(options: Options, settings: SweepSettings,
                 patches: str | None = None) -> Outcome:
    """Hold the name, load the data, join Ray and run the sweep; export its best."""
    import ray

    from search.console import quiet_native_stderr
    from search.sweep import run_sweep, was_interrupted, with_data

    verbose = options.verbose
    with NameLock(settings.experiment_dir, settings.name):
        data = load_task(settings.task, settings.data)
        if not settings.is_uri:  # a bucket's sweep records its split in sweep.json's data only
            splits.record(settings.experiment_dir, data.splits, resume=options.resume)
        settings = with_data(settings, data)
        owned = not ray.is_initialized()
        address = cluster.connect(options.address, verbose=verbose) if owned else "joined"
        if not owned:
            print(f"Ray: this process's own ({cluster.resources()})")
        if patches:
            print(patches)
        try:
            settings = _place(options, settings, address)
            _announce(settings)
            results, finished = run_sweep(settings, data, resume=options.resume,
                                          verbose=verbose)
            if not finished:
                # The one way to continue (Ray's own `Tuner.restore(...)` hint is filtered
                # out). best/ is left alone: an interrupted trial's checkpoint is not a
                # finished model.
                how = "was interrupted" if was_interrupted() else "ended before every trial did"
                print(f"the sweep {how}; its finished trials are kept. Continue it with the "
                      f"same command and --resume (storage {settings.storage}, name "
                      f"{settings.name})", flush=True)
                return Outcome(settings.experiment_dir, False, was_interrupted())
            # TensorFlow's start-up lines in this process go to a log file, not the terminal.
            with quiet_native_stderr(settings.experiment_dir / DRIVER_LOG, verbose):
                export_best(results, data, settings.experiment_dir)
            if settings.multi_objective and not settings.is_uri:
                print(front_line(settings.experiment_dir, settings.objectives), flush=True)
            if options.refit:  # the finalists stage, on this Ray, under this driver's lock
                from search.refit import plan, run_plan

                stage = run_plan(plan(settings.experiment_dir, **finalist_values(options)),
                                 cpus_per_trial=settings.cpus_per_trial,
                                 gpus_per_trial=settings.gpus_per_trial,
                                 max_concurrent=options.max_concurrent, verbose=verbose,
                                 hold_lock=False)
                if not stage.finished:  # `aesearch refit <dir>` continues it
                    return Outcome(settings.experiment_dir, False)
        finally:
            if owned:
                ray.shutdown()
    return Outcome(settings.experiment_dir, True)


def finalist_values(options: Options) -> dict[str, Any]:
    """A sweep's --refit: the finalists' options it was given, on the sweep's own data."""
    from search.options import REFIT, SPECS

    return {name: getattr(options, name) for name, spec in SPECS.items()
            if spec.group == REFIT and getattr(options, name) is not None}


INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for a program Ctrl-C ended


def front_line(experiment_dir: Path, objectives: tuple[str, ...], most: int = 5) -> str:
    """A multi-objective sweep's last line: its front, smallest first (from the files)."""
    from results.front import front_table
    from results.leaderboard import load_trials

    front = front_table(load_trials(experiment_dir), objectives)
    shown = [f"{row['notation']} ({int(row[C.PARAMS]):,} params, val_mse "
             f"{row[C.VAL_MSE]:.5f})" for _, row in front.head(most).iterrows()]
    more = f", and {len(front) - most} more" if len(front) > most else ""
    return (f"front on {', '.join(objectives)}: {len(front)} model(s) that trained their whole "
            f"budget: {'; '.join(shown) or 'none yet'}{more} (python -m results "
            f"{experiment_dir} writes tables/front.md)")


def _ray_best(results: Any) -> Any:
    """The best healthy trial among Ray's results that hold a checkpoint, or None."""
    # Ray's get_best_result does not skip failed trials; the leaderboard ranks them last.
    # Nor do they skip trials that stopped themselves (collapsed, diverged): never exported.
    candidates = [r for r in results if r.error is None and r.checkpoint is not None
                  and not r.metrics.get(C.VERDICT)
                  and math.isfinite(r.metrics.get(C.OBJECTIVE, math.nan))]
    return min(candidates, key=lambda r: r.metrics[C.OBJECTIVE]) if candidates else None


def export_best(results: Any, data: Any, experiment_dir: Path) -> None:
    """Write best/ from the best trial's last checkpoint.

    The best trial is the leaderboard's, read from the sweep's files where they are local:
    Ray's in-memory results can lack a checkpoint that is on disk (a trial the budget stopped
    while its checkpoint was being registered), and then best/ would disagree with the
    leaderboard and with `python -m search.export`."""
    from search.export import ExportError, best_checkpoint, write_best

    errors = sum(r.error is not None for r in results)
    best = _ray_best(results)
    on_disk = None
    if any(experiment_dir.glob("trial_*")):
        try:
            on_disk = best_checkpoint(experiment_dir)
        except ExportError:
            on_disk = None
    if best is None and on_disk is None:
        print(f"no trial finished with a checkpoint ({errors} failed); nothing exported")
        return
    m = on_disk[1] if on_disk is not None else best.metrics
    if on_disk is not None:
        target = write_best(on_disk[0], None, data, m, experiment_dir / C.BEST_DIR,
                            trial_id=on_disk[2])
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
