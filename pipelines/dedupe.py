"""Dedupe stage: one contact per E.164 number, first occurrence wins."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from schemas.contacts import DUPLICATE_OF_FILE, DUPLICATE_OF_ROW, E164, SOURCE_FILE, SOURCE_ROW, SOURCE_SHEET


def dedupe(contacts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split contacts (in file order, then row order) into the first of each number and the repeats."""
    repeat = contacts.duplicated(E164, keep="first")
    accepted = contacts[~repeat].reset_index(drop=True)
    firsts = accepted.set_index(E164)[[SOURCE_FILE, SOURCE_ROW]]
    duplicates = contacts.loc[repeat, [SOURCE_FILE, SOURCE_SHEET, SOURCE_ROW, E164]].reset_index(drop=True)
    duplicates[DUPLICATE_OF_FILE] = duplicates[E164].map(firsts[SOURCE_FILE])
    duplicates[DUPLICATE_OF_ROW] = duplicates[E164].map(firsts[SOURCE_ROW]).astype("int64")
    return accepted, duplicates


def split_already_submitted(accepted: pd.DataFrame, submitted: Collection[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split accepted contacts into new ones and ones the campaign already submitted."""
    if not len(submitted):
        return accepted, accepted.iloc[0:0]
    seen = accepted[E164].isin(submitted)
    return accepted[~seen].reset_index(drop=True), accepted[seen].reset_index(drop=True)
