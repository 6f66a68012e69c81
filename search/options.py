"""Every option a run takes, declared once: its name, type, default, range, help, and the modes
and task it applies to.

`Options` is a frozen dataclass; each field is an option, and its metadata (`Spec`) holds what
the command line and the checks need. Everything else derives from it: the command line's
flags (`search/cli.py` adds one argument per field), every check of a value or of where a flag
applies (`Options.check`, one wording each), the Python API's keywords (`search.api.Sweep`),
the defaults of `SweepSettings`, `TrialSettings` and `DataOptions` (`default_of`), and the
settings a resumed sweep must keep (`RESUME_FIXED`).

A run is one of two modes: `train` (one configuration, `--config`, without Ray) or `sweep`.
Building an `Options` checks nothing: `check(given)` does, with `given` the names the user set,
so that a flag given with its default value still counts as given. Nothing here imports Ray,
TensorFlow or argparse.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from spaces import REGISTRY, SPACES
from spaces.config import LOSSES, MAX_BATCH_SIZE, MAX_EPOCHS, MAX_LR, OPTIMIZERS
from spaces.errors import UserError

SWEEP, TRAIN, REFIT = "sweep", "train", "refit"
MODES = (SWEEP, TRAIN)
BOTH = frozenset(MODES)
ONLY_SWEEP, ONLY_TRAIN = frozenset({SWEEP}), frozenset({TRAIN})
FINALISTS = frozenset({SWEEP, REFIT})  # a sweep's --refit, and `aesearch refit SWEEP_DIR`
MAX_FINALISTS = 100  # --top-k, --repeats

MAX_SEED = 2**31 - 1  # numpy's and Optuna's seeds must stay below 2**32, repeats add to it
MAX_IMAGE_SIDE = 8192  # --resize; the study's pages are 420x540
MAX_PATCHES_PER_PAGE = 10_000
MAX_NOISE = 10.0  # sigma of the Gaussian noise on [0, 1] images: 10 is noise only
SWEEP_CPUS_PER_TRIAL = 1.0  # a sweep's trials; one configuration takes every core
SWEEP_SAMPLES = 20  # trials of a search without a budget (a replay: each row once)
GRID, FIFO, ASHA = "grid", "fifo", "asha"
STUDY_SPACE = "report"  # the space that replays the study's rows


class InputError(UserError):
    """A flag value, flag combination, config or output folder that cannot be used."""


# --- parsers of option text (the command line's, and the API's strings) -----------------------
def duration(text: str) -> float:
    """Seconds from '90', '90s', '20m', '1h30m'."""
    match = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*"
                         r"(?:(\d+(?:\.\d+)?)s?)?\s*", text.lower())
    if not match or not any(match.groups()):
        raise ValueError(f"expected a duration such as 20m, 1h30m or 90s, got {text!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"the duration must be positive, got {text!r}")
    return total


def shape(text: str) -> tuple[int, int]:
    """(height, width) from '420x540'."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"expected HEIGHTxWIDTH such as 420x540, got {text!r}") from None
    return height, width


def row_ids(text: str) -> tuple[str, ...]:
    """Study row ids from 'text/3.3/4,text/3.3/5'."""
    return tuple(r.strip() for r in text.split(",") if r.strip())


def objective_list(text: str) -> tuple[str, ...]:
    """Metric names from 'val_mse,params' (checked against the metrics by `Options.check`)."""
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _searches() -> tuple[str, ...]:
    from search.searchers import SEARCHERS

    return tuple(SEARCHERS)


def _precisions() -> tuple[str, ...]:
    from search.precision import PRECISIONS

    return PRECISIONS


