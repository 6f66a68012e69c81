"""The float precision a trial trains in: bfloat16 compute where it measurably pays.

Keras' `mixed_bfloat16` policy keeps every weight in float32 and computes layers in bfloat16.
On CPUs with AMX (Intel Sapphire Rapids and later) trials trained 1.7-1.9x more MNIST images
a second than float32 Keras, and 1.0-1.3x more text patches (`bench/throughput.py`), so
`auto` picks it there. On GPUs `auto` keeps
float32: on an H200 (Keras on JAX) bfloat16 trained whole text pages 1.75x faster per epoch,
but compiled 6 to 9 s slower per trial and gained nothing on MNIST (`bench/README.md`, GPU),
which loses on the short trials a search runs; `--precision mixed_bfloat16` asks for it.
Elsewhere bfloat16 is emulated and slower. The output layer always computes in float32, so
predictions and losses are not rounded to bfloat16's 8 bits of mantissa.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

AUTO = "auto"
FLOAT32 = "float32"
MIXED_BF16 = "mixed_bfloat16"
PRECISIONS = (AUTO, FLOAT32, MIXED_BF16)  # what --precision takes
OUTPUT_DTYPE = "float32"  # the output layer's dtype under every policy


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX), from its flags."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False  # not Linux, or not readable: assume no
    for line in text.splitlines():
        if line.startswith("flags"):
            return "amx_bf16" in line.split(":", 1)[-1].split()
    return False


def resolve(precision: str, gpus: float | None = None) -> str:
    """The Keras dtype policy for `precision`; 'auto' is decided for this trial's device:
    float32 on GPUs, mixed_bfloat16 on a CPU with AMX."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != AUTO:
        return precision
    return MIXED_BF16 if not gpus and cpu_has_bf16() else FLOAT32


def describe(precision: str, gpus: float | None = None) -> str:
    """What `precision` means for this sweep's trials, in words for the console (a CPU trial
    on another node decides by its own CPU)."""
    if precision != AUTO:
        return precision
    picked = resolve(precision, gpus)
    why = ("this CPU has AMX" if picked == MIXED_BF16
           else "on GPUs" if gpus else "this CPU has no AMX")
    return f"auto: {picked} ({why})"


def of_model(model: Any) -> str:
    """The policy `model` trains in: its first weighted layer's (a saved model keeps its
    layers' policies, not the one it was built under)."""
    for layer in model.layers:
        if layer.weights:
            return str(layer.dtype_policy.name)
    return FLOAT32


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build layers under policy `name`, restoring the global policy after: other models
    built in the same process (a plain baseline, the next trial) are not affected."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
