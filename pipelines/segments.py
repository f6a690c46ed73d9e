"""How the ledger stores the rows an import planned: columnar segments, not one database row per contact.

An import of a million rows plans a million contacts, about a hundred thousand rejects
and duplicates, and about a thousand chunks. The chunks are small, mutable state and stay
rows (schemas.ledger.ChunkRecord). The contacts, rejects and duplicates are written once
and never changed, so each chunk's contacts — and each block of rejects or duplicates — is
one ledger row holding an LZ4-compressed Arrow IPC stream, plus (for contacts) the
members' numbers as int64 keys for deduplication. A million contacts are about a thousand
rows and 30–60 MB, written in one transaction in well under a second, on SQLite and
PostgreSQL alike; reading a chunk back for submission is one row.

Every segment of a kind has exactly its schema: contacts (e164, name, variables,
source_file, source_sheet, source_row, in the chunk's order), rejects (source_file,
source_sheet, source_row, raw_value, reason), duplicates (source_file, source_sheet,
source_row, e164, duplicate_of_file, duplicate_of_row).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CONTACTS = pa.schema([("e164", pa.string()), ("name", pa.string()), ("variables", pa.string()),
                      ("source_file", pa.string()), ("source_sheet", pa.string()), ("source_row", pa.int64())])  # fmt: skip
REJECTS = pa.schema([("source_file", pa.string()), ("source_sheet", pa.string()), ("source_row", pa.int64()),
                     ("raw_value", pa.string()), ("reason", pa.string()), ("detail", pa.string())])  # fmt: skip
DUPLICATES = pa.schema([("source_file", pa.string()), ("source_sheet", pa.string()), ("source_row", pa.int64()),
                        ("e164", pa.string()), ("duplicate_of_file", pa.string()), ("duplicate_of_row", pa.int64())])  # fmt: skip
KINDS = {"contacts": CONTACTS, "rejects": REJECTS, "duplicates": DUPLICATES}
# A provider batch's recipients as sync last read them (schemas.ledger.RecipientSegmentRecord): times in UTC; synced_at
# is when the row last changed, change_seq the ledger change that changed it.
_TIME = pa.timestamp("us", "UTC")
RECIPIENTS = pa.schema([("e164", pa.string()), ("status", pa.string()), ("call_record_id", pa.string()),
                        ("attempted_at", _TIME), ("completed_at", _TIME), ("error", pa.string()), ("synced_at", _TIME),
                        ("change_seq", pa.int64())])  # fmt: skip

# What a spill file (and the ledger's plan_segments table) holds per segment.
SEGMENT = pa.schema([("kind", pa.string()), ("chunk_key", pa.string()), ("rows", pa.int64()),
                     ("numbers", pa.binary()), ("data", pa.binary())])  # fmt: skip

BLOCK_ROWS = 1 << 16  # rejects and duplicates per segment
# A segment is small (a chunk: a thousand rows) and is written on one of the pipeline's own workers: compressing its
# few buffers on Arrow's thread pool as well cost more in hand-offs than it saved (0.2 → 0.1 ms a chunk, same bytes).
_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)


def encode(table: pa.Table) -> bytes:
    """A table as a compressed Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def keys_of(e164: pa.Array) -> np.ndarray:
    """'+14155550132' → 14155550132, for a column of E.164 numbers."""
    return pc.cast(pc.utf8_slice_codeunits(e164, 1), pa.int64()).to_numpy(zero_copy_only=False)


def numbers(keys: np.ndarray) -> bytes:
    return np.ascontiguousarray(keys, dtype="<i8").tobytes()


def keys(numbers_blob: bytes | None) -> np.ndarray:
    return np.frombuffer(numbers_blob or b"", dtype="<i8")


def conformed(kind: str, table: pa.Table) -> pa.Table:
    """Exactly the kind's columns, as plain strings (no dictionaries); a column added since (a reject's detail) is
    null in rows kept before it."""
    schema = KINDS[kind]
    return pa.table({name: table.column(name).cast(schema.field(name).type) if name in table.column_names
                     else pa.nulls(table.num_rows, schema.field(name).type) for name in schema.names}, schema=schema)  # fmt: skip


def contact_segments(rows: pa.Table, chunk_keys: list[str], bounds: np.ndarray) -> pa.RecordBatch:
    """One segment per chunk: chunk i is rows[bounds[i]:bounds[i+1]] (rows conformed to CONTACTS)."""
    data, blobs = [], []
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        part = rows.slice(start, end - start)
        data.append(encode(part))
        blobs.append(numbers(keys_of(part.column("e164").combine_chunks())))
    return pa.record_batch([pa.array(["contacts"] * len(chunk_keys)), pa.array(chunk_keys, pa.string()),
                            pa.array(np.diff(bounds).astype(np.int64)), pa.array(blobs, pa.binary()),
                            pa.array(data, pa.binary())], schema=SEGMENT)  # fmt: skip


def block_segments(kind: str, table: pa.Table) -> Iterator[pa.RecordBatch]:
    """Rejects or duplicates in blocks of BLOCK_ROWS, one segment each."""
    table = conformed(kind, table)
    for start in range(0, table.num_rows, BLOCK_ROWS):
        part = table.slice(start, BLOCK_ROWS)
        yield pa.record_batch([pa.array([kind]), pa.array([None], pa.string()), pa.array([part.num_rows], pa.int64()),
                               pa.array([None], pa.binary()), pa.array([encode(part)], pa.binary())], schema=SEGMENT)  # fmt: skip


def read_recipients(recipients: list, synced_at: float, change_seq: int) -> pa.Table:
    """A batch's recipients as just read (schemas.provider.RemoteRecipient rows; times in epoch seconds), as a
    RECIPIENTS table whose every row is stamped as changed now, by `change_seq`."""
    count = len(recipients)
    e164, status, call, attempted, completed, error = zip(*recipients) if count else ((),) * 6
    return pa.table([pa.array(e164, pa.string()), pa.array(status, pa.string()), pa.array(call, pa.string()),
                     _times(attempted), _times(completed), pa.array(error, pa.string()),
                     _times([synced_at] * count), pa.array([change_seq] * count, pa.int64())], schema=RECIPIENTS)  # fmt: skip


def _times(seconds) -> pa.Array:
    micro = pc.round(pc.multiply(pa.array(seconds, pa.float64()), 1_000_000))
    return pc.cast(micro, pa.int64()).cast(_TIME)


def merge_recipients(old: pa.Table | None, new: pa.Table) -> pa.Table | None:
    """A batch's segment after a read: the recipients whose status and call are as before keep their old row (times,
    when it changed, by which change); the others take the new one; recipients the read no longer lists are kept.
    None when nobody changed (the segment is not rewritten)."""
    if old is None:
        return new
    at = pc.index_in(new.column("e164"), value_set=old.column("e164"))
    known = pc.is_valid(at)
    same = pc.and_(known, pc.and_(_equal(old.column("status").take(at), new.column("status")),
                                  _equal(old.column("call_record_id").take(at), new.column("call_record_id"))))  # fmt: skip
    same = pc.fill_null(same, False)
    if pc.all(same).as_py() and len(new) == len(old):
        return None
    gone = pc.invert(pc.is_in(old.column("e164"), value_set=new.column("e164")))
    return pa.concat_tables([old.take(pc.filter(at, same)), new.filter(pc.invert(same)), old.filter(gone)])


def _equal(left, right) -> pa.ChunkedArray:
    """Equal, NULL equal to NULL."""
    both_null = pc.and_(pc.is_null(left), pc.is_null(right))
    return pc.or_(pc.fill_null(pc.equal(left, right), False), both_null)
