"""Write an import's accepted, rejected and duplicate rows as CSV files a person can open in Excel."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from pipelines.ingest import IngestResult
from pipelines.normalise import variables_json
from schemas.contacts import ACCEPTED_COLUMNS, DUPLICATE_COLUMNS, DYNAMIC_VARIABLES, REJECTED_COLUMNS

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PHONE_LIKE = re.compile(r"[+\-]?[0-9 ().\-/]*[0-9][0-9 ().\-/]*")


def excel_safe(column: pd.Series) -> pd.Series:
    """Prefix a quote to text Excel would run as a formula (=, +, -, @), unless it is a phone number."""
    if column.dtype.kind in "iufb":
        return column
    text = column.astype(object).where(column.notna(), "").astype(str)
    risky = text.str.startswith(FORMULA_START) & ~text.str.fullmatch(PHONE_LIKE.pattern)
    return text.where(~risky, "'" + text)


def accepted_frame(result: IngestResult) -> pd.DataFrame:
    """Accepted contacts with their variables as one JSON object per row."""
    frame = result.accepted.copy()
    frame[DYNAMIC_VARIABLES] = variables_json(frame)
    return frame[ACCEPTED_COLUMNS]


def write_outputs(result: IngestResult, out_dir: str | Path) -> dict[str, Path]:
    """Write accepted.csv, rejected.csv and duplicates.csv into out_dir, each file atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = {
        "accepted.csv": accepted_frame(result),
        "rejected.csv": result.rejected[REJECTED_COLUMNS],
        "duplicates.csv": result.duplicates[DUPLICATE_COLUMNS],
    }
    written = {}
    for name, frame in frames.items():
        target = out / name
        partial = out / f".{name}.partial"
        safe = frame.apply(excel_safe) if len(frame) else frame
        safe.to_csv(partial, index=False, encoding="utf-8")
        os.replace(partial, target)  # a reader never sees half a file
        written[name] = target
    return written
