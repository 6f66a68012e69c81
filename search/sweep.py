"""Ray Tune sweeps: searcher, scheduler, resources, outputs, resume.

The searchers and schedulers are small factories behind dicts, so a new variant is one
function and one entry. Ray's glue lives beside it: `trainable.py` (the trial),
`progress.py` (the console), `fidelity.py` (TPE + ASHA), `relocate.py` (moved sweeps).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickletools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter

import spaces
from results.render import atomic_write_text
from results.sweepdir import read_status
from search import internals, journal, options, searchers
from search.checkpoints import CheckpointPruner
from search.console import Budget
from search.data import DataOptions, TaskData
from search.exploit import EXPLORE_SHARE, ExploitBest
from search.fidelity import BudgetStopper, WarmStartASHA
from search.mirror import mirror_for
from search.pareto_asha import ParetoASHA
from search.progress import INTERRUPTED, SweepCallback, quiet_ray_console, watch_interrupts
from search.relocate import RelocatableSearchGenerator, RelocatableVariantGenerator, point_journals
from search.searchers import SPACES_OF_SEARCH, warm_points
from search.settings import TrialSettings
from search.time_asha import TimeASHA, time_rungs
from search.trainable import train_autoencoder
from search.trial import report_parts
from spaces import constants as C
from spaces import study
from spaces.errors import UserError


class SweepError(UserError):
    """A sweep that cannot start as asked (bad flag combination, resume refused)."""


@dataclass(frozen=True)
class SweepSettings:
    """Everything a sweep needs besides the data; written to sweep.json as is."""

    task: str
    space: str = options.default_of("space")
    search: str = searchers.DEFAULT_SEARCH
    scheduler: str = options.ASHA
    num_samples: int = options.SWEEP_SAMPLES
    max_epochs: int | None = None
    grace_period: int = options.default_of("grace_period")
    checkpoint_every: int = options.default_of("checkpoint_every")
    keep_checkpoints: int = options.default_of("keep_checkpoints")  # 0: every trial's
    cpus_per_trial: float = options.SWEEP_CPUS_PER_TRIAL
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    max_failures: int = 1
    seed: int = options.default_of("seed")
    storage: str = options.default_of("storage")
    name: str = "sweep"
    warm_start: str | None = None
    objectives: tuple[str, ...] = (C.OBJECTIVE,)  # several: a multi-objective sweep
    rows: tuple[str, ...] | None = None  # --space report: replay only these study rows
    max_params: int | None = None  # None: the task's default
    max_activation_mb: float | None = None  # None: the task's default
    guard_shape: tuple[int, int] | None = None  # None: the task's input size
    data: DataOptions = field(default_factory=DataOptions)  # checked on resume
    report_images: int | None = None  # examples per report (ASHA's unit); None: automatic
    budget_epochs: float | None = None  # stop the sweep after this many trial-epochs in all
    time_budget_s: float | None = None  # stop the sweep after this many seconds
    epoch_size: int | None = None  # training examples per epoch: filled in from the data
    precision: str = options.default_of("precision")  # auto: bfloat16 where native

    def __post_init__(self) -> None:
        bounds = spaces.task_bounds(self.task)  # ConfigError naming the valid tasks
        defaults = {"max_params": bounds.max_params,
                    "max_activation_mb": bounds.max_activation_mb,
                    "guard_shape": tuple(bounds.input_shape)}
        for key, default in defaults.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, default)
        if self.max_epochs is None:  # complete when built: the epoch budget too
            object.__setattr__(self, "max_epochs", _max_epochs(self))

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def is_uri(self) -> bool:
        return "://" in self.storage

    @property
    def storage_path(self) -> str:
        return self.storage if self.is_uri else str(Path(self.storage).expanduser().resolve())

    @property
    def experiment_dir(self) -> Path:
        """Where our own files (leaderboard, best/, sweep.json) go: on this machine."""
        root = Path("runs") if self.is_uri else Path(self.storage_path)
        return (root / self.name).resolve()

    @property
    def epoch_budget(self) -> int:
        """`max_epochs`, which `__post_init__` fills in where it was None."""
        return int(self.max_epochs or 0)

    @property
    def reports_per_epoch(self) -> int:
        if not self.epoch_size or not self.report_images:
            return 1
        return report_parts(self.epoch_size, self.report_images)

    @property
    def max_reports(self) -> int:
        """A full trial's reports: ASHA's max_t, and what the searcher counts as complete."""
        return self.epoch_budget * self.reports_per_epoch

    @property
    def by_time(self) -> bool:
        """Whether ASHA's unit is seconds of training, its rungs fitted to `--time-budget`
        (search/time_asha.py), and its best trains on (search/exploit.py): a single-objective
        ASHA sweep with a time budget."""
        return (self.scheduler == options.ASHA and self.time_budget_s is not None
                and not self.multi_objective)

    @property
    def time_rungs(self) -> tuple[float, ...] | None:
        """ASHA's rungs in seconds of training where `by_time`, else None."""
        return time_rungs(self.time_budget_s) if self.by_time and self.time_budget_s else None

    @property
    def fidelity(self) -> tuple[str, float]:
        """ASHA's unit (a result key) and a complete trial's amount of it: what the searcher
        tells Optuna COMPLETE rather than PRUNED."""
        rungs = self.time_rungs
        if rungs:
            return C.SECONDS, rungs[-1]
        return C.TRAINING_ITERATION, float(self.max_reports)

    def trainable_settings(self) -> TrialSettings:
        """What each trial is told (after `prepare` and `with_data`)."""
        if self.max_params is None or self.max_activation_mb is None or self.guard_shape is None:
            raise RuntimeError("the guard's limits are unset; __post_init__ fills them in")
        return TrialSettings(
            max_epochs=self.epoch_budget, max_params=self.max_params,
            max_activation_mb=self.max_activation_mb, guard_shape=self.guard_shape,
            checkpoint_every=self.checkpoint_every, seed=self.seed,
            report_images=self.report_images, precision=self.precision,
        )


