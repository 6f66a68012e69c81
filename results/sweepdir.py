"""Reading the raw files a sweep leaves in `<storage>/<name>/`, and nothing else.

The sweep writes these files while it runs and users read them at the same time, so a reader
here must accept a sweep at any moment of its life: trial directories without results yet, a
`result.json` whose last line is still being written, no status file, no `sweep.json`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from spaces import constants as C
from spaces.errors import UserError

# Ray names a trial directory `<trainable>_<trial_id>_<tag>_<date>`, trial ids being
# `<5 hex>_<5 digits>`; used only for trials that have reported nothing yet.
_RAY_TRIAL_ID = re.compile(r"(?:^|_)([0-9a-f]{5}_\d{5})(?:_|$)")


# (input, output, target) of one reconstructed image, each 2-D.
Triple = tuple[np.ndarray, np.ndarray, np.ndarray]


class ResultsError(UserError):
    """A path or file that is not what a sweep leaves; the message names it."""


def check_sweep_dir(path: str | Path) -> Path:
    """The sweep dir as a Path, or ResultsError naming `path` if it does not look like one."""
    sweep_dir = Path(path)
    if not sweep_dir.is_dir():
        raise ResultsError(f"{sweep_dir}: no such directory (expected a sweep directory)")
    if not (
        (sweep_dir / C.SWEEP_FILE).is_file()
        or (sweep_dir / C.STATUS_FILE).is_file()
        or trial_dirs(sweep_dir)
    ):
        raise ResultsError(
            f"{sweep_dir} is not a sweep directory: it has no {C.SWEEP_FILE}, no "
            f"{C.STATUS_FILE} and no trial directory holding {C.PARAMS_FILE}"
        )
    return sweep_dir


def trial_dirs(sweep_dir: Path) -> list[Path]:
    """Direct subdirectories holding a Ray trial's params.json, in name order."""
    return sorted(p.parent for p in sweep_dir.glob(f"*/{C.PARAMS_FILE}") if p.is_file())


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({what}): {exc}") from exc


def read_sweep_meta(sweep_dir: Path) -> dict[str, Any]:
    """sweep.json (task, search, finished, ...), or {} when the sweep did not write one."""
    path = sweep_dir / C.SWEEP_FILE
    if not path.is_file():
        return {}
    meta = _read_json(path, "the sweep's description")
    if not isinstance(meta, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def read_status(sweep_dir: Path) -> dict[str, str]:
    """{trial_id: status} from trial_status.json, or {} when missing."""
    path = sweep_dir / C.STATUS_FILE
    if not path.is_file():
        return {}
    status = _read_json(path, "trial statuses")
    if not isinstance(status, dict):
        raise ResultsError(f"{path}: expected an object {{trial_id: status}}")
    return {str(k): str(v) for k, v in status.items()}


def read_params(trial_dir: Path) -> dict[str, Any]:
    path = trial_dir / C.PARAMS_FILE
    params = _read_json(path, "the trial's Ray config")
    if not isinstance(params, dict) or not isinstance(params.get(C.MODEL_KEY), dict):
        raise ResultsError(f"{path}: expected a Ray config with a {C.MODEL_KEY!r} object")
    return params


def read_results(trial_dir: Path) -> list[dict[str, Any]]:
    """The rows of result.json (one per reported epoch); [] when there are none yet.

    The last line may be half-written by a running trial: it is dropped. A bad line anywhere
    else means a damaged file, which is an error.
    """
    path = trial_dir / C.RESULT_FILE
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines) - 1:
                break
            raise ResultsError(f"{path}, line {i + 1}: not valid JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise ResultsError(f"{path}, line {i + 1}: expected a JSON object per line")
        rows.append(row)
    return rows


def read_error(trial_dir: Path) -> str | None:
    """The last non-empty line of Ray's error.txt (usually the exception), or None."""
    path = trial_dir / C.ERROR_FILE
    if not path.is_file():
        return None
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else "failed (empty error.txt)"


def trial_id_of(trial_dir: Path, rows: list[dict[str, Any]], known: set[str]) -> str:
    """The Ray trial id: from its results, else a known id in the dir name, else Ray's pattern."""
    for row in reversed(rows):
        if row.get(C.TRIAL_ID):
            return str(row[C.TRIAL_ID])
    name = trial_dir.name
    for trial_id in sorted(known, key=len, reverse=True):
        if re.search(rf"(?:^|_){re.escape(trial_id)}(?:_|$)", name):
            return trial_id
    if m := _RAY_TRIAL_ID.search(name):
        return m[1]
    return trial_dir.name


def read_reconstructions(path: Path) -> list[Triple]:
    """(input, output, target) 2-D images from best/reconstructions.npz.

    The file holds either stacked `inputs`, `outputs`, `targets` (N, H, W, 1), or, for pages
    of different heights, one triple per page: `inputs_0`, `outputs_0`, `targets_0`, ...
    """
    names = ("inputs", "outputs", "targets")
    with np.load(path) as data:
        keys = set(data.files)
        if set(names) <= keys:
            stacks = [data[n] for n in names]
            if len({s.shape for s in stacks}) != 1 or stacks[0].ndim not in (3, 4):
                raise ResultsError(
                    f"{path}: inputs, outputs and targets must share one shape (N, H, W[, 1])"
                )
            return [_triple([s[i] for s in stacks], path) for i in range(len(stacks[0]))]
        triples: list[Triple] = []
        while all(f"{n}_{len(triples)}" in keys for n in names):
            triples.append(_triple([data[f"{n}_{len(triples)}"] for n in names], path))
    if not triples:
        raise ResultsError(
            f"{path}: expected arrays inputs/outputs/targets or inputs_0/outputs_0/targets_0..., "
            f"found {', '.join(sorted(keys)) or 'none'}"
        )
    return triples


def _triple(arrays: list[np.ndarray], path: Path) -> Triple:
    inputs, outputs, targets = (_image(a, path) for a in arrays)
    return inputs, outputs, targets


def _image(array: np.ndarray, path: Path) -> np.ndarray:
    image = np.squeeze(np.asarray(array, dtype=np.float32))
    if image.ndim != 2:
        raise ResultsError(f"{path}: expected single-channel images, got shape {array.shape}")
    return image
