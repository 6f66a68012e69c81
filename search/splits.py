"""The three-way split a sweep selected on, recorded in its folder (splits.json) and checked.

sweep.json's "data" records the split's recipe (seed, val_fraction, test_fraction); splits.json
records the split itself (its sizes and a fingerprint of its members), as `load_task` made it.
A resumed sweep, and a finalists run on a sweep, must find the same split: otherwise images
the search selected on could be the finalists' test images. Imports neither Ray nor TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from search.options import InputError
from spaces import constants as C


class SplitError(InputError):
    """A sweep folder whose recorded split differs from the one its data gives now."""


def recorded(folder: Path) -> dict[str, Any] | None:
    """splits.json of `folder`, or None if it has none (a sweep from before the test split)."""
    path = folder / C.SPLITS_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SplitError(f"{folder}: {C.SPLITS_FILE} cannot be read ({exc})") from None
    if not isinstance(record, dict):
        raise SplitError(f"{folder}: {C.SPLITS_FILE} is not a JSON object")
    return record


def check(folder: Path, now: dict[str, Any], *, what: str) -> None:
    """Refuse `what` (e.g. "--resume") in one line naming `folder` where its recorded split
    is not `now`."""
    before = recorded(folder)
    if before is None:
        raise SplitError(f"{folder}: {what} needs the sweep's recorded split ({C.SPLITS_FILE}), "
                         f"and this sweep has none: it ran before the train/validation/test "
                         f"split (its MNIST validation was the official test split). Run a new "
                         f"sweep")
    if before.get("fingerprint") != now.get("fingerprint"):
        keys = ("train", "val", "test", "seed", "val_fraction", "test_fraction", "fingerprint")
        was = {k: before.get(k) for k in keys if k in before or k in now}
        is_ = {k: now.get(k) for k in was}
        raise SplitError(f"{folder}: {what} refused: the sweep's split was {was}, the data "
                         f"gives {is_} now (other data files, seed or fractions)")


def record(folder: Path, now: dict[str, Any], *, resume: bool) -> None:
    """Write splits.json for a new sweep; on resume, check it (a sweep without one was
    refused earlier, by sweep.json's data options)."""
    from results.render import atomic_write_text

    if resume and recorded(folder) is not None:
        check(folder, now, what="--resume")
        return
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / C.SPLITS_FILE, json.dumps(now, indent=2))