# --- searchers: search/searchers/ (one module each, behind SEARCHERS) -----------------------
def report_ids(settings: SweepSettings) -> list[str]:
    """The study rows a `--space report` sweep replays (all, or those `--rows` names)."""
    ids = [point[C.REPORT_KEY] for point in spaces.get_space("report", settings.task)]
    if settings.rows:
        unknown = sorted(set(settings.rows) - set(ids))
        if unknown:
            raise SweepError(
                f"--rows: {', '.join(unknown)} not among the study's {settings.task} rows "
                f"({', '.join(ids)})"
            )
        ids = [i for i in ids if i in settings.rows]
    return ids


def _asha(settings: SweepSettings) -> TrialScheduler:
    """ASHA on val_mse: in seconds under a time budget (TimeASHA), else in reports; with
    several objectives, ParetoASHA on all of them (one metric would stop the small models a
    search for small and good ones is after)."""
    if settings.time_rungs:
        return TimeASHA(settings.time_rungs, protect=warm_points(settings))
    grace = min(settings.grace_period, settings.max_reports)
    if settings.multi_objective:
        return ParetoASHA(time_attr=C.TRAINING_ITERATION, objectives=settings.objectives,
                          max_t=settings.max_reports, grace_period=grace, reduction_factor=3,
                          protect=warm_points(settings))
    return WarmStartASHA(time_attr=C.TRAINING_ITERATION, max_t=settings.max_reports,
                         grace_period=grace, reduction_factor=3, protect=warm_points(settings))


SCHEDULERS: dict[str, Callable[[SweepSettings], TrialScheduler]] = {
    # Reports (a fixed number of examples each) are ASHA's time unit; early stopping lives
    # here, never in an Optuna pruner.
    "asha": _asha,
    "fifo": lambda s: FIFOScheduler(),
}


