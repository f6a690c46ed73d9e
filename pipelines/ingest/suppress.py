"""Suppression stage: numbers nobody may call, from files and the command line, read exactly as contacts are.

A do-not-call file goes through the contact reader, column detection and phone
normalisation: the country column and --region apply, and every phone column counts
(a CRM export with mobile and work numbers blocks both). Every row is accounted for:
rows_read = rows with a number + rows skipped (by the reason of their first non-empty
phone cell, or `empty`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.ingest.arrow import text_array
from pipelines.ingest.columns import map_columns
from pipelines.errors import InputError
from pipelines.ingest.normalise import classify_column, country_overrides
from pipelines.ingest.read import read_sheet
from schemas.contacts import E164, REASON_BY_CODE, REASON_CODE, RejectReason

SUPPRESSED_COLUMNS = ["source_file", "source_sheet", "source_row", E164]
EXAMPLES = 3  # skipped rows quoted back to the person who gave the file


@dataclass
class SuppressionFile:
    """The numbers of one do-not-call file, and what became of each of its rows."""

    source: str
    numbers: set[str] = field(default_factory=set)
    rows_read: int = 0
    rows_with_numbers: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason → rows without a valid number
    examples: list[dict] = field(default_factory=list)  # the first skipped rows: row, value, reason

    def summary(self) -> dict:
        return {"file": self.source, "rows_read": self.rows_read, "rows_with_numbers": self.rows_with_numbers,
                "numbers": len(self.numbers), "skipped": self.skipped, "examples": self.examples}  # fmt: skip


def read_suppression(path: str | Path, region: str, phone_columns: Sequence[str] = ()) -> SuppressionFile:
    """Every valid number of a do-not-call file (CSV, XLSX, …: its phone columns, or a bare list without a header)."""
    sheet = read_sheet(path)
    result = SuppressionFile(source=sheet.source_file)
    try:
        columns = map_columns(sheet.headers, label=sheet.source_file, phone_columns=phone_columns)
        phones = list(columns.phones)
        cells = [text_array(sheet.cells[i]) for i in phones]
        overrides = country_overrides(sheet.cells[columns.country]) if columns.country is not None else None
        rows = sheet.rows
    except InputError as exc:
        if exc.code != "no_phone_column" or len(sheet.headers) != 1 or phone_columns:
            raise
        # a bare list: one column and no header, so the first line is a number too
        cells = [pa.concat_arrays([pa.array([sheet.headers[0]]), text_array(sheet.cells[0])])]
        overrides = None
        rows = np.concatenate([[int(sheet.rows[0]) - 1 if len(sheet.rows) else 1], sheet.rows])
    return _account(result, cells, overrides, rows, region)


def _account(result: SuppressionFile, cells: list[pa.Array], overrides, rows: np.ndarray, region: str) -> SuppressionFile:
    """Classify every phone cell of every row; a row counts once, by its numbers or its first reason."""
    found = np.zeros(len(rows), dtype=bool)
    first_reason = np.zeros(len(rows), dtype=np.int8)
    first_raw = np.full(len(rows), "", dtype=object)
    empty = REASON_CODE[RejectReason.EMPTY]
    for raw in cells:
        phones = classify_column(raw, region, overrides)
        valid = phones.keys != 0
        result.numbers.update(f"+{key}" for key in phones.keys[valid].tolist())
        found |= valid
        fill = (first_reason == 0) & ~valid & (phones.reasons != empty)  # the first non-empty cell gives the reason
        first_reason[fill] = phones.reasons[fill]
        first_raw[fill] = np.asarray(raw.to_pylist(), dtype=object)[fill]
    first_reason[(first_reason == 0) & ~found] = empty
    result.rows_read = len(rows)
    result.rows_with_numbers = int(found.sum())
    skipped = np.flatnonzero(~found)
    result.skipped = dict(sorted(Counter(str(REASON_BY_CODE[code]) for code in first_reason[skipped].tolist()).items()))
    result.examples = [{"row": int(rows[i]), "value": str(first_raw[i]), "reason": str(REASON_BY_CODE[first_reason[i]])}
                       for i in skipped[:EXAMPLES]]  # fmt: skip
    return result


def numbers_from_values(values: Sequence[str], region: str) -> tuple[set[str], list[str]]:
    """Normalise typed numbers; returns (E.164 numbers, the values that are not valid numbers)."""
    found = classify_column(pa.array([str(v) for v in values], type=pa.string()), region, None).e164
    return {n for n in found if n}, [v for v, n in zip(values, found) if not n]


