"""`--config`: train one configuration without Ray, print its epochs, export it to best/."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

from search.data import DataOptions, load_task
from search.lock import NameLock
from search.options import InputError, Options, config_kind
from search.outputs import check_single_target
from spaces import constants as C
from spaces import study, task_bounds
from spaces.config import ConfigError, ModelConfig
from spaces.guard import EVAL_PAGES, check
from spaces.notation import parse_row

MAX_CONFIG_BYTES = 1 << 20  # a config JSON file is a few hundred bytes


def check_config(config: ModelConfig, image: tuple[int, int], patch_size: int | None, *,
                 varying: bool = False) -> None:
    """What only the image size tells about a config: its kernel and a dense output width.
    `varying`: the images have no one size (text pages without --resize)."""
    height, width = image
    if config.family == "dense" and varying:
        raise InputError("config family dense needs one fixed image size, but the document "
                         "pages are 258 or 420 high: add --resize 420x540, or use a conv model")
    if config.family == "conv":
        sides = [] if varying else [(f"{height}x{width} images", min(height, width))]
        if patch_size is not None:
            sides.append((f"{patch_size}-pixel patches of --patch-size", patch_size))
        for what, side in sides:
            if config.kernel > side:
                raise InputError(f"config kernel {config.kernel} is larger than the {what}")
    elif config.dense_widths[-1] != height * width:
        raise InputError(
            f"config dense_widths: the last width is the output layer and must be "
            f"{height}*{width}={height * width} for {height}x{width} images, got "
            f"{config.dense_widths[-1]}"
        )


def resolve_config(args: Options) -> ModelConfig:
    """--config as a study row id, a JSON file, or the study's notation plus training flags."""
    text = (args.config or "").strip()
    kind = config_kind(text)
    if kind == "row":
        try:
            config = study.row(text).config
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
    else:  # the study's notation: its batch size and epochs for the task unless flags say
        config = parse_row(text, args.pool, args.dropout, args.batchnorm, task=args.task,
                           **study.training_defaults(args.task))
    overrides = {
        "loss": args.loss, "optimizer": args.optimizer, "lr": args.lr,
        "batch_size": args.batch_size,
        "epochs": args.epochs if args.epochs is not None else args.max_epochs,
    }
    return config.replace(**{k: v for k, v in overrides.items() if v is not None})


def guard_limits(args: Options) -> dict[str, Any]:
    bounds = task_bounds(args.task)
    return {
        "max_params": bounds.max_params if args.max_params is None else args.max_params,
        "max_activation_mb": (bounds.max_activation_mb if args.max_activation_mb is None
                              else args.max_activation_mb),
    }


def guard_shape(args: Options) -> tuple[int, int]:
    height, width = args.resize if args.resize else task_bounds(args.task).input_shape
    return int(height), int(width)


DEFAULT_TEXT_PATCH = 96  # text on CPU trains on patches of this size unless --patch-size


