"""A sweep from Python: the command line's options as keywords, a result to read.

    from search import Sweep
    result = Sweep(task="mnist-denoise", time_budget="20m", subset=5000).run()
    result.leaderboard                   # pandas DataFrame: leaderboard.csv
    result.best.config, result.best.model_path
    result.tables(out="report/")         # what `python -m results` writes
    result.refit(refit_epochs=50).table  # the finalists stage: the like-for-like table
    Sweep.resume("runs/mnist-denoise-default").run()

Every keyword is an option of `search/options.py` (`--time-budget 20m` is `time_budget="20m"`
or `time_budget=1200`), checked as the command line checks it. `run()` returns; bad input
raises the project's `UserError` subclasses (`InputError`, `SweepError`, `DataError`, ...), a
failed export `ExportError`. It runs on the Ray this process already joined (`ray.init`), else
on the cluster `address=` names, else on a local Ray it starts and stops again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.options import RESUME_FIXED, InputError, Options, default_of, from_values
from spaces import constants as C
from spaces.config import ModelConfig

if TYPE_CHECKING:
    import pandas as pd

    from results.generator import Outputs
    from search.refit import Outcome as Finalists


@dataclass(frozen=True)
class Best:
    """The sweep's best trial as exported to best/: its config, model file and metrics."""

    config: ModelConfig
    model_path: Path
    metrics: dict[str, Any]


@dataclass(frozen=True)
class SweepResult:
    """What a sweep left in its folder. `finished`: every trial ended (False after Ctrl-C or an
    early end: `Sweep.resume(result.experiment_dir)` continues it)."""

    experiment_dir: Path
    finished: bool
    interrupted: bool = False

    @property
    def leaderboard(self) -> pd.DataFrame:
        """The leaderboard's rows, best first (leaderboard.csv)."""
        from results.render import read_csv

        return read_csv(self.experiment_dir / C.LEADERBOARD_FILE)

    @property
    def best(self) -> Best | None:
        """The exported best trial, or None where no trial finished with a checkpoint."""
        best = self.experiment_dir / C.BEST_DIR
        if not (best / C.MODEL_FILE).is_file():
            return None
        return Best(config=ModelConfig.from_json((best / C.CONFIG_FILE).read_text()),
                    model_path=best / C.MODEL_FILE,
                    metrics=json.loads((best / C.METRICS_FILE).read_text()))

    def refit(self, **options: Any) -> Finalists:
        """The sweep's finalists stage (`aesearch refit`): `top_k`, `repeats`, `refit_epochs`,
        `study_rows` and where to run (`address`, `cpus_per_trial`, ...), as the command
        line's flags. Rerun it to resume; `.table` is the like-for-like table."""
        from search.refit import refit

        return refit(self.experiment_dir, **options)

    def tables(self, out: str | Path | None = None, top_k: int = 5) -> Outputs:
        """Write the leaderboards, the study's comparison tables and the plots (what
        `python -m results` writes) to `out` (default: the sweep's folder)."""
        from results.generator import generate

        return generate([self.experiment_dir], out=out, top_k=top_k)


class Sweep:
    """A sweep of `task`, with any option of the command line's `sweep` as a keyword."""

    def __init__(self, task: str, **options: Any) -> None:
        if "config" in options:
            raise InputError("Sweep searches a space; one configuration trains with "
                             "`aesearch train --config ...`")
        values = {"task": task, **options}
        self.options: Options = from_values(values)
        self.given = set(values)

    @classmethod
    def resume(cls, sweep_dir: str | Path) -> Sweep:
        """The sweep in `sweep_dir` (a <storage>/<name> folder), to continue where it stopped,
        with the options it was started with (sweep.json)."""
        folder = Path(sweep_dir).expanduser().absolute()
        sweep_file = folder / C.SWEEP_FILE
        try:
            meta = json.loads(sweep_file.read_text())
        except FileNotFoundError:
            raise InputError(f"{folder}: no sweep here ({C.SWEEP_FILE} is missing)") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{sweep_file}: cannot be read ({exc})") from None
        values = _recorded_options(meta)
        storage = meta.get("storage") or str(folder.parent)  # a URI, else where it is now
        name = meta.get("name") if meta.get("storage") else folder.name
        return cls(**values, storage=storage, name=name, resume=True)

    def run(self) -> SweepResult:
        """Check the options, run (or resume) the sweep, export its best; never exits."""
        from search.launch import start

        self.options.check(self.given)
        outcome = start(self.options)
        return SweepResult(outcome.experiment_dir, outcome.finished, outcome.interrupted)


# sweep.json's keys for the options a resume does not compare, where they differ.
_RECORDED_AS = {"time_budget": "time_budget_s"}
_ALSO_RECORDED = ("grace_period", "checkpoint_every", "report_images", "budget_epochs",
                  "time_budget", "warm_start", "cpus_per_trial", "gpus_per_trial",
                  "max_concurrent", "precision")


def _recorded_options(meta: dict[str, Any]) -> dict[str, Any]:
    """The options sweep.json records, as keywords: those left at their default are left
    out, so that no option counts as given that the sweep did not use (--noise on mnist)."""
    recorded = {name: meta.get(_RECORDED_AS.get(name, name))
                for name in (*RESUME_FIXED, *_ALSO_RECORDED)}
    recorded.update(meta.get("data") or {})
    if recorded.get("num_samples") == -1:  # until the budget is spent: the default then
        recorded["num_samples"] = None
    if recorded.get("scheduler") != "asha":
        recorded.pop("grace_period")
    for name in ("rows", "resize", "objectives"):
        value = recorded.get(name)
        if value is not None:
            recorded[name] = tuple(value)
    recorded.pop("task")
    return {name: value for name, value in recorded.items()
            if value is not None and value != default_of(name)} | {"task": meta["task"]}
