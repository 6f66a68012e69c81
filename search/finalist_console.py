"""The finalists stage's console: one line per run as it ends, since a stage at the study's
budget runs for hours. A Ray Tune callback, so it lives in a module of its own that imports
`ray.tune` (pickled with the stage's tuner, it comes back on a resume)."""

from __future__ import annotations

import math
from typing import Any

from ray import tune

from spaces import constants as C


def _figure(value: Any) -> str:
    return f"{value:.5f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def run_line(config: dict[str, Any], result: dict[str, Any], status: str) -> str:
    """`finished search 1 5L,64F(3X3) seed 0: val_mse ..., test_mse ... (115 s)`."""
    run = config.get("run", config)
    seconds = result.get(C.SECONDS)
    took = f" ({seconds:.0f} s)" if isinstance(seconds, (int, float)) else ""
    verdict = result.get(C.VERDICT)
    return (f"{status} {run.get('candidate')} {result.get(C.NOTATION) or ''} seed "
            f"{run.get('seed')}: val_mse {_figure(result.get(C.VAL_MSE))}, test_mse "
            f"{_figure(result.get(C.TEST_MSE))}{took}" + (f" [{verdict}]" if verdict else ""))


class FinalistsConsole(tune.Callback):
    """Prints `run_line` for every run that ends (or fails) while this driver runs."""

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        print(run_line(trial.config, trial.last_result or {}, "finished"), flush=True)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        print(run_line(trial.config, trial.last_result or {}, "failed (Ray retries it)"),
              flush=True)
