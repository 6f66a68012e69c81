"""What a reused worker process undoes between trials, so that its 1,000th trial sets up as
fast as its first.

With `reuse_actors`, one Ray worker runs trial after trial in one Python process. Measured
(issue 25, `bench/scale.py`): each trial's traced Keras train step registers a
`CustomGradient-<n>` function in TensorFlow's process-wide gradient registry (Keras' optimizer
all-reduces its gradients through the default replica context, whose `all_reduce` is a
`tf.custom_gradient`; in graph mode that registers a gradient function under a fresh name
and never removes it). The function's closure holds the traced graph, so every trial left
about 22,600 Python objects behind for the worker's life, and Keras' `clear_session`, which
runs a full `gc.collect()`, took longer with each trial the worker had run: 0.2 s at its
first trial, 2.3 s at its 70th. `fresh_session` drops those entries (no graph that needs them
is alive: the previous trial's model is gone) and then clears Keras' session.

It also freezes, once per process, the objects that exist before a worker's first model (the
TensorFlow, Keras and Ray modules, about 350,000 objects) out of the collector's sight
(`gc.freeze`), so that each `clear_session`'s collection walks one trial's objects, not the
whole of TensorFlow: 0.1 s rather than 0.3-0.6 s a trial on the 2-core VM.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

CUSTOM_GRADIENT_PREFIX = "CustomGradient-"  # tf.custom_gradient's names in graph mode

_baseline: frozenset[str] | None = None  # the registry's names at the process's first trial


def tf_gradient_registry() -> dict[str, Any] | None:
    """TensorFlow's process-wide gradient registry (name -> entry): a private name, so None
    where it moved (`tests/test_worker.py` fails then) or TensorFlow was never imported here
    (nothing registered)."""
    ops = sys.modules.get("tensorflow.python.framework.ops")
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


def leaked_gradients() -> list[str]:
    """Names of the custom gradients registered in this process since its first trial."""
    registry = tf_gradient_registry()
    if registry is None or _baseline is None:
        return []
    return [name for name in list(registry)
            if name.startswith(CUSTOM_GRADIENT_PREFIX) and name not in _baseline]


def fresh_session() -> int:
    """Start a trial in this process as if it were the process's first: drop what earlier
    trials' traced steps left in TensorFlow's gradient registry, clear Keras' session (a
    full collection), and on the first call freeze the objects alive then out of later
    collections. Returns how many registry entries were dropped."""
    import keras

    global _baseline
    first = _baseline is None
    registry = tf_gradient_registry()
    if first:
        _baseline = frozenset(registry or ())
    dropped = leaked_gradients()
    if registry is not None:
        for name in dropped:
            registry.pop(name, None)
    keras.backend.clear_session()  # gc.collect(): frees the graphs those entries held
    if first:
        gc.freeze()  # modules and import-time objects: alive for the process's life anyway
    return len(dropped)
