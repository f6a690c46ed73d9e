"""Publish stage: ledger → campaigns.duckdb, so that an open notebook never blocks a writer.

The ledger logs every change the file must receive (schemas.ledger.ChangeRecord, in the
same transaction as the change); the file records the last change it holds (its
watermark, in `publish_state`). A publish applies every change after the watermark,
whoever made it, so a publish that failed or was killed is caught up by the next one,
and a publish with nothing new does nothing at all.

A publish copies the current file to a temporary name, upserts (INSERT OR REPLACE on
natural keys, in bulk; an import's contacts, rejects and duplicates are replaced whole:
deleted by import or campaign, then inserted) into the copy, checkpoints it and renames it
over the old file. A file whose tables still carry the old keys on those three is rebuilt.
The copy is committed every million rows (DuckDB holds a transaction's rows in memory, so
ten million contacts would need gigabytes); it is only renamed into place once complete.
Readers that hold the old file keep reading their complete snapshot; new readers get
the complete new one; nobody ever sees half a sync, and a reader's lock is on a file the
writer no longer touches. Writers take turns through a lock file; leftovers of a killed
writer are swept by the next.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import PublishError
from pipelines.ledger import Ledger
from schemas.ledger import (
    ChunkRecord,
    ImportFileRecord,
    ImportRecord,
    ProviderBatchRecord,
    RecipientRecord,
    SnapshotRecord,
)
from pipelines.report import Published, published_state
from schemas.warehouse import ADDED_COLUMNS, BY_IMPORT, TABLES, VIEWS

WRITER_WAIT_SECONDS = 300
COMMIT_ROWS = 1_000_000  # the copy is committed every this many rows (it is renamed into place only when complete)


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


def publish(ledger: Ledger, db: Path, campaigns: Iterable[str] | None = None, *, rebuild: bool = False) -> int:
    """Bring the DuckDB file up to date with the ledger; returns how many changes it received.

    Every change after the file's watermark is applied. `campaigns` re-upserts all rows of
    those campaigns as well; `rebuild` writes a fresh file from the whole ledger (also what
    happens when the file is missing, older than the watermark, or from another ledger).
    """
    temporary = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    try:
        with _writer_lock(db):
            _sweep(db)
            state, keyed = _read_file(db)
            head = ledger.change_head()
            fresh = rebuild or state is None or state.ledger_id != ledger.ledger_id or keyed
            if not fresh and state.change_seq >= head and not campaigns:
                return 0
            if fresh:
                frames = _frames(ledger, ledger.campaigns(), None, None, None)
            else:
                frames = _changed_frames(ledger, state.change_seq, head, list(campaigns or ()))
            if not fresh and db.exists():
                shutil.copyfile(db, temporary)
            _write(temporary, frames, Published(ledger.ledger_id, head))
            _fsync(temporary)
            os.replace(temporary, db)
            _fsync(db.parent)
            return head - (0 if fresh else state.change_seq)
    except (duckdb.Error, OSError) as exc:
        raise PublishError(
            f"{db} was not updated ({str(exc).splitlines()[0]}); the ledger is intact, and the next command that "
            "publishes (or `campaigns publish`) brings the file up to date"
        ) from exc
    finally:
        temporary.unlink(missing_ok=True)
        Path(str(temporary) + ".wal").unlink(missing_ok=True)


@dataclass
class Parts:
    """Rows of a BY_IMPORT table, as Arrow tables a few at a time, and what they replace: (column, values) pairs
    whose rows are deleted first (none for a fresh file)."""

    tables: Iterable[pa.Table]
    replaces: list[tuple[str, list]]


def _read_file(db: Path) -> tuple[Published | None, bool]:
    """The file's watermark, and whether it was written when contacts, rejects and duplicates had primary keys (such
    a file is rebuilt once, without them); one read-only open."""
    if not db.exists():
        return None, False
    from pipelines.report import reader

    with reader(db) as connection:
        query = ("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' AND table_name IN "
                 f"({', '.join(repr(t) for t in BY_IMPORT)})")  # fmt: skip
        return published_state(db, connection), connection.execute(query).fetchone()[0] > 0


def _sweep(db: Path) -> None:
    """Remove what killed publishes left behind (the caller holds the writer lock, so no live writer owns them)."""
    for leftover in db.parent.glob(f".{db.name}.*.tmp*"):
        leftover.unlink(missing_ok=True)


def _write(path: Path, frames: dict[str, pd.DataFrame], state: Published) -> None:
    connection = duckdb.connect(str(path))
    try:
        for ddl in TABLES.values():
            connection.execute(ddl)
        for table, added in ADDED_COLUMNS.items():
            for column, kind in added:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
        connection.execute("BEGIN TRANSACTION")
        written = 0
        for table, rows in frames.items():
            verb = "INSERT OR REPLACE"
            if isinstance(rows, Parts):  # an import's rows replaced whole: delete, then plain inserts
                for column, values in rows.replaces:
                    if values:
                        connection.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT unnest(?))", [values])  # noqa: S608
                rows, verb = rows.tables, "INSERT"
            for part in [rows] if isinstance(rows, pd.DataFrame) else rows:  # a DataFrame, or Arrow tables a few at a time
                if not len(part):
                    continue
                connection.register("incoming", part)
                columns = ", ".join(part.columns if isinstance(part, pd.DataFrame) else part.column_names)
                connection.execute(f"{verb} INTO {table} ({columns}) SELECT {columns} FROM incoming")  # noqa: S608
                connection.unregister("incoming")
                written += len(part)
                if written >= COMMIT_ROWS:  # DuckDB holds a transaction's rows in memory: commit the copy as it grows
                    connection.execute("COMMIT")
                    connection.execute("BEGIN TRANSACTION")
                    written = 0
        connection.execute("DELETE FROM publish_state")
        connection.execute("INSERT INTO publish_state VALUES (?, ?, now())", [state.ledger_id, state.change_seq])
        for ddl in VIEWS.values():
            connection.execute(ddl)
        connection.execute("COMMIT")
        connection.execute("CHECKPOINT")
    finally:
        connection.close()


def _changed_frames(ledger: Ledger, after: int, upto: int, campaigns: list[str]) -> dict[str, object]:
    """The rows the changes after the watermark touched, plus every row of `campaigns`."""
    changes = [c for c in ledger.changes_since(after, upto) if c.campaign not in campaigns]
    touched = sorted({c.campaign for c in changes})
    import_ids = sorted({int(c.ref) for c in changes if c.kind == "import"})
    batch_ids = sorted({c.ref for c in changes if c.kind == "batch"})
    stamps = [datetime.fromisoformat(c.ref) for c in changes if c.kind == "snapshot"]
    frames = _frames(ledger, touched, import_ids, batch_ids, min(stamps) if stamps else None)
    if campaigns:
        whole = _frames(ledger, campaigns, None, None, None)
        frames = {name: _joined(frames[name], whole[name]) for name in frames}
    return frames


def _joined(first, second):
    """Two tables' rows for the file: DataFrames concatenated, or segment parts one after the other."""
    if isinstance(first, pd.DataFrame):
        return pd.concat([first, second], ignore_index=True)
    return Parts(itertools.chain(first.tables, second.tables), first.replaces + second.replaces)