def _max_epochs(settings: SweepSettings) -> int:
    if settings.max_epochs:
        return settings.max_epochs
    if settings.space == "report":
        return max(row.epochs for row in study.study_rows(settings.task))
    return spaces.task_bounds(settings.task).epochs


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def validate(settings: SweepSettings) -> None:
    """Refuse bad values and combinations before Ray starts: the options' own checks
    (search/options.py), for settings built without the command line."""
    unbounded = settings.num_samples == -1 and (settings.budget_epochs or settings.time_budget_s)
    for name, value in (("search", settings.search), ("scheduler", settings.scheduler),
                        ("num_samples", None if unbounded else settings.num_samples),
                        ("max_epochs", settings.max_epochs),
                        ("grace_period", settings.grace_period),
                        ("checkpoint_every", settings.checkpoint_every),
                        ("max_concurrent", settings.max_concurrent),
                        ("report_images", settings.report_images),
                        ("budget_epochs", settings.budget_epochs),
                        ("time_budget", settings.time_budget_s),
                        ("cpus_per_trial", settings.cpus_per_trial),
                        ("gpus_per_trial", settings.gpus_per_trial),
                        ("precision", settings.precision), ("warm_start", settings.warm_start),
                        ("seed", settings.seed)):
        options.check_value(name, value)
    options.check_objectives(tuple(settings.objectives), settings.search)
    if settings.space not in SPACES_OF_SEARCH[settings.search]:
        raise SweepError(
            "--search grid needs a finite space: use --space report"
            if settings.search == "grid" else
            f"--search {settings.search} samples a define-by-run space: use --space "
            f"{' or '.join(spaces.SAMPLED_SPACES)} (--space report replays the study's rows "
            f"with --search grid)"
        )
    if settings.rows and settings.space != "report":
        raise SweepError("--rows picks study rows to replay: it needs --space report")
    if settings.space == "report":
        report_ids(settings)  # unknown --rows are named now, not after Ray starts


# Settings sweep.json gained later, with the value a sweep recorded before them ran with.
RECORDED_SINCE: dict[str, Any] = {"objectives": [C.OBJECTIVE]}


def _check_resume(settings: SweepSettings, resume: bool) -> None:
    sweep_file = settings.experiment_dir / C.SWEEP_FILE
    exists = sweep_file.is_file()
    if not resume:
        if exists:
            raise SweepError(
                f"a sweep named {settings.name!r} already exists in {settings.experiment_dir}: "
                f"pass --resume to continue it, or choose another --name"
            )
        return
    if not exists or not tune.Tuner.can_restore(f"{settings.storage_path}/{settings.name}"):
        raise SweepError(
            f"--resume: no sweep named {settings.name!r} to restore in {settings.storage}"
        )
    try:
        before = json.loads(sweep_file.read_text())
    except ValueError as exc:
        raise SweepError(f"--resume: {sweep_file} is damaged ({exc}); nothing was changed. "
                         f"Restore it from a copy of the sweep, or start a new --name") from exc
    if before.get("finished"):
        raise SweepError(
            f"--resume: the sweep {settings.name!r} already finished; Ray cannot add trials to a "
            f"finished experiment. Start a new one with another --name"
        )
    now_meta = _sweep_meta(settings)
    for key in (*options.RESUME_FIXED, "guard_shape", "data"):
        now = now_meta[key]
        if before.get(key, RECORDED_SINCE.get(key)) != now:
            what = "the data flags" if key == "data" else f"--{key.replace('_', '-')}"
            raise SweepError(
                f"--resume: {what} was {before.get(key)!r} when the sweep started and is "
                f"{now!r} now; a restored sweep keeps its data, space and budget"
            )
    _check_ray_state(settings)


# On resume Ray reads the newest of each of its state files; a damaged one makes it log
# "Failed to restore the run state" and silently start the sweep over.
RAY_STATE_FILES = internals.RAY_STATE_FILES