# --- the declaration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """What an option's field declares besides its name, type and default."""

    help: str
    group: str  # where --help lists it: sweep, where, data, config
    modes: frozenset[str] = BOTH
    task: str | None = None  # the one task it applies to
    task_why: str = ""  # what it does for that task (said when another task gets it)
    low: float | None = None  # None: unbounded
    high: float | None = None
    low_open: bool = False  # the value must be above `low`, not at it
    high_open: bool = False
    integer: bool = False
    choices: Callable[[], tuple[str, ...]] | tuple[str, ...] | None = None
    parse: Callable[[str], Any] | None = None  # option text -> value; None: the field's type
    metavar: str | None = None
    resume_fixed: bool = False  # a resumed sweep must keep it (its data options are kept too)
    notation: bool = False  # part of the study's notation: only with a notation --config

    def choice_list(self) -> tuple[str, ...] | None:
        return self.choices() if callable(self.choices) else self.choices


def option(default: Any, help: str, group: str, **spec: Any) -> Any:
    """A field of `Options`: its default and its `Spec`."""
    return field(default=default, metadata={"spec": Spec(help=help, group=group, **spec)})


def _task_help() -> str:
    return "what the autoencoder learns: " + "; ".join(
        f"{name}: {spec.description}" for name, spec in REGISTRY.items())


