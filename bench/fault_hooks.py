"""Fault injection for `bench/faults.py` and `tests/test_faults.py`: nothing here runs in a sweep
that does not ask for it.

`bench/fault_driver.py` runs the real entry point (`search.cli.main`) with these patches, chosen
by the JSON in `$AESEARCH_FAULTS`:

- `{"trials": {"00001": ["raise", 1], "00002": ["oom", 1], "00003": ["nan", 0]}}`: in the Ray
  worker that trains trial number 00001, the training step of its report 1 (0-based) and every
  later one raises RuntimeError; 00002 raises TensorFlow's ResourceExhaustedError (out of
  memory); 00003 has its weights set to NaN before report 0, so that real training diverges.
  `{"trials": {"*": ["sleep", 3, 2.0]}}`: every trial sleeps 2 s before each training step
  from its report 3 on. Installed in every worker through Ray's `worker_process_setup_hook`.
- `{"kill_on_board_write": 3}`: the driver SIGKILLs itself during its 3rd rewrite of
  leaderboard.csv, after writing half of the temp file and before the rename.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

ENV = "AESEARCH_FAULTS"


def spec() -> dict[str, Any]:
    return json.loads(os.environ.get(ENV) or "{}")


def install_worker() -> None:
    """Ray's worker_process_setup_hook: patch `Trial._train_slice` for the chosen trials."""
    trials = spec().get("trials") or {}
    if not trials:
        return
    import numpy as np
    from ray import tune

    from search.trial import Trial

    original = Trial._train_slice

    def train_slice(self: Any, epoch: int, start: int, stop: int) -> Any:
        trial_id = tune.get_context().get_trial_id() or ""
        kind, at, *more = trials.get(trial_id.rsplit("_", 1)[-1], trials.get("*", (None, 0)))
        if kind and self.report_index >= at:
            if kind == "sleep":  # a slow trial: a window for a fault from outside
                time.sleep(float(more[0]) if more else 1.0)
            if kind == "raise":
                raise RuntimeError(f"injected fault in trial {trial_id}")
            if kind == "oom":
                import tensorflow as tf

                raise tf.errors.ResourceExhaustedError(
                    None, None, f"OOM when allocating tensor (injected in trial {trial_id})")
            if kind == "nan":
                self.model.set_weights([w * np.nan for w in self.model.get_weights()])
        return original(self, epoch, start, stop)

    Trial._train_slice = train_slice  # type: ignore[method-assign]  # the fault hook


def install_driver() -> None:
    """Patch the driver: worker hooks through `ray.init`, and the leaderboard kill."""
    faults = spec()
    if faults.get("trials"):
        import ray

        init = ray.init

        def init_with_hook(*args: Any, **kwargs: Any) -> Any:
            runtime_env = dict(kwargs.pop("runtime_env", None) or {})
            runtime_env["worker_process_setup_hook"] = "fault_hooks.install_worker"
            # A cluster's workers inherit their node's environment, not the driver's.
            runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), ENV: os.environ[ENV]}
            return init(*args, runtime_env=runtime_env, **kwargs)

        ray.init = init_with_hook
    kill_at: int = faults.get("kill_on_board_write") or 0
    if kill_at:
        import results.render as render

        real_os = render.os
        writes = {"n": 0}

        class KillingOs:
            def __getattr__(self, name: str) -> Any:
                return getattr(real_os, name)

            def replace(self, src: Any, dst: Any) -> None:
                if str(dst).endswith("leaderboard.csv"):
                    writes["n"] += 1
                    if writes["n"] >= kill_at:
                        with open(src, "r+b") as handle:  # the kill lands mid-write
                            handle.truncate(max(1, os.path.getsize(src) // 2))
                        os.kill(os.getpid(), signal.SIGKILL)
                real_os.replace(src, dst)

        render.os = KillingOs()  # type: ignore[assignment]
