"""How one import reads and cuts its files (built from the settings by pipelines.run.ingest_options)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.ingest.hours import CallingHours
from pipelines.ingest.read import MAX_WORKBOOK_BYTES


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
