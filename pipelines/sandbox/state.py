"""The sandbox's memory: batches (each with its recipients) and each run's planned calls in SQLite, and views
derived from them.

Stored status is what a request set (draft, scheduled, running, cancelled…); what a
client sees (running vs completed, each recipient's status, the counts) is derived from
the planned calls and the clock on every read.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pydantic_core

from pipelines.sandbox.simulation import TERMINAL, PlannedCall, Window, call_status, plan_run

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    dialect TEXT NOT NULL,
    name TEXT,
    status TEXT NOT NULL,
    fields TEXT NOT NULL,
    created_at REAL NOT NULL,
    start_at REAL,
    started_at REAL,
    cancelled_at REAL,
    run INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    recipient_base TEXT NOT NULL DEFAULT '',
    recipients TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS runs (
    batch_id TEXT NOT NULL,
    run INTEGER NOT NULL,
    calls TEXT NOT NULL,
    PRIMARY KEY (batch_id, run)
);
"""
# One recipient as a request gave it: (phone_number, name, contact_id, variables).
Recipient = tuple[str, str | None, str | None, dict | None]

# A batch's recipients, in order: [[phone_number, name, contact_id, variables], ...]; recipient i's id is
# recipient_base followed by i. A run's calls, by recipient: [dial_at, ring_end, end_at, outcome, call_record_id],
# or null for one never dialled (its run was cancelled first). One value per batch and per run: a create and a
# start write one row each, however many people they hold.
BATCH_COLUMNS = "seq, id, dialect, name, status, fields, created_at, start_at, started_at, cancelled_at, run, size"


@dataclass
class StoredBatch:
    seq: int
    id: str
    dialect: str
    name: str | None
    status: str
    fields: dict
    created_at: float
    start_at: float | None
    started_at: float | None
    cancelled_at: float | None
    run: int
    size: int  # how many recipients


@dataclass
class RecipientView:
    """One recipient as seen now."""

    index: int
    recipient_id: str
    phone_number: str
    name: str | None
    contact_id: str | None
    variables: dict | None
    status: str
    call: PlannedCall | None
    dials: int  # how many times this person has been dialled so far, over every run


@dataclass
class BatchView:
    """A batch as seen now: derived status, each recipient's status (in order), and the recipients when asked for."""

    batch: StoredBatch
    status: str
    statuses: list[str] = field(default_factory=list)
    calls: list = field(default_factory=list)  # the current run's call per recipient index, as stored (None: not dialled)
    recipients: list[RecipientView] = field(default_factory=list)  # only from view(..., recipients=True)
    completed_at: float | None = None

    @property
    def total(self) -> int:
        return len(self.statuses)

    @cached_property
    def tally(self) -> Counter[str]:
        """How many recipients are in each status."""
        return Counter(self.statuses)

    def count(self, *statuses: str) -> int:
        return sum(self.tally[status] for status in statuses)

    def dial_times(self) -> list[float]:
        """When each recipient dialled so far (in this run) was dialled."""
        if self.count("pending", "skipped") == self.total:
            return []
        return [self.calls[i][0] for i, status in enumerate(self.statuses) if status not in ("pending", "skipped")]


