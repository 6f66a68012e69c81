"""`--config`: train one configuration without Ray, print its epochs, export it to best/."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from search.checks import (
    MAX_CONFIG_BYTES,
    NameLock,
    check_config,
    check_single_target,
    config_kind,
)
from search.data import DataOptions, load_task
from spaces import constants as C
from spaces import report, task_bounds
from spaces.config import ConfigError, ModelConfig
from spaces.guard import check
from spaces.notation import parse_row


def resolve_config(args: argparse.Namespace) -> ModelConfig:
    """--config as a study row id, a JSON file, or the study's notation plus training flags."""
    text = args.config.strip()
    kind = config_kind(text)
    if kind == "row":
        try:
            config = report.row(text).config
        except KeyError as err:
            raise ConfigError(f"--config {text}: {err.args[0]}") from None
        if config.task != args.task:
            raise ConfigError(f"--config {text} is a {config.task} row, but --task is {args.task}")
    elif kind == "file":
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"--config: no such file {path}")
        try:  # every JSON problem (syntax, depth, fields) is a ConfigError; bad UTF-8 too
            if path.stat().st_size > MAX_CONFIG_BYTES:
                raise ConfigError(f"{path.stat().st_size:,} bytes is no config (at most "
                                  f"{MAX_CONFIG_BYTES:,})")
            config = ModelConfig.from_json(path.read_bytes(), task=args.task)
        except (ValueError, OSError) as exc:  # ConfigError is a ValueError; unreadable files
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"--config {path}: {reason}") from None
    else:
        config = parse_row(text, args.pool, args.dropout, args.batchnorm, task=args.task)
    overrides = {
        "loss": args.loss, "optimizer": args.optimizer, "lr": args.lr,
        "batch_size": args.batch_size,
        "epochs": args.epochs if args.epochs is not None else args.max_epochs,
    }
    return config.replace(**{k: v for k, v in overrides.items() if v is not None})


def guard_limits(args: argparse.Namespace) -> dict:
    bounds = task_bounds(args.task)
    return {
        "max_params": bounds.max_params if args.max_params is None else args.max_params,
        "max_activation_mb": (bounds.max_activation_mb if args.max_activation_mb is None
                              else args.max_activation_mb),
    }


def guard_shape(args: argparse.Namespace) -> tuple[int, int]:
    height, width = args.resize if args.resize else task_bounds(args.task).input_shape
    return int(height), int(width)


def run_single(args: argparse.Namespace) -> int:
    """Check everything that can be checked (config, guard, output folder), then train."""
    config = resolve_config(args)
    shape = guard_shape(args)
    check_config(config, shape, args.patch_size, varying=args.task == "text" and not args.resize)
    check(config, shape, **guard_limits(args))
    name = args.name or f"{args.task}-single"
    best = check_single_target(args.storage, name)  # before an epoch is spent
    with NameLock(best.parent, name):
        return train_single(args, config, best)


def train_single(args: argparse.Namespace, config: ModelConfig, best: Path) -> int:
    """Load the data, train `config`, print each epoch and export it to `best`."""
    from search.export import write_best
    from search.trial import Trial, configure_backend

    configure_backend(args.cpus_per_trial)
    data = load_task(args.task, DataOptions.from_args(args))
    trial = Trial(config, data, seed=args.seed)
    print(f"{trial.notation}  ({config.family}, loss {config.loss}, lr {config.lr:g}, "
          f"batch {config.batch_size}, {config.epochs} epochs)")
    print(f"parameters: {trial.params:,}   training examples: {data.n_train}")
    metrics: dict = {}
    for metrics in trial.reports():
        print(f"epoch {metrics[C.EPOCH]:>3g}/{config.epochs}  "
              f"train_loss {metrics[C.TRAIN_LOSS]:.5f}  val_loss {metrics[C.VAL_LOSS]:.5f}  "
              f"train_mse {metrics[C.TRAIN_MSE]:.5f}  val_mse {metrics[C.VAL_MSE]:.5f}  "
              f"val_rmse {metrics[C.VAL_RMSE]:.5f}  {metrics[C.EPOCH_SECONDS]:.1f}s", flush=True)
    with tempfile.TemporaryDirectory() as checkpoint:
        trial.save(checkpoint, metrics)
        write_best(Path(checkpoint), trial.model, data, metrics, best)
    print(f"model saved: {best / C.MODEL_FILE}")
    return 0
