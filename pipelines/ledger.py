"""The ledger: what each campaign accepted and submitted, in SQLite or any SQLAlchemy database.

Every chunk state change is a compare-and-set committed on its own, before the next
network call: a crash at any point leaves a state that says exactly what may have happened.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import String, bindparam, delete, event, func, insert, literal, select, type_coerce, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlmodel import Session, create_engine
from sqlmodel.sql.sqltypes import UTCDateTime

from pipelines.errors import ConcurrentChange, IllegalTransition, LockHeld, StorageError, UsageError
from pipelines.redact import redact, safe_url
from schemas.ledger import (
    PENDING_STATES,
    TRANSITIONS,
    CampaignLock,
    CampaignStopRecord,
    ChangeRecord,
    ImportFileRecord,
    LedgerMeta,
    ChunkRecord,
    ChunkState,
    ImportRecord,
    PlanSegmentRecord,
    ProviderBatchRecord,
    RecipientRecord,
    RecipientSegmentRecord,
    RetryRecord,
    SnapshotRecord,
    SuppressionRecord,
)
from schemas.provider import ChunkPeople, RemoteBatchDetail

if TYPE_CHECKING:  # heavy: imported by the methods that use them, so that `sync` and `status` start quickly
    import numpy as np
    import pandas as pd
    import pyarrow as pa

_LOG_STATEMENT = insert(ChangeRecord)


@functools.cache
def _move_statement(fields: tuple[str, ...]):
    """A chunk's compare-and-set move that sets `fields` and returns the row as moved: built once per set of fields,
    so a submission's thousands of moves reuse one compiled statement."""
    return (update(ChunkRecord).where(ChunkRecord.key == bindparam("key_"), ChunkRecord.state == bindparam("expected_"))
            .values({name: bindparam(name) for name in fields}).returning(*ChunkRecord.__table__.columns))  # fmt: skip


