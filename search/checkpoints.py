"""Which trials keep their checkpoints: a sweep's disk bounded by `--keep-checkpoints`.

A trial's checkpoint holds its model with the optimizer's state and a few reconstructions:
about 1 MB for a 100,000-parameter model, so a 2,000-trial sweep that kept them all held
about 2 GB (issue 25). What needs a checkpoint once a trial has ended:
- export (`best/`, `python -m search.export`): the best healthy trial's;
- the finalists: the next best, for whoever wants their weights (`--keep-checkpoints K` keeps
  the K best healthy trials', ranked as the leaderboard ranks them: val_mse, then fewer
  parameters, then trial id);
- resume: a trial that may run again. Ray retries an errored trial from its checkpoint, and
  reruns one that ended after Ray's last experiment-state snapshot, so errored trials keep
  theirs, and a pruned trial leaves `pruned.json` (its last result) in its directory: a rerun
  reports that result again and trains nothing (`search/trainable.py`).
Every other trial's `checkpoint_*` folders are removed as it ends (its `result.json`,
`params.json` and `progress.csv` stay), and a trial pushed out of the K best by a better one
loses its checkpoints then. Pure bookkeeping (`Finalists`) is apart from Ray's callback
(`CheckpointPruner`), so that the policy is tested without Ray.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ray import tune

from spaces import constants as C

PRUNED_FILE = "pruned.json"  # in a trial's directory: its last result, checkpoints removed
CHECKPOINT_GLOB = "checkpoint_*"


def rank_key(result: dict[str, Any], trial_id: str) -> tuple[float, float, str] | None:
    """The leaderboard's order for a healthy trial's last result; None for one that never
    ranks (a verdict: collapsed, diverged, refused; or no finite val_mse)."""
    value = result.get(C.VAL_MSE)
    if result.get(C.VERDICT) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    params = result.get(C.PARAMS)
    return float(value), float(params) if isinstance(params, (int, float)) else math.inf, trial_id


@dataclass
class Finalists:
    """The `keep` best ended trials (0: every trial keeps its checkpoints)."""

    keep: int
    ranked: list[tuple[float, float, str]] = field(default_factory=list)

    def ended(self, trial_id: str, result: dict[str, Any]) -> list[str]:
        """A trial ended with `result`: the trials whose checkpoints can go now (it, or the
        one it pushed out of the `keep` best, or none)."""
        if self.keep <= 0:
            return []
        key = rank_key(result, trial_id)
        if key is None:
            return [trial_id]
        if any(k[2] == trial_id for k in self.ranked):
            return []  # told twice (a restored sweep): nothing changed
        bisect.insort(self.ranked, key)
        cut = self.keep
        while cut < len(self.ranked) and self.ranked[cut][0] == self.ranked[cut - 1][0]:
            cut += 1  # a tie with the last kept stays: any of them may be called best
        out = self.ranked[cut:]
        del self.ranked[cut:]
        return [k[2] for k in out]


def _filesystem_and_dir(trial: Any) -> tuple[Any, str] | None:
    try:
        return trial.storage.storage_filesystem, str(trial.path)
    except Exception:  # noqa: BLE001 - a trial that has no storage yet: nothing to prune
        return None


def prune(trial: Any) -> int:
    """Remove `trial`'s checkpoint folders, after writing its last result to `pruned.json`
    beside them; returns the folders removed. Works on any storage Ray writes to."""
    from pyarrow import fs as pafs

    located = _filesystem_and_dir(trial)
    if located is None:
        return 0
    filesystem, trial_dir = located
    # A trial ASHA stopped at its first report never checkpointed, and Ray may not have made
    # its folder on the storage yet.
    filesystem.create_dir(trial_dir, recursive=True)
    with filesystem.open_output_stream(f"{trial_dir}/{PRUNED_FILE}") as out:
        out.write(json.dumps(trial.last_result or {}, default=str).encode())
    selector = pafs.FileSelector(trial_dir, allow_not_found=True)
    folders = [info.path for info in filesystem.get_file_info(selector)
               if info.type == pafs.FileType.Directory
               and info.base_name.startswith(CHECKPOINT_GLOB[:-1])]
    for folder in folders:
        filesystem.delete_dir(folder)
    return len(folders)


def pruned_result(storage: Any) -> dict[str, Any] | None:
    """The last result a pruned trial left (`pruned.json` in its directory), else None;
    `storage` is the trial's Ray storage context (`session.storage`)."""
    from pyarrow import fs as pafs

    path = f"{storage.trial_fs_path}/{PRUNED_FILE}"
    filesystem = storage.storage_filesystem
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        result = json.loads(stream.read().decode())
    return result if isinstance(result, dict) else None


class CheckpointPruner(tune.Callback):
    """Removes the checkpoints of ended trials outside the `keep` best, as they end.

    It holds no path (each trial knows its own, also in a moved sweep), so a restored sweep
    needs no relocation; restored, it learns the ended trials again from Ray's.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._finalists = Finalists(keep)
        self._told: set[str] = set()
        self._caught_up = False

    def setup(self, stop: Any = None, num_samples: int | None = None,
              total_num_samples: int | None = None, **info: Any) -> None:
        self._finalists = Finalists(self.keep)  # rebuilt from Ray's trials at the first step
        self._told = set()
        self._caught_up = False

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self.keep > 0 and not self._caught_up:
            # A restored sweep: rank what ended before, so that the K best stay the K best.
            self._caught_up = True
            for t in trials:
                if t.status == C.Status.TERMINATED:
                    self._end(t, trials)

    def _end(self, trial: Any, trials: list[Any]) -> None:
        if trial.trial_id in self._told:
            return
        self._told.add(trial.trial_id)
        by_id = {t.trial_id: t for t in trials}
        for trial_id in self._finalists.ended(trial.trial_id, trial.last_result or {}):
            gone = by_id.get(trial_id)
            if gone is not None and gone.status != C.Status.ERROR:
                try:
                    prune(gone)
                except Exception as exc:  # noqa: BLE001 - a checkpoint kept, never a sweep lost
                    print(f"warning: could not prune the checkpoints of trial {trial_id}: "
                          f"{type(exc).__name__}: {exc}")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.keep > 0:
            self._end(trial, trials)
