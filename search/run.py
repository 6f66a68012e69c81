"""Entry point: `python search/run.py ...` locally, `ray submit CLUSTER.yaml search/run.py -- ...`.

`ray submit` copies this one file to the head node and runs it there, so it must not depend on
its own location: it only calls the installed package (the cluster config installs it).
"""

import os
import sys

# Run as a script, this file's folder is sys.path[0]; its modules (data, models, ...) must not
# shadow top-level names, so only the installed package is imported.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

from search.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
