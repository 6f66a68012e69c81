"""Keys of a trial's Ray config that spaces produce and search/results read.

They equal `search.constants.MODEL_KEY` / `REPORT_KEY` (a test checks it); they are repeated here
only because `spaces/` is the leaf package and may not import `search/`.
"""

from __future__ import annotations

# The key under which a trial's ModelConfig dict sits in its Ray config.
MODEL_KEY = "model"
# Where the study's row id sits in a replayed trial's Ray config.
REPORT_KEY = "report_id"
