"""Dialect-neutral views of a provider batch, as the submit and sync stages use them."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class AccountWindow:
    """One daily calling window on the account's clock: HH:MM to HH:MM inclusive, days 0 = Sunday."""

    start_time: str
    end_time: str
    days: tuple[int, ...]


class Schedule(BaseModel):
    """When a chunk may be called, in the dialect-neutral terms of pipelines.ingest.hours; each dialect's client
    says it in its own fields (pipelines/providers/<dialect>/client.py)."""

    model_config = ConfigDict(frozen=True)

    timezone: str = "UTC"  # a label for the chunk's zone set: its first zone
    trigger_at: datetime | None = None  # the first moment calling may begin (None = now)
    window: AccountWindow | None = None  # for a dialect told one daily window on the account's clock (account_window)


class RemoteRecipient(NamedTuple):
    """One recipient's call status as the provider reported it; statuses in magpipe's vocabulary. A plain row: a sync
    reads a million of them (the client validated the provider's answer already), so its times are UTC epoch seconds
    (a datetime apiece, made and unmade again for the ledger, was a tenth of a sync's CPU)."""

    e164: str
    status: str
    call_record_id: str | None = None
    attempted_at: float | None = None  # UTC epoch seconds
    completed_at: float | None = None
    error: str | None = None


class RemoteBatchDetail(NamedTuple):
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
