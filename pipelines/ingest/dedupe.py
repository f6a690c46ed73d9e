"""Dedupe stage: one contact per E.164 number, first occurrence wins."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from pipelines.ingest.arrow import text_array
from pipelines.ingest.fastphone import e164_keys
from schemas.contacts import DUPLICATE_OF_FILE, DUPLICATE_OF_ROW, E164, SOURCE_FILE, SOURCE_ROW, SOURCE_SHEET


def _number_keys(numbers: pd.Series) -> np.ndarray:
    """E.164 as int64 ('+14155550132' → 14155550132): it fits, and hashes fast."""
    return e164_keys(text_array(numbers))


def dedupe(contacts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split contacts (in file order, then row order) into the first of each number and the repeats."""
    if not len(contacts):
        empty = contacts[[SOURCE_FILE, SOURCE_SHEET, SOURCE_ROW, E164]].iloc[0:0].copy()
        empty[DUPLICATE_OF_FILE] = pd.Series(dtype=object)
        empty[DUPLICATE_OF_ROW] = pd.Series(dtype="int64")
        return contacts.reset_index(drop=True), empty
    codes, uniques = pd.factorize(_number_keys(contacts[E164]))
    _, first = np.unique(codes, return_index=True)  # position of each number's first occurrence
    repeat = np.ones(len(contacts), dtype=bool)
    repeat[first] = False
    accepted = contacts[~repeat].reset_index(drop=True)
    duplicates = contacts.loc[repeat, [SOURCE_FILE, SOURCE_SHEET, SOURCE_ROW, E164]].reset_index(drop=True)
    original = first[codes[repeat]]
    duplicates[DUPLICATE_OF_FILE] = contacts[SOURCE_FILE].to_numpy(dtype=object)[original]
    duplicates[DUPLICATE_OF_ROW] = contacts[SOURCE_ROW].to_numpy()[original].astype("int64")
    return accepted, duplicates


def split_already_submitted(accepted: pd.DataFrame, submitted: Collection[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split accepted contacts into new ones and ones the campaign already submitted."""
    if not len(submitted) or not len(accepted):
        return accepted, accepted.iloc[0:0]
    seen = accepted[E164].isin(list(submitted)).to_numpy(dtype=bool)
    return accepted[~seen].reset_index(drop=True), accepted[seen].reset_index(drop=True)
