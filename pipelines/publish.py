"""Publish stage: ledger → campaigns.duckdb, so that an open notebook never blocks a writer.

The ledger logs every change the file must receive (schemas.ledger.ChangeRecord, in the
same transaction as the change); the file records the last change it holds (its
watermark, in `publish_state`). A publish applies every change after the watermark,
whoever made it, so a publish that failed or was killed is caught up by the next one,
and a publish with nothing new does nothing at all.

A publish never writes the file readers open. It keeps a second version (`.campaigns.duckdb.standby`, the file it
last replaced), applies the changes after the standby's watermark to it — upserts (INSERT OR REPLACE on natural
keys, in bulk from Arrow; an import's contacts, rejects and duplicates are replaced whole, deleted by import or
campaign then inserted; recipients replaced by key) — sets its watermark, checkpoints it and renames it over the file;
the version it replaced becomes the standby and receives the same changes, replayed from a spill of what was just
applied, so that it is current again for the next publish. A publish that changes 1 % of the rows writes those rows
twice and copies nothing. When the standby is missing (the first publishes, or after a rebuild or a campaign
republished whole), is still read by somebody (a reader who opened the file before the last publish: DuckDB's lock
refuses the writer, and within this process, where that lock does not hold, its open descriptor shows), or is
unusable, the current file is copied instead. A file whose unkeyed tables still carry keys, or a rebuild, is written
fresh. Recipients are the large table: the ledger numbers each row with the change that wrote it, and a publish reads
only the rows numbered after its watermark.

The file is committed every million rows (DuckDB holds a transaction's rows in memory, so ten million contacts would
need gigabytes); it is only renamed into place once complete. Readers that hold the old file keep reading their
complete snapshot; new readers get the complete new one; nobody ever sees half a sync, and a reader's lock is on a
file the writer does not touch. Writers take turns through a lock file; leftovers of a killed writer are swept by the
next (a standby a killed publish left half brought forward is brought forward again: every step is an upsert or a
replace, so applying a change twice leaves what applying it once does). The standby costs one more file of the same
size on disk.
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
from typing import TYPE_CHECKING

from pipelines.report import duckdb  # DuckDB's engine alone, as reports use it

from pipelines.errors import PublishError, UsageError
from pipelines.ledger import Ledger
from schemas.ledger import (
    ChunkRecord,
    ImportFileRecord,
    ImportRecord,
    ProviderBatchRecord,
    SnapshotRecord,
)
from pipelines.report import Published, published_state
from schemas.warehouse import ADDED_COLUMNS, BY_IMPORT, RECIPIENT_KEY, RENAMED, TABLES, UNKEYED, VIEWS

if TYPE_CHECKING:  # imported where rows are built: a publish with nothing new needs neither pandas nor pyarrow
    import pyarrow as pa

WRITER_WAIT_SECONDS = 300
SPILL_PART_ROWS = 131_072  # rows per statement when a spill is replayed
COALESCE_ROWS = 1_000_000  # Arrow parts are joined (not copied) up to this many rows for one INSERT
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
    previous = db.with_name(f".{db.name}.{os.getpid()}.tmp.previous")
    spill = db.with_name(f".{db.name}.{os.getpid()}.tmp.spill")
    connection = None
    try:
        with _writer_lock(db):
            _sweep(db)
            head = ledger.change_head()
            state, keyed = _read_file(db, head if not (rebuild or campaigns) else None)
            fresh = rebuild or state is None or state.ledger_id != ledger.ledger_id or keyed
            if not fresh and state.change_seq >= head and not campaigns:
                return 0
            standby = None if fresh else _open_standby(db, ledger.ledger_id, head)
            if standby is not None:  # the previous version, kept by the last publish: brought forward from its own watermark
                (connection, after), target = standby, _standby(db)
            else:  # a fresh file, or a copy of the current one
                if not fresh:
                    shutil.copyfile(db, temporary)
                connection, after, target = _connect_writer(temporary), None if fresh else state.change_seq, temporary
            if fresh:
                frames = _frames(ledger, ledger.campaigns(), None, None, None)
            else:
                frames = _changed_frames(ledger, after, head, list(campaigns or ()))
            # what the changes wrote is applied to the standby as well (from a spill); a rebuild or a campaign
            # republished whole is not applied twice: the file it replaced is no standby, the next publish copies
            incremental = not fresh and not campaigns
            replay = _write(connection, frames, Published(ledger.ledger_id, head), spill if incremental else None)
            connection = None
            _fsync(target)
            if incremental:  # the version readers hold now becomes the next publish's standby
                os.link(db, previous)
            os.replace(target, db)
            if incremental:
                os.replace(previous, _standby(db))
            else:
                _standby(db).unlink(missing_ok=True)
            _fsync(db.parent)
            if replay is not None:  # readers have the new file: bring the standby forward too, from the spill
                _catch_up(db, ledger.ledger_id, head, replay)
            return head - (0 if fresh else state.change_seq)
    except (duckdb.Error, OSError, UsageError) as exc:  # UsageError: the file there is no DuckDB file (report.reader)
        reason = exc.__cause__ if isinstance(exc, UsageError) and exc.__cause__ is not None else exc
        raise PublishError(
            f"{db} was not updated ({str(reason).splitlines()[0]}); the ledger is intact, and the next command that "
            "publishes (or `campaigns publish`) brings the file up to date"
        ) from exc
    finally:
        if connection is not None:
            connection.close()
        for leftover in (temporary, Path(str(temporary) + ".wal"), previous):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(spill, ignore_errors=True)


def _catch_up(db: Path, ledger_id: str, head: int, replay: dict[str, object]) -> None:
    """Apply what this publish applied to the standby as well, so that the next publish applies only its own changes.
    Skipped (the standby then lags, and the next publish brings it forward from the ledger) when somebody still reads
    it or it cannot be written: readers never wait for it, and a failure here changes nothing they see."""
    standby = _open_standby(db, ledger_id, head)
    if standby is None:
        return
    connection, _ = standby
    try:
        _write(connection, replay, Published(ledger_id, head))
    except (duckdb.Error, OSError):
        pass


def _standby(db: Path) -> Path:
    return db.with_name(f".{db.name}.standby")


def _open_standby(db: Path, ledger_id: str, head: int):
    """The standby (the file as the publish before last left it) opened for writing, and its watermark; or None
    when there is none, it is from another ledger or was written with keys this publish no longer writes, or
    somebody still reads it (a reader who opened the file two publishes ago: DuckDB's lock refuses the writer, and
    within this process, where that lock does not hold, its open descriptor shows)."""
    standby = _standby(db)
    if not standby.exists() or _open_in_this_process(standby):
        return None
    try:
        connection = _connect_writer(standby)
    except duckdb.Error:  # read by another process, or not a database
        return None
    try:
        state = published_state(standby, connection)
        keyed = connection.execute(_KEYED_QUERY).fetchone()[0] > 0
    except duckdb.Error:
        state = None
    if state is None or keyed or state.ledger_id != ledger_id or state.change_seq > head:
        connection.close()
        return None
    return connection, state.change_seq


def _connect_writer(path: Path):
    """A connection that writes the file: rows need not keep the order they were inserted in (every reader's query
    orders what it shows), which lets DuckDB load and compress them on all cores (1M-row `publish --campaign`:
    4.0 s -> 3.3 s)."""
    return duckdb.connect(str(path), config={"preserve_insertion_order": False})


def _open_in_this_process(path: Path) -> bool:
    """Whether this process holds `path` open (Linux: /proc/self/fd; elsewhere, assume it might)."""
    try:
        target = path.stat()
        for entry in os.scandir("/proc/self/fd"):
            try:
                found = os.stat(entry.path)
            except OSError:
                continue
            if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
                return True
    except OSError:
        return True
    return False


@dataclass
class Parts:
    """Rows of an unkeyed table (schemas.warehouse.UNKEYED), as Arrow tables a few at a time, and what they replace:
    (column, values) pairs whose rows are deleted first (none for a fresh file), and `keys`, the columns by which
    each table's rows replace those the file holds."""

    tables: Iterable[pa.Table]
    replaces: list[tuple[str, list]]
    keys: tuple[str, ...] = ()


