"""The vocabulary `spaces/`, `search/` and `results/` share: keys, metrics, files, statuses.

In the leaf package and importing nothing, so that every other package can name the same
things without importing each other (`results/` must not load TensorFlow or Ray).
"""

from __future__ import annotations

from enum import StrEnum

# The tasks, by name. `spaces.tasks` maps each to its bounds and full space; the names live here
# so that `spaces.config`, which the task modules import, can validate them without a cycle.
TASKS = ("mnist", "mnist-denoise", "text")

# A trial's Ray config keys: its ModelConfig dict, and the study row id a replayed trial has.
MODEL_KEY = "model"
REPORT_KEY = "report_id"

# Per-epoch metrics reported by every trial (tune.report keys and result.json fields).
TRAIN_LOSS = "train_loss"
VAL_LOSS = "val_loss"
TRAIN_MSE = "train_mse"
VAL_MSE = "val_mse"
VAL_RMSE = "val_rmse"  # sqrt of the per-pixel MSE over whole validation images (Kaggle metric)
PARAMS = "params"
EPOCH = "epoch"  # epochs trained so far; fractional between reports inside an epoch
IMAGES = "images"  # training examples seen so far (images, or patches for text)
VAL_OUTPUT_STD = "val_output_std"  # spread of the validation outputs (0: constant output)
VAL_INPUT_GAP = "val_input_gap"  # mean |output - input| (0: the model copies its input)
VERDICT = "verdict"  # set when a trial ended itself: COLLAPSED, DIVERGED, REFUSED, OUT_OF_MEMORY
REASON = "reason"  # why, in words
EPOCH_SECONDS = "epoch_seconds"
SECONDS = "seconds"  # training seconds so far, summed over reports: a time budget's ASHA unit
NODE = "node"  # Ray node id of the worker that ran the epoch
PRECISION = "precision"  # the Keras dtype policy the trial trained in (float32, mixed_bfloat16)
# Where a trial's wall time went (bench/overhead.py reads them): this report's validation and
# checkpoint write, and, once per trial, importing Keras (only a worker's first trial pays it),
# the rest of its setup (session, guard, model build or resume), and when it began (unix time).
VAL_SECONDS = "val_seconds"
# The finalists stage's figures on the untouched test split (whole images, as val_*).
TEST_MSE = "test_mse"
TEST_RMSE = "test_rmse"
CHECKPOINT_SECONDS = "checkpoint_seconds"
IMPORT_SECONDS = "import_seconds"
SETUP_SECONDS = "setup_seconds"
STARTED_AT = "started_at"
NOTATION = "notation"
# Inference seconds per validation image, batched as validation runs (the model's cost to use;
# a wall-clock figure, so it moves with the machine's load).
LATENCY = "latency"
METRICS = (TRAIN_LOSS, VAL_LOSS, TRAIN_MSE, VAL_MSE, VAL_RMSE)

# The sweep's objective: validation MSE is comparable whatever loss a trial trained with.
OBJECTIVE = VAL_MSE
MODE = "min"
# What `--objectives` may name (each minimized): a multi-objective sweep searches for the models
# no other beats on all of them at once, e.g. val_mse and params (small and good).
OBJECTIVE_METRICS = (VAL_MSE, PARAMS, LATENCY)

# Ray's own result keys we read back.
TRAINING_ITERATION = "training_iteration"
# In a trial's config: the best config of a time-budgeted search, trained on (search/exploit.py).
EXPLOIT = "exploit"
TRIAL_ID = "trial_id"

# Files in <storage>/<name>/.
LEADERBOARD_FILE = "leaderboard.csv"
SWEEP_FILE = "sweep.json"  # how the sweep was started: task, space, search, flags
STATUS_FILE = "trial_status.json"  # {trial_id: status}, rewritten as trials change state
BEST_DIR = "best"
SPLITS_FILE = "splits.json"  # the three-way split the sweep selected on: sizes, fingerprint
# The searcher's Optuna study (a grid's trials mirrored as one): `aesearch dashboard` reads it.
JOURNAL_FILE = "optuna.journal"
FINALISTS_DIR = "finalists"  # the finalists stage (aesearch refit): its Ray experiment
FINALISTS_FILE = "finalists.json"  # in FINALISTS_DIR: what was asked (epochs, repeats, runs)
RUNS_FILE = "runs.csv"  # in FINALISTS_DIR: one row per finished (candidate, seed) run
TABLES_DIR = "tables"
PLOTS_DIR = "plots"
# In each Ray trial directory.
PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"  # Ray writes it in the directory of a failed trial
# In each checkpoint and in best/.
MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
NOTATION_FILE = "notation.txt"
METRICS_FILE = "metrics.json"
STATE_FILE = "state.json"
# best/ only: inputs, outputs, targets (or inputs_0, outputs_0, ... one triple per page)
RECONSTRUCTIONS_FILE = "reconstructions.npz"


class Status(StrEnum):
    """A trial's status: Ray's names (values equal the names, as Ray spells them), plus what
    `results/` infers from files alone. Members compare equal to Ray's plain strings."""

    TERMINATED = "TERMINATED"
    ERROR = "ERROR"
    RUNNING = "RUNNING"
    PENDING = "PENDING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"  # inferred: the sweep finished before the trial reached its epochs
    # A trial that stopped itself (search/trial.py `health`); Ray sees it TERMINATED.
    COLLAPSED = "COLLAPSED"  # constant output, or a copy of its input: the trivial predictors
    DIVERGED = "DIVERGED"  # NaN or inf loss
    # Failures a retry cannot cure: the trial ends with the verdict at once (not retried).
    REFUSED = "REFUSED"  # the resource guard refused the config (spaces/guard.py)
    OUT_OF_MEMORY = "OUT_OF_MEMORY"  # MemoryError or TensorFlow's ResourceExhaustedError
    # The sweep was stopped (Ctrl-C) while the trial ran: `--resume` continues it from its
    # last checkpoint. Ray itself calls such a trial TERMINATED; it has not finished.
    INTERRUPTED = "INTERRUPTED"


# The statuses a trial never leaves. Ray's live trials are never STOPPED (only files are read
# as STOPPED), so live code may use these sets too.
FAILED = frozenset({Status.ERROR, Status.REFUSED, Status.OUT_OF_MEMORY})
FINISHED = frozenset({Status.TERMINATED, Status.STOPPED})  # ended without failing
UNHEALTHY = frozenset({Status.COLLAPSED, Status.DIVERGED})  # ended, never ranked as best
ENDED = FINISHED | FAILED | UNHEALTHY
# Statuses of a trial the sweep may still run (an interrupted sweep's, after `--resume`).
ACTIVE = frozenset({Status.RUNNING, Status.PENDING, Status.PAUSED, Status.INTERRUPTED})
