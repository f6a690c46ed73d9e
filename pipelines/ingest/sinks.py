"""Where the pipeline's results go: output CSV files, the ledger's plan, DataFrames.

Every sink gets the same results from the one pipeline (pipelines.ingest.pipeline):
rows that are not accepted (rejected, duplicates, suppressed) as they are met, and
accepted rows in pieces of whole chunks, prepared on the worker threads.

- CsvFiles: accepted.csv, rejected.csv, duplicates.csv, suppressed.csv (--out), text that
  Excel would run as a formula escaped, each file renamed into place at the end.
- PlanSpill: the ledger's plan (contacts per chunk, rejects, duplicates) as the ledger's
  segments (pipelines.segments), written to a file in a private folder as the pipeline
  goes (memory stays bounded), loaded into the ledger in one transaction once the import
  is known good: a killed import leaves nothing in the ledger, and the spill folder is
  removed (or swept by the next import).
- Frames: everything as DataFrames (the notebook API).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import segments
from pipelines.errors import UsageError
from pipelines.ingest.filewriter import FileWriter
from pipelines.ingest.normalise import json_objects, json_parts
from pipelines.ingest.output import CsvOutput, csv_rows, excel_safe_array, joined_rows, quoted_text
from pipelines.ingest.pipeline import VARIABLE, Piece, Sink
from pipelines.ingest.suppress import SUPPRESSED_COLUMNS
from schemas.contacts import (
    ACCEPTED_COLUMNS,
    CHUNK_KEY,
    DUPLICATE_COLUMNS,
    DUPLICATE_OF_FILE,
    DYNAMIC_VARIABLES,
    E164,
    NAME,
    PHONE_COLUMN,
    RAW_VALUE,
    REJECTED_COLUMNS,
    SOURCE_FILE,
    SOURCE_ROW,
    SOURCE_SHEET,
    STATE,
    TIMEZONE,
)

TEXT_COLUMNS = (SOURCE_FILE, SOURCE_SHEET, RAW_VALUE, DUPLICATE_OF_FILE)  # escaped for Excel in the CSV files


def _excel_safe(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """excel_safe_array for a string or dictionary column (a dictionary's values are escaped once)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        return pa.DictionaryArray.from_arrays(column.indices, excel_safe_array(column.dictionary))
    return excel_safe_array(column)


class CsvFiles(Sink):
    """The output files of --out; with no folder, nothing is written."""

    def __init__(self, folder: Path):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"--out {folder}: is a file, or inside one; give a folder (it is created if missing)") from None
        self.outputs = {
            "accepted": CsvOutput(folder / "accepted.csv", ACCEPTED_COLUMNS),
            "rejected": CsvOutput(folder / "rejected.csv", REJECTED_COLUMNS),
            "duplicates": CsvOutput(folder / "duplicates.csv", DUPLICATE_COLUMNS),
            "suppressed": CsvOutput(folder / "suppressed.csv", SUPPRESSED_COLUMNS),
        }

    def rows(self, kind: str, table: pa.Table) -> None:
        for name in TEXT_COLUMNS:
            if name in table.column_names:
                table = table.set_column(table.schema.get_field_index(name), name, _excel_safe(table.column(name)))
        self.outputs[kind].write(table)

    def prepare(self, piece: Piece) -> list[pa.Buffer]:
        chunk = piece.chunk_index()
        origins = piece.rows.column("origin").to_numpy()
        variables = piece.variables()
        return _accepted_rows(variables, pa.table({
            E164: piece.digits,
            NAME: excel_safe_array(piece.rows.column(NAME).combine_chunks()),
            SOURCE_FILE: _excel_safe(piece.origins.column(origins, piece.origins.files)),
            SOURCE_SHEET: _excel_safe(piece.origins.column(origins, piece.origins.sheets)),
            SOURCE_ROW: piece.rows.column("row"),
            PHONE_COLUMN: _excel_safe(piece.rows.column(PHONE_COLUMN)),
            TIMEZONE: pa.DictionaryArray.from_arrays(pa.array(chunk), pa.array(piece.zones, type=pa.string())),
            STATE: pa.DictionaryArray.from_arrays(pa.array(chunk), pa.array(piece.states, type=pa.string())),
            CHUNK_KEY: pa.DictionaryArray.from_arrays(pa.array(chunk), pa.array(piece.keys)),
            **{name: piece.rows.column(name) for name in variables},
        }))  # fmt: skip

    def take(self, share) -> None:
        self.outputs["accepted"].write_rendered([share])

    def close(self) -> None:
        for output in self.outputs.values():
            output.close()

    def abandon(self) -> None:
        for output in self.outputs.values():
            output.abandon()


EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # an Arrow IPC stream's end marker


def contact_rows(piece: Piece) -> pa.Table:
    """A piece's accepted rows as the ledger stores contacts (pipelines.segments.CONTACTS), in chunk order."""
    origins = piece.rows.column("origin").to_numpy()
    names = [name[len(VARIABLE) :] for name in piece.variables()]
    variables = json_objects(names, [piece.rows.column(VARIABLE + name) for name in names], piece.rows.num_rows)
    return pa.table({
        "e164": pc.binary_join_element_wise("+", piece.digits, ""),
        "name": piece.rows.column(NAME).combine_chunks(),
        "variables": variables.combine_chunks() if isinstance(variables, pa.ChunkedArray) else variables,
        "source_file": piece.origins.column(origins, piece.origins.files).cast(pa.string()),
        "source_sheet": piece.origins.column(origins, piece.origins.sheets).cast(pa.string()),
        "source_row": piece.rows.column("row").combine_chunks(),
    }, schema=segments.CONTACTS)  # fmt: skip


class PlanSpill(Sink):
    """The ledger's plan, as the segments it will store (pipelines.segments), written to one Arrow stream file in a
    private folder under `parent` as the pipeline goes: memory stays bounded, and the ledger loads the file in one
    transaction once the import is known good."""

    KINDS = {"rejected": "rejects", "duplicates": "duplicates"}  # suppressed rows are counted, not kept

    def __init__(self, parent: Path):
        parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f".planning-{os.getpid()}-", dir=parent))
        self.writer = FileWriter(self.folder / "segments.arrow", direct=False)
        self.writer.write(segments.SEGMENT.serialize())

    def rows(self, kind: str, table: pa.Table) -> None:
        if kind in self.KINDS:
            for batch in segments.block_segments(self.KINDS[kind], table):
                self.writer.write(batch.serialize())

    def prepare(self, piece: Piece) -> list[pa.Buffer]:
        """One segment per chunk, compressed on a worker."""
        return [segments.contact_segments(contact_rows(piece), piece.keys, piece.bounds).serialize()]

    def take(self, share) -> None:
        self.writer.write_when_ready(share)

    def close(self) -> None:
        self.writer.write(EOS)
        self.writer.close()

    def abandon(self) -> None:
        self.writer.abandon()
        self.discard()

    def batches(self):
        """The spilled segments (record batches of pipelines.segments.SEGMENT), in order."""
        with pa.memory_map(str(self.folder / "segments.arrow")) as source:
            yield from pa.ipc.open_stream(source)

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def sweep_spills(parent: Path) -> None:
    """Remove the spill folders of imports that were killed: their process is gone (or, a pid being reused, the
    folder is a day old)."""
    for folder in parent.glob(".planning-*"):
        pid = folder.name.split("-")[1]
        try:
            if not _alive(int(pid)) or time.time() - folder.stat().st_mtime > 86400:
                shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


