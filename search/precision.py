"""The float precision a trial trains in: bfloat16 compute where the hardware does it natively.

Keras' `mixed_bfloat16` policy keeps every weight in float32 and computes layers in bfloat16.
On CPUs with AMX (Intel Sapphire Rapids and later) and on GPUs of compute capability 8.0 and
later (A100, H100, H200) that trains the study's models 1.4-1.8x faster per image (see
`bench/README.md`); elsewhere bfloat16 is emulated and slower, so `auto` keeps float32 there.
The model's output layer always computes in float32, so predictions and losses are not
rounded to bfloat16's 8 bits of mantissa.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

AUTO = "auto"
FLOAT32 = "float32"
MIXED_BF16 = "mixed_bfloat16"
PRECISIONS = (AUTO, FLOAT32, MIXED_BF16)  # what --precision takes
OUTPUT_DTYPE = "float32"  # the output layer's dtype under every policy
MIN_GPU_CAPABILITY = (8, 0)  # Ampere: the first NVIDIA GPUs with bfloat16 tensor cores


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


def _tensorflow_capabilities() -> list[tuple[int, int]]:
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability:
            found.append(tuple(capability))
    return found


def _jax_capabilities() -> list[tuple[int, int]]:
    import jax

    try:
        devices = jax.devices("gpu")
    except RuntimeError:  # no GPU backend
        return []
    found = []
    for device in devices:
        major, _, minor = str(getattr(device, "compute_capability", "0.0")).partition(".")
        found.append((int(major), int(minor or 0)))
    return found


def _torch_capabilities() -> list[tuple[int, int]]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [tuple(torch.cuda.get_device_capability(i)) for i in range(torch.cuda.device_count())]


GPU_CAPABILITIES: dict[str, Callable[[], list[tuple[int, int]]]] = {
    "tensorflow": _tensorflow_capabilities,
    "jax": _jax_capabilities,
    "torch": _torch_capabilities,
}


def gpus_have_bf16() -> bool:
    """Whether every GPU this process sees has bfloat16 tensor cores (False with no GPU)."""
    import keras

    probe = GPU_CAPABILITIES.get(keras.backend.backend())
    found = probe() if probe else []
    return bool(found) and all(c >= MIN_GPU_CAPABILITY for c in found)


def resolve(precision: str, gpus: float | None = None) -> str:
    """The Keras dtype policy for `precision` ('auto' decided for this trial's device: its
    GPUs where it was given some, else its CPU)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != AUTO:
        return precision
    native = gpus_have_bf16() if gpus else cpu_has_bf16()
    return MIXED_BF16 if native else FLOAT32


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
