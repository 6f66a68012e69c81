"""DataFrames to files: CSV and Markdown, always written atomically.

A tiny Markdown renderer instead of `tabulate`: the tables are small and need only pipes,
escaping and bold rows.
"""

from __future__ import annotations

import math
import numbers
import os
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spaces import constants as C


def atomic_write_text(path: Path, text: str) -> Path:
    """Write via a temp file in the same directory and os.replace, so readers never see half.

    The temp file is created with the umask's permissions (not mkstemp's 0600), since other
    users of a shared storage read the leaderboard while the sweep rewrites it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def cell(value: Any) -> str:
    """One value as table text: blanks for missing, integers with thousands separators,
    floats to 4 significant digits (whole numbers from 1,000 up, with separators)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, bold_rows: Collection[int] = ()) -> str:
    """A GitHub-flavoured Markdown table; rows at the positions in `bold_rows` are bold."""
    lines = [
        "| " + " | ".join(_escape(str(c)) for c in frame.columns) + " |",
        "|" + "|".join("---" for _ in frame.columns) + "|",
    ]
    for position, values in enumerate(frame.itertuples(index=False, name=None)):
        cells = [_escape(cell(v)) for v in values]
        if position in bold_rows:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def read_csv(path: str | Path) -> pd.DataFrame:
    """A CSV this project wrote (leaderboard, tables, fronts), its trial ids kept as text:
    pandas reads an id such as `3e778219` as the float inf."""
    return pd.read_csv(path, dtype={C.TRIAL_ID: str})


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(path, frame.to_csv(index=False))


def write_markdown(
    frame: pd.DataFrame,
    path: Path,
    title: str,
    bold_rows: Collection[int] = (),
    note: str = "",
) -> Path:
    """A titled Markdown table; `note` (e.g. why a table is empty) goes under the title."""
    parts = [f"# {title}\n"]
    if note:
        parts.append(f"{note}\n")
    if len(frame.columns):
        parts.append(markdown_table(frame, bold_rows))
    return atomic_write_text(path, "\n".join(parts))
