"""Publish stage: ledger → campaigns.duckdb, so that an open notebook never blocks a writer.

A publish copies the current file to a temporary name, upserts (INSERT OR REPLACE on
natural keys, in bulk from DataFrames) into the copy, checkpoints it and renames it
over the old file. Readers that hold the old file keep reading their complete snapshot;
new readers get the complete new one; nobody ever sees half a sync, and a reader's lock
is on a file the writer no longer touches. Writers take turns through a lock file.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from pipelines.errors import CampaignError, ExitCode
from pipelines.ledger import Ledger
from schemas.ledger import (
    ChunkRecord,
    ContactRecord,
    DuplicateRecord,
    ImportRecord,
    ProviderBatchRecord,
    RecipientRecord,
    RejectRecord,
    SnapshotRecord,
)
from schemas.warehouse import ADDED_COLUMNS, TABLES, VIEWS

WRITER_WAIT_SECONDS = 300


class PublishError(CampaignError):
    """The DuckDB file could not be updated; the ledger is intact and the next publish repairs it."""

    exit_code = ExitCode.INTERNAL


@contextmanager
def _writer_lock(db: Path):
    """One writer at a time (readers never wait): flock on <db>.lock, with a bounded wait."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a+") as handle:
        deadline = time.monotonic() + WRITER_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PublishError(f"{db}: another process has been writing it for {WRITER_WAIT_SECONDS}s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(
    ledger: Ledger,
    db: Path,
    campaigns: Iterable[str] | None = None,
    *,
    import_ids: Iterable[int] | None = None,
    batch_ids: Iterable[str] | None = None,
) -> None:
    """Upsert the ledger's rows for `campaigns` (all if None) into the DuckDB file, atomically.

    import_ids / batch_ids narrow the large tables (contacts, rejects, duplicates,
    recipients) to what just changed; without them everything of the campaigns is upserted.
    """
    campaigns = list(campaigns) if campaigns is not None else ledger.campaigns()
    frames = _frames(ledger, campaigns, import_ids, batch_ids)
    temporary = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    try:
        with _writer_lock(db):
            if db.exists():
                shutil.copyfile(db, temporary)
            connection = duckdb.connect(str(temporary))
            try:
                for ddl in TABLES.values():
                    connection.execute(ddl)
                for table, added in ADDED_COLUMNS.items():
                    for column, kind in added:
                        connection.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
                connection.execute("BEGIN TRANSACTION")
                for table, frame in frames.items():
                    if len(frame):
                        connection.register("incoming", frame)
                        columns = ", ".join(frame.columns)
                        connection.execute(f"INSERT OR REPLACE INTO {table} ({columns}) SELECT {columns} FROM incoming")  # noqa: S608
                        connection.unregister("incoming")
                for ddl in VIEWS.values():
                    connection.execute(ddl)
                connection.execute("COMMIT")
                connection.execute("CHECKPOINT")
            finally:
                connection.close()
            _fsync(temporary)
            os.replace(temporary, db)
            _fsync(db.parent)
    except (duckdb.Error, OSError) as exc:
        raise PublishError(f"{db} was not updated ({str(exc).splitlines()[0]}); run `campaigns publish` to repair it") from exc
    finally:
        temporary.unlink(missing_ok=True)
        Path(str(temporary) + ".wal").unlink(missing_ok=True)


def _frames(ledger: Ledger, campaigns, import_ids, batch_ids) -> dict[str, pd.DataFrame]:
    ids = list(import_ids) if import_ids is not None else None
    batches = list(batch_ids) if batch_ids is not None else None
    imports = ledger.frame(ImportRecord, campaigns).rename(columns={"id": "import_id"})
    contacts = ledger.frame(ContactRecord, campaigns, import_id=ids).drop(columns=["position"])
    rejects = ledger.frame(RejectRecord, campaigns, import_id=ids)
    duplicates = ledger.frame(DuplicateRecord, campaigns, import_id=ids)
    chunks = ledger.frame(ChunkRecord, campaigns)
    provider = ledger.frame(ProviderBatchRecord, campaigns)[
        ["provider_batch_id", "status", "total", "completed", "failed", "completed_at", "synced_at"]
    ]
    merged = chunks.merge(provider, on="provider_batch_id", how="left")
    batch_rows = merged[
        ["key", "campaign", "provider", "dialect", "provider_batch_id", "batch_name", "state", "status", "size", "total",
         "completed", "failed", "created_at", "started_at", "completed_at", "synced_at", "last_error", "timezone", "window",
         "days", "kind", "not_before"]
    ].rename(columns={"key": "chunk_key", "window": "calling_window", "days": "calling_days"})  # fmt: skip
    recipients = ledger.frame(RecipientRecord, campaigns, provider_batch_id=batches)
    snapshots = ledger.frame(SnapshotRecord, campaigns)
    return {
        "imports": imports,
        "contacts": contacts,
        "rejects": rejects,
        "duplicates": duplicates,
        "batches": batch_rows,
        "recipients": recipients,
        "batch_snapshots": snapshots,
    }


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def reader(db: Path):
    """A read-only connection to the newest published file (never a stale in-process cached one)."""
    if not db.exists():
        from pipelines.errors import UsageError

        raise UsageError(f"no report database at {db} yet: run `campaigns import` (and `campaigns sync`) first")
    connection = duckdb.connect()
    try:
        connection.execute(f"ATTACH '{db.as_posix()}' AS warehouse (READ_ONLY)")
        connection.execute("USE warehouse")
        yield connection
    finally:
        connection.close()