@dataclass(frozen=True)
class Options:
    """One run's options, as the user gave them (None: decided later, see `resolved`)."""

    task: str = option(None, _task_help(), "run", choices=tuple(REGISTRY), resume_fixed=True)
    verbose: bool = option(False, "show Ray's status tables, the workers' output and "
                           "TensorFlow's start-up lines (by default: one line per trial and a "
                           "progress line)", "run")
    # --- sweep ---
    space: str = option("default", "default: conv models a short search can win in "
                        "(spaces/default.py); study-axes: every axis the study tried; report: "
                        "replay the study's table rows", "sweep", modes=ONLY_SWEEP,
                        choices=tuple(SPACES), resume_fixed=True)
    search: str | None = option(None, "default: grid for --space report, the registry's "
                                "default (search/searchers/) for the others", "sweep",
                                modes=ONLY_SWEEP, choices=_searches, resume_fixed=True)
    scheduler: str | None = option(None, "default: fifo for report (replay every row fully), "
                                   "asha for the others", "sweep", modes=ONLY_SWEEP,
                                   choices=(ASHA, FIFO), resume_fixed=True)
    num_samples: int | None = option(None, f"trials to sample (default {SWEEP_SAMPLES}; with "
                                     "a time or epoch budget: until it is spent), or repeats "
                                     "of each row (report; 1)", "sweep", modes=ONLY_SWEEP,
                                     low=1, integer=True, resume_fixed=True)
    max_epochs: int | None = option(None, "epochs per trial and ASHA's max_t (default: the "
                                    "study's: 50 for MNIST, 25 for text)", "sweep", low=1,
                                    high=MAX_EPOCHS, integer=True, resume_fixed=True)
    grace_period: int = option(1, "ASHA: reports before a trial can stop (with "
                               "--time-budget, ASHA counts seconds instead, its rungs fitted to "
                               "the budget)", "sweep",
                               modes=ONLY_SWEEP, low=1, integer=True)
    report_images: int | None = option(None, "training examples between two reports at "
                                       "least, ASHA's unit: an epoch is split into equal "
                                       "parts of at least this many (default: automatic, "
                                       "several reports an epoch; the run prints it)",
                                       "sweep", modes=ONLY_SWEEP, low=1, integer=True)
    budget_epochs: float | None = option(None, "end the sweep once its trials together "
                                         "trained this many epochs", "sweep",
                                         modes=ONLY_SWEEP, low=0, low_open=True)
    time_budget: float | None = option(None, "end the sweep after this long, e.g. 20m, 1h30m, "
                                       "90s; running trials stop, and the leaderboard, best/ "
                                       "and tables are complete", "sweep", modes=ONLY_SWEEP,
                                       low=0, low_open=True, parse=duration, metavar="DURATION")
    checkpoint_every: int = option(1, "checkpoint every k epochs", "sweep", modes=ONLY_SWEEP,
                                   low=1, integer=True)
    keep_checkpoints: int = option(5, "keep the checkpoints of the K best trials (and of failed "
                                   "ones, which a resume retries); the others' are removed as "
                                   "they end, their results kept. 0 keeps every trial's; a "
                                   "resumed sweep keeps the K it started with", "sweep",
                                   modes=ONLY_SWEEP, low=0, integer=True, metavar="K")
    rows: tuple[str, ...] | None = option(None, "--space report: replay only these study rows, "
                                          "e.g. text/3.3/4,text/3.3/5", "sweep",
                                          modes=ONLY_SWEEP, parse=row_ids, metavar="ID,ID",
                                          resume_fixed=True)
    objectives: tuple[str, ...] | None = option(
        None, "search for the models no other beats on all of these at once (a Pareto front), "
        "e.g. val_mse,params (small and good) or val_mse,latency; each minimized. Trials ASHA "
        "stops early never enter the front. Default: val_mse alone", "sweep", modes=ONLY_SWEEP,
        parse=objective_list, metavar="METRIC,METRIC", resume_fixed=True)
    warm_start: str | None = option(None, "give Optuna the study's best rows as first points "
                                    "(off by default)", "sweep", modes=ONLY_SWEEP,
                                    choices=("report",))
    refit: bool = option(False, "after the sweep, run its finalists stage (aesearch refit): "
                         "the --top-k best distinct configs and the study's best row(s), "
                         "--repeats seeds each, tested on the untouched test split", "sweep",
                         modes=ONLY_SWEEP)
    # --- the finalists stage (aesearch refit SWEEP_DIR, or a sweep's --refit) ---
    top_k: int = option(3, "finalists: the search's best distinct configs to retrain", "refit",
                        modes=FINALISTS, low=1, high=MAX_FINALISTS, integer=True)
    repeats: int = option(3, "finalists: seeds each config trains with (the study's rows "
                          "too)", "refit", modes=FINALISTS, low=1, high=MAX_FINALISTS,
                          integer=True)
    refit_epochs: int | None = option(None, "finalists: epochs of every run (default: the "
                                      "study's, 50 for MNIST, 25 for text)", "refit",
                                      modes=FINALISTS, low=1, high=MAX_EPOCHS, integer=True)
    study_rows: tuple[str, ...] | None = option(None, "finalists: the study rows trained "
                                                "beside them (default: the task's best)",
                                                "refit", modes=FINALISTS, parse=row_ids,
                                                metavar="ID,ID")
    seed: int = option(0, "sampler, initialisation and data seed", "sweep", low=0,
                       high=MAX_SEED, integer=True, resume_fixed=True)
    max_params: int | None = option(None, "refuse configs with more parameters (default: the "
                                    "task's, 10M for MNIST, 5M for text)", "sweep", low=1,
                                    integer=True, resume_fixed=True)
    max_activation_mb: float | None = option(None, "refuse configs whose activations for one "
                                             "batch exceed this (default: the task's, 2048 for "
                                             "MNIST, 8192 for text)", "sweep", low=0,
                                             low_open=True, resume_fixed=True)
    # --- where ---
    storage: str = option("runs", "experiment storage: a path, or a URI all nodes reach "
                          "(s3://, gs://)", "where")
    name: str | None = option(None, "sweep name (default: TASK-SPACE, or TASK-single for "
                              "--config)", "where")
    resume: bool = option(False, "restore the sweep --storage/--name", "where",
                          modes=ONLY_SWEEP)
    address: str | None = option(None, "Ray cluster: 'local' for a new local Ray, 'auto', or "
                                 "host:port. Default: RAY_ADDRESS, else the cluster this "
                                 "machine belongs to, else local", "where", modes=ONLY_SWEEP)
    cpus_per_trial: float | None = option(None, "CPUs per trial, also TensorFlow's thread "
                                          f"count (sweep default {SWEEP_CPUS_PER_TRIAL:g}; "
                                          "--config default: all)", "where", low=0,
                                          low_open=True)
    gpus_per_trial: float | None = option(None, "fractions allowed; default 1 if the cluster "
                                          "has GPUs, else 0", "where", modes=ONLY_SWEEP, low=0)
    max_concurrent: int | None = option(None, "at most this many trials at once", "where",
                                        modes=ONLY_SWEEP, low=1, integer=True)
    precision: str = option("auto", "training precision: auto (the default) trains in "
                            "mixed_bfloat16 on CPUs with AMX, where trials trained 1.0-1.9x "
                            "faster, and in float32 elsewhere, GPUs included", "where",
                            choices=_precisions)
    # --- data (all kept by a resumed sweep: sweep.json's "data") ---
    data_dir: str | None = option(None, "folder with mnist.npz and/or the documents (default: "
                                  "SEARCH_DATA_DIR; MNIST downloads through Keras)", "data")
    subset: int | None = option(None, "limit training examples (images or pages)", "data",
                                low=1, integer=True)
    val_subset: int | None = option(None, "limit validation images or pages", "data", low=1,
                                    integer=True)
    noise: float = option(0.5, "mnist-denoise noise factor", "data", task="mnist-denoise",
                          task_why="the noise added to the inputs", low=0, low_open=True,
                          high=MAX_NOISE)
    val_fraction: float = option(0.2, "the validation split the search selects on, carved "
                                 "(seeded) from the training images (MNIST) or the labelled "
                                 "pages (text, stratified by page height)", "data", low=0,
                                 low_open=True, high=1, high_open=True)
    test_fraction: float = option(0.2, "text: labelled pages held out as the test split, "
                                  "which only the finalists stage (aesearch refit) reads; "
                                  "MNIST's test split is the official one", "data",
                                  task="text", task_why="the share of pages held out for "
                                  "the final test", low=0, high=1, high_open=True)
    patch_size: int | None = option(None, "text: train on random square patches", "data",
                                    task="text", task_why="training on patches of the pages",
                                    low=1, high=MAX_IMAGE_SIDE, integer=True)
    patches_per_page: int = option(8, "text: patches a page gives an epoch", "data",
                                   task="text", task_why="training on patches of the pages",
                                   low=1, high=MAX_PATCHES_PER_PAGE, integer=True)
    resize: tuple[int, int] | None = option(None, "text: resize pages, e.g. 420x540 (the "
                                            "study's)", "data", task="text",
                                            task_why="resizing the pages", parse=shape,
                                            metavar="HxW")
    # --- one configuration (--config) ---
    config: str | None = option(None, "train one config: the study's notation "
                                "('4L,32,32,64,128F(3X3)'), a study row id ('text/3.3/5'), or "
                                "a config JSON file", "config", modes=ONLY_TRAIN)
    pool: str = option("0", "pooling+upsampling pairs, e.g. '2+2'", "config",
                       modes=ONLY_TRAIN, notation=True)
    dropout: str = option("0", "dropout layers, e.g. '2 (p=0.2)'", "config", modes=ONLY_TRAIN,
                          notation=True)
    batchnorm: str = option("0", "batch-normalization layers", "config", modes=ONLY_TRAIN,
                            notation=True)
    loss: str | None = option(None, "the loss (default: the study's for the row)", "config",
                              modes=ONLY_TRAIN, choices=LOSSES)
    optimizer: str | None = option(None, "the optimizer", "config", modes=ONLY_TRAIN,
                                   choices=OPTIMIZERS)
    lr: float | None = option(None, "learning rate", "config", modes=ONLY_TRAIN, low=0,
                              low_open=True, high=MAX_LR)
    batch_size: int | None = option(None, "training batch size", "config", modes=ONLY_TRAIN,
                                    low=1, high=MAX_BATCH_SIZE, integer=True)
    epochs: int | None = option(None, "training epochs", "config", modes=ONLY_TRAIN, low=1,
                                high=MAX_EPOCHS, integer=True)

    @property
    def mode(self) -> str:
        return TRAIN if self.config is not None else SWEEP

    def check(self, given: Iterable[str]) -> None:
        """Refuse bad values and flags that do not apply, naming the flag. Reads nothing but
        the --data-dir folder's existence."""
        given = set(given)
        if self.task not in REGISTRY:
            raise InputError(f"--task must be one of {', '.join(REGISTRY)}, got {self.task!r}")
        for spec_field in fields(self):
            check_value(spec_field.name, getattr(self, spec_field.name))
        self._check_cross_values()
        self._check_applies(given)
        if self.mode == TRAIN:
            self._check_train(given)
        else:
            self._check_sweep(given)
        self._check_places()

    def _check_cross_values(self) -> None:
        if self.config is not None and not self.config.strip():
            raise InputError("--config is empty: give the study's notation, a study row id or "
                             "a config JSON file (leave --config out to run a sweep)")
        gpus = self.gpus_per_trial
        if gpus is not None and gpus > 1 and gpus != int(gpus):
            raise InputError(f"--gpus-per-trial above 1 must be a whole number of GPUs, got "
                             f"{gpus:g}")
        if self.task == "text" and self.val_fraction + self.test_fraction >= 1:
            raise InputError(f"--val-fraction {self.val_fraction:g} and --test-fraction "
                             f"{self.test_fraction:g} leave no pages to train on: their sum "
                             f"must be below 1")
        if self.resize is not None:
            height, width = self.resize
            if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
                raise InputError(f"--resize sides must be between 1 and {MAX_IMAGE_SIDE}, got "
                                 f"{height}x{width}")
            if self.patch_size is not None and self.patch_size > min(height, width):
                raise InputError(f"--patch-size {self.patch_size} is larger than the "
                                 f"{height}x{width} pages of --resize")

    def _check_applies(self, given: set[str]) -> None:
        """A flag of another task, or of the other mode, is refused rather than ignored."""
        for name in sorted(given, key=lambda n: _ORDER[n]):
            spec = SPECS[name]
            if spec.task is not None and self.task != spec.task:
                raise InputError(f"{flag(name)} is for --task {spec.task} only "
                                 f"({spec.task_why}); --task {self.task} does not use it")
        for name in sorted(given, key=lambda n: _ORDER[n]):
            spec = SPECS[name]
            if self.mode not in spec.modes and self.mode == TRAIN:
                raise InputError(f"{flag(name)} is for sweeps; --config trains one "
                                 f"configuration (leave out one or the other)")
            if self.mode not in spec.modes:
                raise InputError(f"{flag(name)} sets the one configuration of --config; a "
                                 f"sweep samples it from --space")

    def _check_train(self, given: set[str]) -> None:
        text = (self.config or "").strip()
        kind = config_kind(text)
        for name in ("pool", "dropout", "batchnorm"):
            if name in given and kind != "notation":
                what = "study row" if kind == "row" else "config file"
                raise InputError(f"{flag(name)} is part of the study's notation; the {what} "
                                 f"{text} has its own {name}")
        cores = os.cpu_count() or 1
        if self.cpus_per_trial is not None and self.cpus_per_trial > cores:
            raise InputError(f"--cpus-per-trial {self.cpus_per_trial:g}: this machine has "
                             f"{cores} CPUs (--config trains here, on that many threads)")
        if {"max_epochs", "epochs"} <= given and self.max_epochs != self.epochs:
            raise InputError(f"--epochs {self.epochs} and --max-epochs {self.max_epochs} "
                             f"disagree; with --config, give --epochs")

    def _check_sweep(self, given: set[str]) -> None:
        finalists = sorted(n for n in given if SPECS[n].group == REFIT)
        if finalists and not self.refit:
            raise InputError(f"{flag(finalists[0])} sets the finalists stage: add --refit, or "
                             f"run `aesearch refit SWEEP_DIR` after the sweep")
        if "grace_period" in given and self.scheduler == FIFO:
            raise InputError("--grace-period is ASHA's; --scheduler fifo never stops a trial "
                             "early")
        if "grace_period" in given and self.time_budget and len(self.objectives or ()) < 2:
            raise InputError("--grace-period counts reports; with --time-budget, ASHA's rungs "
                             "are seconds of training fitted to the budget (the run prints "
                             "them): drop one of the two")
        if self.rows is not None and not self.rows:
            raise InputError("--rows is empty: give study row ids such as mnist/1.2/2")
        if self.warm_start and self.resolved_search == GRID:
            raise InputError("--warm-start seeds Optuna; --search grid replays fixed points")
        if self.objectives is not None:
            check_objectives(self.objectives, self.resolved_search)


    def _check_places(self) -> None:
        for name, what in (("storage", "a folder or a URI"), ("data_dir", "a folder"),
                           ("address", "local, auto or host:port")):
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise InputError(f"{flag(name)} is empty: give {what}")
        if self.name is not None:
            check_name(self.name)
        if self.data_dir is not None and not Path(self.data_dir).expanduser().is_dir():
            raise InputError(f"--data-dir {self.data_dir}: no such folder")

    # --- what a None means, decided in this one place ---
    @property
    def replays_study(self) -> bool:
        return self.space == STUDY_SPACE

    @property
    def resolved_search(self) -> str:
        from search.searchers import DEFAULT_SEARCH

        return self.search or (GRID if self.replays_study else DEFAULT_SEARCH)

    @property
    def resolved_scheduler(self) -> str:
        return self.scheduler or (FIFO if self.replays_study else ASHA)

    @property
    def resolved_num_samples(self) -> int:
        """Trials (or repeats of each row); -1: until the time or epoch budget is spent."""
        if self.num_samples is not None:
            return self.num_samples
        if self.replays_study:
            return 1
        return -1 if self.time_budget or self.budget_epochs else SWEEP_SAMPLES

    @property
    def resolved_name(self) -> str:
        return self.name or f"{self.task}-{'single' if self.mode == TRAIN else self.space}"



