"""The ledger's tables (SQLModel): the source of truth for what was submitted.

SQLite in the home folder by default; any SQLAlchemy URL (PostgreSQL for several machines).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from sqlmodel import Field, SQLModel


class ChunkState(StrEnum):
    """Where a chunk is in two-phase submission. `creating`, `starting` and `cancelling` are
    intents: found after a crash they mean "outcome unknown", resolved by reading the provider."""

    PLANNED = "planned"  # recorded, nothing sent
    CREATING = "creating"  # create (as draft) may have been sent
    DRAFT_CREATED = "draft_created"  # the provider holds a draft; its id is recorded
    STARTING = "starting"  # start may have been sent
    STARTED = "started"  # dialling (or scheduled); never started again
    FINISHED = "finished"  # the provider says the batch is over and every recipient is final (sync)
    CANCELLING = "cancelling"  # a stop was decided and may have been sent: never started, only stopped again and read back
    CANCELLED = "cancelled"  # stopped before it dialled; never submitted again


S = ChunkState
# Every move the ledger allows (Ledger.transition refuses any other), and why it happens.
TRANSITIONS: dict[ChunkState, frozenset[ChunkState]] = {
    S.PLANNED: frozenset({S.CREATING, S.CANCELLED}),  # submit; cancel before anything was sent
    S.CREATING: frozenset({S.PLANNED, S.DRAFT_CREATED, S.STARTED, S.CANCELLED, S.CANCELLING}),  # read back by name; cancel
    S.DRAFT_CREATED: frozenset({S.STARTING, S.STARTED, S.CANCELLING, S.CANCELLED}),  # start; read back before start; cancel
    S.STARTING: frozenset({S.DRAFT_CREATED, S.STARTED, S.CANCELLED, S.CANCELLING}),  # read back: draft / started / stopped; cancel
    S.STARTED: frozenset({S.FINISHED, S.CANCELLING, S.CANCELLED}),  # sync; unschedule a batch that has not dialled
    S.CANCELLING: frozenset({S.CANCELLED, S.STARTED}),  # read back: stopped / it began dialling first
    S.FINISHED: frozenset(),
    S.CANCELLED: frozenset(),
}
del S

PENDING_STATES = (ChunkState.PLANNED, ChunkState.CREATING, ChunkState.DRAFT_CREATED, ChunkState.STARTING)  # resumed first by a run
OPEN_STATES = (*PENDING_STATES, ChunkState.STARTED, ChunkState.CANCELLING)  # not over: what cancel and reschedule look at


class ImportRecord(SQLModel, table=True):
    """One run of `campaigns import`: which files (by content hash) and what came of them."""

    __tablename__ = "imports"

    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(index=True)
    provider: str
    content_hash: str = Field(index=True)  # sha256 over the files' own hashes, in order
    files: str  # JSON list of {"path", "sha256", "rows_read"}
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    already_submitted: int = 0
    suppressed: int = 0  # rows whose number is on a suppression list
    cooled_down: int = 0  # accepted numbers skipped because some campaign called them recently
    state_capped: int = 0  # accepted numbers skipped because their state's cap on calls per 24 hours was reached
    planned: int = 0  # contacts put into new chunks by this import
    caller_id: str | None = None  # the number its batches call from (follow-up commands reuse it)
    agent_id: str | None = None  # the agent its batches were given
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "planned"  # planned | held | submitted | pending | dry_run


class ImportFileRecord(SQLModel, table=True):
    """One file of one import and its row accounting: rows_read = accepted + duplicates + rejected + suppressed.

    `counted` marks the first reading of each distinct content (SHA-256) in a campaign:
    campaign_summary counts those only, so importing a file again does not count its rows
    twice. When a later reading turns rows into contacts (a cooldown lapsed, a number left
    the do-not-call list), the counted reading's figures move those rows to accepted.
    """

    __tablename__ = "import_files"

    import_id: int = Field(primary_key=True)
    source_file: str = Field(primary_key=True)
    campaign: str = Field(index=True)
    sha256: str = Field(index=True)
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    suppressed: int = 0
    already_submitted: int = 0
    cooled_down: int = 0
    state_capped: int = 0
    counted: bool = True


class PlanSegmentRecord(SQLModel, table=True):
    """Rows an import planned, stored columnar (pipelines.segments): one chunk's contacts, or a block of rejects or
    duplicates, as one compressed Arrow IPC stream. Written once, in the import's planning transaction; never changed.

    A campaign's contacts are its `contacts` segments: one per chunk, the members in order;
    `numbers` holds their E.164 numbers as little-endian int64 keys (the digits after '+'),
    so deduplication and cooldown never decode the rest. A number is in at most one of a
    campaign's contact segments (the ledger checks it when a plan is recorded).
    """

    __tablename__ = "plan_segments"

    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(index=True)
    import_id: int = Field(index=True)
    kind: str  # contacts | rejects | duplicates
    chunk_key: str | None = Field(default=None, index=True)  # contacts: the chunk these people make up
    rows: int
    numbers: bytes | None = None  # contacts: int64 keys of the members' numbers, in order
    data: bytes  # the rows, pipelines.segments.KINDS[kind], as an LZ4-compressed Arrow IPC stream


class ChunkRecord(SQLModel, table=True):
    """One batch-to-be, its state in the submission state machine, and its provider id."""

    __tablename__ = "chunks"

    key: str = Field(primary_key=True)
    campaign: str = Field(index=True)
    provider: str  # sandbox | magpipe | batchcall
    dialect: str  # magpipe | batchcall
    batch_name: str
    size: int
    state: str = Field(default=ChunkState.PLANNED, index=True)
    provider_batch_id: str | None = None
    import_id: int
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime
    intent_at: datetime | None = None  # when the last create/start was (maybe) sent
    started_at: datetime | None = None
    timezone: str = "UTC"  # the members' zone set ("A|B" = callable only when both allow)
    us_state: str = ""  # the members' US state, whose calling rules `window`, `days` and `holidays` include ("": none)
    window: str = "08:00-21:00"  # local calling window the chunk was planned with
    days: str = "mon-sun"
    holidays: str = ""  # days without calls: "US-LA" (that state's legal holidays) and/or ISO dates
    kind: str = "import"  # import | retry (a second call for people whose first did not connect)
    not_before: datetime | None = None  # --at / reschedule: no call before this moment


class ProviderBatchRecord(SQLModel, table=True):
    """A provider batch as last read by sync."""

    __tablename__ = "provider_batches"

    provider_batch_id: str = Field(primary_key=True)
    chunk_key: str = Field(index=True)
    campaign: str = Field(index=True)
    provider: str
    dialect: str
    status: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    created_at: datetime | None = None
    completed_at: datetime | None = None
    synced_at: datetime


class RetryRecord(SQLModel, table=True):
    """A contact's membership in a retry chunk; origin_chunk is the import chunk whose segment holds the contact."""

    __tablename__ = "retries"

    chunk_key: str = Field(primary_key=True)
    e164: str = Field(primary_key=True)
    campaign: str = Field(index=True)
    attempt: int  # 2 for the first retry, …
    position: int  # order inside the chunk
    reason: str  # the status of the attempt it repeats (busy, no_answer, …)
    origin_chunk: str | None = None  # the contact's import chunk (its name and variables are in that chunk's segment)
    planned_at: datetime


