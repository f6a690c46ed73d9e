"""The dry-run ingest, streamed: any number of rows in bounded memory, same results as ingest().

CSV and TSV files are read in Arrow record batches; other formats (and CSVs the Arrow
reader cannot read exactly) as one batch. Each batch is normalised like ingest() does;
numbers are deduplicated across batches against a sorted int64 array of every number
seen so far (with where it was first seen); the last incomplete chunk waits for the next
batch; rows go to accepted/rejected/duplicates CSVs through incremental writers that are
renamed into place at the end.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from pipelines.chunk import chunk_key
from pipelines.columns import map_columns
from pipelines.dedupe import _number_keys
from pipelines.ingest import IngestOptions, _is_excel
from pipelines.normalise import normalise_sheet
from pipelines.normalise import variables_json
from pipelines.output import CSV_OPTIONS, csv_table
from pipelines.suppress import SUPPRESSED_COLUMNS, split_numbers
from pipelines.hours import check_callable
from pipelines.timezones import assign_timezones
from pipelines.read import RawSheet, SNIFF_BYTES, arrow_csv_options, detect_encoding, header_width, read_sheet, sniff_delimiter
from schemas.contacts import (
    ACCEPTED_COLUMNS,
    CHUNK_KEY,
    DUPLICATE_COLUMNS,
    DUPLICATE_OF_FILE,
    DUPLICATE_OF_ROW,
    DYNAMIC_VARIABLES,
    E164,
    REASON,
    REJECTED_COLUMNS,
    SOURCE_FILE,
    SOURCE_ROW,
    SOURCE_SHEET,
    TIMEZONE,
    BatchPlan,
    FileCounts,
    ImportSummary,
)

BATCH_BYTES = 64 << 20  # about 900k rows of a typical contact export per streamed batch
WHOLE_FILE_BYTES = 256 << 20  # up to this size a file is read at once, by the multi-threaded reader


@dataclass
class _Seen:
    """Every number seen so far, sorted, with the file and row of its first occurrence."""

    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    files: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    file_names: list[str] = field(default_factory=list)

    def split(self, contacts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mark repeats (of earlier batches or earlier in this one); return the mask and each row's original file and row."""
        keys = _number_keys(contacts[E164])
        codes, uniques = pd.factorize(keys)
        first_in_batch = np.full(len(uniques), len(keys), dtype=np.int64)
        np.minimum.at(first_in_batch, codes, np.arange(len(keys)))
        position = np.searchsorted(self.keys, uniques)
        earlier = np.zeros(len(uniques), dtype=bool)
        if len(self.keys):
            earlier = self.keys[np.minimum(position, len(self.keys) - 1)] == uniques
        # where each number was first seen, as (file code, row): an earlier batch, or this one
        file_codes = self._file_codes(contacts)[first_in_batch]
        rows = contacts[SOURCE_ROW].to_numpy()[first_in_batch].astype(np.int64)
        if earlier.any():
            file_codes[earlier] = self.files[position[earlier]]
            rows[earlier] = self.rows[position[earlier]]
        repeat = np.ones(len(keys), dtype=bool)
        repeat[first_in_batch[~earlier]] = False
        new = ~earlier
        order = np.argsort(uniques[new], kind="stable")
        at = np.searchsorted(self.keys, uniques[new][order])
        self.keys = np.insert(self.keys, at, uniques[new][order])
        self.files = np.insert(self.files, at, file_codes[new][order])
        self.rows = np.insert(self.rows, at, rows[new][order])
        names = np.array(self.file_names, dtype=object)
        return repeat, names[file_codes[codes]], rows[codes]

    def _file_codes(self, contacts: pd.DataFrame) -> np.ndarray:
        """Each row's source file as an index into file_names, from the column's categories (no per-row strings)."""
        column = contacts[SOURCE_FILE]
        if not isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype("category")
        mapping = np.array([self._file_code(str(name)) for name in column.cat.categories], dtype=np.int32)
        return mapping[column.cat.codes.to_numpy()]

    def _file_code(self, name: str) -> int:
        if name not in self.file_names:
            self.file_names.append(name)
        return self.file_names.index(name)


