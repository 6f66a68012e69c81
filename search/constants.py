"""Names shared by the trainer, the sweep and `results/`: metrics, files, columns.

Imports only the leaf package `spaces`, so `results/` (which must not load TensorFlow or Ray)
can use it.
"""

from __future__ import annotations

# A trial's Ray config keys (its ModelConfig, the study row it replays) are defined in the
# leaf package, which produces them; re-exported here beside the other names.
from spaces.keys import MODEL_KEY, REPORT_KEY  # noqa: F401

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
VERDICT = "verdict"  # set when a trial stopped itself: COLLAPSED or DIVERGED
REASON = "reason"  # why, in words
EPOCH_SECONDS = "epoch_seconds"
SECONDS = "seconds"  # training seconds so far, summed over epochs
NODE = "node"  # Ray node id of the worker that ran the epoch
NOTATION = "notation"
METRICS = (TRAIN_LOSS, VAL_LOSS, TRAIN_MSE, VAL_MSE, VAL_RMSE)

# The sweep's objective: validation MSE is comparable whatever loss a trial trained with.
OBJECTIVE = VAL_MSE
MODE = "min"

# Ray's own result keys we read back.
TRAINING_ITERATION = "training_iteration"
TRIAL_ID = "trial_id"

# Files in <storage>/<name>/.
LEADERBOARD_FILE = "leaderboard.csv"
SWEEP_FILE = "sweep.json"  # how the sweep was started: task, space, search, flags
STATUS_FILE = "trial_status.json"  # {trial_id: status}, rewritten as trials change state
BEST_DIR = "best"
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

# Trial statuses as Ray names them, plus what results/ infers for files alone.
TERMINATED, ERROR, RUNNING, PENDING, PAUSED = "TERMINATED", "ERROR", "RUNNING", "PENDING", "PAUSED"
STOPPED = "STOPPED"  # inferred: the sweep finished before the trial reached its epochs
COLLAPSED = "COLLAPSED"  # stopped itself: constant output, or a copy of its input
DIVERGED = "DIVERGED"  # stopped itself: NaN or inf loss

LEADERBOARD_COLUMNS = (
    "rank", "trial_id", "status", "task", "family", "notation", "conv_layers", "filters",
    "kernel", "pool_upsample", "dropout", "batchnorm", "dense_widths", "loss", "lr",
    "batch_size", "epochs", PARAMS, TRAIN_LOSS, VAL_LOSS, TRAIN_MSE, VAL_MSE, VAL_RMSE,
    SECONDS, NODE, "report_model", "report_val",
)
