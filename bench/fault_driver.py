"""`python bench/fault_driver.py ARGS`: `search/run.py ARGS` with the faults `$AESEARCH_FAULTS`
asks for (see `fault_hooks.py`). Ray's workers import the hooks from this folder."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (HERE, os.environ.get("PYTHONPATH")) if p)

import fault_hooks  # noqa: E402

from search.cli import main  # noqa: E402

if __name__ == "__main__":
    fault_hooks.install_driver()
    sys.exit(main())