class _Writer:
    """One output CSV written incrementally to a partial file; `close` renames it into place."""

    def __init__(self, folder: Path | None, name: str, columns: list[str]):
        self.columns = columns
        self.path = folder / name if folder else None
        self.partial = folder / f".{name}.partial" if folder else None
        self.writer = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.path is None:
            return
        table = csv_table(frame, self.columns)
        if self.writer is None:
            self.writer = pacsv.CSVWriter(self.partial, table.schema, write_options=CSV_OPTIONS)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.path is None:
            return
        if self.writer is None:
            empty = pa.table({c: pa.array([], pa.string()) for c in self.columns})
            self.writer = pacsv.CSVWriter(self.partial, empty.schema, write_options=CSV_OPTIONS)
        self.writer.close()
        os.replace(self.partial, self.path)

    def abandon(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)


def stream_import(
    paths: Sequence[str | Path],
    options: IngestOptions,
    out_dir: str | Path | None = None,
    *,
    suppressed: Collection[str] = (),
    already_submitted: Collection[str] = (),
    cooled_down: Collection[str] = (),
) -> ImportSummary:
    """The dry run of `campaigns import`: counts, batches and (with out_dir) the output CSV files."""
    folder = Path(out_dir) if out_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    writers = {
        "accepted": _Writer(folder, "accepted.csv", ACCEPTED_COLUMNS),
        "rejected": _Writer(folder, "rejected.csv", REJECTED_COLUMNS),
        "duplicates": _Writer(folder, "duplicates.csv", DUPLICATE_COLUMNS),
        "suppressed": _Writer(folder, "suppressed.csv", SUPPRESSED_COLUMNS),
    }
    skipped = {"already_submitted": 0, "cooled_down": 0}
    seen, files, plans, reasons = _Seen(), {}, [], {}
    pending: dict[str, pd.DataFrame] = {}  # per zone set: accepted contacts not yet in a complete chunk
    try:
        for path in paths:
            files.setdefault(str(path), FileCounts(source_file=str(path)))
        for sheet in _sheets(paths, options):
            counts = files.setdefault(sheet.source_file, FileCounts(source_file=sheet.source_file))
            columns = map_columns(sheet.headers, label=sheet.source_file, phone_column=options.phone_column)
            contacts, rejects = normalise_sheet(sheet, columns, options.region)
            counts.rows_read += len(sheet.cells)
            counts.rejected += len(rejects)
            for reason, count in rejects[REASON].value_counts().items():
                reasons[str(reason)] = reasons.get(str(reason), 0) + int(count)
            writers["rejected"].write(rejects)
            contacts, blocked = split_numbers(contacts, suppressed)
            counts.suppressed += len(blocked)
            if len(blocked):
                writers["suppressed"].write(blocked)
            if not len(contacts):
                continue
            repeat, first_file, first_row = seen.split(contacts)
            duplicates = contacts.loc[repeat, [SOURCE_FILE, SOURCE_SHEET, SOURCE_ROW, E164]].reset_index(drop=True)
            if len(duplicates):
                duplicates[DUPLICATE_OF_FILE] = first_file[repeat]
                duplicates[DUPLICATE_OF_ROW] = first_row[repeat]
                writers["duplicates"].write(duplicates)
            counts.duplicates += int(repeat.sum())
            accepted = contacts[~repeat].reset_index(drop=True)
            counts.accepted += len(accepted)
            for name, numbers in (("already_submitted", already_submitted), ("cooled_down", cooled_down)):
                accepted, skip = split_numbers(accepted, numbers)
                skipped[name] += len(skip)
            if len(accepted):
                accepted = assign_timezones(accepted)
                check_callable(accepted, options.hours)
                for zones, group in accepted.groupby(TIMEZONE, sort=False):
                    group = group.reset_index(drop=True)
                    rest = pending.get(zones)
                    rest = group if rest is None else pd.concat([rest, group], ignore_index=True, sort=False)
                    pending[zones] = _emit_chunks(rest, options, plans, writers["accepted"], final=False)
        for rest in pending.values():
            if len(rest):
                _emit_chunks(rest, options, plans, writers["accepted"], final=True)
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.abandon()
        raise
    totals = list(files.values())
    return ImportSummary(
        campaign=options.campaign,
        rows_read=sum(f.rows_read for f in totals),
        accepted=sum(f.accepted for f in totals),
        duplicates=sum(f.duplicates for f in totals),
        rejected=sum(f.rejected for f in totals),
        suppressed=sum(f.suppressed for f in totals),
        reject_reasons=dict(sorted(reasons.items())),
        **skipped,
        files=totals,
        batches=plans,
        dry_run=True,
    )


