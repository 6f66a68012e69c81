"""Where a run's outputs go: refuse a --storage/--name that cannot be written, or a best/
folder holding files this project did not write, before anything runs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from search.options import InputError, check_name
from spaces import constants as C


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