class SandboxStore:
    """Thread-safe SQLite store for the sandbox; `path=None` keeps everything in memory."""

    def __init__(self, path: str | Path | None, *, speed: float, seed: int, clock: Callable[[], float] = time.time):
        self.speed = speed
        self.seed = seed
        self.clock = clock
        self._lock = threading.RLock()
        target = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        _upgrade(self._db)
        self._depth = 0  # nesting of transaction(): only the outermost one begins and commits

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (an exception rolls every one back).

        Nested uses join the outermost transaction, so a handler can group several writes
        (create, then plan the first run) into one change that a refusal leaves untouched.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    # ------------------------------------------------------------ writes

    def create(self, dialect: str, batch_id: str, name: str | None, status: str, fields: dict, recipients: list[Recipient]) -> StoredBatch:
        """Store a new batch (its id in the dialect's format) and its recipients; dialling is started separately."""
        now = self.clock()
        with self.transaction():
            self._db.execute(
                "INSERT INTO batches (id, dialect, name, status, fields, created_at, size, recipient_base, recipients)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (batch_id, dialect, name, status, json.dumps(fields), now, *_packed(recipients)),
            )
        return self.get(batch_id)

    def replace_recipients(self, batch_id: str, recipients: list[Recipient]) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE batches SET size = ?, recipient_base = ?, recipients = ? WHERE id = ?", (*_packed(recipients), batch_id)
            )

    def update(self, batch_id: str, *, name: str | None = None, status: str | None = None, fields: dict | None = None) -> None:
        """Change stored attributes (no dialling side effects)."""
        with self.transaction():
            batch = self.get(batch_id)
            merged = {**batch.fields, **(fields or {})}
            self._db.execute(
                "UPDATE batches SET name = ?, status = ?, fields = ? WHERE id = ?",
                (name if name is not None else batch.name, status or batch.status, json.dumps(merged), batch_id),
            )

    def start_run(self, batch_id: str, *, at: float, status: str = "running", window: Window = Window(), concurrency: int = 5) -> None:
        """Begin a new run at `at`: every recipient is (re)planned, as the real `start` does, inside the
        dialect's `window` with at most `concurrency` calls at once."""
        with self.transaction():
            batch = self.get(batch_id)
            run = batch.run + 1
            planned = plan_run(
                batch.size,
                start_at=at,
                window=window,
                concurrency=concurrency,
                speed=self.speed,
                seed=f"{self.seed}:{batch.seq}:{run}",  # creation order, not the random id: reproducible
            )
            self._db.execute("INSERT INTO runs VALUES (?, ?, ?)", (batch_id, run, _json(planned)))
            self._db.execute(
                "UPDATE batches SET status = ?, run = ?, start_at = ?, started_at = COALESCE(started_at, ?),"
                " cancelled_at = NULL WHERE id = ?",
                (status, run, at, at, batch_id),
            )

    def unplan(self, batch_id: str, *, status: str) -> bool:
        """Withdraw a run no call of which has been dialled yet; False if dialling began."""
        with self.transaction():
            batch = self.get(batch_id)
            if self.dialled(batch_id):
                return False
            self._db.execute("DELETE FROM runs WHERE batch_id = ? AND run = ?", (batch_id, batch.run))
            self._db.execute(
                "UPDATE batches SET status = ?, run = run - ?, start_at = NULL WHERE id = ?",
                (status, 1 if batch.run else 0, batch_id),
            )
        return True

    def cancel(self, batch_id: str, *, at: float) -> None:
        """Stop dialling: calls not yet dialled are dropped (their recipients become skipped)."""
        with self.transaction():
            run = self._db.execute("SELECT run FROM batches WHERE id = ?", (batch_id,)).fetchone()[0]
            calls = self._calls(batch_id, run)
            if calls is not None:
                kept = [call if call is not None and call[0] <= at else None for call in calls]
                self._db.execute("UPDATE runs SET calls = ? WHERE batch_id = ? AND run = ?", (_json(kept), batch_id, run))
            self._db.execute("UPDATE batches SET status = 'cancelled', cancelled_at = ? WHERE id = ?", (at, batch_id))

    def reset(self) -> None:
        """Forget every batch."""
        with self.transaction():
            for table in ("runs", "batches"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    # ------------------------------------------------------------ reads

    def dialled(self, batch_id: str, now: float | None = None) -> int:
        """How many calls of the batch's current run have been dialled by `now`."""
        now = self.clock() if now is None else now
        with self._lock:
            row = self._db.execute("SELECT run FROM batches WHERE id = ?", (batch_id,)).fetchone()
            calls = self._calls(batch_id, row[0]) if row is not None else None
        return sum(1 for call in calls or () if call is not None and call[0] <= now)

    def _calls(self, batch_id: str, run: int) -> list | None:
        row = self._db.execute("SELECT calls FROM runs WHERE batch_id = ? AND run = ?", (batch_id, run)).fetchone()
        return pydantic_core.from_json(row[0]) if row is not None else None

    def snapshot(self) -> tuple:
        """Every stored row of every table, in a fixed order: equal snapshots mean nothing changed."""
        with self._lock:
            return tuple(
                tuple(tuple(row) for row in self._db.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall())  # noqa: S608
                for table, order in (("batches", "seq"), ("runs", "batch_id, run"))
            )

    def get(self, batch_id: str, dialect: str | None = None) -> StoredBatch | None:
        with self._lock:
            row = self._db.execute(f"SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,)).fetchone()  # noqa: S608
        if row is None or (dialect and row["dialect"] != dialect):
            return None
        return _stored(row)

    def list(self, dialect: str, *, status: str | None = None, name: str | None = None) -> list[StoredBatch]:
        """Batches of one dialect, newest first (status filtering is done on the derived view)."""
        query, args = f"SELECT {BATCH_COLUMNS} FROM batches WHERE dialect = ?", [dialect]  # noqa: S608
        if name is not None:
            query += " AND name = ?"
            args.append(name)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq DESC", args).fetchall()
        return [_stored(row) for row in rows]

    def all_batches(self) -> list[StoredBatch]:
        with self._lock:
            return [_stored(row) for row in self._db.execute(f"SELECT {BATCH_COLUMNS} FROM batches ORDER BY seq").fetchall()]  # noqa: S608

    def view(self, batch: StoredBatch, now: float | None = None, *, recipients: bool = True) -> BatchView:
        """The batch as a client sees it at `now`; `recipients=False` derives the status and counts from the current
        run's calls alone (what a create, a start or a status read answers), without reading each recipient."""
        now = self.clock() if now is None else now
        dialling = bool(batch.run) and (batch.start_at is None or now >= batch.start_at)  # nobody is dialled before it
        with self._lock:
            runs = self._db.execute(
                "SELECT run, calls FROM runs WHERE batch_id = ?" + ("" if recipients else " AND run = ?"),
                (batch.id,) if recipients else (batch.id, batch.run),
            ).fetchall() if dialling or recipients else []
            row = self._db.execute("SELECT recipient_base, recipients FROM batches WHERE id = ?", (batch.id,)).fetchone() if recipients else None
        calls: list = [None] * batch.size  # the current run's calls, as stored (None: never dialled, or not read yet)
        dials = [0] * batch.size
        for run, text in runs:
            stored = pydantic_core.from_json(text)
            if run == batch.run:
                calls = (stored + [None] * batch.size)[: batch.size]
            if recipients:
                for index, call in enumerate(stored[: batch.size]):
                    if call is not None and call[0] <= now:
                        dials[index] += 1
        cancelled = batch.status == "cancelled"
        if dialling:
            statuses = [call_status(call, now, self.speed, cancelled=cancelled) for call in calls]
        else:  # never started, or not yet (plan_run dials nobody before the run's start): each waits, or was dropped
            statuses = ["skipped" if cancelled and batch.run else "pending"] * batch.size
        views = []
        if row is not None:
            base = row["recipient_base"]
            views = [
                RecipientView(
                    index=index,
                    recipient_id=_recipient_id(base, index),
                    phone_number=phone,
                    name=name,
                    contact_id=contact_id,
                    variables=variables,
                    status=statuses[index],
                    call=PlannedCall(*calls[index]) if calls[index] is not None else None,
                    dials=dials[index],
                )
                for index, (phone, name, contact_id, variables) in enumerate(pydantic_core.from_json(row["recipients"]))
            ]
        status, completed_at = batch.status, None
        if batch.status in ("running", "scheduled") and batch.run:
            if not dialling:
                status = "scheduled"
            elif statuses and set(statuses) <= TERMINAL:
                status = "completed"
                completed_at = max((call[2] for call in calls if call is not None), default=now)
            else:
                status = "running"
        return BatchView(batch, status, statuses, calls, views, completed_at)


def _stored(row: sqlite3.Row) -> StoredBatch:
    return StoredBatch(
        seq=row["seq"],
        id=row["id"],
        dialect=row["dialect"],
        name=row["name"],
        status=row["status"],
        fields=json.loads(row["fields"]),
        created_at=row["created_at"],
        start_at=row["start_at"],
        started_at=row["started_at"],
        cancelled_at=row["cancelled_at"],
        run=row["run"],
        size=row["size"],
    )


def _json(value) -> str:
    return pydantic_core.to_json(value).decode()


def _recipient_id(base: str, index: int) -> str:
    """A recipient's id: the batch's random part and the recipient's position, as a UUID."""
    return f"{base[:8]}-{base[8:12]}-{base[12:16]}-{base[16:20]}-{base[20:]}{index:08x}"


def _packed(recipients: list[Recipient]) -> tuple[int, str, str]:
    """size, recipient_base and the recipients as stored."""
    return len(recipients), uuid.uuid4().hex[:24], _json(recipients)


def _upgrade(db: sqlite3.Connection) -> None:
    """A state file written before recipients and calls were stored one value per batch and run: moved over."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "recipients" not in tables:
        return
    columns = {row[1] for row in db.execute("PRAGMA table_info(batches)")}
    db.execute("BEGIN IMMEDIATE")
    try:
        for column, kind in (("size", "INTEGER NOT NULL DEFAULT 0"), ("recipient_base", "TEXT NOT NULL DEFAULT ''"),
                             ("recipients", "TEXT NOT NULL DEFAULT '[]'")):  # fmt: skip
            if column not in columns:
                db.execute(f"ALTER TABLE batches ADD COLUMN {column} {kind}")
        for (batch_id,) in db.execute("SELECT id FROM batches").fetchall():
            rows = db.execute("SELECT * FROM recipients WHERE batch_id = ? ORDER BY idx", (batch_id,)).fetchall()
            packed = [[r["phone_number"], r["name"], r["contact_id"], json.loads(r["variables"]) if r["variables"] else None]
                      for r in rows]  # fmt: skip
            db.execute("UPDATE batches SET size = ?, recipient_base = ?, recipients = ? WHERE id = ?",
                       (len(packed), uuid.uuid4().hex[:24], _json(packed), batch_id))  # fmt: skip
            for (run,) in db.execute("SELECT DISTINCT run FROM calls WHERE batch_id = ?", (batch_id,)).fetchall():
                calls: list = [None] * len(packed)
                for c in db.execute("SELECT * FROM calls WHERE batch_id = ? AND run = ?", (batch_id, run)):
                    calls[c["idx"]] = [c["dial_at"], c["ring_end"], c["end_at"], c["outcome"], c["call_record_id"]]
                db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", (batch_id, run, _json(calls)))
        db.execute("DROP TABLE recipients")
        db.execute("DROP TABLE IF EXISTS calls")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
