"""Incremental publish: the ledger numbers every recipient row with the change that wrote it, a publish reads only the
rows after its file's watermark, and it brings the standby forward instead of copying the file readers hold."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime

import duckdb

from pipelines.ledger import Ledger
from pipelines.publish import publish
from schemas.ledger import ChunkState
from schemas.provider import RemoteBatch, RemoteBatchDetail, RemoteRecipient
from tests.test_ledger_segments import _plan

CALLED = datetime(2026, 12, 2, 9, 30, tzinfo=UTC).timestamp()
NUMBERS = {"ck1": [f"+1415555{n:04d}" for n in range(0, 40)], "ck2": [f"+1415555{n:04d}" for n in range(40, 80)]}


def _started(tmp_path) -> tuple[Ledger, dict]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    _plan(ledger, "c", NUMBERS)
    chunks = {}
    for key in NUMBERS:
        for before, after in ((ChunkState.PLANNED, ChunkState.CREATING), (ChunkState.CREATING, ChunkState.DRAFT_CREATED),
                              (ChunkState.DRAFT_CREATED, ChunkState.STARTING), (ChunkState.STARTING, ChunkState.STARTED)):  # fmt: skip
            values = {"provider_batch_id": f"b-{key}"} if after == ChunkState.DRAFT_CREATED else {}
            chunks[key] = ledger.transition(key, before, after, **values)
    return ledger, chunks


def _read(chunk, statuses: dict[str, str]) -> RemoteBatchDetail:
    people = [RemoteRecipient(e164, status, f"call-{e164}", CALLED, CALLED) for e164, status in statuses.items()]
    return RemoteBatchDetail(RemoteBatch(id=chunk.provider_batch_id, name=chunk.key, status="running", total=len(people)), people)


def _recipients(db) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.execute("SELECT provider_batch_id, e164, status FROM recipients ORDER BY ALL").fetchall()


def _watermark(db) -> int:
    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.execute("SELECT change_seq FROM publish_state").fetchone()[0]


def test_a_publish_reads_only_the_recipients_written_after_its_watermark(tmp_path):
    ledger, chunks = _started(tmp_path)
    ledger.record_sync([(chunks[k], _read(chunks[k], dict.fromkeys(NUMBERS[k], "pending"))) for k in NUMBERS])
    mark = ledger.change_head()
    ledger.record_sync([(chunks["ck2"], _read(chunks["ck2"], dict.fromkeys(NUMBERS["ck2"], "pending") | {NUMBERS["ck2"][3]: "completed"}))])
    since = list(ledger.recipient_tables(["c"], (mark, ledger.change_head(), [])))
    assert [(row["e164"], row["status"]) for table in since for row in table.to_pylist()] == [(NUMBERS["ck2"][3], "completed")]
    everything = list(ledger.recipient_tables(["c"]))
    assert sum(t.num_rows for t in everything) == 80
    assert everything[0].column("attempted_at")[0].as_py() == datetime.fromtimestamp(CALLED, UTC)  # times come back exactly


def test_a_small_change_brings_the_standby_forward_instead_of_copying_the_file(tmp_path):
    ledger, chunks = _started(tmp_path)
    db = tmp_path / "campaigns.duckdb"
    standby = tmp_path / ".campaigns.duckdb.standby"
    statuses = {k: dict.fromkeys(NUMBERS[k], "pending") for k in NUMBERS}
    ledger.record_sync([(chunks[k], _read(chunks[k], statuses[k])) for k in NUMBERS])
    publish(ledger, db)  # the first file: written fresh, nothing to keep
    assert not standby.exists()
    statuses["ck1"][NUMBERS["ck1"][0]] = "completed"
    ledger.record_sync([(chunks["ck1"], _read(chunks["ck1"], statuses["ck1"]))])
    publish(ledger, db)  # no standby yet: a copy; the file it replaced is kept and brought forward
    assert _recipients(standby) == _recipients(db) and _watermark(standby) == _watermark(db) == ledger.change_head()

    for n in (1, 2, 3):  # from now on each publish writes the standby and renames it into place: never a copy
        statuses["ck2"][NUMBERS["ck2"][n]] = "no_answer"
        ledger.record_sync([(chunks["ck2"], _read(chunks["ck2"], statuses["ck2"]))])
        kept, shown = os.stat(standby).st_ino, os.stat(db).st_ino
        assert publish(ledger, db) == 1
        assert os.stat(db).st_ino == kept and os.stat(standby).st_ino == shown
        assert _recipients(db) == _recipients(standby) == sorted(
            (f"b-{k}", e164, status) for k in NUMBERS for e164, status in statuses[k].items())
        assert _watermark(standby) == _watermark(db) == ledger.change_head()


def test_a_standby_somebody_still_reads_is_never_written(tmp_path):
    ledger, chunks = _started(tmp_path)
    db = tmp_path / "campaigns.duckdb"
    statuses = {k: dict.fromkeys(NUMBERS[k], "pending") for k in NUMBERS}
    ledger.record_sync([(chunks[k], _read(chunks[k], statuses[k])) for k in NUMBERS])
    publish(ledger, db)
    statuses["ck1"][NUMBERS["ck1"][0]] = "completed"
    ledger.record_sync([(chunks["ck1"], _read(chunks["ck1"], statuses["ck1"]))])
    publish(ledger, db)
    held_file = os.stat(db).st_ino
    with duckdb.connect(str(db), read_only=True) as held:  # a notebook in this very process keeps the file open
        before = held.execute("SELECT status, count(*) FROM recipients GROUP BY ALL ORDER BY ALL").fetchall()
        for n in (1, 2, 3):  # the first publish makes the held file the standby; the next must neither write it nor
            statuses["ck2"][NUMBERS["ck2"][n]] = "busy"  # rename it into place
            ledger.record_sync([(chunks["ck2"], _read(chunks["ck2"], statuses["ck2"]))])
            publish(ledger, db)
            assert os.stat(db).st_ino != held_file
        assert held.execute("SELECT status, count(*) FROM recipients GROUP BY ALL ORDER BY ALL").fetchall() == before
    assert _recipients(db) == sorted((f"b-{k}", e164, status) for k in NUMBERS for e164, status in statuses[k].items())


def test_a_ledger_with_one_row_per_recipient_becomes_segments_when_opened(tmp_path):
    ledger, chunks = _started(tmp_path)
    ledger.record_sync([(chunks[k], _read(chunks[k], dict.fromkeys(NUMBERS[k], "completed"))) for k in NUMBERS])
    expected = sorted(ledger.recipient_statuses("c"))
    ledger.close()
    with sqlite3.connect(tmp_path / "ledger.sqlite") as old:  # what the previous version kept: a row per recipient
        old.execute("CREATE TABLE recipient_status (provider_batch_id VARCHAR NOT NULL, e164 VARCHAR NOT NULL, campaign VARCHAR "
                    "NOT NULL, status VARCHAR NOT NULL, call_record_id VARCHAR, attempted_at DATETIME, completed_at DATETIME, "
                    "error VARCHAR, synced_at DATETIME NOT NULL, PRIMARY KEY (provider_batch_id, e164))")  # fmt: skip
        old.executemany("INSERT INTO recipient_status VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            (r.provider_batch_id, r.e164, r.campaign, r.status, r.call_record_id, _text(r.attempted_at), _text(r.completed_at),
             r.error, _text(r.synced_at)) for r in expected])  # fmt: skip
        old.execute("DROP TABLE recipient_segments")
        old.execute("DROP TABLE alembic_version")  # a release from before the migrations
    reopened = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    assert sorted(reopened.recipient_statuses("c")) == expected
    assert reopened.recipient_progress(["b-ck1", "b-ck2"]) == (80, 80)
    with sqlite3.connect(tmp_path / "ledger.sqlite") as after:
        tables = {name for (name,) in after.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "recipient_status" not in tables and "recipient_segments" in tables


def _text(moment: datetime | None) -> str | None:
    """A time as SQLAlchemy stored it in SQLite: UTC, no offset, microseconds."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