def damaged_ray_state(experiment_dir: Path) -> tuple[Path, str] | None:
    """(file, what is wrong) for the first of Ray's state files that Ray would read and cannot,
    or None when all are intact. Reads only; pickles are parsed, never loaded."""
    for pattern in RAY_STATE_FILES:
        found = sorted(experiment_dir.glob(pattern))
        if not found:
            if pattern in RAY_STATE_FILES[:2]:
                return experiment_dir / pattern, "missing"
            continue
        newest = found[-1]  # Ray's choice: the greatest name (a timestamp)
        try:
            data = newest.read_bytes()
            if pattern.startswith("experiment_state"):  # JSON; the others are pickles
                state = json.loads(data)
                if not (isinstance(state, dict) and "trial_data" in state
                        and "runner_data" in state):
                    return newest, "no trial_data/runner_data"
            else:
                for _ in pickletools.genops(data):
                    pass
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            return newest, f"{type(exc).__name__}: {exc}"
    return None


def _check_ray_state(settings: SweepSettings) -> None:
    """Refuse to resume from damaged Ray state (rather than let Ray start over and train the
    finished trials again); nothing is written."""
    if settings.is_uri:
        return  # Ray reads a bucket's files itself; only a local sweep dir is checked here
    damage = damaged_ray_state(settings.experiment_dir)
    if damage is None:
        return
    path, what = damage
    statuses = read_status(settings.experiment_dir)
    done = sum(s in C.FINISHED for s in statuses.values())
    raise SweepError(
        f"--resume: Ray's experiment state {path} is damaged ({what}), so Ray would start the "
        f"sweep over; nothing was changed. The {done} finished trial(s) are intact: "
        f"`python -m results {settings.experiment_dir}` reports them. To search further, "
        f"start a new sweep with another --name and pass both dirs to `python -m results`"
    )


def _sweep_meta(settings: SweepSettings, **extra: Any) -> dict[str, Any]:
    """sweep.json's content: the settings as JSON data, the objective, and `extra`.

    A local `storage` is not recorded: the sweep dir is wherever it now is (a copied or moved
    sweep resumes where it is), so it holds no path to itself.
    """
    meta = {**dataclasses.asdict(settings), "metric": C.OBJECTIVE, "mode": C.MODE, **extra}
    if not settings.is_uri:
        meta["storage"] = None
    return json.loads(json.dumps(meta, default=list))


def _write_sweep_file(meta: dict[str, Any], settings: SweepSettings) -> None:
    atomic_write_text(settings.experiment_dir / C.SWEEP_FILE, json.dumps(meta, indent=2))


def _expected_trials(settings: SweepSettings) -> int:
    grid = len(report_ids(settings)) if settings.search == "grid" else 1
    return grid * settings.num_samples


def _all_trials_ended(settings: SweepSettings, *, out_of_budget: bool = False) -> bool:
    """True when every trial of the sweep ended (finished or failed) rather than being
    interrupted (Ctrl-C makes `Tuner.fit` return normally with trials left unfinished).
    A sweep that spent its time or trial budget has ended with fewer trials than asked."""
    statuses = read_status(settings.experiment_dir)
    ended = sum(status in C.ENDED for status in statuses.values())
    if out_of_budget:
        return ended == len(statuses)
    if settings.num_samples < 0:  # trials until the budget is spent: it was not
        return False
    return ended == len(statuses) and ended >= _expected_trials(settings)


def report_images(settings: SweepSettings, data: TaskData) -> int:
    """Examples per report: --report-images, else enough that validating costs at most about
    half of the training between two reports (validation sees whole images, at about a third
    of training's cost per pixel), at most 8 reports an epoch, never more than one epoch
    (`Trial.next_stop` splits the epoch into equal parts of at least this many). With rungs
    in seconds (`by_time`), twice as often: a costly config's first verdict then comes near
    the first rung rather than several rungs later, and the one trial trained on reports less
    often (search/trainable.py)."""
    if settings.report_images:
        return min(settings.report_images, data.epoch_size)
    first, _ = data.training_groups(0)[0]
    train_pixels = first.shape[1] * first.shape[2]
    val_pixels = sum(x.shape[0] * x.shape[1] * x.shape[2] for x, _ in data.val)
    share = 1 if settings.by_time else 2  # validation's pixels per training pixel, at most
    validation_cost = math.ceil(share * val_pixels / train_pixels)
    least = math.ceil(data.epoch_size / (16 if settings.by_time else 8))
    return int(min(data.epoch_size, max(validation_cost, least)))


