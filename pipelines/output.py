"""Write an import's accepted, rejected and duplicate rows as CSV files a person can open in Excel."""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipelines.arrow import text_array, text_series
from pipelines.filesink import FileSink
from pipelines.ingest import IngestResult
from pipelines.normalise import variables_json
from pipelines.threads import pool
from schemas.contacts import ACCEPTED_COLUMNS, DUPLICATE_COLUMNS, DYNAMIC_VARIABLES, REJECTED_COLUMNS

FORMULA_START = r"^[=+\-@\t\r]"
PHONE_LIKE = re.compile(r"[+\-]?[0-9 ().\-/]*[0-9][0-9 ().\-/]*")


def excel_safe(column: pd.Series) -> pd.Series:
    """Prefix a quote to text Excel would run as a formula (=, +, -, @), unless it is a phone number."""
    if column.dtype.kind in "iufb":
        return column
    return text_series(_excel_safe(text_array(column)), column.index)


_as_text = text_array


RISKY_FIRST = pa.array(["=", "+", "-", "@", "\t", "\r"])


def _excel_safe(text: pa.Array) -> pa.Array:
    """Escape formula-looking cells; the phone-number check runs only on cells that start riskily."""
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


PIECE_ROWS = 1 << 16  # rows rendered per task: pieces render on two threads while earlier ones are written
IN_FLIGHT = 4  # pieces rendered ahead of the writer: bounds the memory a large write takes


def excel_safe_array(text: pa.Array) -> pa.Array:
    """excel_safe for an Arrow string column."""
    return _excel_safe(text)


class CsvOutput:
    """One output CSV, written in pieces to a hidden partial file; `close` renames it into place.

    Each `write` renders its table as CSV on the worker threads, piece by piece, and hands
    the pieces in order to a FileSink, whose own thread writes them while the next pieces
    render. With no path, writes are dropped (a dry run without --out).
    """

    def __init__(self, path: Path | None, columns: list[str]):
        self.path = path
        self.columns = columns
        self.partial = path.with_name(f".{path.name}.partial") if path is not None else None
        self._file: FileSink | None = None

    def write(self, table: pa.Table, complete: Callable[[pa.Table], pa.Table] | None = None) -> None:
        """Append the rows of `table`; `complete`, if given, adds computed columns to each piece before it renders.

        Computing a column piece by piece on the worker threads (the accepted rows' JSON)
        keeps only a few pieces in memory at a time instead of the whole column.
        """
        if self.path is None:
            return
        header = self._file is None
        if header:
            self._file = FileSink(self.partial)
        tasks = [partial(_render, table.slice(start, PIECE_ROWS), complete, self.columns, header and start == 0)
                 for start in range(0, max(table.num_rows, 1), PIECE_ROWS)]  # fmt: skip
        for rendered in _in_order(tasks, IN_FLIGHT):
            self._file.write(rendered)

    def close(self) -> None:
        if self.path is None:
            return
        if self._file is None:
            self.write(pa.table({column: pa.array([], pa.string()) for column in self.columns}))
        self._file.close()
        os.replace(self.partial, self.path)  # a reader never sees half a file

    def abandon(self) -> None:
        if self._file is not None:
            self._file.abandon()
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)


def _render(piece: pa.Table, complete: Callable[[pa.Table], pa.Table] | None, columns: list[str], header: bool) -> pa.Buffer:
    """One piece of a CSV file: its columns computed if need be, strings quoted, quotes doubled."""
    if complete is not None:
        piece = complete(piece)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(piece.select(columns), sink, pacsv.WriteOptions(quoting_style="needed", include_header=header))
    return sink.getvalue()


def _in_order(tasks: list[Callable[[], pa.Buffer]], depth: int) -> Iterator[pa.Buffer]:
    """Results of tasks run on the worker threads, in order, with at most `depth` of them started ahead."""
    started: deque[Future] = deque()
    for task in tasks:
        started.append(pool().submit(task))
        if len(started) >= depth:
            yield started.popleft().result()
    while started:
        yield started.popleft().result()


def csv_table(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    """The columns of a frame as an Arrow table ready for a CSV a person opens in Excel."""
    arrays = {}
    for column in columns:
        values = frame[column]
        arrays[column] = pa.array(values.to_numpy(), type=pa.int64()) if values.dtype.kind in "iu" else _excel_safe(_as_text(values))
    return pa.table(arrays)


def accepted_frame(result: IngestResult) -> pd.DataFrame:
    """Accepted contacts with their variables as one JSON object per row."""
    frame = result.accepted.copy()
    frame[DYNAMIC_VARIABLES] = variables_json(frame)
    return frame[ACCEPTED_COLUMNS]


def write_outputs(result: IngestResult, out_dir: str | Path) -> dict[str, Path]:
    """Write accepted.csv, rejected.csv, duplicates.csv and suppressed.csv into out_dir, each file atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from pipelines.suppress import SUPPRESSED_COLUMNS

    suppressed = result.suppressed if result.suppressed is not None else result.accepted.iloc[0:0]
    frames = {
        "accepted.csv": accepted_frame(result),
        "rejected.csv": result.rejected[REJECTED_COLUMNS],
        "duplicates.csv": result.duplicates[DUPLICATE_COLUMNS],
        "suppressed.csv": suppressed[SUPPRESSED_COLUMNS],
    }
    written = {}
    for name, frame in frames.items():
        output = CsvOutput(out / name, list(frame.columns))
        try:
            output.write(csv_table(frame, list(frame.columns)))
            output.close()
        except BaseException:
            output.abandon()
            raise
        written[name] = out / name
    return written
