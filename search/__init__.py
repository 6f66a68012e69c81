"""Distributed hyperparameter and architecture search for image autoencoders.

`from search import Sweep` is the Python API (`search/api.py`); `aesearch` (`search/cli.py`)
the command line. Importing this package loads neither TensorFlow nor Ray; the modules that
need them (`search.models`, `search.trial`, `search.trainable`, `search.sweep`) import them
themselves, and the API's names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.api import Best, Sweep, SweepResult

__all__ = ["Best", "Sweep", "SweepResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from search import api

        return getattr(api, name)
    raise AttributeError(f"module 'search' has no attribute {name!r}")