def _gpu_present() -> bool:
    """An NVIDIA GPU on this machine (checked without importing TensorFlow)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def default_patches(args: Options, gpu: bool) -> tuple[Options, str | None]:
    """Text without --patch-size and without a GPU trains on patches: the options with that
    patch size, and the sentence that says so (None where nothing changed)."""
    if args.task != "text" or args.patch_size is not None or gpu:
        return args, None
    args = dataclasses.replace(args, patch_size=DEFAULT_TEXT_PATCH)
    where = ("no GPU on this machine" if args.config
             else "no --gpus-per-trial, so trials run on CPUs")
    return args, (f"text, {where}: training on {DEFAULT_TEXT_PATCH}x{DEFAULT_TEXT_PATCH} "
                  f"patches ({args.patches_per_page} per page; validation on whole pages); "
                  f"--patch-size sets another size" + (
                      "" if args.config else ", --gpus-per-trial trains whole pages on GPUs"))


def guard_fit(args: Options) -> dict[str, Any]:
    """How `check` sizes a single run: training at the patch size, validation of whole pages
    a few at a time; a refusal names --batch-size, --patch-size (text) and the limits."""
    fit: dict[str, Any] = {"fixes": ("batch", "patch", "limit") if args.task == "text"
                 else ("batch", "limit")}
    if args.task == "text":
        fit["eval_batch"] = EVAL_PAGES
        if args.patch_size:
            fit["train_shape"] = (args.patch_size, args.patch_size)
    return fit


def study_figure(config: ModelConfig) -> tuple[study.StudyRow | None, str]:
    """The study row `config` replays (same architecture) and a line with its figure."""
    row = study.match(config)
    if row is None:
        return None, ""
    what = "validation MSE" if row.loss == "mse" else f"validation {row.loss} (not an MSE)"
    differs = [f"{name} {theirs}" for name, ours, theirs in (
        ("loss", config.loss, row.loss), ("batch", config.batch_size, row.batch_size),
        ("epochs", config.epochs, row.epochs)) if ours != theirs]
    note = f"; the study trained with {', '.join(differs)}" if differs else ""
    return row, (f"study row {row.id}: train/validation {row.train:g}/{row.val:g}, its "
                 f"{what} after {row.epochs} epochs{note}")


def free_best_dir(run_dir: Path) -> Path:
    """best/ in `run_dir`, or best-2/, best-3/, ... where an earlier run left one."""
    target = run_dir / C.BEST_DIR
    n = 2
    while target.exists():
        target = run_dir / f"{C.BEST_DIR}-{n}"
        n += 1
    return target


def run_single(args: Options) -> int:
    """Check everything that can be checked (config, guard, output folder), then train."""
    from search.console import quiet_libraries

    verbose = args.verbose
    quiet_libraries(verbose)
    args, patches = default_patches(args, _gpu_present())
    config = resolve_config(args)
    shape = guard_shape(args)
    check_config(config, shape, args.patch_size, varying=args.task == "text" and not args.resize)
    check(config, shape, **guard_limits(args), **guard_fit(args))
    name = args.resolved_name
    run_dir = check_single_target(args.storage, name).parent  # before an epoch is spent
    with NameLock(run_dir, name):
        best = free_best_dir(run_dir)
        if patches:
            print(patches)
        return train_single(args, config, best, verbose=verbose)


def train_single(args: Options, config: ModelConfig, best: Path, *,
                 verbose: bool = False) -> int:
    """Load the data, train `config`, print each report and export it to `best`."""
    from search.console import quiet_native_stderr
    from search.export import write_best
    from search.precision import resolve
    from search.trial import Trial, configure_backend

    run_dir = best.parent
    with quiet_native_stderr(run_dir / "stderr.log", verbose):  # TensorFlow's start-up lines
        configure_backend(args.cpus_per_trial)
    data = load_task(args.task, DataOptions.from_options(args))
    trial = Trial(config, data, seed=args.seed, precision=resolve(args.precision))
    print(f"{trial.notation}  ({config.family}, loss {config.loss}, lr {config.lr:g}, "
          f"batch {config.batch_size}, {config.epochs} epochs, {trial.precision})")
    print(f"parameters: {trial.params:,}   training examples: {data.n_train:,}")
    row, line = study_figure(config)
    if line:
        print(line)
    metrics: dict = {}
    for metrics in trial.reports():
        print(f"epoch {metrics[C.EPOCH]:>3g}/{config.epochs}  "
              f"train_loss {metrics[C.TRAIN_LOSS]:.5f}  val_loss {metrics[C.VAL_LOSS]:.5f}  "
              f"train_mse {metrics[C.TRAIN_MSE]:.5f}  val_mse {metrics[C.VAL_MSE]:.5f}  "
              f"val_rmse {metrics[C.VAL_RMSE]:.5f}  {metrics[C.EPOCH_SECONDS]:.1f}s", flush=True)
    if row is not None and metrics:
        print(f"ours: val_mse {metrics[C.VAL_MSE]:.5f} after {metrics[C.EPOCH]:g} epochs; "
              f"the study's {row.id}: {row.val:g}")
    if metrics.get(C.VERDICT):
        print(f"{metrics[C.VERDICT]}: {metrics.get(C.REASON, '')}")
    with tempfile.TemporaryDirectory() as checkpoint:
        trial.save(checkpoint, metrics)
        write_best(Path(checkpoint), trial.model, data, metrics, best)
    kept = "" if best.name == C.BEST_DIR else f" ({run_dir / C.BEST_DIR} from an earlier run kept)"
    print(f"model saved: {best / C.MODEL_FILE}{kept}")
    return 0
