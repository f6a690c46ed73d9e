"""Dialect-neutral views of a provider batch, as the submit and sync stages use them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import pydantic_core

from pydantic import BaseModel, ConfigDict

E164_PATTERN = r"^\+[1-9]\d{1,14}$"  # a number as every dialect sends it

# Neutral batch statuses. magpipe's are used as they are; batchcall's in_progress → running.
FINISHED = {"completed", "cancelled", "failed"}
NOT_STARTED = {"draft"}
STOPPED = {"cancelled", "failed"}
FINAL_RECIPIENT = {"completed", "busy", "no_answer", "failed", "skipped"}  # a recipient whose call is over, or never will be  # a batch in these is never started again (magpipe's start would call everyone)


class RemoteBatch(BaseModel):
    """A batch as the provider reports it."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    status: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    created_at: datetime | None = None
    completed_at: datetime | None = None


class Schedule(BaseModel):
    """When a chunk may be called, as each dialect can be told (see pipelines.ingest.hours)."""

    model_config = ConfigDict(frozen=True)

    timezone: str = "UTC"  # batchcall's timezone label: the first zone of the chunk's set
    window_start_time: str = "00:00"  # magpipe, on the account clock, inclusive
    window_end_time: str = "23:59"
    window_days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)  # 0 = Sunday
    trigger_at: datetime | None = None  # batchcall: first moment the window is open (None = now)


class RemoteRecipient(BaseModel):
    """One recipient's call status; statuses in magpipe's vocabulary."""

    model_config = ConfigDict(frozen=True)

    e164: str
    status: str
    call_record_id: str | None = None
    attempted_at: datetime | None = None
    completed_at: datetime | None = None
    error: str | None = None


class RemoteBatchDetail(BaseModel):
    batch: RemoteBatch
    recipients: list[RemoteRecipient]


class ChunkPeople(NamedTuple):
    """The people of one chunk, in order, as the ledger holds them: an Arrow table with columns e164 (string), name
    (string or null) and variables (a JSON object's text, or null), and the campaign they belong to. A provider
    client builds its request from the columns (batchcall) or from `rows()` (magpipe)."""

    campaign: str
    table: Any  # pyarrow.Table; this module does not import pyarrow (the sandbox shares it)

    def __len__(self) -> int:
        return self.table.num_rows

    def rows(self) -> list[OutgoingContact]:
        """One OutgoingContact per person; the variables of the whole chunk parsed in one go."""
        texts = [text or "{}" for text in self.table.column("variables").to_pylist()]
        variables = pydantic_core.from_json(f"[{','.join(texts)}]") if texts else []
        return [
            OutgoingContact(e164, name or None, values, f"{self.campaign}:{e164}")
            for e164, name, values in zip(self.table.column("e164").to_pylist(), self.table.column("name").to_pylist(), variables)
        ]


class OutgoingContact(NamedTuple):
    """What a chunk sends per person (read from the ledger, which holds only checked values; a tuple: a chunk makes
    a thousand of them at a time)."""

    e164: str
    name: str | None = None
    variables: dict[str, str] = {}
    contact_id: str | None = None