SPECS: dict[str, Spec] = {f.name: f.metadata["spec"] for f in fields(Options)}
_ORDER = {name: i for i, name in enumerate(SPECS)}
# What a resumed sweep keeps, by its SweepSettings name (the data options: "data").
RESUME_FIXED = tuple(name for name, spec in SPECS.items()
                     if spec.resume_fixed and spec.group != "data")
DATA_OPTIONS = tuple(name for name, spec in SPECS.items() if spec.group == "data")


# What `aesearch refit SWEEP_DIR` takes besides the finalists' own options: where the runs go
# and how large the data is (the rest, data included, is the sweep's, from its sweep.json).
REFIT_SHARED = ("task", "verbose", "address", "cpus_per_trial", "gpus_per_trial",
                "max_concurrent", "data_dir", "subset", "val_subset")
REFIT_OPTIONS = (*(n for n, s in SPECS.items() if s.group == REFIT), *REFIT_SHARED)


def check_refit(values: Mapping[str, Any]) -> None:
    """The finalists stage's options, each against its declaration (one wording)."""
    unknown = sorted(set(values) - set(REFIT_OPTIONS))
    if unknown:
        raise InputError(f"{flag(unknown[0])} is not an option of the finalists stage; it "
                         f"takes {', '.join(flag(n) for n in REFIT_OPTIONS)}")
    for name, value in values.items():
        check_value(name, value)
    data_dir = values.get("data_dir")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise InputError(f"--data-dir {data_dir}: no such folder")


