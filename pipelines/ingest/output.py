"""Write an import's accepted, rejected and duplicate rows as CSV files a person can open in Excel."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipelines.ingest.arrow import string_buffers
from pipelines.ingest.filewriter import FileWriter
from pipelines.ingest.normalise import join_parts
from pipelines.ingest.threads import pool

FORMULA_START = r"^[=+\-@\t\r]"
PHONE_LIKE = re.compile(r"[+\-]?[0-9 ().\-/]*[0-9][0-9 ().\-/]*")


RISKY_FIRST = pa.array(["=", "+", "-", "@", "\t", "\r"])


def excel_safe_array(text: pa.Array) -> pa.Array:
    """excel_safe for an Arrow string column: escape formula-looking cells; the phone-number check runs only on cells that start riskily."""
    risky = pc.is_in(pc.utf8_slice_codeunits(text, 0, 1), value_set=RISKY_FIRST).to_numpy(zero_copy_only=False)
    if not risky.any():
        return text
    index = np.flatnonzero(risky)
    candidates = text.take(pa.array(index))
    phone = pc.match_substring_regex(candidates, f"^(?:{PHONE_LIKE.pattern})$").to_numpy(zero_copy_only=False)
    if phone.all():
        return text
    escape = np.zeros(len(text), dtype=bool)
    escape[index[~phone]] = True
    return pc.replace_with_mask(text, pa.array(escape), pc.binary_join_element_wise("'", text.filter(pa.array(escape)), ""))


PIECE_ROWS = 1 << 16  # rows rendered per task: pieces render on the worker threads while earlier ones are written


class CsvOutput:
    """One output CSV, written in pieces to a hidden partial file; `close` renames it into place.

    Each `write` renders its table as CSV rows on the worker threads, piece by piece, and
    hands the pieces in order to a FileWriter, whose own thread writes them while the next
    pieces render. With no path, writes are dropped (a dry run without --out).
    """

    def __init__(self, path: Path | None, columns: list[str]):
        self.path = path
        self.columns = columns
        self.partial = path.with_name(f".{path.name}.partial") if path is not None else None
        self._file: FileWriter | None = None

    def write(self, table: pa.Table, render: Callable[[pa.Table], list] | None = None) -> None:
        """Append the rows of `table`, rendered by `render` (a piece → its CSV rows as buffers) or by Arrow's writer.

        A custom renderer runs on the worker threads, so a column computed there (the
        accepted rows' JSON) only ever exists for a few pieces at a time.
        """
        if self.path is None:
            return
        render = render or partial(csv_rows, self.columns)
        self.write_rendered(pool().submit(render, table.slice(start, PIECE_ROWS)) for start in range(0, table.num_rows, PIECE_ROWS))

    def write_rendered(self, pieces: Iterable[Future]) -> None:
        """Append pieces being rendered elsewhere (futures of their CSV rows as buffers), in order.

        The writer waits for each piece in turn; this call waits only while the writer's queue
        is full, so `pieces` (a generator) is drawn, and its work started, no faster than written.
        """
        if self.path is None:
            return
        self._open()
        for piece in pieces:
            self._file.write_when_ready(piece)

    def close(self) -> None:
        if self.path is None:
            return
        self._open()
        self._file.close()
        os.replace(self.partial, self.path)  # a reader never sees half a file

    def abandon(self) -> None:
        if self._file is not None:
            self._file.abandon()
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)

    def _open(self) -> None:
        if self._file is None:
            self._file = FileWriter(self.partial)
            header = pa.table({column: pa.array([], pa.string()) for column in self.columns})
            self._file.write(_write_csv(header, header=True))


def csv_rows(columns: list[str], piece: pa.Table) -> list[pa.Buffer]:
    """Rows of a CSV file by Arrow's writer: strings quoted with quotes doubled, integers bare."""
    return [_write_csv(piece.select(columns), header=False)]


def _write_csv(table: pa.Table, *, header: bool) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="needed", include_header=header))
    return sink.getvalue()


def joined_rows(parts: list, rows: int) -> list[pa.Buffer]:
    """`rows` CSV rows made by joining literal text and columns (normalise.join_parts), each ending in a newline.

    The caller quotes and escapes; the joined column's bytes are then the file's bytes,
    written without another copy. Arrow's writer makes the same bytes at about twice the cost.
    """
    lines = join_parts(parts, rows)
    buffers = []
    for chunk in lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]:
        if len(chunk):
            offsets, _ = string_buffers(chunk)
            buffers.append(chunk.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0])))
    return buffers


def quoted_text(column: pa.Array | pa.ChunkedArray) -> str | pa.Array | pa.ChunkedArray | None:
    """A string or dictionary column ready to sit between quotes in a CSV row; None if a cell holds a quote.

    A dictionary column whose rows all hold one value (the file, often the timezone) comes
    back as that text: a literal in the join instead of a column of copies.
    """
    if pa.types.is_dictionary(column.type):
        chunks = [chunk for chunk in (column.chunks if isinstance(column, pa.ChunkedArray) else [column]) if len(chunk)]
        used = set()
        for chunk in chunks:
            low, high = pc.min_max(chunk.indices).values()
            used.update(chunk.dictionary[i].as_py() for i in {low.as_py(), high.as_py()})
            if len(used) > 1 or low != high:
                break
        else:
            if len(used) == 1:
                text = used.pop()
                return None if '"' in text else text
        column = column.cast(pa.string())
    for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        offsets, data = string_buffers(chunk)
        if len(chunk) and (data[offsets[0] : offsets[-1]] == ord('"')).any():  # numpy: far faster than a substring kernel
            return None
    return column