def with_data(settings: SweepSettings, data: TaskData) -> SweepSettings:
    """The settings with what only the data can tell: the epoch size and the report size."""
    return dataclasses.replace(settings, epoch_size=data.epoch_size,
                               report_images=report_images(settings, data))


def _budget_stopper(settings: SweepSettings) -> BudgetStopper | None:
    if settings.budget_epochs is None or not settings.epoch_size:
        return None
    return BudgetStopper(int(settings.budget_epochs * settings.epoch_size),
                         settings.experiment_dir / "budget.json")


def console_budget(settings: SweepSettings) -> Budget:
    """What the progress line counts toward: the trial total, or the time or epoch budget."""
    images = (int(settings.budget_epochs * settings.epoch_size)
              if settings.budget_epochs and settings.epoch_size else None)
    return Budget(trials=_expected_trials(settings) if settings.num_samples > 0 else None,
                  time_s=settings.time_budget_s, images=images, epoch_size=settings.epoch_size,
                  max_epochs=settings.max_epochs)


def _quiet_restored(tuner: tune.Tuner, settings: SweepSettings, verbose: bool) -> None:
    """A restored sweep brings back its saved run config: give it this run's console."""
    config = internals.restored_run_config(tuner)
    if config is None:
        return
    config.verbose = 1 if verbose else 0
    config.progress_reporter = quiet_ray_console(verbose)
    for callback in config.callbacks or ():
        if isinstance(callback, SweepCallback):
            callback.budget = console_budget(settings)


def prepare(settings: SweepSettings, *, resume: bool = False) -> SweepSettings:
    """Check the settings and the resume request. Needs no Ray, no data, so a sweep that
    cannot run is refused before either is started or loaded."""
    validate(settings)
    _check_resume(settings, resume)
    return settings


def _relocate(tuner: tune.Tuner, settings: SweepSettings, meta: dict[str, Any]) -> None:
    """Point a restored sweep's own callback and budget stopper at the sweep dir as it is now.

    Both come back from tuner.pkl as they were pickled when the sweep started, holding the
    absolute path of the sweep dir then: a copied or moved sweep would write its leaderboard,
    statuses and budget into the original. Ray relocates its own files (the trials' storage
    and checkpoints follow the path given to `Tuner.restore`).
    """
    run_config = internals.restored_run_config(tuner)
    if run_config is None:
        raise SweepError("--resume: Ray's restored tuner has no run config to relocate")
    for callback in run_config.callbacks or []:
        if isinstance(callback, SweepCallback):
            callback.experiment_dir = settings.experiment_dir
            callback.meta = meta
    if isinstance(run_config.stop, BudgetStopper):
        run_config.stop.path = settings.experiment_dir / "budget.json"
    search_alg = internals.restored_search_alg(tuner)
    if isinstance(search_alg, (RelocatableSearchGenerator, RelocatableVariantGenerator)):
        search_alg.storage_path, search_alg.name = settings.storage_path, settings.name
    if not settings.is_uri:  # the Optuna journal (search/journal.py), where the sweep is now
        point_journals(run_config.callbacks or [], search_alg, settings.experiment_dir)


def was_interrupted() -> bool:
    """Whether the last `run_sweep` ended because of Ctrl-C (SIGINT)."""
    return INTERRUPTED.is_set()


def _restored_tuner(settings: SweepSettings, trainable: Any, meta: dict[str, Any],
                    verbose: bool) -> tune.Tuner:
    """The stopped sweep's tuner, given this run's console and the sweep dir as it is now.

    The saved run config (our callback included) comes back with the experiment; the param
    space does not (tuner.pkl keeps only its keys). Without it, the grid points a restored
    sweep creates keep Ray's placeholder where `grid.report_model` fills the model.
    """
    _, param_space = searchers.make(settings)
    if not settings.is_uri:  # a damaged journal is set aside: the dashboard never harms a sweep
        damaged = journal.resume_check(journal.journal_path(settings.experiment_dir))
        if damaged:
            print(damaged, flush=True)
    tuner = tune.Tuner.restore(f"{settings.storage_path}/{settings.name}", trainable,
                               param_space=param_space or None,
                               resume_unfinished=True, resume_errored=True)
    _quiet_restored(tuner, settings, verbose)
    _relocate(tuner, settings, meta)
    return tuner


