"""Suppression stage: numbers nobody may call, from files and the command line, normalised like contacts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipelines.arrow import text_array
from pipelines.columns import map_columns
from pipelines.errors import InputError
from pipelines.normalise import classify_column
from pipelines.read import read_sheet
from schemas.contacts import E164

SUPPRESSED_COLUMNS = ["source_file", "source_sheet", "source_row", E164]


def numbers_from_values(values: Sequence[str], region: str) -> tuple[set[str], list[str]]:
    """Normalise typed numbers; returns (E.164 numbers, the values that are not valid numbers)."""
    found = classify_column(pa.array([str(v) for v in values], type=pa.string()), region, None).e164
    return {n for n in found if n}, [v for v, n in zip(values, found) if not n]


def numbers_from_file(path: str | Path, region: str) -> tuple[set[str], int]:
    """Every valid number of a suppression file (CSV, XLSX, …; a phone column, or one column, header or not)."""
    sheet = read_sheet(path)
    try:
        column = map_columns(sheet.headers, label=sheet.source_file).phone
        values = text_array(sheet.cells[column]).to_pylist()
    except InputError:
        if len(sheet.headers) != 1:
            raise
        values = [sheet.headers[0], *text_array(sheet.cells[0]).to_pylist()]  # a bare list: the first line is a number too
    numbers, invalid = numbers_from_values(values, region)
    return numbers, len([v for v in invalid if v.strip()])


def split_numbers(contacts: pd.DataFrame, numbers: Collection[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows whose E.164 is not in `numbers`, rows whose E.164 is)."""
    if not len(numbers) or not len(contacts):
        return contacts, contacts.iloc[0:0]
    hit = contacts[E164].isin(list(numbers)).to_numpy(dtype=bool)
    return contacts[~hit].reset_index(drop=True), contacts[hit].reset_index(drop=True)