class RecipientSegmentRecord(SQLModel, table=True):
    """The recipients of one provider batch as last read by sync, stored columnar like the plan
    (pipelines.segments.RECIPIENTS: one row per recipient with its status, call, times, when its row last changed and
    the change that changed it). A sync rewrites a batch's segment only when one of its recipients changed status or
    call; a publish reads only the segments, and of them the rows, written after its file's watermark."""

    __tablename__ = "recipient_segments"

    provider_batch_id: str = Field(primary_key=True)
    campaign: str = Field(index=True)
    change_seq: int = Field(index=True)  # the change (ChangeRecord.seq) that last rewrote the segment
    rows: int
    final: int  # recipients whose call is over (schemas.provider.FINAL_RECIPIENT)
    data: bytes  # an LZ4-compressed Arrow IPC stream


class RecipientRecord(NamedTuple):
    """One recipient's latest status in one provider batch, as last read by sync (a row of a recipient segment)."""

    provider_batch_id: str
    e164: str
    campaign: str
    status: str
    call_record_id: str | None
    attempted_at: datetime | None
    completed_at: datetime | None
    error: str | None
    synced_at: datetime


class CampaignLock(SQLModel, table=True):
    """One run at a time per campaign: who holds it, and when it last said it was alive."""

    __tablename__ = "locks"

    campaign: str = Field(primary_key=True)
    owner: str  # random token of the holding run
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime


class SnapshotRecord(SQLModel, table=True):
    """A batch's counts at one sync, for progress over time."""

    __tablename__ = "batch_snapshots"

    snapshot_at: datetime = Field(primary_key=True)
    provider_batch_id: str = Field(primary_key=True)
    campaign: str = Field(index=True)
    chunk_key: str
    status: str
    total: int = 0
    completed: int = 0
    failed: int = 0


class SuppressionRecord(SQLModel, table=True):
    """A number nobody may call (do-not-call), whatever the campaign."""

    __tablename__ = "suppressions"

    e164: str = Field(primary_key=True)
    source: str  # the file it came from, or "cli"
    added_at: datetime


class ChangeRecord(SQLModel, table=True):
    """One committed change the analysts' DuckDB file must receive, written in the same transaction as the change.

    A publish applies every change after its file's watermark and moves the watermark to
    the last one it read; a file whose watermark lags the newest change is stale (a
    publish failed or was killed), and the next publish catches it up.
    """

    __tablename__ = "changes"

    seq: int | None = Field(default=None, primary_key=True)  # commit order (PostgreSQL: inserts serialised by a lock)
    campaign: str = Field(index=True)
    # import (ref = import id: its planned rows, and its record) | import_record (the import's record and file counts
    # only: its outcome, a later import's counts) | chunk (ref = chunk key) | batch (ref = provider batch id) |
    # snapshot (ref = ISO time)
    kind: str
    ref: str
    at: datetime


class LedgerMeta(SQLModel, table=True):
    """Facts about the ledger itself: its identity, so a DuckDB file published from another ledger is rebuilt."""

    __tablename__ = "ledger_meta"

    key: str = Field(primary_key=True)
    value: str


class CampaignStopRecord(SQLModel, table=True):
    """A campaign stopped by `campaigns cancel`: nothing new is submitted to it until `campaigns resume`."""

    __tablename__ = "campaign_stops"

    campaign: str = Field(primary_key=True)
    stopped_at: datetime
