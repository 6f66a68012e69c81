"""Every check of the command line's input that needs neither Ray nor the data.

`check_args` runs right after argparse, before anything is read, written or started: every flag
gets its type and range checked here, and a flag that does not apply to the task or the mode
(one configuration with `--config`, or a sweep) is refused instead of being ignored. The
checks that need the config (`check_config`), the output folder (`check_output`), the Ray
address (`check_address`) and the cluster (`unplaceable`) follow in their own functions, each
called as early as what it needs allows. Every refusal is an `InputError` (a `UserError`): one
line naming the flag, field or file, exit status 2.

`NameLock` keeps two drivers off one sweep name: a lock file in the sweep folder, held with
`fcntl.flock` for the driver's life, so the kernel releases it when the driver dies.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import math
import os
import re
import socket
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from spaces import constants as C
from spaces.config import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_LR, ModelConfig
from spaces.errors import UserError


class InputError(UserError):
    """A flag value, flag combination, config or output folder that cannot be used."""


# --- which flags apply where ------------------------------------------------------------------
# Flags of one task only (dest -> (task, why)).
TASK_ONLY = {
    "noise": ("mnist-denoise", "the noise added to the inputs"),
    "val_fraction": ("text", "the share of pages held out"),
    "patch_size": ("text", "training on patches of the pages"),
    "patches_per_page": ("text", "training on patches of the pages"),
    "resize": ("text", "resizing the pages"),
    "refit": ("text", "retraining on the validation pages too"),
}
# Flags of one configuration (--config) only: how that config is built and trained.
SINGLE_ONLY = ("pool", "dropout", "batchnorm", "loss", "optimizer", "lr", "batch_size",
               "epochs")
# Of those, the parts of the study's notation: a study row or a JSON file has its own.
NOTATION_ONLY = ("pool", "dropout", "batchnorm")
# Flags of a sweep only: one configuration runs once, without Ray, on this machine.
SWEEP_ONLY = ("space", "search", "scheduler", "num_samples", "grace_period", "report_images",
              "budget_epochs", "time_budget", "checkpoint_every", "rows", "warm_start",
              "refit", "resume", "address", "gpus_per_trial", "max_concurrent")

# --- numeric ranges ---------------------------------------------------------------------------
MAX_SEED = 2**31 - 1  # numpy's and Optuna's seeds must stay below 2**32, repeats add to it
MAX_IMAGE_SIDE = 8192  # --resize; the study's pages are 420x540
MAX_PATCHES_PER_PAGE = 10_000
MAX_NOISE = 10.0  # sigma of the Gaussian noise on [0, 1] images: 10 is noise only
# dest -> (kind, low, high, low_inclusive); kind "int" or "float"; None: unbounded.
RANGES: dict[str, tuple[str, float | None, float | None, bool]] = {
    "num_samples": ("int", 1, None, True),
    "max_epochs": ("int", 1, MAX_EPOCHS, True),
    "grace_period": ("int", 1, None, True),
    "report_images": ("int", 1, None, True),
    "budget_epochs": ("float", 0, None, False),
    "time_budget": ("float", 0, None, False),
    "checkpoint_every": ("int", 1, None, True),
    "seed": ("int", 0, MAX_SEED, True),
    "max_params": ("int", 1, None, True),
    "max_activation_mb": ("float", 0, None, False),
    "cpus_per_trial": ("float", 0, None, False),
    "gpus_per_trial": ("float", 0, None, True),
    "max_concurrent": ("int", 1, None, True),
    "subset": ("int", 1, None, True),
    "val_subset": ("int", 1, None, True),
    "noise": ("float", 0, MAX_NOISE, False),
    "val_fraction": ("float", 0, 1, False),  # and below 1, checked apart
    "patch_size": ("int", 1, MAX_IMAGE_SIDE, True),
    "patches_per_page": ("int", 1, MAX_PATCHES_PER_PAGE, True),
    "lr": ("float", 0, MAX_LR, False),
    "batch_size": ("int", 1, MAX_BATCH_SIZE, True),
    "epochs": ("int", 1, MAX_EPOCHS, True),
}
# A sweep name: one plain path component (it becomes <storage>/<name>/).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,127}")
MAX_CONFIG_BYTES = 1 << 20  # a config JSON file is a few hundred bytes
ADDRESS_TIMEOUT_S = 5.0
LOCK_FILE = ".driver.lock"


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def given_flags(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> set[str]:
    """The dests of the flags the command line sets, whatever their defaults are.

    Parses `argv` again with every default suppressed, so a flag given with its default value
    (`--noise 0.5`) counts as given, and argparse's own prefix matching (`--patch 96`) agrees.
    """
    import copy
    import sys

    quiet = copy.deepcopy(parser)
    for action in quiet._actions:  # noqa: SLF001 - argparse has no public way to do this
        action.default = argparse.SUPPRESS
        action.required = False
    namespace = quiet.parse_args(list(sys.argv[1:] if argv is None else argv))
    return set(vars(namespace))


def _number(dest: str, value: Any) -> None:
    kind, low, high, low_inclusive = RANGES[dest]
    name = flag(dest)
    if kind == "float" and not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and value > high
    if too_low or too_high:
        lower = "" if low is None else f"{'at least' if low_inclusive else 'more than'} {low!r}"
        upper = "" if high is None else f"at most {high!r}"
        bounds = " and ".join(b for b in (lower, upper) if b)
        raise InputError(f"{name} must be {bounds}, got {value!r}")


def config_kind(text: str) -> str:
    """What a --config value is: "row" (a study row id such as text/3.3/5), "file" (a config
    JSON file) or "notation" (the study's notation, such as 4L,32F(3X3))."""
    text = text.strip()
    if text.endswith(".json"):
        return "file"
    return "row" if text.count("/") == 2 else "notation"


def check_args(args: argparse.Namespace, given: Iterable[str]) -> None:  # noqa: C901, PLR0912
    """Refuse bad flag values and flags that do not apply, naming the flag. Reads nothing."""
    given = set(given)
    single = args.config is not None
    if single and not args.config.strip():
        raise InputError("--config is empty: give the study's notation, a study row id or a "
                         "config JSON file (leave --config out to run a sweep)")
    for dest in RANGES:
        value = getattr(args, dest, None)
        if value is not None:
            _number(dest, value)
    if args.val_fraction is not None and not args.val_fraction < 1:
        raise InputError(f"--val-fraction must be less than 1, got {args.val_fraction!r}")
    if args.gpus_per_trial is not None and args.gpus_per_trial > 1 \
            and args.gpus_per_trial != int(args.gpus_per_trial):
        raise InputError(f"--gpus-per-trial above 1 must be a whole number of GPUs, got "
                         f"{args.gpus_per_trial:g}")
    if args.resize is not None:
        height, width = args.resize
        if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
            raise InputError(f"--resize sides must be between 1 and {MAX_IMAGE_SIDE}, got "
                             f"{height}x{width}")
        if args.patch_size is not None and args.patch_size > min(height, width):
            raise InputError(f"--patch-size {args.patch_size} is larger than the "
                             f"{height}x{width} pages of --resize")
    for dest, (task, why) in TASK_ONLY.items():
        if dest in given and args.task != task:
            raise InputError(f"{flag(dest)} is for --task {task} only ({why}); --task "
                             f"{args.task} does not use it")
    if single:
        kind = config_kind(args.config)
        for dest in NOTATION_ONLY:
            if dest in given and kind != "notation":
                what = "study row" if kind == "row" else "config file"
                raise InputError(f"{flag(dest)} is part of the study's notation; the {what} "
                                 f"{args.config.strip()} has its own {dest}")
        cores = os.cpu_count() or 1
        if args.cpus_per_trial is not None and args.cpus_per_trial > cores:
            raise InputError(f"--cpus-per-trial {args.cpus_per_trial:g}: this machine has "
                             f"{cores} CPUs (--config trains here, on that many threads)")
        for dest in SWEEP_ONLY:
            if dest in given:
                raise InputError(f"{flag(dest)} is for sweeps; --config trains one "
                                 f"configuration (leave out one or the other)")
        if "max_epochs" in given and "epochs" in given and args.max_epochs != args.epochs:
            raise InputError(f"--epochs {args.epochs} and --max-epochs {args.max_epochs} "
                             f"disagree; with --config, give --epochs")
    else:
        for dest in SINGLE_ONLY:
            if dest in given:
                raise InputError(f"{flag(dest)} sets the one configuration of --config; a "
                                 f"sweep samples it from --space")
        if "grace_period" in given and args.scheduler == "fifo":
            raise InputError("--grace-period is ASHA's; --scheduler fifo never stops a trial "
                             "early")
        if args.rows is not None and not args.rows:
            raise InputError("--rows is empty: give study row ids such as mnist/1.2/2")
        search = args.search or ("grid" if args.space == "report" else "optuna")
        if args.warm_start and search == "grid":
            raise InputError("--warm-start seeds Optuna; --search grid replays fixed points")
    for dest, what in (("storage", "a folder or a URI"), ("data_dir", "a folder"),
                       ("address", "local, auto or host:port")):
        value = getattr(args, dest)
        if value is not None and not value.strip():
            raise InputError(f"{flag(dest)} is empty: give {what}")
    if args.name is not None:
        check_name(args.name)
    if args.data_dir is not None and not Path(args.data_dir).expanduser().is_dir():
        raise InputError(f"--data-dir {args.data_dir}: no such folder")


def check_name(name: str) -> None:
    """A sweep name is one plain path component, so that its folder stays inside --storage."""
    if not NAME_PATTERN.fullmatch(name):
        raise InputError(
            f"--name {name!r} is not a plain name: use letters, digits and . _ + = - (starting "
            f"with a letter or digit, at most 128 characters); it becomes one folder in "
            f"--storage"
        )


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


# --- where the outputs go ---------------------------------------------------------------------
def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe_writable(folder: Path, what: str) -> None:
    """Create and remove a file in `folder`: the only test of writability that root, ACLs and
    read-only mounts all answer truthfully."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
    except OSError as exc:
        raise InputError(f"{what}: cannot write in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def check_output(storage: str, name: str) -> Path:
    """Refuse a --storage/--name that cannot be written, before anything runs; returns the
    folder of this run's own files (<storage>/<name>, or ./runs/<name> for URI storage)."""
    check_name(name)
    if "://" in storage:
        root = Path("runs")
        what = f"--storage {storage} (the leaderboard and best/ go to ./runs/{name})"
    else:
        root = Path(storage).expanduser()
        what = f"--storage {storage}"
    target = (root / name).absolute()
    existing = _existing_ancestor(target)
    if not existing.is_dir():
        raise InputError(f"{what}: {existing} is a file, not a folder")
    _probe_writable(existing, what)
    best = target / C.BEST_DIR
    if best.exists() or best.is_symlink():
        foreign = foreign_entries(best)
        if foreign:
            raise InputError(f"--name {name}: {best} holds files this project did not write "
                             f"({', '.join(foreign[:3])}); move them, or choose another "
                             f"--name")
    return target


# Everything an export writes into best/ (and nothing else).
EXPORT_FILES = frozenset({C.MODEL_FILE, C.CONFIG_FILE, C.NOTATION_FILE, C.METRICS_FILE,
                          C.RECONSTRUCTIONS_FILE, C.STATE_FILE})


def foreign_entries(best: Path) -> list[str]:
    """What in a best/ folder an export did not write: [] if it is ours to replace."""
    if best.is_symlink() or not best.is_dir():
        return [f"{best.name} is not a folder"]
    return sorted(p.name for p in best.iterdir()
                  if p.name not in EXPORT_FILES or p.is_symlink() or not p.is_file())


def check_single_target(storage: str, name: str) -> Path:
    """The best/ of a single run: refused if --name belongs to a sweep, or is not writable."""
    target = check_output(storage, name)
    if (target / C.SWEEP_FILE).exists():
        raise InputError(f"--name {name} is a sweep's ({target / C.SWEEP_FILE}); only the sweep "
                         f"writes its best/: give this run another --name")
    return target / C.BEST_DIR


# --- Ray --------------------------------------------------------------------------------------
def check_address(address: str | None) -> None:
    """Refuse an --address (or $RAY_ADDRESS) where nothing listens, within seconds: Ray itself
    would retry without end."""
    source = "--address"
    if address is None:
        address, source = os.environ.get("RAY_ADDRESS") or "", "$RAY_ADDRESS"
        if not address:
            return
    if address in ("local", "auto"):
        return
    match = re.fullmatch(r"(?:ray://)?(\[[^\]]+\]|[^:/\s]+):(\d{1,5})", address.strip())
    if not match or not 1 <= int(match[2]) <= 65535:
        raise InputError(f"{source} {address!r}: expected local, auto or host:port "
                         f"(e.g. 10.0.0.5:6379)")
    host, port = match[1].strip("[]"), int(match[2])
    try:
        with socket.create_connection((host, port), timeout=ADDRESS_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {ADDRESS_TIMEOUT_S:g} s"
        raise InputError(f"{source} {address}: no Ray cluster reachable there ({reason})") \
            from None


def unplaceable(nodes: list[dict[str, Any]], cpus: float, gpus: float) -> str | None:
    """Why no live node can ever run a trial asking for `cpus` and `gpus`, or None.

    A trial runs on one node, so the largest node decides, not the cluster's total.
    """
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in alive):
        return None
    most_cpus = max((r.get("CPU", 0) for r in alive), default=0)
    most_gpus = max((r.get("GPU", 0) for r in alive), default=0)
    if gpus and most_gpus < gpus:
        return (f"--gpus-per-trial {gpus:g}: no node has {gpus:g} GPU(s) (the most is "
                f"{most_gpus:g})")
    return (f"--cpus-per-trial {cpus:g}: no node has {cpus:g} CPUs"
            f"{f' and {gpus:g} GPU(s)' if gpus else ''} (the most is {most_cpus:g})")


# --- one driver per name ----------------------------------------------------------------------
class NameLock:
    """An exclusive `fcntl.flock` on <folder>/.driver.lock for as long as the driver runs.

    The kernel drops the lock when the process dies, however it dies, so a crashed driver never
    blocks the next one. A second driver on the same name is refused with the holder's pid.
    If the folder did not exist before and holds nothing else when the lock is released (the
    run was refused or failed early), the lock file and the folder are removed again.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.path = folder / LOCK_FILE
        self._fd: int | None = None
        self._created = False

    def __enter__(self) -> NameLock:
        self._created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise InputError(f"--name {self.name}: another driver (pid {holder}) is running "
                                 f"on it in {self.folder}; wait for it, or choose another "
                                 f"--name") from None
            try:  # a releasing driver may have removed the file we opened: lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is None:
            return
        try:
            if self._created and [p.name for p in self.folder.iterdir()] == [LOCK_FILE]:
                self.path.unlink()  # still holding the lock: no one else can be using it
                self.folder.rmdir()
        except OSError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None