_KEYED_QUERY = ("SELECT (SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' AND table_name IN "
                f"({', '.join(repr(t) for t in UNKEYED)})) + (SELECT count(*) FROM duckdb_tables() WHERE table_name IN "
                f"({', '.join(repr(t) for t in RENAMED)}))")  # fmt: skip


def _read_file(db: Path, head: int | None = None) -> tuple[Published | None, bool]:
    """The file's watermark, and whether it was written when an unkeyed table (schemas.warehouse.UNKEYED) had a
    primary key or a table had an older name (such a file is rebuilt once); one read-only open."""
    if not db.exists():
        return None, False
    from pipelines.report import reader

    with reader(db) as connection:
        state = published_state(db, connection)
        if state is not None and head is not None and state.change_seq >= head:
            return state, False  # nothing to publish: the file's keys are looked at when there is
        return state, connection.execute(_KEYED_QUERY).fetchone()[0] > 0


def _sweep(db: Path) -> None:
    """Remove what killed publishes left behind (the caller holds the writer lock, so no live writer owns them)."""
    for leftover in db.parent.glob(f".{db.name}.*.tmp*"):
        if leftover.is_dir():  # a spill
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _write(connection, frames: dict[str, object], state: Published, spill: Path | None = None) -> dict[str, object] | None:
    """Apply `frames` to the file `connection` is open on, set its watermark, checkpoint and close it.

    With `spill` (a folder), the Arrow parts are also written there as they are applied, and the same frames are
    returned read back from it: what brings the standby forward without reading the ledger again."""
    import duckdb as _package  # noqa: F401 - the package sets the engine up to scan Arrow tables and DataFrames
    import pandas as pd

    if spill is not None:
        frames, replay = _spilled(frames, spill)
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
            keys = ()
            if isinstance(rows, Parts):  # rows replaced whole (an import's, a campaign's) or by key: delete, then insert
                for column, values in rows.replaces:
                    if values:
                        connection.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT unnest(?))", [values])  # noqa: S608
                rows, verb, keys = _prefetched(rows.tables), "INSERT", rows.keys
            for part in [rows] if isinstance(rows, pd.DataFrame) else rows:  # a DataFrame, or Arrow tables a few at a time
                if not len(part):
                    continue
                connection.register("incoming", part)
                if keys:
                    same = " AND ".join(f"{table}.{key} = incoming.{key}" for key in keys)
                    connection.execute(f"DELETE FROM {table} USING incoming WHERE {same}")  # noqa: S608 - our names
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
    return replay() if spill is not None else None