class Frames(Sink):
    """Everything as DataFrames, for a notebook."""

    def __init__(self):
        self.tables: dict[str, list[pa.Table]] = {"rejected": [], "duplicates": [], "suppressed": []}
        self.pieces: list = []

    def rows(self, kind: str, table: pa.Table) -> None:
        self.tables[kind].append(table)

    def prepare(self, piece: Piece) -> pa.Table:
        chunk = pa.array(piece.chunk_index())
        by_chunk = {CHUNK_KEY: piece.keys, TIMEZONE: piece.zones, STATE: piece.states}
        table = contact_rows(piece)
        for name, values in by_chunk.items():
            table = table.append_column(name, pa.array(values, type=pa.string()).take(chunk))
        return table.append_column(PHONE_COLUMN, piece.rows.column(PHONE_COLUMN))

    def take(self, share) -> None:
        self.pieces.append(share)

    def frame(self, kind: str):
        """rejected, duplicates or suppressed rows as a DataFrame (text as pandas strings)."""
        import pandas as pd  # only the notebook API asks for frames

        columns = {"rejected": REJECTED_COLUMNS, "duplicates": DUPLICATE_COLUMNS, "suppressed": SUPPRESSED_COLUMNS}[kind]
        tables = [t.select(columns) for t in self.tables[kind]]
        if not tables:
            return pd.DataFrame({column: pd.Series(dtype="string") for column in columns})
        plain = [pa.table({c: t.column(c).cast(pa.string()) if pa.types.is_dictionary(t.column(c).type) else t.column(c)
                           for c in columns}) for t in tables]  # fmt: skip
        return pa.concat_tables(plain).to_pandas()

    def accepted(self):
        """Accepted contacts in chunk order as a DataFrame: the columns of accepted.csv (schemas.contacts.ACCEPTED_COLUMNS),
        dynamic_variables as JSON text."""
        import pandas as pd

        tables = [share.result() for share in self.pieces]
        if not tables:
            return pd.DataFrame({column: pd.Series(dtype="string") for column in ACCEPTED_COLUMNS})
        table = pa.concat_tables(tables).rename_columns(
            [DYNAMIC_VARIABLES if name == "variables" else name for name in tables[0].column_names]
        )
        return table.select(ACCEPTED_COLUMNS).to_pandas()


def _accepted_rows(variables: list[str], piece: pa.Table) -> list[pa.Buffer]:
    """accepted.csv rows of a piece, with its var:* columns as the JSON column (run on a worker thread).

    The piece's E164 column holds the numbers without their '+' (the join puts it back). One
    Arrow join assembles each row, quoting and escaping as Arrow's writer does; a piece where
    some cell would need escaping (a quote in a name, JSON needing json.dumps) goes through
    the writer instead.
    """
    names = [name[len(VARIABLE) :] for name in variables]
    cells = [piece.column(name) for name in variables]
    variables_json, redo = json_parts(names, cells, piece.num_rows, quote='""')
    by_chunk_fields = _by_chunk([piece.column(column) for column in (TIMEZONE, STATE, CHUNK_KEY)])
    text = {column: quoted_text(piece.column(column)) for column in (E164, NAME, SOURCE_FILE, SOURCE_SHEET, PHONE_COLUMN)}
    if by_chunk_fields is None:
        text |= {column: quoted_text(piece.column(column)) for column in (TIMEZONE, STATE, CHUNK_KEY)}
    if redo.any() or any(column is None for column in text.values()):
        piece = piece.set_column(piece.schema.get_field_index(E164), E164, pc.binary_join_element_wise("+", piece.column(E164), ""))
        return csv_rows(ACCEPTED_COLUMNS, piece.append_column(DYNAMIC_VARIABLES, json_objects(names, cells, piece.num_rows)))
    if by_chunk_fields is None:
        by_chunk_fields = ['"', text[TIMEZONE], '","', text[STATE], '","', text[CHUNK_KEY], '"']
    return joined_rows(['"+', text[E164], '","', text[NAME], '","', text[SOURCE_FILE], '","', text[SOURCE_SHEET], '",',
                        pc.cast(piece.column(SOURCE_ROW), pa.string()), ',"', text[PHONE_COLUMN], '",', *by_chunk_fields, ',"',
                        *variables_json, '"\n'], piece.num_rows)  # fmt: skip


def _by_chunk(columns: list[pa.ChunkedArray]) -> list | None:
    """The quoted timezone, state and chunk key fields ('"zone","state","key"') as one column, when all are dictionary
    columns over the same indices (a chunk's rows share them) and none holds a quote; else None.

    One part of the row join instead of five.
    """
    if any(column.num_chunks != 1 for column in columns):
        return None
    arrays = [column.chunk(0) for column in columns]
    if not all(pa.types.is_dictionary(array.type) for array in arrays) or not all(a.indices.equals(arrays[0].indices) for a in arrays):
        return None
    if len({len(array.dictionary) for array in arrays}) != 1 or any(quoted_text(array.dictionary) is None for array in arrays):
        return None
    parts = [array.dictionary for array in arrays]
    joined = pc.binary_join_element_wise('"', *[piece for part in parts for piece in (part, '","')][:-1], '"', "")
    return [joined.take(arrays[0].indices)]