def _search_alg(settings: SweepSettings) -> tuple[Any, dict[str, Any]]:
    """The search algorithm and param space, made here as Ray would make them, so that
    `_relocate` can reach them on a resume."""
    searcher, param_space = searchers.make(
        settings, journal.for_new_sweep(settings.experiment_dir, settings.is_uri))
    if searcher is None:  # a grid
        return RelocatableVariantGenerator(max_concurrent=settings.max_concurrent or 0), \
            param_space
    rungs = settings.time_rungs
    if rungs and settings.time_budget_s:
        searcher = ExploitBest(searcher, explore_s=settings.time_budget_s * EXPLORE_SHARE,
                               max_t=rungs[-1])
    if settings.max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=settings.max_concurrent)
    return RelocatableSearchGenerator(searcher), param_space


def _new_tuner(settings: SweepSettings, trainable: Any, meta: dict[str, Any],
               verbose: bool) -> tune.Tuner:
    search_alg, param_space = _search_alg(settings)
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=C.OBJECTIVE,
            mode=C.MODE,
            search_alg=search_alg,
            scheduler=SCHEDULERS[settings.scheduler](settings),
            num_samples=settings.num_samples,
            # A searcher's limit is its ConcurrencyLimiter; a grid's, its generator's.
            max_concurrent_trials=None,
            trial_dirname_creator=_trial_dirname,
            time_budget_s=settings.time_budget_s,
            # One worker process runs trial after trial: TensorFlow is imported once per
            # worker, not once per trial (the trainable clears Keras' session).
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=settings.storage_path,
            callbacks=[SweepCallback(settings.experiment_dir, meta, console_budget(settings)),
                       CheckpointPruner(settings.keep_checkpoints),
                       *mirror_for(settings, report_ids(settings) if settings.search == "grid"
                                   else [])],
            stop=_budget_stopper(settings),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=2,
                checkpoint_score_attribute=C.TRAINING_ITERATION,
                checkpoint_score_order="max",
            ),
            verbose=1 if verbose else 0,  # 0: no status tables, no per-trial boxes
            progress_reporter=quiet_ray_console(verbose),
        ),
    )


def run_sweep(settings: SweepSettings, data: TaskData, *, resume: bool = False,
              verbose: bool = False) -> tuple[tune.ResultGrid, bool]:
    """Run (or resume) a sweep on the Ray cluster `ray.init` attached to.

    The console shows one line per ended trial and a progress line (`search/console.py`);
    `verbose` brings back Ray's status tables.

    Returns Ray's results and whether every trial ended (False after an interruption, which
    `was_interrupted` tells apart: the sweep can then be resumed).
    """
    settings = prepare(settings, resume=resume)  # cheap and idempotent
    settings = with_data(settings, data)
    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    trainable = tune.with_resources(
        tune.with_parameters(train_autoencoder, data=data, settings=settings.trainable_settings()),
        resources,
    )
    meta = _sweep_meta(settings, finished=False, resumed=resume)
    if resume:
        tuner = _restored_tuner(settings, trainable, meta, verbose)
    else:
        tuner = _new_tuner(settings, trainable, meta, verbose)
    _write_sweep_file(meta, settings)  # only now: a sweep that could not start leaves no trace
    started = time.monotonic()
    watch_interrupts(verbose)
    results = tuner.fit()
    stopper = _budget_stopper(settings)
    out_of_budget = (
        (settings.time_budget_s is not None
         and time.monotonic() - started >= settings.time_budget_s * 0.99)
        or (stopper is not None and stopper.stop_all())
    )
    finished = _all_trials_ended(settings, out_of_budget=out_of_budget)
    _write_sweep_file({**meta, "finished": finished, "interrupted": was_interrupted()},
                      settings)
    return results, finished