def _prefetched(parts: Iterable[pa.Table], ahead: int = 1) -> Iterator[pa.Table]:
    """`parts`, built by a thread while the caller writes the ones before: reading the ledger (Python) and loading
    DuckDB (which lets go of the GIL) overlap. The thread's exception is raised here; leaving early stops it."""
    import queue
    import threading

    handoff: queue.Queue = queue.Queue(ahead)
    stop = threading.Event()
    end = object()

    def offer(item) -> bool:
        """Hand `item` over unless the consumer has left; whether it was handed over."""
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for part in _coalesced(parts):
                if not offer(part):
                    return
            offer(end)
        except BaseException as exc:  # handed to the consumer
            offer(exc)

    worker = threading.Thread(target=produce, name="publish-read", daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _coalesced(parts: Iterable[pa.Table], rows: int = COALESCE_ROWS) -> Iterator[pa.Table]:
    """`parts` joined into tables of about `rows` rows where consecutive parts have one schema (their chunks, not
    copied): DuckDB spreads one INSERT over its threads by row groups of 122,880 rows, so a part of a provider
    batch (a thousand rows) loads on one core. A 1M-row `publish --campaign`: 5.6 s in parts, 3.3 s joined."""
    import pyarrow as pa

    held: list[pa.Table] = []
    count = 0
    for part in parts:
        if held and (count >= rows or part.schema != held[0].schema):
            yield held[0] if len(held) == 1 else pa.concat_tables(held)
            held, count = [], 0
        held.append(part)
        count += len(part)
    if held:
        yield held[0] if len(held) == 1 else pa.concat_tables(held)


def _spilled(frames: dict[str, object], folder: Path):
    """`frames` whose Arrow parts are copied into Arrow IPC files in `folder` as they are consumed, and a function
    that returns the same frames read back from those files (DataFrames are small and kept as they are)."""
    import pyarrow as pa

    folder.mkdir(exist_ok=True)

    def tee(table: str, parts: Iterable[pa.Table]) -> Iterator[pa.Table]:
        writer = None
        try:
            for part in parts:
                if writer is None:
                    writer = pa.ipc.new_stream(folder / f"{table}.arrow", part.schema)
                writer.write_table(part)
                yield part
        finally:
            if writer is not None:
                writer.close()

    def read(table: str) -> Iterator[pa.Table]:
        """The spilled parts, a few hundred thousand rows at a time (one statement per part, as when applied)."""
        path = folder / f"{table}.arrow"
        if not path.exists():
            return
        with pa.ipc.open_stream(path) as reader:
            batches, rows = [], 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows >= SPILL_PART_ROWS:
                    yield pa.Table.from_batches(batches)
                    batches, rows = [], 0
            if batches:
                yield pa.Table.from_batches(batches)

    teed = {table: Parts(tee(table, rows.tables), rows.replaces, rows.keys) if isinstance(rows, Parts) else rows
            for table, rows in frames.items()}  # fmt: skip

    def replay() -> dict[str, object]:
        return {table: Parts(read(table), rows.replaces, rows.keys) if isinstance(rows, Parts) else rows
                for table, rows in frames.items()}  # fmt: skip

    return teed, replay


def _changed_frames(ledger: Ledger, after: int, upto: int, campaigns: list[str]) -> dict[str, object]:
    """The rows the changes after the watermark touched, plus every row of `campaigns`."""
    changes = [c for c in ledger.changes_since(after, upto) if c.campaign not in campaigns]
    touched = sorted({c.campaign for c in changes})
    if campaigns and not touched:  # only the campaigns rewritten whole: no row needs replacing by its key
        return _frames(ledger, campaigns, None, None, None)
    import_ids = sorted({int(c.ref) for c in changes if c.kind == "import"})
    stamps = [datetime.fromisoformat(c.ref) for c in changes if c.kind == "snapshot"]
    frames = _frames(ledger, touched, import_ids, (after, upto), min(stamps) if stamps else None)
    if campaigns:
        whole = _frames(ledger, campaigns, None, None, None)
        frames = {name: _joined(frames[name], whole[name]) for name in frames}
    return frames


def _joined(first, second):
    """Two tables' rows for the file: DataFrames concatenated, or Arrow parts one after the other."""
    import pandas as pd

    if isinstance(first, pd.DataFrame):
        return pd.concat([first, second], ignore_index=True)
    return Parts(itertools.chain(first.tables, second.tables), first.replaces + second.replaces, first.keys or second.keys)


def _planned(ledger: Ledger, kind: str, campaigns, import_ids) -> Iterator[pa.Table]:
    """An import's planned rows of one kind, from the ledger's segments, as the DuckDB table holds them (a CSV has
    no sheet: NULL in contacts, '' in the keys of rejects and duplicates)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for table in ledger.segments(kind, campaigns, import_ids):
        sheet = table.column("source_sheet")
        if kind == "contacts":
            sheet = pc.if_else(pc.equal(sheet, ""), pa.scalar(None, pa.string()), sheet)
        else:
            sheet = pc.fill_null(sheet, "")
        yield table.set_column(table.schema.get_field_index("source_sheet"), "source_sheet", sheet)


def _frames(ledger: Ledger, campaigns, import_ids, recipients_since, snapshots_since) -> dict[str, object]:
    """Rows of `campaigns`; import_ids (None = all) narrow the planned rows, recipients_since (after, upto; None = all)
    the recipients to those the changes numbered after..upto wrote, snapshots_since the snapshots."""
    import pandas as pd

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
         "days", "kind", "not_before", "us_state", "holidays"]
    ].rename(columns={"key": "chunk_key", "window": "calling_window", "days": "calling_days", "holidays": "calling_holidays"})  # fmt: skip
    # a campaign's recipients replaced whole; or, after a watermark, those the changes wrote, replaced by their key
    whole = recipients_since is None
    recipients = Parts(ledger.recipient_tables(campaigns, recipients_since), [("campaign", list(campaigns))] if whole else [],
                       () if whole else RECIPIENT_KEY)  # fmt: skip
    snapshots = ledger.frame(SnapshotRecord, campaigns)
    replaces = [("campaign", list(campaigns))] if import_ids is None else [("import_id", list(import_ids))]
    if snapshots_since is not None and len(snapshots):
        snapshots = snapshots[pd.to_datetime(snapshots["snapshot_at"], utc=True) >= pd.Timestamp(snapshots_since).tz_convert("UTC")]
    return {
        "imports": imports,
        "import_files": import_files,
        **{kind: Parts(_planned(ledger, kind, campaigns, import_ids), replaces) for kind in BY_IMPORT},
        "batches": batch_rows,
        "recipient_rows": recipients,
        "batch_snapshots": snapshots,
    }


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
