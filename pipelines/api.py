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

from schemas.contacts import DYNAMIC_VARIABLES, ImportSummary


@dataclass
class ContactsResult:
    """What a dry-run import produces, as DataFrames plus the counts."""

    accepted: pd.DataFrame  # e164, name, source_file, source_sheet, source_row, timezone, chunk_key, dynamic_variables (dict)
    rejected: pd.DataFrame  # source_file, source_sheet, source_row, raw_value, reason
    duplicates: pd.DataFrame  # source_file, source_sheet, source_row, e164, duplicate_of_file, duplicate_of_row
    suppressed: pd.DataFrame  # source_file, source_sheet, source_row, e164
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
    region: str | None = None,
    phone_column: str | None = None,
    sheet: str | None = None,
    header_row: int | None = None,
    provider: str = "sandbox",
    batch_size: int | None = None,
) -> ContactsResult:
    """Read, normalise, dedupe and chunk spreadsheets without submitting anything: the pipeline `campaigns import`
    runs, its results as DataFrames. Settings resolve as the CLI's do: these arguments, then the CAMPAIGNS_*
    environment, then campaigns.toml, then the defaults (region US)."""
    from pipelines.ingest.options import ingest_options
    from pipelines.ingest.pipeline import run
    from pipelines.ingest.sinks import Frames
    from pipelines.settings import resolve

    if isinstance(paths, (str, Path)):
        paths = [paths]
    flags = {"region": region, "phone_columns": (phone_column,) if phone_column else None, "sheet": sheet,
             "header_row": header_row, "batch_size": batch_size, "provider": provider}  # fmt: skip
    options = ingest_options(resolve(flags), campaign, provider)
    frames = Frames()
    summary = run(paths, options, [frames])
    accepted = frames.accepted()
    # a plain object column of dicts: left to infer, pandas would make a struct with every key, empty cells as None
    variables = [json.loads(text) for text in accepted[DYNAMIC_VARIABLES].tolist()]
    accepted[DYNAMIC_VARIABLES] = pd.Series(variables, index=accepted.index, dtype=object)
    return ContactsResult(accepted, frames.frame("rejected"), frames.frame("duplicates"), frames.frame("suppressed"), summary)


def _db(home: str | Path | None, db: str | Path | None, state: str | None = None) -> Path:
    """The DuckDB file, resolved as the CLI resolves it (these arguments, then CAMPAIGNS_HOME / CAMPAIGNS_DB /
    CAMPAIGNS_STATE, campaigns.toml, defaults); warns when it lags the ledger (a publish failed or was interrupted)."""
    import warnings

    from pipelines import report
    from pipelines.settings import resolve

    settings = resolve({"home": home, "db": db, "state": state})
    behind = report.staleness(settings.ledger_url if settings.ledger_exists() else None, settings.db_path)
    if behind:
        warnings.warn(behind, stacklevel=3)
    return settings.db_path


def summary(
    campaign: str | None = None, *, home: str | Path | None = None, db: str | Path | None = None, state: str | None = None
) -> pd.DataFrame:
    """campaign_summary as a DataFrame: one row per campaign (rows read … completion rate, dial cost)."""
    from pipelines import report

    return report.summary(_db(home, db, state), campaign)


def outcomes(
    campaign: str | None = None, *, home: str | Path | None = None, db: str | Path | None = None, state: str | None = None,
    expand_variables: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """recipient_outcomes as a DataFrame; each spreadsheet column also as a `var_<key>` column to group by."""
    from pipelines import report

    return report.outcomes(_db(home, db, state), campaign, expand_variables=expand_variables)


def connect(*, home: str | Path | None = None, db: str | Path | None = None, state: str | None = None):
    """A read-only DuckDB connection to the newest published file, for your own SQL. Close it when done."""
    import duckdb  # noqa: F401 - attaches the relation methods (.sql, .query) to the connection handed out

    from pipelines.report import connect_read_only

    return connect_read_only(_db(home, db, state))
