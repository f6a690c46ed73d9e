"""The first half of the pipeline composed: read → map columns → normalise → dedupe → chunk."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipelines.ingest.chunk import chunk
from pipelines.ingest.columns import map_columns
from pipelines.ingest.dedupe import dedupe, split_already_submitted
from pipelines.ingest.normalise import normalise_sheet
from pipelines.ingest.read import MAX_WORKBOOK_BYTES, read_sheet
from pipelines.ingest.suppress import split_numbers
from pipelines.ingest.hours import CallingHours, check_callable
from pipelines.ingest.timezones import assign_timezones
from schemas.contacts import (
    CHUNK_KEY,
    DUPLICATE_COLUMNS,
    E164,
    NAME,
    REASON,
    REGION,
    REJECTED_COLUMNS,
    SOURCE_FILE,
    SOURCE_ROW,
    SOURCE_SHEET,
    BatchPlan,
    FileCounts,
    ImportSummary,
)


@dataclass(frozen=True)
class IngestOptions:
    """How to read and cut one import."""

    campaign: str
    region: str = "US"
    phone_columns: tuple[str, ...] = ()  # named phone columns, in priority order (empty: detected)
    sheet: str | None = None
    batch_size: int = 1000
    hours: CallingHours = field(default_factory=CallingHours)  # local calling window and days
    max_workbook_bytes: int = MAX_WORKBOOK_BYTES  # a zipped workbook expanding beyond this is refused (too_large)


@dataclass
class IngestResult:
    """Accepted contacts (with chunk keys), rejects, duplicates and the per-file accounting."""

    campaign: str
    accepted: pd.DataFrame
    rejected: pd.DataFrame
    duplicates: pd.DataFrame
    already_submitted: pd.DataFrame
    files: list[FileCounts]
    batches: list[BatchPlan] = field(default_factory=list)
    suppressed: pd.DataFrame | None = None  # rows whose number is on a suppression list
    cooled_down: pd.DataFrame | None = None  # accepted, but some campaign called them within the cooldown

    def summary(self, *, dry_run: bool = True) -> ImportSummary:
        """The counts as printed by the CLI; rows_read = accepted + duplicates + rejected + suppressed."""
        reasons = self.rejected[REASON].value_counts().sort_index() if len(self.rejected) else pd.Series(dtype=int)
        return ImportSummary(
            campaign=self.campaign,
            rows_read=sum(f.rows_read for f in self.files),
            accepted=len(self.accepted) + len(self.already_submitted) + _count(self.cooled_down),
            duplicates=len(self.duplicates),
            rejected=len(self.rejected),
            reject_reasons={str(k): int(v) for k, v in reasons.items()},
            suppressed=_count(self.suppressed),
            already_submitted=len(self.already_submitted),
            cooled_down=_count(self.cooled_down),
            files=self.files,
            batches=self.batches,
            dry_run=dry_run,
        )


def _count(frame: pd.DataFrame | None) -> int:
    return 0 if frame is None else len(frame)


def ingest(
    paths: Sequence[str | Path],
    options: IngestOptions,
    *,
    already_submitted: Collection[str] = (),
    suppressed: Collection[str] = (),
    cooled_down: Collection[str] = (),
) -> IngestResult:
    """Read every file, normalise, drop suppressed numbers, dedupe across all files and chunk what is new.

    Numbers the campaign already took (`already_submitted`) or that any campaign called
    recently (`cooled_down`) stay accepted but are not put into batches.
    """
    contact_parts, reject_parts, rows_read = [], [], {}
    for path in paths:
        sheet = read_sheet(path, sheet=options.sheet if _is_excel(path) else None, max_workbook_bytes=options.max_workbook_bytes)
        columns = map_columns(sheet.headers, label=sheet.source_file, phone_columns=options.phone_columns)
        contacts, rejects = normalise_sheet(sheet, columns, options.region)
        contact_parts.append(contacts)
        reject_parts.append(rejects)
        rows_read[sheet.source_file] = rows_read.get(sheet.source_file, 0) + len(sheet.cells)

    contacts = _concat(contact_parts, [SOURCE_FILE, SOURCE_SHEET, SOURCE_ROW, E164, REGION, NAME])
    rejected = _concat(reject_parts, REJECTED_COLUMNS)[REJECTED_COLUMNS]
    contacts, blocked = split_numbers(contacts, suppressed)
    unique, duplicates = dedupe(contacts)
    fresh, seen = split_already_submitted(unique, already_submitted)
    fresh, cooled = split_numbers(fresh, cooled_down)
    fresh = assign_timezones(fresh.copy())
    check_callable(fresh, options.hours)
    chunked, batches = chunk(fresh, options.campaign, options.batch_size)
    files = _file_counts(rows_read, unique, duplicates, rejected, blocked, seen, cooled)
    return IngestResult(
        options.campaign, chunked, rejected, duplicates[DUPLICATE_COLUMNS], seen, files, batches, blocked, cooled
    )


def _is_excel(path: str | Path) -> bool:
    from pipelines.ingest.read import EXCEL_SUFFIXES

    return Path(path).suffix.lower() in EXCEL_SUFFIXES


def _concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    frame = pd.concat(parts, ignore_index=True, sort=False)
    variable_columns = [c for c in frame.columns if c not in columns and c != CHUNK_KEY]
    frame[variable_columns] = frame[variable_columns].fillna("")
    return frame


def _file_counts(rows_read: dict[str, int], unique, duplicates, rejected, suppressed, seen, cooled) -> list[FileCounts]:
    def per_file(frame: pd.DataFrame) -> dict[str, int]:
        return frame[SOURCE_FILE].value_counts().to_dict() if len(frame) else {}

    accepted, repeated, bad, blocked = per_file(unique), per_file(duplicates), per_file(rejected), per_file(suppressed)
    taken, recent = per_file(seen), per_file(cooled)
    return [
        FileCounts(
            source_file=name,
            rows_read=count,
            accepted=int(accepted.get(name, 0)),
            duplicates=int(repeated.get(name, 0)),
            rejected=int(bad.get(name, 0)),
            suppressed=int(blocked.get(name, 0)),
            already_submitted=int(taken.get(name, 0)),
            cooled_down=int(recent.get(name, 0)),
        )
        for name, count in rows_read.items()
    ]
