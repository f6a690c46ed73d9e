"""The ledger's columnar plan storage: what goes in comes back, a number is never in two chunks of a campaign, and a
ledger made before segments (one row per contact) is converted when it is opened."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy

from pipelines import segments
from pipelines.errors import ConcurrentChange
from pipelines.ledger import Ledger
from pipelines.publish import publish
from schemas.ledger import ChunkRecord, ChunkState, ImportFileRecord, ImportRecord

STAMP = datetime(2026, 12, 1, tzinfo=UTC)


class _Spill:
    """Segments as a PlanSpill hands them over."""

    def __init__(self, *batches: pa.RecordBatch):
        self._batches = batches

    def batches(self):
        yield from self._batches


def _contacts(numbers: list[str]) -> pa.Table:
    return pa.table({"e164": numbers, "name": [f"n{n[-2:]}" for n in numbers],
                     "variables": [json.dumps({"clinic": "Mission", "row": str(i)}) for i in range(len(numbers))],
                     "source_file": ["a.csv"] * len(numbers), "source_sheet": [None] * len(numbers),
                     "source_row": list(range(2, len(numbers) + 2))}, schema=segments.CONTACTS)  # fmt: skip


def _plan(ledger: Ledger, campaign: str, chunks: dict[str, list[str]]) -> ImportRecord:
    rows = pa.concat_tables([_contacts(numbers) for numbers in chunks.values()])
    bounds = np.cumsum([0, *map(len, chunks.values())])
    record = ImportRecord(campaign=campaign, provider="sandbox", content_hash=campaign, files="[]", started_at=STAMP)
    records = [ChunkRecord(key=key, campaign=campaign, provider="sandbox", dialect="batchcall", batch_name=key, size=len(numbers),
                           import_id=0, created_at=STAMP, updated_at=STAMP) for key, numbers in chunks.items()]  # fmt: skip
    files = [ImportFileRecord(import_id=0, source_file="a.csv", campaign=campaign, sha256=campaign)]
    rejects = pa.table({"source_file": ["a.csv"], "source_sheet": [None], "source_row": [9], "raw_value": ["x"], "reason": ["not_a_number"]})
    spill = _Spill(segments.contact_segments(rows, list(chunks), bounds), *segments.block_segments("rejects", rejects))
    return ledger.record_plan(record, records, files, spill)


def test_a_plan_comes_back_as_it_went_in(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    _plan(ledger, "c", {"ck1": ["+14155550101", "+14155550102"], "ck2": ["+14155550103"]})
    people = ledger.chunk_contacts("ck1").rows()
    assert [(p.e164, p.name, p.variables["row"], p.contact_id) for p in people] == [
        ("+14155550101", "n01", "0", "c:+14155550101"), ("+14155550102", "n02", "1", "c:+14155550102")]  # fmt: skip
    assert ledger.submitted_keys("c").tolist() == [14155550101, 14155550102, 14155550103]
    assert ledger.contact_chunks("c").values.tolist() == [["+14155550101", "ck1"], ["+14155550102", "ck1"], ["+14155550103", "ck2"]]
    assert [t.num_rows for t in ledger.segments("rejects", ["c"])] == [1]


def test_a_number_the_campaign_already_holds_is_never_planned_again(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    _plan(ledger, "c", {"ck1": ["+14155550101"]})
    with pytest.raises(ConcurrentChange, match="already has in a chunk"):
        _plan(ledger, "c", {"ck2": ["+14155550102", "+14155550101"]})
    assert ledger.chunks("c")[0].key == "ck1" and len(ledger.chunks("c")) == 1  # nothing of the refused plan stays
    _plan(ledger, "other", {"ck3": ["+14155550101"]})  # another campaign may call the same person


def test_a_ledger_from_before_segments_is_converted_when_opened(tmp_path):
    """Contacts, rejects and duplicates stored one row each (the earlier layout) become segments; retries learn the
    chunk their contact came from; the DuckDB file is rebuilt from the converted ledger."""
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(f"sqlite:///{path}")
    _plan(ledger, "old", {"ck1": ["+14155550199"]})  # the import and chunk rows, as the earlier version kept them
    ledger.close()
    with sqlite3.connect(path) as db:
        db.executescript("""
            DROP TABLE alembic_version;  -- a release from before the migrations
            DROP TABLE plan_segments;
            ALTER TABLE retries DROP COLUMN origin_chunk;
            CREATE TABLE contacts (campaign VARCHAR NOT NULL, e164 VARCHAR NOT NULL, name VARCHAR, variables VARCHAR NOT NULL,
                source_file VARCHAR NOT NULL, source_sheet VARCHAR, source_row INTEGER NOT NULL, import_id INTEGER NOT NULL,
                chunk_key VARCHAR NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (campaign, e164));
            CREATE TABLE rejects (import_id INTEGER NOT NULL, source_file VARCHAR NOT NULL, source_sheet VARCHAR NOT NULL,
                source_row INTEGER NOT NULL, campaign VARCHAR NOT NULL, raw_value VARCHAR NOT NULL, reason VARCHAR NOT NULL,
                PRIMARY KEY (import_id, source_file, source_sheet, source_row));
            CREATE TABLE duplicates (import_id INTEGER NOT NULL, source_file VARCHAR NOT NULL, source_sheet VARCHAR NOT NULL,
                source_row INTEGER NOT NULL, campaign VARCHAR NOT NULL, e164 VARCHAR NOT NULL, duplicate_of_file VARCHAR NOT NULL,
                duplicate_of_row INTEGER NOT NULL, PRIMARY KEY (import_id, source_file, source_sheet, source_row));
            INSERT INTO contacts VALUES ('old', '+14155550102', 'Second', '{"k": "2"}', 'a.csv', NULL, 3, 1, 'ck1', 1);
            INSERT INTO contacts VALUES ('old', '+14155550101', 'First', '{"k": "1"}', 'a.csv', NULL, 2, 1, 'ck1', 0);
            INSERT INTO rejects VALUES (1, 'a.csv', '', 4, 'old', 'n/a', 'not_a_number');
            INSERT INTO duplicates VALUES (1, 'a.csv', '', 5, 'old', '+14155550101', 'a.csv', 2);
            INSERT INTO retries (chunk_key, e164, campaign, attempt, position, reason, planned_at)
                VALUES ('ckr', '+14155550102', 'old', 2, 0, 'busy', '2026-12-01 00:00:00');
        """)
    ledger = Ledger(f"sqlite:///{path}")
    assert [(p.e164, p.name, p.variables) for p in ledger.chunk_contacts("ck1").rows()] == [
        ("+14155550101", "First", {"k": "1"}), ("+14155550102", "Second", {"k": "2"})]  # fmt: skip
    assert [p.e164 for p in ledger.chunk_contacts("ckr").rows()] == ["+14155550102"]
    assert ledger.submitted_keys("old").tolist() == [14155550101, 14155550102]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT origin_chunk FROM retries").fetchall() == [("ck1",)]
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {"contacts", "rejects", "duplicates"}
    publish(ledger, tmp_path / "campaigns.duckdb")
    with duckdb.connect(str(tmp_path / "campaigns.duckdb"), read_only=True) as db:
        assert db.execute("SELECT e164, source_sheet FROM contacts ORDER BY e164").fetchall() == [
            ("+14155550101", None), ("+14155550102", None)]  # fmt: skip
        assert db.execute("SELECT source_row, reason FROM rejects").fetchall() == [(4, "not_a_number")]
        assert db.execute("SELECT source_row, e164 FROM duplicates").fetchall() == [(5, "+14155550101")]


def test_an_import_status_change_does_not_republish_its_contacts(tmp_path):
    """Only planning changes an import's rows: its outcome, moves of its chunks and later counts reach DuckDB without
    its contacts being read and replaced again (what made the publish that ends a 1M-row import take seconds)."""
    from pipelines.publish import _changed_frames

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    record = _plan(ledger, "c", {"ck1": ["+14155550101", "+14155550102"]})
    db = tmp_path / "campaigns.duckdb"
    publish(ledger, db)
    after = ledger.change_head()
    ledger.transition("ck1", ChunkState.PLANNED, ChunkState.CREATING)
    ledger.finish_import(record.id, "submitted")
    frames = _changed_frames(ledger, after, ledger.change_head(), [])
    assert [t.num_rows for t in frames["contacts"].tables] == [] and frames["contacts"].replaces == [("import_id", [])]
    assert frames["imports"]["outcome"].tolist() == ["submitted"] and frames["batches"]["state"].tolist() == ["creating"]
    publish(ledger, db)
    with duckdb.connect(str(db), read_only=True) as warehouse:
        assert warehouse.execute("SELECT count(*) FROM contacts").fetchone() == (2,)
        assert warehouse.execute("SELECT outcome FROM imports").fetchall() == [("submitted",)]


def test_the_ledger_makes_only_the_moves_of_the_state_machine(tmp_path):
    """Every (from, to) pair: a move TRANSITIONS has is made (compare-and-set); any other raises IllegalTransition
    and leaves the chunk as it was. Every state is reachable from planned; finished and cancelled are the ends."""
    from pipelines.errors import IllegalTransition
    from schemas.ledger import TRANSITIONS

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    pairs = [(a, b) for a in ChunkState for b in ChunkState]
    _plan(ledger, "c", {f"ck{i}": [f"+1415555{i:04d}"] for i in range(len(pairs))})
    with ledger.engine.begin() as connection:
        for i, (before, _) in enumerate(pairs):
            connection.execute(sqlalchemy.update(ChunkRecord).where(ChunkRecord.key == f"ck{i}").values(state=str(before)))
    for i, (before, after) in enumerate(pairs):
        if after in TRANSITIONS[before]:
            assert ledger.transition(f"ck{i}", before, after).state == after
        else:
            with pytest.raises(IllegalTransition):
                ledger.transition(f"ck{i}", before, after)
            assert ledger.chunk(f"ck{i}").state == before
    reached, todo = {ChunkState.PLANNED}, [ChunkState.PLANNED]
    while todo:
        for state in TRANSITIONS[todo.pop()] - reached:
            reached.add(state)
            todo.append(state)
    assert reached == set(ChunkState) and not TRANSITIONS[ChunkState.FINISHED] and not TRANSITIONS[ChunkState.CANCELLED]


def test_a_sync_writes_only_the_recipients_that_changed_and_finishes_in_the_same_transaction(tmp_path):
    from schemas.ledger import RecipientRecord
    from schemas.provider import RemoteBatch, RemoteBatchDetail, RemoteRecipient

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    _plan(ledger, "c", {"ck1": ["+14155550101", "+14155550102"]})
    for before, after in ((ChunkState.PLANNED, ChunkState.CREATING), (ChunkState.CREATING, ChunkState.DRAFT_CREATED),
                          (ChunkState.DRAFT_CREATED, ChunkState.STARTING), (ChunkState.STARTING, ChunkState.STARTED)):  # fmt: skip
        chunk = ledger.transition("ck1", before, after, **({"provider_batch_id": "b1"} if after == ChunkState.DRAFT_CREATED else {}))
    called = datetime(2026, 12, 2, 9, 30, 15, 250000, tzinfo=UTC)

    def read(status: str, second: str):
        return RemoteBatchDetail(RemoteBatch(id="b1", name="ck1", status=status, total=2),
                                 [RemoteRecipient("+14155550101", "completed", "call-1", called.timestamp(), called.timestamp()),
                                  RemoteRecipient("+14155550102", second)])  # fmt: skip

    def synced() -> dict:
        return {r.e164: (r.status, r.synced_at, r.attempted_at) for r in ledger.recipient_statuses("c")}

    ledger.record_sync([(chunk, read("running", "pending"))])
    first = synced()
    assert first["+14155550101"][0] == "completed" and first["+14155550101"][2] == called  # times round-trip exactly
    ledger.record_sync([(chunk, read("running", "pending"))])
    assert synced() == first  # nothing changed: nothing written
    ledger.record_sync([(chunk, read("completed", "no_answer"))], finished={"ck1"})
    last = synced()
    assert last["+14155550101"] == first["+14155550101"] and last["+14155550102"][0] == "no_answer"
    assert last["+14155550102"][1] > first["+14155550102"][1]
    assert ledger.chunks("c")[0].state == ChunkState.FINISHED
    assert isinstance(ledger.recipient_statuses("c")[0], RecipientRecord)
