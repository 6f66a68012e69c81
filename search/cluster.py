"""The Ray cluster a sweep runs on: which one to join, whether it answers, whether it can ever
place a trial, whether it can grow. Beside `search/launch.py`, which drives the sweep on it."""

from __future__ import annotations

import os
import re
import socket
from typing import Any

from search import internals
from search.options import InputError

ADDRESS_TIMEOUT_S = 5.0


def connect(address: str | None, verbose: bool = True) -> str:
    """Attach to the Ray cluster the flags ask for and say which one it is.

    A bare `ray.init()` would silently join any cluster running on this machine; the choice is
    made explicit here: --address, else RAY_ADDRESS, else the cluster this machine belongs to
    (`ray start` / `ray submit` record it), else a new local Ray.

    Unless `verbose`, the workers' output (TensorFlow's start-up lines, Ray's checkpoint
    messages) stays in Ray's session log files and Ray's driver logs only warnings.
    """
    import logging

    import ray

    if address is None:
        if os.environ.get("RAY_ADDRESS"):
            address, how = os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
        elif internals.recorded_ray_address():
            address, how = "auto", "the cluster this machine belongs to"
        else:
            address, how = "local", "no cluster found"
    else:
        how = "--address"
    level = logging.INFO if verbose else logging.WARNING
    if address == "local":
        ray.init(address="local", include_dashboard=False, log_to_driver=verbose,
                 logging_level=level)
        print(f"Ray: started a local instance ({how}); {resources()}")
    else:
        try:
            ray.init(address=address, log_to_driver=verbose, logging_level=level)
        except ConnectionError as exc:  # `auto` with no cluster running, a cluster gone since
            raise InputError(f"{how} {address}: {str(exc).splitlines()[0]}") from None
        print(f"Ray: joined the cluster at {address} ({how}); {resources()}")
    if not verbose:
        print(f"worker output (TensorFlow, Ray): {internals.worker_logs_dir()}/worker-*.err and "
              f".out on each node; --verbose shows it here")
    return address


def resources() -> str:
    import ray

    have = ray.cluster_resources()
    return (f"{have.get('CPU', 0):g} CPUs, {have.get('GPU', 0):g} GPUs, "
            f"{len(ray.nodes())} node(s)")


def check_address(address: str | None) -> None:
    """Refuse an --address (or $RAY_ADDRESS) where nothing listens, within seconds: Ray itself
    would retry without end."""
    source = "--address"
    if address is None:
        address, source = os.environ.get("RAY_ADDRESS") or "", "$RAY_ADDRESS"
        if not address:
            return
    if address in ("local", "auto"):
        return
    match = re.fullmatch(r"(?:ray://)?(\[[^\]]+\]|[^:/\s]+):(\d{1,5})", address.strip())
    if not match or not 1 <= int(match[2]) <= 65535:
        raise InputError(f"{source} {address!r}: expected local, auto or host:port "
                         f"(e.g. 10.0.0.5:6379)")
    host, port = match[1].strip("[]"), int(match[2])
    try:
        with socket.create_connection((host, port), timeout=ADDRESS_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {ADDRESS_TIMEOUT_S:g} s"
        raise InputError(f"{source} {address}: no Ray cluster reachable there ({reason})") \
            from None


def unplaceable(nodes: list[dict[str, Any]], cpus: float, gpus: float) -> str | None:
    """Why no live node can ever run a trial asking for `cpus` and `gpus`, or None.

    A trial runs on one node, so the largest node decides, not the cluster's total.
    """
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in alive):
        return None
    most_cpus = max((r.get("CPU", 0) for r in alive), default=0)
    most_gpus = max((r.get("GPU", 0) for r in alive), default=0)
    if gpus and most_gpus < gpus:
        return (f"--gpus-per-trial {gpus:g}: no node has {gpus:g} GPU(s) (the most is "
                f"{most_gpus:g})")
    return (f"--cpus-per-trial {cpus:g}: no node has {cpus:g} CPUs"
            f"{f' and {gpus:g} GPU(s)' if gpus else ''} (the most is {most_cpus:g})")


def can_grow(address: str) -> bool:
    """Whether the cluster may add nodes: never a local Ray this driver started."""
    return address != "local" and internals.cluster_can_grow()
