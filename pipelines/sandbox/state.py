"""The sandbox's memory: batches, recipients and planned calls in SQLite, and views derived from them.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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
    run INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS recipients (
    batch_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    recipient_id TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    name TEXT,
    contact_id TEXT,
    variables TEXT,
    PRIMARY KEY (batch_id, idx)
);
CREATE TABLE IF NOT EXISTS calls (
    batch_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    run INTEGER NOT NULL,
    dial_at REAL NOT NULL,
    ring_end REAL NOT NULL,
    end_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    call_record_id TEXT NOT NULL,
    PRIMARY KEY (batch_id, idx, run)
);
"""


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
    """A batch as seen now: derived status, counts, recipients."""

    batch: StoredBatch
    status: str
    recipients: list[RecipientView] = field(default_factory=list)
    completed_at: float | None = None

    def count(self, *statuses: str) -> int:
        return sum(1 for r in self.recipients if r.status in statuses)


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

    def create(self, dialect: str, name: str | None, status: str, fields: dict, recipients: list[dict]) -> StoredBatch:
        """Store a new batch and its recipients; dialling is started separately."""
        prefix = "batch_call_" if dialect == "batchcall" else ""
        batch_id = prefix + (uuid.uuid4().hex if dialect == "batchcall" else str(uuid.uuid4()))
        now = self.clock()
        with self.transaction():
            self._db.execute(
                "INSERT INTO batches (id, dialect, name, status, fields, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (batch_id, dialect, name, status, json.dumps(fields), now),
            )
            self._insert_recipients(batch_id, recipients)
        return self.get(batch_id)

    def replace_recipients(self, batch_id: str, recipients: list[dict]) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM recipients WHERE batch_id = ?", (batch_id,))
            self._insert_recipients(batch_id, recipients)

    def _insert_recipients(self, batch_id: str, recipients: list[dict]) -> None:
        self._db.executemany(
            "INSERT INTO recipients VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    batch_id,
                    index,
                    str(uuid.uuid4()),
                    r["phone_number"],
                    r.get("name"),
                    r.get("contact_id"),
                    json.dumps(r["variables"]) if r.get("variables") is not None else None,
                )
                for index, r in enumerate(recipients)
            ],
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

    def start_run(self, batch_id: str, *, at: float, status: str = "running") -> None:
        """Begin a new run at `at`: every recipient is (re)planned, as the real `start` does."""
        with self.transaction():
            batch = self.get(batch_id)
            run = batch.run + 1
            count = self._db.execute("SELECT COUNT(*) FROM recipients WHERE batch_id = ?", (batch_id,)).fetchone()[0]
            planned = plan_run(
                count,
                start_at=at,
                window=self.window(batch),
                concurrency=self.concurrency(batch),
                speed=self.speed,
                seed=f"{self.seed}:{batch.seq}:{run}",  # creation order, not the random id: reproducible
            )
            self._db.executemany(
                "INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(batch_id, c.index, run, c.dial_at, c.ring_end, c.end_at, c.outcome, c.call_record_id) for c in planned],
            )
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
            self._db.execute("DELETE FROM calls WHERE batch_id = ? AND run = ?", (batch_id, batch.run))
            self._db.execute(
                "UPDATE batches SET status = ?, run = run - ?, start_at = NULL WHERE id = ?",
                (status, 1 if batch.run else 0, batch_id),
            )
        return True

    def cancel(self, batch_id: str, *, at: float) -> None:
        """Stop dialling: calls not yet dialled are dropped (their recipients become skipped)."""
        with self.transaction():
            run = self._db.execute("SELECT run FROM batches WHERE id = ?", (batch_id,)).fetchone()[0]
            self._db.execute("DELETE FROM calls WHERE batch_id = ? AND run = ? AND dial_at > ?", (batch_id, run, at))
            self._db.execute("UPDATE batches SET status = 'cancelled', cancelled_at = ? WHERE id = ?", (at, batch_id))

    def reset(self) -> None:
        """Forget every batch."""
        with self.transaction():
            for table in ("calls", "recipients", "batches"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    # ------------------------------------------------------------ reads

    def dialled(self, batch_id: str, now: float | None = None) -> int:
        """How many calls of the batch's current run have been dialled by `now`."""
        now = self.clock() if now is None else now
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM calls c JOIN batches b ON b.id = c.batch_id AND b.run = c.run"
                " WHERE c.batch_id = ? AND c.dial_at <= ?",
                (batch_id, now),
            ).fetchone()[0]

    def snapshot(self) -> tuple:
        """Every stored row of every table, in a fixed order: equal snapshots mean nothing changed."""
        with self._lock:
            return tuple(
                tuple(tuple(row) for row in self._db.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall())  # noqa: S608
                for table, order in (("batches", "seq"), ("recipients", "batch_id, idx"), ("calls", "batch_id, idx, run"))
            )

    def get(self, batch_id: str, dialect: str | None = None) -> StoredBatch | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        if row is None or (dialect and row["dialect"] != dialect):
            return None
        return _stored(row)

    def list(self, dialect: str, *, status: str | None = None, name: str | None = None) -> list[StoredBatch]:
        """Batches of one dialect, newest first (status filtering is done on the derived view)."""
        query, args = "SELECT * FROM batches WHERE dialect = ?", [dialect]
        if name is not None:
            query += " AND name = ?"
            args.append(name)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq DESC", args).fetchall()
        return [_stored(row) for row in rows]

    def all_batches(self) -> list[StoredBatch]:
        with self._lock:
            return [_stored(row) for row in self._db.execute("SELECT * FROM batches ORDER BY seq").fetchall()]

    def view(self, batch: StoredBatch, now: float | None = None) -> BatchView:
        """The batch as a client sees it at `now`."""
        now = self.clock() if now is None else now
        with self._lock:
            recipients = self._db.execute("SELECT * FROM recipients WHERE batch_id = ? ORDER BY idx", (batch.id,)).fetchall()
            calls = self._db.execute("SELECT * FROM calls WHERE batch_id = ? ORDER BY run", (batch.id,)).fetchall()
        current: dict[int, PlannedCall] = {}
        dials: dict[int, int] = {}
        for c in calls:
            if c["dial_at"] <= now:
                dials[c["idx"]] = dials.get(c["idx"], 0) + 1
            if c["run"] == batch.run:
                current[c["idx"]] = PlannedCall(
                    c["idx"], c["dial_at"], c["ring_end"], c["end_at"], c["outcome"], c["call_record_id"]
                )
        cancelled = batch.status == "cancelled"
        views = [
            RecipientView(
                index=r["idx"],
                recipient_id=r["recipient_id"],
                phone_number=r["phone_number"],
                name=r["name"],
                contact_id=r["contact_id"],
                variables=json.loads(r["variables"]) if r["variables"] else None,
                status=call_status(current.get(r["idx"]), now, self.speed, cancelled=cancelled)
                if batch.run
                else "pending",
                call=current.get(r["idx"]),
                dials=dials.get(r["idx"], 0),
            )
            for r in recipients
        ]
        status, completed_at = batch.status, None
        if batch.status in ("running", "scheduled") and batch.run:
            if batch.start_at is not None and now < batch.start_at:
                status = "scheduled"
            elif views and all(v.status in TERMINAL for v in views):
                status = "completed"
                completed_at = max((v.call.end_at for v in views if v.call), default=now)
            else:
                status = "running"
        return BatchView(batch, status, views, completed_at)

    # ------------------------------------------------------------ dialect rules

    def window(self, batch: StoredBatch) -> Window:
        if batch.dialect != "magpipe":
            return Window()
        f = batch.fields
        return Window(
            f.get("window_start_time") or "00:00",
            f.get("window_end_time") or "23:59",
            tuple(f.get("window_days") or (0, 1, 2, 3, 4, 5, 6)),
        )

    @staticmethod
    def concurrency(batch: StoredBatch) -> int:
        if batch.dialect != "magpipe":
            return 5
        return min(5, max(1, int(batch.fields.get("max_concurrency") or 5)))


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
    )
