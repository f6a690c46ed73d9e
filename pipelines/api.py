"""Notebook API: the pipeline's results as pandas DataFrames.

    >>> from pipelines.api import load_contacts
    >>> result = load_contacts(["data/sample_contacts.csv"], campaign="spring")
    >>> result.accepted[["e164", "dynamic_variables"]]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.chunk import batch_limit
from pipelines.ingest import IngestOptions, ingest
from pipelines.output import accepted_frame
from schemas.contacts import DYNAMIC_VARIABLES, ImportSummary


@dataclass
class ContactsResult:
    """What a dry-run import produces, as DataFrames plus the counts."""

    accepted: pd.DataFrame  # e164, name, source_file, source_sheet, source_row, chunk_key, dynamic_variables (dict)
    rejected: pd.DataFrame  # source_file, source_sheet, source_row, raw_value, reason
    duplicates: pd.DataFrame  # source_file, source_sheet, source_row, e164, duplicate_of_file, duplicate_of_row
    summary: ImportSummary

    @property
    def counts(self) -> dict[str, int]:
        """rows_read, accepted, duplicates and rejected."""
        s = self.summary
        return {"rows_read": s.rows_read, "accepted": s.accepted, "duplicates": s.duplicates, "rejected": s.rejected}


def load_contacts(
    paths: str | Path | Sequence[str | Path],
    *,
    campaign: str = "notebook",
    region: str = "US",
    phone_column: str | None = None,
    sheet: str | None = None,
    provider: str = "sandbox",
    batch_size: int | None = None,
) -> ContactsResult:
    """Read, normalise, dedupe and chunk spreadsheets without submitting anything."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    options = IngestOptions(campaign, region.upper(), phone_column, sheet, batch_limit(provider, batch_size))
    result = ingest(paths, options)
    accepted = accepted_frame(result)
    accepted[DYNAMIC_VARIABLES] = accepted[DYNAMIC_VARIABLES].map(json.loads)
    return ContactsResult(accepted, result.rejected, result.duplicates, result.summary())
