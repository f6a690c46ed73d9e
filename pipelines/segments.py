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
                     ("raw_value", pa.string()), ("reason", pa.string())])  # fmt: skip
DUPLICATES = pa.schema([("source_file", pa.string()), ("source_sheet", pa.string()), ("source_row", pa.int64()),
                        ("e164", pa.string()), ("duplicate_of_file", pa.string()), ("duplicate_of_row", pa.int64())])  # fmt: skip
KINDS = {"contacts": CONTACTS, "rejects": REJECTS, "duplicates": DUPLICATES}

# What a spill file (and the ledger's plan_segments table) holds per segment.
SEGMENT = pa.schema([("kind", pa.string()), ("chunk_key", pa.string()), ("rows", pa.int64()),
                     ("numbers", pa.binary()), ("data", pa.binary())])  # fmt: skip

BLOCK_ROWS = 1 << 16  # rejects and duplicates per segment
_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


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
    """Exactly the kind's columns, as plain strings (no dictionaries)."""
    schema = KINDS[kind]
    return pa.table({name: table.column(name).cast(schema.field(name).type) for name in schema.names}, schema=schema)


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