def _planned(ledger: Ledger, kind: str, campaigns, import_ids) -> Iterator[pa.Table]:
    """An import's planned rows of one kind, from the ledger's segments, as the DuckDB table holds them (a CSV has
    no sheet: NULL in contacts, '' in the keys of rejects and duplicates)."""
    for table in ledger.segments(kind, campaigns, import_ids):
        sheet = table.column("source_sheet")
        if kind == "contacts":
            sheet = pc.if_else(pc.equal(sheet, ""), pa.scalar(None, pa.string()), sheet)
        else:
            sheet = pc.fill_null(sheet, "")
        yield table.set_column(table.schema.get_field_index("source_sheet"), "source_sheet", sheet)


def _frames(ledger: Ledger, campaigns, import_ids, batch_ids, snapshots_since) -> dict[str, object]:
    """Rows of `campaigns`; import_ids / batch_ids (None = all) narrow the large tables, snapshots_since the snapshots."""
    imports = ledger.frame(ImportRecord, campaigns).rename(columns={"id": "import_id"})
    import_files = ledger.frame(ImportFileRecord, campaigns)
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
    recipients = ledger.frame(RecipientRecord, campaigns, provider_batch_id=batch_ids)
    snapshots = ledger.frame(SnapshotRecord, campaigns)
    replaces = [("campaign", list(campaigns))] if import_ids is None else [("import_id", list(import_ids))]
    if snapshots_since is not None and len(snapshots):
        snapshots = snapshots[pd.to_datetime(snapshots["snapshot_at"], utc=True) >= pd.Timestamp(snapshots_since).tz_convert("UTC")]
    return {
        "imports": imports,
        "import_files": import_files,
        **{kind: Parts(_planned(ledger, kind, campaigns, import_ids), replaces) for kind in BY_IMPORT},
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