def now() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """A datetime read back from SQLite (naive, stored as UTC), or from a provider, as an aware UTC one."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Ledger:
    """Typed access to the ledger tables."""

    def __init__(self, url: str, *, read_only: bool = False, host: str | None = None, lease_seconds: float = 900.0):
        """Open (and, unless read_only, create or upgrade) the ledger at an SQLAlchemy URL.

        read_only: for commands that only read (report, a dry run): nothing is created or
        written, so they work on a home they may not write to. host, lease_seconds: the name
        this machine's runs write into campaign locks (default: its hostname), and how long a
        lock from another host counts as held without a heartbeat (settings `host`,
        `lock_lease_seconds`).
        """
        self.url = url
        self.host = host or socket.gethostname()
        self.lease_seconds = lease_seconds
        if url.startswith("sqlite:///") and not read_only:
            database = url.removeprefix("sqlite:///")
            if database.startswith("file:"):  # a SQLite URI (…?uri=true): its path, without the scheme and the query
                database = database.removeprefix("file:").split("?", 1)[0]
            folder = Path(database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the state folder {folder}: {exc.strerror}") from None
        try:
            self.engine: Engine = _read_only_engine(url) if read_only else create_engine(
                url, connect_args={"timeout": 30} if url.startswith("sqlite") else {}
            )
            if url.startswith("sqlite") and not read_only:
                event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "handle_error", _storage_errors)
            if read_only:
                self.ledger_id = self._read_id()
            else:
                self._create_schema()
        except StorageError:
            raise
        except (OperationalError, ImportError) as exc:
            raise UsageError(f"cannot open the ledger ({safe_url(url)}): {str(exc).splitlines()[0]}") from None
        except (ArgumentError, ValueError) as exc:  # not a URL SQLAlchemy can use: postgres://, a port that is no number
            raise UsageError(f"cannot open the ledger ({safe_url(url)}): {str(exc).splitlines()[0]}; a shared ledger's URL "
                             "looks like postgresql+psycopg://user@host:5432/database") from None

    def _read_id(self) -> str:
        with Session(self.engine) as session:
            try:
                meta = session.get(LedgerMeta, "ledger_id")
            except (OperationalError, ProgrammingError):  # a ledger older than its identity (or an empty PostgreSQL database)
                return ""
            return meta.value if meta is not None else ""

    def _create_schema(self) -> None:
        """Bring the schema to the newest migration (pipelines.migrations) once, even when several first runs start
        together: a writer lock is taken first (SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock), so a second run
        waits and then finds the ledger current."""
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7242031)")
            from pipelines import migrations

            migrations.upgrade(connection)  # Alembic, only when the ledger is not at the newest revision
            if connection.execute(select(LedgerMeta.value).where(LedgerMeta.key == "ledger_id")).first() is None:
                connection.execute(insert(LedgerMeta).values(key="ledger_id", value=secrets.token_hex(16)))
            connection.commit()
        with Session(self.engine) as session:
            self.ledger_id = session.get(LedgerMeta, "ledger_id").value

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ locks

    def acquire(self, campaign: str) -> str:
        """Take the campaign's lock or raise LockHeld; take over a lock whose holder is gone.

        Both are one atomic statement: an insert that does nothing when a row exists, and a
        takeover that replaces the row only while it still names the dead holder's token
        (compare-and-set). Of several runs racing for one lock, exactly one gets it.
        """
        token = secrets.token_hex(8)
        for _ in range(3):
            stamp = now()
            row = {"campaign": campaign, "owner": token, "host": self.host, "pid": os.getpid(),
                   "acquired_at": stamp, "heartbeat_at": stamp}  # fmt: skip
            with self.engine.begin() as connection:
                taken = self._insert_ignore(CampaignLock).returning(CampaignLock.campaign)  # rowcount: -1 from psycopg here
                if connection.execute(taken, row).first() is not None:
                    return token
            with Session(self.engine) as session:
                held = session.get(CampaignLock, campaign)
            if held is None:
                continue  # released between the two statements: try again
            if self._alive(held):
                raise LockHeld(
                    f"campaign {campaign!r} is busy: another run (pid {held.pid} on {held.host}) has held its lock "
                    f"since {held.acquired_at:%Y-%m-%d %H:%M:%S} UTC; try again when it ends"
                )
            takeover = (
                update(CampaignLock)
                .where(CampaignLock.campaign == campaign, CampaignLock.owner == held.owner)
                .values({k: v for k, v in row.items() if k != "campaign"})
            )
            with self.engine.begin() as connection:
                if connection.execute(takeover).rowcount == 1:
                    return token
            break
        raise LockHeld(f"campaign {campaign!r} is busy: another run took its lock just now")

    def heartbeat(self, campaign: str, token: str) -> bool:
        """Renew the lease of a lock this run holds; False when it is no longer ours (another host took it over)."""
        beat = (update(CampaignLock).where(CampaignLock.campaign == campaign, CampaignLock.owner == token)
                .values(heartbeat_at=now()).returning(CampaignLock.campaign))  # fmt: skip
        with self.engine.begin() as connection:
            return connection.execute(beat).first() is not None

    def _alive(self, lock: CampaignLock) -> bool:
        """Is the run that holds this lock still running? On this host, its process says; from another host, its
        lease (the last heartbeat) does."""
        if lock.host == self.host:
            try:
                os.kill(lock.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return _not_a_zombie(lock.pid)
        return (now() - _aware(lock.heartbeat_at)).total_seconds() < self.lease_seconds

    def release(self, campaign: str, token: str) -> None:
        """Give the lock back, only if it is still ours."""
        with self.engine.begin() as connection:
            connection.execute(delete(CampaignLock).where(CampaignLock.campaign == campaign, CampaignLock.owner == token))

    # ------------------------------------------------------------------ suppression and cooldown

    def suppress(self, numbers: Iterable[str], source: str) -> int:
        """Add numbers to the suppression list; returns how many were new."""
        stamp = now()
        rows = [{"e164": n, "source": source, "added_at": stamp} for n in sorted(set(numbers))]
        if not rows:
            return 0
        before = len(self.suppressed_numbers())
        with self.engine.begin() as connection:
            statement = self._insert_ignore(SuppressionRecord)
            connection.execute(statement, rows)
        return len(self.suppressed_numbers()) - before

    def unsuppress(self, numbers: Iterable[str]) -> int:
        with Session(self.engine) as session:
            result = session.exec(delete(SuppressionRecord).where(SuppressionRecord.e164.in_(list(set(numbers)))))
            session.commit()
            return result.rowcount

    def suppressions(self) -> list[SuppressionRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(SuppressionRecord).order_by(SuppressionRecord.e164)).scalars())

    def suppressed_numbers(self) -> set[str]:
        with Session(self.engine) as session:
            return set(session.exec(select(SuppressionRecord.e164)).scalars())

    def recently_submitted(self, days: float) -> np.ndarray:
        """Numbers any campaign started calling within the last `days` days (first calls and retries), as sorted
        int64 keys."""
        since = now() - timedelta(days=days)
        return _sorted_keys(self._chunk_numbers(ChunkRecord.started_at.is_not(None), ChunkRecord.started_at >= since))

    def recent_calls(self, hours: float = 24.0) -> tuple[np.ndarray, np.ndarray]:
        """Every number some campaign called in the last `hours` hours or will call (planned, held, submitted, dialling),
        as sorted int64 keys, and how many such calls each has (a first call and each retry count once).

        Counted conservatively: a chunk counts unless it was stopped before it dialled, or it is over and sync saw it
        end (its updated_at) before the window began; when each recipient was dialled within it is not needed.
        """
        import numpy as np

        since = now() - timedelta(hours=hours)
        keys = self._chunk_numbers(ChunkRecord.state != ChunkState.CANCELLED,
                                   (ChunkRecord.state != ChunkState.FINISHED) | (ChunkRecord.updated_at >= since))  # fmt: skip
        if not keys:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        numbers, times = np.unique(np.concatenate(keys), return_counts=True)
        return numbers, times.astype(np.int64)

    def _chunk_numbers(self, *conditions) -> list[np.ndarray]:
        """The numbers of every chunk meeting `conditions` (its first calls' segment, or its retry members), as int64
        keys, one array per chunk (a number in several chunks is in several arrays)."""
        import pyarrow as pa
        from pipelines import segments

        firsts = (select(PlanSegmentRecord.numbers).join(ChunkRecord, ChunkRecord.key == PlanSegmentRecord.chunk_key)
                  .where(PlanSegmentRecord.kind == "contacts", *conditions))  # fmt: skip
        retries = select(RetryRecord.e164).join(ChunkRecord, ChunkRecord.key == RetryRecord.chunk_key).where(*conditions)
        with self.engine.connect() as connection:
            keys = [segments.keys(blob) for (blob,) in connection.execute(firsts)]
            again = [e164 for (e164,) in connection.execute(retries)]
        if again:
            keys.append(segments.keys_of(pa.array(again, pa.string())))
        return keys

    def _insert_ignore(self, model):
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        return dialect_insert(model).on_conflict_do_nothing()

    # ------------------------------------------------------------------ planning

    def submitted_keys(self, campaign: str) -> np.ndarray:
        """Every number this campaign has put into a chunk, whatever the chunk's state, as sorted int64 keys."""
        with self.engine.connect() as connection:
            return self._campaign_keys(connection, campaign)

    def _campaign_keys(self, connection, campaign: str) -> np.ndarray:
        from pipelines import segments

        query = select(PlanSegmentRecord.numbers).where(PlanSegmentRecord.campaign == campaign, PlanSegmentRecord.kind == "contacts")
        return _sorted_keys([segments.keys(blob) for (blob,) in connection.execute(query)])

    def record_plan(self, record: ImportRecord, chunks: list[ChunkRecord], files: list[ImportFileRecord], spill) -> ImportRecord:
        """Store an import, its files' accounting, its planned chunks, and the segments (contacts per chunk, rejects,
        duplicates) a PlanSpill holds — all in one transaction: a crash leaves all of it or none.

        The segments go in through the driver's executemany, one spilled batch at a time
        (about a thousand rows for a million contacts). Before committing, the plan's numbers
        are checked against every number the campaign already holds: a number in two of a
        campaign's chunks would be called twice, so that is refused as a bug.
        """
        import numpy as np
        from pipelines import segments

        with Session(self.engine) as session:
            session.add(record)
            session.flush()
            import_id = record.id
            connection = session.connection()
            if chunks:  # a thousand rows in one executemany, not an ORM object each
                connection.execute(insert(ChunkRecord), [chunk.model_dump() | {"import_id": import_id} for chunk in chunks])
            for file in files:
                self._count_file(session, ImportFileRecord(**(file.model_dump() | {"import_id": import_id, "campaign": record.campaign})))
            session.flush()
            held = self._campaign_keys(connection, record.campaign)
            marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            sql = (f"INSERT INTO plan_segments (campaign, import_id, kind, chunk_key, rows, numbers, data) "
                   f"VALUES ({', '.join([marker] * 7)})")  # fmt: skip
            for batch in spill.batches():
                if not batch.num_rows:
                    continue
                planned = [segments.keys(blob) for blob in batch.column("numbers").to_pylist() if blob]
                if planned and np.isin(np.concatenate(planned), held).any():
                    raise ConcurrentChange(f"campaign {record.campaign!r}: the plan holds numbers the campaign already "
                                           "has in a chunk; nothing was recorded")  # fmt: skip
                columns = [batch.column(name).to_pylist() for name in ("kind", "chunk_key", "rows", "numbers", "data")]
                connection.exec_driver_sql(sql, [(record.campaign, import_id, *row) for row in zip(*columns)])
            self._log(session, [(record.campaign, "import", str(import_id))])
            session.commit()
            session.refresh(record)
            session.expunge(record)
            return record

    def stop_campaign(self, campaign: str) -> None:
        """Mark the campaign stopped (committed before cancel sends anything)."""
        with self.engine.begin() as connection:
            connection.execute(self._insert_ignore(CampaignStopRecord), [{"campaign": campaign, "stopped_at": now()}])

    def resume_campaign(self, campaign: str) -> bool:
        """Let a stopped campaign take contacts again; False if it was not stopped."""
        with self.engine.begin() as connection:
            return connection.execute(delete(CampaignStopRecord).where(CampaignStopRecord.campaign == campaign)).rowcount == 1

    def stopped_at(self, campaign: str) -> datetime | None:
        with Session(self.engine) as session:
            record = session.get(CampaignStopRecord, campaign)
            return aware(record.stopped_at) if record is not None else None

    def campaign_provider(self, campaign: str) -> str | None:
        """The provider the campaign's latest import submitted to (None for a campaign the ledger does not know)."""
        latest = self.latest_import(campaign)
        return latest.provider if latest is not None else None

    def latest_import(self, campaign: str) -> ImportRecord | None:
        query = select(ImportRecord).where(ImportRecord.campaign == campaign).order_by(ImportRecord.id.desc())
        with Session(self.engine) as session:
            record = session.exec(query).scalars().first()
            if record is not None:
                session.expunge(record)
            return record

    def _count_file(self, session: Session, file: ImportFileRecord) -> None:
        """Store a file's accounting; a content read before is not counted again, but the contacts it newly made move
        out of the first reading's cooled_down (then state_capped, then suppressed) rows."""
        query = select(ImportFileRecord).where(ImportFileRecord.campaign == file.campaign, ImportFileRecord.sha256 == file.sha256,
                                               ImportFileRecord.counted.is_(True))  # fmt: skip
        first = session.exec(query).scalars().first()
        file.counted = first is None
        session.add(file)
        new = file.accepted - file.already_submitted - file.cooled_down - file.state_capped
        if first is not None and new > 0:
            from_cooled = min(new, first.cooled_down)
            from_capped = min(new - from_cooled, first.state_capped)
            from_suppressed = min(new - from_cooled - from_capped, first.suppressed)
            first.cooled_down -= from_cooled
            first.state_capped -= from_capped
            first.suppressed -= from_suppressed
            first.accepted += from_suppressed
            session.add(first)
            self._log(session, [(first.campaign, "import_record", str(first.import_id))])

    def import_with_content(self, campaign: str, content_hash: str) -> int | None:
        """The id of an earlier import of exactly this content into this campaign, if any."""
        with Session(self.engine) as session:
            query = select(ImportRecord.id).where(ImportRecord.campaign == campaign, ImportRecord.content_hash == content_hash)
            return session.exec(query.order_by(ImportRecord.id)).scalars().first()

    def settle_imports(self, campaign: str) -> None:
        """Imports left `pending` whose chunks have all been submitted since (by a later run) become `submitted`."""
        waiting = select(ChunkRecord.key).where(ChunkRecord.import_id == ImportRecord.id,
                                                ChunkRecord.state.in_([str(s) for s in PENDING_STATES])).exists()  # fmt: skip
        settled = select(ImportRecord.id).where(ImportRecord.campaign == campaign, ImportRecord.outcome == "pending", ~waiting)
        with self.engine.begin() as connection:
            ids = list(connection.execute(settled).scalars())
            if ids:
                connection.execute(update(ImportRecord).where(ImportRecord.id.in_(ids)).values(outcome="submitted"))
                self._log(connection, [(campaign, "import_record", str(i)) for i in ids])

    def finish_import(self, import_id: int, outcome: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(ImportRecord).where(ImportRecord.id == import_id).values(outcome=outcome, finished_at=now()))
            self._log_from(connection, select(ImportRecord.campaign, literal("import_record"), literal(str(import_id)))
                           .where(ImportRecord.id == import_id))  # fmt: skip

    # ------------------------------------------------------------------ chunks

    def chunks(self, campaign: str | None = None, states: Iterable[str] | None = None) -> list[ChunkRecord]:
        query = select(ChunkRecord)
        if campaign is not None:
            query = query.where(ChunkRecord.campaign == campaign)
        if states is not None:
            query = query.where(ChunkRecord.state.in_([str(s) for s in states]))
        with Session(self.engine) as session:
            return list(session.exec(query.order_by(ChunkRecord.created_at, ChunkRecord.key)).scalars())

    def pending_chunks(self, campaign: str) -> list[ChunkRecord]:
        """Chunks not yet started, oldest first: a run resumes these before anything new. Chunks of an import held
        for review (import --hold) are not pending until `campaigns submit` releases them."""
        held = _held_imports(campaign)
        query = select(ChunkRecord).where(ChunkRecord.campaign == campaign, ChunkRecord.state.in_([str(s) for s in PENDING_STATES]),
                                          ChunkRecord.import_id.not_in(held))  # fmt: skip
        with Session(self.engine) as session:
            return list(session.exec(query.order_by(ChunkRecord.created_at, ChunkRecord.key)).scalars())

    def held_chunks(self, campaign: str) -> int:
        """How many planned chunks of the campaign wait for `campaigns submit`."""
        held = _held_imports(campaign)
        query = select(func.count()).select_from(ChunkRecord).where(ChunkRecord.import_id.in_(held),
                                                                     ChunkRecord.state == str(ChunkState.PLANNED))  # fmt: skip
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one()

    def release_held(self, campaign: str) -> int:
        """The campaign's held imports become pending (submitted by this run and any later one); how many."""
        with self.engine.begin() as connection:
            ids = list(connection.execute(_held_imports(campaign)).scalars())
            if ids:
                connection.execute(update(ImportRecord).where(ImportRecord.id.in_(ids)).values(outcome="pending"))
                self._log(connection, [(campaign, "import_record", str(i)) for i in ids])
        return len(ids)

    def chunk(self, key: str) -> ChunkRecord:
        with Session(self.engine) as session:
            record = session.get(ChunkRecord, key)
            if record is None:
                raise ConcurrentChange(f"chunk {key} is not in the ledger")
            session.expunge(record)
            return record

    def transition(self, key: str, expected: ChunkState, new: ChunkState, **values) -> ChunkRecord:
        """Move a chunk from `expected` to `new` (compare-and-set) and commit; only moves in TRANSITIONS. Returns the
        chunk as the move left it (read back by the same statement)."""
        return self.transition_many([(key, expected, new)], **values)[0]

    def transition_many(self, moves: list[tuple[str, ChunkState, ChunkState]], **values) -> list[ChunkRecord]:
        """Chunk moves (key, expected, new), each a compare-and-set, in one transaction: all are committed, or none.
        Returns the chunks as moved, in order."""
        for key, expected, new in moves:
            if ChunkState(new) not in TRANSITIONS[ChunkState(expected)]:
                raise IllegalTransition(f"chunk {key}: {expected} → {new} is not a move of the submission state machine")
        stamp = now()
        moved = []
        with self.engine.begin() as connection:
            for key, expected, new in moves:
                cleared = {"last_error": None} if new == ChunkState.STARTED else {}  # an error is history once it started
                fields = {"state": str(new), "updated_at": stamp} | cleared | values
                row = connection.execute(_move_statement(tuple(fields)), {"key_": key, "expected_": str(expected), **fields}).first()
                if row is None:
                    raise ConcurrentChange(f"chunk {key} was expected in state {expected} but another process moved it")
                moved.append(ChunkRecord.model_construct(**row._mapping))  # the row as stored: nothing to validate
            self._log(connection, list(dict.fromkeys((chunk.campaign, "chunk", chunk.key) for chunk in moved)))  # a chunk once
        return moved

    def note_error(self, key: str, message: str) -> None:
        self.update_chunk(key, last_error=redact(message)[:500])

    def chunk_contacts(self, key: str) -> ChunkPeople:
        """The people of one chunk, in order: its contacts, or for a retry chunk the contacts it repeats."""
        from pipelines import segments

        segment = select(PlanSegmentRecord.campaign, PlanSegmentRecord.data).where(
            PlanSegmentRecord.kind == "contacts", PlanSegmentRecord.chunk_key == key)
        with self.engine.connect() as connection:
            found = connection.execute(segment).first()
            if found is not None:
                return ChunkPeople(found[0], segments.decode(found[1]))
            table, campaign = self._retry_members(connection, key)
        return ChunkPeople(campaign, table)

    def _retry_members(self, connection, key: str) -> tuple[pa.Table, str]:
        """A retry chunk's contacts, in its order, from the segments of the import chunks they came from."""
        import pyarrow as pa
        import pyarrow.compute as pc
        from pipelines import segments

        members = connection.execute(
            select(RetryRecord.e164, RetryRecord.campaign, RetryRecord.origin_chunk).where(RetryRecord.chunk_key == key)
            .order_by(RetryRecord.position)).all()  # fmt: skip
        if not members:
            return segments.CONTACTS.empty_table(), ""
        campaign = members[0][1]
        origins = {origin for _, _, origin in members if origin}
        query = select(PlanSegmentRecord.data).where(PlanSegmentRecord.kind == "contacts", PlanSegmentRecord.campaign == campaign)
        if all(origin for _, _, origin in members):  # retries planned before origin_chunk was kept: read every chunk
            query = query.where(PlanSegmentRecord.chunk_key.in_(sorted(origins)))
        tables = [segments.decode(data) for (data,) in connection.execute(query)]
        pool = pa.concat_tables(tables) if tables else segments.CONTACTS.empty_table()
        wanted = pa.array([e164 for e164, _, _ in members], pa.string())
        at = pc.index_in(wanted, pool.column("e164"))
        return pool.take(at.drop_null()), campaign

    def contact_chunks(self, campaign: str) -> pd.DataFrame:
        """Every contact of the campaign with its import chunk: e164, chunk_key."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc
        from pipelines import segments

        query = select(PlanSegmentRecord.chunk_key, PlanSegmentRecord.numbers).where(
            PlanSegmentRecord.campaign == campaign, PlanSegmentRecord.kind == "contacts")
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        keys = [segments.keys(blob) for _, blob in rows]
        if not keys:
            return pd.DataFrame({"e164": pd.Series(dtype=object), "chunk_key": pd.Series(dtype=object)})
        e164 = pc.binary_join_element_wise("+", pc.cast(pa.array(np.concatenate(keys)), pa.string()), "")
        return pd.DataFrame({"e164": e164.to_pylist(), "chunk_key": np.repeat([key for key, _ in rows], [len(k) for k in keys])})

    def segments(self, kind: str, campaigns: Iterable[str], import_ids: Iterable[int] | None = None) -> Iterator[pa.Table]:
        """The rows of the campaigns' `kind` segments (of these imports only, if given), with campaign, import_id
        (and, for contacts, chunk_key) added, a few segments at a time."""
        import pyarrow as pa
        from pipelines import segments

        query = select(PlanSegmentRecord.campaign, PlanSegmentRecord.import_id, PlanSegmentRecord.chunk_key,
                       PlanSegmentRecord.data).where(PlanSegmentRecord.kind == kind,
                                                     PlanSegmentRecord.campaign.in_(list(campaigns)))  # fmt: skip
        if import_ids is not None:
            query = query.where(PlanSegmentRecord.import_id.in_(list(import_ids)))
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=64).execute(query.order_by(PlanSegmentRecord.id))
            for part in result.partitions():
                tables = []
                for campaign, import_id, chunk_key, data in part:
                    table = segments.decode(data)
                    extra = {"campaign": campaign, "import_id": import_id} | ({"chunk_key": chunk_key} if kind == "contacts" else {})
                    for name, value in extra.items():
                        table = table.append_column(name, pa.array([value] * table.num_rows, pa.type_for_alias(_TYPES[name])))
                    tables.append(table)
                yield pa.concat_tables(tables)

    def record_retry(self, chunks: list[ChunkRecord], members: list[dict]) -> None:
        """Plan retry chunks and their members (RetryRecord fields) in one transaction (a crash leaves all of them or
        none); the members go in by one executemany."""
        with Session(self.engine, expire_on_commit=False) as session:
            session.add_all(chunks)
            session.flush()
            if members:
                session.connection().execute(insert(RetryRecord), members)
            self._log(session, [(chunk.campaign, "chunk", chunk.key) for chunk in chunks])
            session.commit()

    def update_chunk(self, key: str, **values) -> None:
        """Change fields of a chunk that are not its state (not_before, last_error, …)."""
        with self.engine.begin() as connection:
            connection.execute(update(ChunkRecord).where(ChunkRecord.key == key).values(updated_at=now(), **values))
            self._log_chunks(connection, [key])

    # ------------------------------------------------------------------ the change log (what DuckDB must receive)

    def _log(self, connection, rows: list[tuple[str, str, str]]) -> None:
        """Record changes (campaign, kind, ref) in the caller's transaction."""
        if not rows:
            return
        self._serialise_log(connection)
        stamp = now()
        connection.execute(_LOG_STATEMENT, [{"campaign": c, "kind": k, "ref": r, "at": stamp} for c, k, r in rows])

    def _log_from(self, connection, query) -> None:
        """Record changes selected by `query` (campaign, kind, ref) in the caller's transaction."""
        self._serialise_log(connection)
        columns = query.add_columns(literal(now()))
        connection.execute(insert(ChangeRecord).from_select(["campaign", "kind", "ref", "at"], columns))

    def _log_chunks(self, connection, keys: list[str]) -> None:
        self._log_from(connection, select(ChunkRecord.campaign, literal("chunk"), ChunkRecord.key).where(ChunkRecord.key.in_(keys)))

    def _serialise_log(self, connection) -> None:
        """PostgreSQL: change rows are numbered in commit order (a publish must never skip a late-committing one)."""
        if self.engine.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(7242032)))

    def change_head(self) -> int:
        """The newest change's number (0 for a ledger with none)."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.coalesce(func.max(ChangeRecord.seq), 0))).scalar_one())

    def changes_since(self, seq: int, upto: int) -> list[ChangeRecord]:
        """Changes after `seq`, up to and including `upto`, in order."""
        query = select(ChangeRecord).where(ChangeRecord.seq > seq, ChangeRecord.seq <= upto).order_by(ChangeRecord.seq)
        with Session(self.engine) as session:
            return list(session.exec(query).scalars())

    # ------------------------------------------------------------------ sync

    def record_sync(self, reads: list[tuple[ChunkRecord, RemoteBatchDetail]], finished: Collection[str] = ()) -> None:
        """Several batches as just read, in one transaction: each batch upserted; its recipients merged into its
        segment (pipelines.segments.merge_recipients: a recipient's row changes only when its status or call did), the
        segment rewritten only if one did; the chunks `finished` moved started → finished (compare-and-set). Reads are
        idempotent, so a sync killed before the commit only reads these batches again."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pipelines import segments
        from schemas.provider import FINAL_RECIPIENT

        final_statuses = pa.array(sorted(FINAL_RECIPIENT), pa.string())
        stamp = now()
        with self.engine.begin() as connection:
            ids = [detail.batch.id for _, detail in reads]
            old = {batch_id: segments.decode(data) for batch_id, data in connection.execute(
                select(RecipientSegmentRecord.provider_batch_id, RecipientSegmentRecord.data)
                .where(RecipientSegmentRecord.provider_batch_id.in_(ids)))}  # fmt: skip
            batch_rows = [{
                "provider_batch_id": d.batch.id, "chunk_key": chunk.key, "campaign": chunk.campaign, "provider": chunk.provider,
                "dialect": chunk.dialect, "status": d.batch.status, "total": d.batch.total, "completed": d.batch.completed,
                "failed": d.batch.failed, "created_at": _aware(d.batch.created_at), "completed_at": _aware(d.batch.completed_at),
                "synced_at": stamp} for chunk, d in reads]  # fmt: skip
            if batch_rows:
                connection.execute(self._upsert(ProviderBatchRecord, ["provider_batch_id"], list(batch_rows[0])), batch_rows)
            for key in finished:
                fields = {"state": str(ChunkState.FINISHED), "updated_at": stamp}
                if connection.execute(_move_statement(tuple(fields)), {"key_": key, "expected_": str(ChunkState.STARTED), **fields}).first() is None:
                    raise ConcurrentChange(f"chunk {key} was expected in state started but another process moved it")
            self._log(connection, [(chunk.campaign, "batch", detail.batch.id) for chunk, detail in reads]
                      + [(chunk.campaign, "chunk", chunk.key) for chunk, _ in reads if chunk.key in finished])  # fmt: skip
            # numbered with this transaction's last change: a publish copies the rows written after its watermark
            seq = connection.execute(select(func.max(ChangeRecord.seq))).scalar_one()
            rewritten = []
            for chunk, detail in reads:
                merged = segments.merge_recipients(old.get(detail.batch.id),
                                                   segments.read_recipients(detail.recipients, stamp.timestamp(), seq))
                if merged is None:
                    continue
                final = pc.sum(pc.is_in(merged.column("status"), value_set=final_statuses)).as_py() or 0
                rewritten.append({"provider_batch_id": detail.batch.id, "campaign": chunk.campaign, "change_seq": seq,
                                  "rows": merged.num_rows, "final": final, "data": segments.encode(merged)})  # fmt: skip
            if rewritten:
                connection.execute(self._upsert(RecipientSegmentRecord, ["provider_batch_id"], list(rewritten[0])), rewritten)

    def recipient_progress(self, batch_ids: Iterable[str]) -> tuple[int, int]:
        """(recipients whose call is over, recipients) of these provider batches, as last synced."""
        ids = list(batch_ids)
        if not ids:
            return 0, 0
        query = select(func.coalesce(func.sum(RecipientSegmentRecord.final), 0), func.coalesce(func.sum(RecipientSegmentRecord.rows), 0)
                       ).where(RecipientSegmentRecord.provider_batch_id.in_(ids))  # fmt: skip
        with self.engine.connect() as connection:
            done, total = connection.execute(query).one()
        return int(done), int(total)

    def recipient_tables(self, campaigns: Iterable[str], since: tuple[int, int] | None = None,
                         size: int = 131_072) -> Iterator[pa.Table]:
        """The campaigns' recipients (RECIPIENT_COLUMNS: provider_batch_id, campaign and a segment's columns but
        change_seq) as Arrow tables of about `size` rows. `since` = (after, upto): only the rows written by the changes
        numbered after..upto (the segments rewritten since, filtered by row)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pipelines import segments

        query = select(RecipientSegmentRecord.provider_batch_id, RecipientSegmentRecord.campaign, RecipientSegmentRecord.data
                       ).where(RecipientSegmentRecord.campaign.in_(list(campaigns)))  # fmt: skip
        if since is not None:
            query = query.where(RecipientSegmentRecord.change_seq > since[0])
        tables, rows = [], 0
        with self.engine.connect() as connection:
            for batch_id, campaign, data in connection.execution_options(yield_per=256).execute(query):
                table = segments.decode(data)
                if since is not None:
                    seq = table.column("change_seq")
                    table = table.filter(pc.and_(pc.greater(seq, since[0]), pc.less_equal(seq, since[1])))
                if not table.num_rows:
                    continue
                table = table.drop_columns(["change_seq"])
                table = table.add_column(0, "campaign", pa.array([campaign] * table.num_rows, pa.string()))
                tables.append(table.add_column(0, "provider_batch_id", pa.array([batch_id] * table.num_rows, pa.string())))
                rows += table.num_rows
                if rows >= size:
                    yield pa.concat_tables(tables).select(list(RECIPIENT_COLUMNS))
                    tables, rows = [], 0
        if tables:
            yield pa.concat_tables(tables).select(list(RECIPIENT_COLUMNS))

    def recipients(self, campaigns: Iterable[str]) -> pa.Table:
        """The campaigns' recipients as one Arrow table (RECIPIENT_COLUMNS; empty with that schema if none)."""
        import pyarrow as pa

        from pipelines import segments

        tables = list(self.recipient_tables(campaigns))
        if tables:
            return pa.concat_tables(tables)
        types = {"provider_batch_id": pa.string(), "campaign": pa.string(), **{f.name: f.type for f in segments.RECIPIENTS}}
        return pa.schema([(name, types[name]) for name in RECIPIENT_COLUMNS]).empty_table()

    def _upsert(self, model, keys: list[str], columns: list[str]):
        """INSERT … ON CONFLICT (keys) DO UPDATE, for SQLite and PostgreSQL alike."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        statement = dialect_insert(model)
        return statement.on_conflict_do_update(
            index_elements=keys, set_={c: statement.excluded[c] for c in columns if c not in keys}
        )

    def record_snapshots(self, rows: list[SnapshotRecord]) -> None:
        with Session(self.engine) as session:
            session.add_all(rows)
            session.flush()
            stamps = sorted({(row.campaign, aware(row.snapshot_at).isoformat()) for row in rows})
            self._log(session, [(campaign, "snapshot", stamp) for campaign, stamp in stamps])
            session.commit()

    def frame(self, model, campaigns: Iterable[str] | None = None, **equals_any) -> pd.DataFrame:
        """Rows of one table as a DataFrame, filtered by campaign and `column=[values]`, in bulk."""
        import pandas as pd

        table = model.__table__
        times = [c.name for c in table.columns if isinstance(c.type, UTCDateTime)]
        # times come as the driver stores them and are parsed as whole columns (not one datetime object per value)
        query = select(*(type_coerce(c, String).label(c.name) if c.name in times else c for c in table.columns))
        if campaigns is not None:
            query = query.where(model.campaign.in_(list(campaigns)))
        for column, values in equals_any.items():
            if values is not None:
                query = query.where(getattr(model, column).in_(list(values)))
        with self.engine.connect() as connection:
            frame = pd.read_sql(query, connection)
        for name in times:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601").astype("datetime64[us, UTC]")
        return frame

    def campaigns(self) -> list[str]:
        with Session(self.engine) as session:
            return sorted(set(session.exec(select(ImportRecord.campaign)).scalars()))

    def require_campaign(self, campaign: str) -> None:
        """Refuse a campaign with no batches (a typo, most likely), naming the nearest one the ledger has."""
        with self.engine.connect() as connection:
            if connection.execute(select(ChunkRecord.key).where(ChunkRecord.campaign == campaign).limit(1)).first():
                return
        import difflib

        known = self.campaigns()
        near = difflib.get_close_matches(campaign, known, n=1) or [k for k in known if k.casefold() == campaign.casefold()]
        if near:
            hint = f"; did you mean {near[0]!r}?"
        elif known:
            hint = f"; campaigns here: {', '.join(known[:10])}{' …' if len(known) > 10 else ''}"
        else:
            hint = ""
        raise UsageError(f"campaign {campaign!r} has no batches in the ledger{hint}")

    def recipient_statuses(self, campaign: str | None = None) -> list[RecipientRecord]:
        campaigns = [campaign] if campaign else self._recipient_campaigns()
        return [RecipientRecord(**row) for row in self.recipients(campaigns).to_pylist()]

    def _recipient_campaigns(self) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(RecipientSegmentRecord.campaign).distinct()).scalars())


RECIPIENT_COLUMNS = ("provider_batch_id", "e164", "campaign", "status", "call_record_id", "attempted_at", "completed_at",
                     "error", "synced_at")  # fmt: skip
_TYPES = {"campaign": "string", "import_id": "int64", "chunk_key": "string"}  # pyarrow type names


def _sorted_keys(parts: list[np.ndarray]) -> np.ndarray:
    import numpy as np

    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


STORAGE_FAILURES = ("database or disk is full", "readonly database", "disk i/o error", "unable to open database file",
                    "no space left on device", "read-only file system", "permission denied")  # fmt: skip


def _storage_errors(context) -> None:
    """A write the disk refused (full, read-only, permissions) becomes one StorageError line, not an internal error."""
    text = str(context.original_exception).lower()
    if any(failure in text for failure in STORAGE_FAILURES):
        raise StorageError(
            f"the ledger cannot be written ({str(context.original_exception).splitlines()[0]}); what was committed "
            "before is intact — free space or fix permissions, then run again"
        ) from context.original_exception


def _held_imports(campaign: str):
    """The ids of the campaign's imports held by `import --hold` (a select, to run or to nest)."""
    return select(ImportRecord.id).where(ImportRecord.campaign == campaign, ImportRecord.outcome == "held")


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # first: switching to WAL waits for a concurrent first run too
    # ... mostly: while another first run is turning a new file to WAL, SQLite can refuse the switch at once (database
    # is locked) without waiting. Seen once in ~150 four-way first runs on a loaded machine; asked again until it holds.
    deadline = time.monotonic() + 30
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    cursor.execute("PRAGMA synchronous=FULL")  # a state change survives a power cut, not only a crash
    cursor.close()


def _not_a_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _read_only_engine(url: str) -> Engine:
    """An engine that only reads. SQLite: opened read-only; where even that needs a file it cannot make (the
    write-ahead log's index, in a folder it may not write), as immutable — then what a concurrent writer has not
    yet checkpointed is not seen, which a report or a dry run can live with."""
    if not url.startswith("sqlite:///") or "?" in url:
        return create_engine(url)
    path = url.removeprefix("sqlite:///")
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", connect_args={"timeout": 30})
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT count(*) FROM sqlite_master")
        return engine
    except OperationalError:
        engine.dispose()
        return create_engine(f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true")