def _emit_chunks(pending: pd.DataFrame, options: IngestOptions, plans: list[BatchPlan], writer: _Writer, *, final: bool) -> pd.DataFrame:
    """Write every complete chunk of `pending` (and the last partial one when final); return the rest."""
    size = options.batch_size
    complete = len(pending) if final else (len(pending) // size) * size
    if complete == 0:
        return pending
    ready = pending.iloc[:complete]
    numbers = ready[E164].to_numpy(dtype=object)
    keys = []
    for start in range(0, complete, size):
        members = numbers[start : start + size].tolist()
        key = chunk_key(options.campaign, members)
        keys.append(key)
        plans.append(BatchPlan(key=key, size=len(members), timezone=str(ready[TIMEZONE].iat[start])))
    frame = ready.copy()
    frame[CHUNK_KEY] = pd.Categorical.from_codes(np.arange(complete) // size, categories=keys)
    frame[DYNAMIC_VARIABLES] = variables_json(frame)
    writer.write(frame)
    return pending.iloc[complete:].reset_index(drop=True)


def _sheets(paths: Sequence[str | Path], options: IngestOptions) -> Iterator[RawSheet]:
    """Every input as RawSheet batches, in order, with the spreadsheet's row numbers."""
    for path in paths:
        path = Path(path)
        streamed = _csv_batches(path) if path.suffix.lower() in (".csv", ".txt", ".tsv", ".tab") and path.is_file() else None
        if streamed is None:
            yield read_sheet(path, sheet=options.sheet if _is_excel(path) else None)
            continue
        yield from streamed


def _csv_batches(path: Path) -> Iterator[RawSheet] | None:
    """Arrow record batches of a UTF-8 delimited file, or None when the exact reader must handle it."""
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    if not sample:
        return None
    try:
        encoding = detect_encoding(sample)
    except ValueError:
        return None
    if encoding not in ("utf-8", "utf-8-sig"):
        return None
    text = sample.decode("utf-8", errors="ignore")
    if path.suffix.lower() in (".tsv", ".tab"):
        delimiter = "\t"
    else:
        cut = text.rfind("\n")
        delimiter = sniff_delimiter(text[:cut] if cut > 0 else text)
    width = header_width(text, delimiter)
    if path.stat().st_size <= WHOLE_FILE_BYTES and BATCH_BYTES >= (64 << 20):
        try:
            table = pacsv.read_csv(path, **arrow_csv_options(delimiter, width, 16 << 20))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        whole = pa.RecordBatch.from_arrays([table.column(i).combine_chunks() for i in range(table.num_columns)], names=table.column_names)
        return _batched_sheets(iter([whole]), path, width)
    try:
        reader = pacsv.open_csv(path, **arrow_csv_options(delimiter, width, BATCH_BYTES))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return _batched_sheets(reader, path, width)


def _batched_sheets(reader, path: Path, width: int) -> Iterator[RawSheet]:
    """RawSheets of one file's record batches; blank rows at a batch's end wait to see if data follows."""
    from pipelines.errors import InputError
    from pipelines.read import _finish

    label = str(path)
    headers: list[str] | None = None
    next_row = 1  # the spreadsheet row number of the current batch's first line
    carried: list[pa.RecordBatch] = []  # blank rows that are trailing unless data follows
    carried_first = 0

    def blank(columns, row: int) -> bool:
        return all(not str(column[row].as_py()).strip() for column in columns)

    try:
        for batch in reader:
            size = batch.num_rows
            columns = [batch.column(i) for i in range(width)]
            start = 0
            if headers is None:
                while start < size and blank(columns, start):
                    start += 1
                if start == size:
                    next_row += size
                    continue
                headers = [str(column[start].as_py()).strip() for column in columns]
                start += 1
            end = size
            while end > start and blank(columns, end - 1):
                end -= 1
            if end == start:
                if start < size:
                    if not carried:
                        carried_first = next_row + start
                    carried.append(batch.slice(start))
                next_row += size
                continue
            first = carried_first if carried else next_row + start
            body = pa.Table.from_batches([*carried, batch.slice(start, end - start)])
            carried = [batch.slice(end)] if end < size else []
            carried_first = next_row + end
            next_row += size
            cells = pd.DataFrame(
                {i: pd.Series(pd.arrays.ArrowExtensionArray(body.column(i).combine_chunks()), copy=False) for i in range(width)}
            )
            yield _finish(label, None, list(headers), cells, np.arange(first, first + body.num_rows, dtype=np.int64), encoding="utf-8")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"malformed delimited text ({str(exc).splitlines()[0]})", path=label) from exc
    if headers is None:
        raise InputError("file has no rows", path=label)