def default_of(name: str) -> Any:
    """The declared default of option `name`: the one place each default lives."""
    return Options.__dataclass_fields__[name].default


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_value(name: str, value: Any) -> None:
    """`value` against option `name`'s declared choices and range, in one wording."""
    spec = SPECS[name]
    numeric = spec.low is not None or spec.high is not None
    if value is None or (isinstance(value, bool) and not numeric):
        return
    if isinstance(value, bool):
        raise InputError(f"{flag(name)} must be a number, got {value!r}")
    choices = spec.choice_list()
    if choices is not None and value not in choices:
        raise InputError(f"{flag(name)} must be one of {', '.join(choices)}, got {value!r}")
    if spec.low is None and spec.high is None:
        return
    if spec.integer and not isinstance(value, int):
        raise InputError(f"{flag(name)} must be a whole number, got {value!r}")
    if not isinstance(value, int | float):
        raise InputError(f"{flag(name)} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InputError(f"{flag(name)} must be a finite number, got {value!r}")
    low, high = spec.low, spec.high
    too_low = low is not None and (value <= low if spec.low_open else value < low)
    if too_low or (high is not None and value > high):
        lower = "" if low is None else f"{'more than' if spec.low_open else 'at least'} {low!r}"
        upper = "" if high is None else f"at most {high!r}"
        bounds = " and ".join(b for b in (lower, upper) if b)
        raise InputError(f"{flag(name)} must be {bounds}, got {value!r}")
    if spec.high_open and value == high:
        raise InputError(f"{flag(name)} must be less than {high!r}, got {value!r}")


def check_objectives(objectives: tuple[str, ...], search: str) -> None:
    """--objectives: known metrics, each once, no more than `search` can optimize at once."""
    from search.searchers import SEARCHERS
    from spaces.constants import OBJECTIVE_METRICS

    known = ", ".join(OBJECTIVE_METRICS)
    if not objectives:
        raise InputError(f"--objectives is empty: name metrics among {known}")
    for metric in objectives:
        if metric not in OBJECTIVE_METRICS:
            raise InputError(f"--objectives: unknown metric {metric!r}; the metrics are {known}")
    repeated = sorted({m for m in objectives if objectives.count(m) > 1})
    if repeated:
        raise InputError(f"--objectives names {repeated[0]} twice")
    most = SEARCHERS[search].max_objectives
    if len(objectives) > most:
        why = "it replays fixed points" if most == 1 else f"it optimizes at most {most}"
        raise InputError(f"--objectives {','.join(objectives)}: --search {search} cannot "
                         f"optimize {len(objectives)} metrics ({why})")


def from_values(values: Mapping[str, Any]) -> Options:
    """Options from keyword values (the Python API): option text such as '20m' or '420x540'
    is parsed as on the command line; an unknown name is an InputError."""
    unknown = sorted(set(values) - set(SPECS))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)}: the options are "
                         f"{', '.join(SPECS)}")
    parsed = {}
    for name, value in values.items():
        parse = SPECS[name].parse
        if parse is not None and isinstance(value, str):
            try:
                value = parse(value)
            except ValueError as exc:
                raise InputError(f"{flag(name)}: {exc}") from None
        parsed[name] = value
    return Options(**parsed)


# --- names and configs --------------------------------------------------------------------------
# A sweep name: one plain path component (it becomes <storage>/<name>/).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,127}")


def check_name(name: str) -> None:
    """A sweep name is one plain path component, so that its folder stays inside --storage."""
    if not NAME_PATTERN.fullmatch(name):
        raise InputError(
            f"--name {name!r} is not a plain name: use letters, digits and . _ + = - (starting "
            f"with a letter or digit, at most 128 characters); it becomes one folder in "
            f"--storage"
        )


def config_kind(text: str) -> str:
    """What a --config value is: "row" (a study row id such as text/3.3/5), "file" (a config
    JSON file) or "notation" (the study's notation, such as 4L,32F(3X3))."""
    text = text.strip()
    if text.endswith(".json"):
        return "file"
    return "row" if text.count("/") == 2 else "notation"


__all__ = ["BOTH", "DATA_OPTIONS", "MODES", "REFIT", "REFIT_OPTIONS", "RESUME_FIXED",
           "SPECS", "SWEEP", "TRAIN", "InputError", "Options", "Spec", "check_name",
           "check_objectives", "check_refit", "check_value", "config_kind", "default_of",
           "duration", "flag", "from_values", "objective_list", "row_ids", "shape"]
