"""Read stage: a spreadsheet file → a table of text cells with spreadsheet row numbers.

No reader is allowed to interpret a cell: `0044…` stays `0044…`, `4155551234` never
becomes `4.155551234e9`. Numeric cells from typed formats (XLSX, Parquet, JSON) are
turned back into the digits a person typed when their value is integral.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import math
import mmap
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import InputError

CSV_SUFFIXES = {".csv", ".txt"}
TSV_SUFFIXES = {".tsv", ".tab"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
SUPPORTED = sorted(CSV_SUFFIXES | TSV_SUFFIXES | EXCEL_SUFFIXES | PARQUET_SUFFIXES | JSONL_SUFFIXES)

SNIFF_BYTES = 64 * 1024
DELIMITERS = [",", ";", "\t", "|"]
WHOLE_FILE_BYTES = 1 << 30  # up to this size a delimited file is read at once, by the multi-threaded reader
BATCH_ROWS = 1 << 20  # rows per batch when a whole file is cut up: bounds the working memory
BATCH_BYTES = 64 << 20  # bytes per record batch of the streaming reader (larger files)
MAX_WORKBOOK_BYTES = 512 << 20  # default cap on what a zipped workbook may expand to (CAMPAIGNS_MAX_WORKBOOK_MB)
ZIPPED_WORKBOOKS = {".xlsx", ".xlsm", ".xlsb", ".ods"}


@dataclass(frozen=True)
class Cells:
    """A sheet's text cells as Arrow string columns, 0..n-1 in header order, every value a str ("" when blank).

    `cells[i]` is column i, in the chunks it was read in (joining them would copy every cell).
    """

    columns: tuple[pa.Array | pa.ChunkedArray, ...]
    num_rows: int

    def __getitem__(self, index: int) -> pa.Array | pa.ChunkedArray:
        return self.columns[index]

    def __len__(self) -> int:
        return self.num_rows

    @classmethod
    def of_texts(cls, columns: list[list[str]], num_rows: int) -> Cells:
        """Cells from Python lists of str (the readers of typed formats and the exact delimited reader)."""
        return cls(tuple(pa.array(column, type=pa.string()) for column in columns), num_rows)


@dataclass(frozen=True)
class RawSheet:
    """One sheet of text cells. `rows[i]` is the row number a person sees for row i of `cells`."""

    source_file: str
    sheet: str | None
    headers: list[str]
    cells: Cells
    rows: np.ndarray
    encoding: str | None = None
    delimiter: str | None = None
    notes: tuple[str, ...] = ()  # what the import should warn about this sheet (lines read in another encoding)
    malformed: tuple[Malformed, ...] = ()  # rows with more fields than the header: not in cells, rejected as malformed_row


@dataclass(frozen=True)
class Malformed:
    """A row of delimited text with more fields than its header: the rest of the file is still read."""

    row: int  # as the spreadsheet shows it
    text: str  # the fields as read, joined by the delimiter
    fields: int
    expected: int


HEADER_SEARCH_ROWS = 20  # the header is looked for among this many non-blank rows at the top


@dataclass(frozen=True)
class HeaderRule:
    """Which row holds the headers: `row` (--header-row, numbered as the spreadsheet shows it) when given, else the
    first of the first HEADER_SEARCH_ROWS non-blank rows in which a phone column is recognised (or one of
    `phone_columns` named), else the first non-blank row. Rows above it (titles, notes, blank rows) are no data."""

    row: int | None = None
    phone_columns: tuple[str, ...] = ()

    def pick(self, top: list[tuple[int, list[str]]], label: str) -> int | None:
        """The position in `top` (the first rows, in order, each its row number and cells) of the header row; None
        when every row is blank."""
        from pipelines.ingest.columns import header_token, is_phone_header

        if self.row is not None:
            for position, (number, cells) in enumerate(top):
                if number == self.row:
                    if not any(str(cell).strip() for cell in cells):
                        raise InputError(f"--header-row {self.row} is a blank row", path=label, code="no_phone_column")
                    return position
            last = top[-1][0] if top else 0
            raise InputError(f"--header-row {self.row}: there is no row {self.row} (the last is {last})", path=label,
                             code="no_phone_column")  # fmt: skip
        named = {header_token(name) for name in self.phone_columns}
        filled = [position for position, (_, cells) in enumerate(top) if any(str(cell).strip() for cell in cells)]
        for position in filled[:HEADER_SEARCH_ROWS]:
            tokens = [header_token(str(cell)) for cell in top[position][1]]
            if any(token and (is_phone_header(token) or token in named) for token in tokens):
                return position
        return filled[0] if filled else None

    def depth(self) -> int:
        """How many rows from the top `pick` may need to see (blank rows included up to a point)."""
        return max(self.row or 0, 4 * HEADER_SEARCH_ROWS)


def is_excel(path: str | Path) -> bool:
    """Is this file a workbook (so --sheet applies to it)?"""
    return Path(path).suffix.lower() in EXCEL_SUFFIXES


def read_sheet(path: str | Path, *, sheet: str | None = None, max_workbook_bytes: int = MAX_WORKBOOK_BYTES,
               encoding: str | None = None, header: HeaderRule = HeaderRule(), exact: bool = False) -> RawSheet:
    """Read one file of any supported format into text cells; raise InputError on bad input. `encoding` (--encoding)
    overrides the detected encoding of delimited text and JSON Lines; `header` says which row of a delimited file or a
    workbook holds the headers; `exact`: delimited text goes straight to the exact reader (the caller's
    delimited_batches already declined it).

    Every failure of a reader library is translated here: a corrupt or hostile file is
    one InputError (exit 3), never an internal error.
    """
    path = Path(path)
    label = str(path)
    if not path.exists():
        raise InputError("file not found", path=label, code="not_found")
    if path.is_dir():
        raise InputError("is a folder, not a spreadsheet", path=label, code="not_a_file")
    try:
        if path.stat().st_size == 0:
            raise InputError("file is empty", path=label, code="empty")
    except PermissionError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", path=label, code="unreadable") from None
    suffix = path.suffix.lower()
    if sheet is not None and suffix not in EXCEL_SUFFIXES:
        raise InputError("--sheet only applies to Excel workbooks", path=label, code="bad_sheet")
    try:
        if suffix in EXCEL_SUFFIXES:
            return _read_excel(path, label, sheet, max_workbook_bytes, header)
        if suffix in PARQUET_SUFFIXES:
            return _read_parquet(path, label)
        if suffix in JSONL_SUFFIXES:
            return _read_jsonl(path, label, encoding)
        if suffix in TSV_SUFFIXES:
            return _read_delimited(path, label, "\t", encoding, header, exact)
        if suffix in CSV_SUFFIXES or suffix == "":
            return _read_delimited(path, label, None, encoding, header, exact)
    except InputError:
        raise
    except UnicodeDecodeError as exc:
        if encoding is None:
            raise InputError("cannot read file", path=label, code="unreadable", detail=_first_line(exc)) from exc
        line = _first_undecodable_line(path, encoding)
        where = f"line {line} is not" if line else "not"
        raise InputError(f"{where} {encoding} text", path=label, code="unreadable",
                         detail=f"{_first_line(exc)}; leave out --encoding to have it detected") from exc  # fmt: skip
    except BinaryContent as exc:
        raise InputError(str(exc), path=label, code="unreadable") from None
    except PermissionError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", path=label, code="unreadable") from None
    except MemoryError:
        raise InputError("file is too large to read in the memory available", path=label, code="too_large") from None
    except Exception as exc:  # noqa: BLE001 - a reader library's failure on a bad file is bad input, said in one line
        raise InputError("cannot read file", path=label, code="unreadable", detail=f"{type(exc).__name__}: {_first_line(exc)}") from exc
    raise InputError(f"unsupported file type {suffix!r}; supported: {', '.join(SUPPORTED)}", path=label, code="unsupported")


# ---------------------------------------------------------------- delimited text


class BinaryContent(ValueError):
    """The bytes are not text in any encoding a spreadsheet export uses."""


def detect_encoding(sample: bytes) -> str:
    """Name the encoding of a text sample: BOMs first, then UTF-16 by its NULs, UTF-8, cp1252."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > len(odd) * 0.3 and even.count(0) < len(even) * 0.05:
            return "utf-16-le"
        if even.count(0) > len(even) * 0.3 and odd.count(0) < len(odd) * 0.05:
            return "utf-16-be"
        if sample.count(0) > max(8, len(sample) // 1000):  # a stray NUL in a cell is text (the cell loses it); many are not
            line = sample[: sample.index(0)].count(b"\n") + 1
            raise BinaryContent(f"binary content (a NUL byte on line {line}), not a text spreadsheet")
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3:  # a multi-byte character cut by the sample's end
            return "utf-8"
    if _mostly_utf8(sample):  # UTF-8 with some lines that are not: read as UTF-8, those lines apart (_mixed_utf8)
        return "utf-8"
    return _single_byte(sample)


def _mostly_utf8(sample: bytes) -> bool:
    """Whether more of the sample's non-ASCII lines are valid UTF-8 than are not."""
    good = bad = 0
    for line in sample.splitlines()[:-1] or sample.splitlines():  # the last line may be cut by the sample's end
        if max(line, default=0) < 0x80:
            continue
        try:
            line.decode("utf-8")
            good += 1
        except UnicodeDecodeError:
            bad += 1
    return good > bad


# Letters European names are written with: a single-byte text that decodes to more of these as Mac Roman than as
# Windows-1252 (which puts them at 0xC0-0xFF, where Mac Roman has punctuation and symbols) is Mac Roman.
_NAME_LETTERS = frozenset("àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝœŒ")


def _single_byte(sample: bytes) -> str:
    """Windows-1252 (Excel for Windows), Mac Roman (Excel for Mac's "CSV (Macintosh)"), or Latin-1 for bytes
    Windows-1252 leaves undefined: the one whose reading of the non-ASCII bytes gives more letters of names."""
    high = bytes(byte for byte in sample if byte >= 0x80)
    windows = high.decode("cp1252", errors="replace")
    mac = high.decode("mac_roman")
    if sum(ch in _NAME_LETTERS for ch in mac) > sum(ch in _NAME_LETTERS for ch in windows):
        return "mac_roman"
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"  # cp1252 leaves five bytes undefined; latin-1 maps every byte


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter that splits the first lines into the most, most consistent columns (title rows above the
    header, with fewer fields, do not count against it)."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if not lines:
        return ","
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        common = max(set(widths), key=lambda width: (widths.count(width), width))
        if common < 2:
            continue
        score = (widths.count(common), common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _looks_binary(text: str) -> bool:
    controls = sum(1 for ch in text if ch not in string.printable and ord(ch) < 32)
    return controls > max(8, len(text) // 10)


def _read_delimited(path: Path, label: str, delimiter: str | None, given: str | None, header: HeaderRule, exact: bool) -> RawSheet:
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    encoding = given or detect_encoding(sample)
    text_sample = sample.decode(encoding, errors="ignore")
    if _looks_binary(text_sample):
        raise InputError("binary content, not a text spreadsheet", path=label, code="unreadable")
    if delimiter is None:
        cut = text_sample.rfind("\n")
        delimiter = sniff_delimiter(text_sample[:cut] if cut > 0 else text_sample)
    if encoding in ("utf-8", "utf-8-sig") and not exact:
        batches = delimited_batches(path, header, delimiter)
        fast = _joined(list(batches)) if batches is not None else None
        if fast is not None:
            return fast
    import pandas as pd  # the exact reader, for what pyarrow's cannot read exactly (other encodings, ragged rows)

    notes = []
    source = path
    try:
        try:
            table = _parse_delimited(path, encoding, delimiter)
        except UnicodeDecodeError:
            if encoding not in ("utf-8", "utf-8-sig") or given:
                raise
            # UTF-8 with some lines that are not (two exports pasted together): those lines alone as Windows-1252
            text, count, first = _mixed_utf8(path.read_bytes())
            notes.append(f"{count} line(s) of {label} were not UTF-8 and were read as Windows-1252, the first at row {first}")
            source, encoding = io.StringIO(text), None
            table = _parse_delimited(source, None, delimiter)
        lengths = None
    except pd.errors.ParserError:  # rows of different lengths (a title row, a comma in a note): read record by record
        table, lengths = _parse_ragged(source, encoding, delimiter)
    except pd.errors.EmptyDataError as exc:
        raise InputError("file has no rows", path=label, code="empty") from exc
    return _from_grid(table, label, None, header, first_row_number=1, encoding=encoding or "utf-8", delimiter=delimiter,
                      notes=notes, lengths=lengths)  # fmt: skip


def _parse_ragged(source, encoding: str | None, delimiter: str):
    """Every record as read, padded to the longest into a grid, with each record's own number of fields."""
    import pandas as pd

    if isinstance(source, io.StringIO):
        source.seek(0)
        records = list(csv.reader(source, delimiter=delimiter))
    else:
        with open(source, encoding=encoding, newline="") as handle:
            records = list(csv.reader(handle, delimiter=delimiter))
    if records and records[0] and records[0][0].startswith("\ufeff"):
        records[0][0] = records[0][0][1:]
    lengths = np.array([len(record) for record in records], dtype=np.int64)
    width = int(lengths.max()) if len(lengths) else 0
    return pd.DataFrame([record + [""] * (width - len(record)) for record in records], dtype=object), lengths


def _mixed_utf8(data: bytes) -> tuple[str, int, int]:
    """A file that is UTF-8 but for some lines, decoded line by line (those lines as Windows-1252, bytes it leaves
    undefined as Latin-1); how many lines were not UTF-8, and the line number of the first."""
    lines, count, first = [], 0, 0
    for number, line in enumerate(data.splitlines(keepends=True), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            count, first = count + 1, first or number
            lines.append(line.decode("cp1252", errors="strict") if _cp1252_defined(line) else line.decode("latin-1"))
    return "".join(lines).removeprefix("\ufeff"), count, first


def _cp1252_defined(line: bytes) -> bool:
    return not any(byte in (0x81, 0x8D, 0x8F, 0x90, 0x9D) for byte in line)


def header_layout(sample: str, delimiter: str, header: HeaderRule, label: str) -> tuple[int, int]:
    """(records above the header row, fields of the header row) of a delimited text, from its first bytes."""
    lines = sample.splitlines(keepends=True)
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # cut off mid-line
    top = [(number, record) for number, record in enumerate(csv.reader(lines[: header.depth()], delimiter=delimiter), start=1)]
    if not top:
        return 0, 1
    position = header.pick(top, label)
    if position is None:
        return 0, len(top[0][1]) or 1
    return position, len(top[position][1]) or 1


def arrow_csv_options(delimiter: str, width: int, block_size: int, skip: int = 0, *, quoted: bool = True) -> dict:
    """pyarrow CSV options that keep every cell as text and every line (blank ones too) as a row, from the header row
    on (`skip` records above it). `quoted`: whether the file may hold a quote character; without one no value can hold
    a line break, and the reader cuts its blocks at line breaks instead of following quotes (~30 % less CPU)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return {
        "read_options": pacsv.ReadOptions(autogenerate_column_names=True, block_size=block_size, skip_rows=skip),
        "parse_options": pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=quoted, ignore_empty_lines=False),
        "convert_options": pacsv.ConvertOptions(
            column_types={f"f{i}": pa.string() for i in range(width)}, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    }


def delimited_batches(path: Path, header: HeaderRule, delimiter: str | None = None) -> Iterator[RawSheet] | None:
    """A UTF-8 delimited file as RawSheets of Arrow record batches (pyarrow's multi-threaded reader, every column as
    text), or None when the exact reader must handle it (another encoding, ragged rows, odd quoting). `delimiter`:
    given, else sniffed (tab for .tsv and .tab)."""
    try:
        with path.open("rb") as handle:
            sample = handle.read(SNIFF_BYTES)
    except OSError:
        return None  # read_sheet says what is wrong (permission denied, …) in one line
    import pyarrow.csv as pacsv

    if not sample:
        return None
    try:
        encoding = detect_encoding(sample)
    except ValueError:
        return None
    if encoding not in ("utf-8", "utf-8-sig"):
        return None
    text = sample.decode("utf-8", errors="ignore")
    if delimiter is None and path.suffix.lower() in TSV_SUFFIXES:
        delimiter = "\t"
    elif delimiter is None:
        last_line = text.rfind("\n")
        delimiter = sniff_delimiter(text[:last_line] if last_line > 0 else text)
    skip, width = header_layout(text, delimiter, header, str(path))
    quoted = _holds_quote(path)
    if path.stat().st_size <= WHOLE_FILE_BYTES:
        try:  # mapped, the reader parses the page cache in place instead of copying the file into fresh memory first
            with pa.memory_map(str(path)) as source:
                table = pacsv.read_csv(source, **arrow_csv_options(delimiter, width, 16 << 20, skip, quoted=quoted))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None  # ragged rows, odd quoting: the exact reader (read_sheet) decides
        return _batched_sheets((table.slice(start, BATCH_ROWS) for start in range(0, table.num_rows, BATCH_ROWS)), path, width, skip, delimiter)
    try:
        reader = pacsv.open_csv(path, **arrow_csv_options(delimiter, width, BATCH_BYTES, skip, quoted=quoted))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return _batched_sheets(reader, path, width, skip, delimiter)


def _holds_quote(path: Path) -> bool:
    """Whether the file holds a double quote anywhere (one memchr over the mapped file: ~10 ms for 70 MB)."""
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return mapped.find(b'"') >= 0
    except (OSError, ValueError):  # cannot be mapped (empty, a special file): read as if it held quotes
        return True


def _batched_sheets(batches, path: Path, width: int, skip: int, delimiter: str) -> Iterator[RawSheet]:
    """RawSheets of one file's batches (tables or record batches) read from the header row on (`skip` rows above it);
    blank rows at a batch's end wait to see if data follows."""
    label = str(path)
    headers: list[str] | None = None
    next_row = skip + 1  # the spreadsheet row number of the current batch's first line
    carried: list[pa.Table] = []  # blank rows that are trailing unless data follows
    carried_first = 0

    def blank(columns, row: int) -> bool:
        return all(not str(column[row].as_py()).strip() for column in columns)

    try:
        for batch in batches:
            batch = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
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
            body = pa.concat_tables([*carried, batch.slice(start, end - start)])
            carried = [batch.slice(end)] if end < size else []
            carried_first = next_row + end
            next_row += size
            cells = Cells(tuple(body.column(i) for i in range(width)), body.num_rows)
            yield _finish(label, None, list(headers), cells, np.arange(first, first + body.num_rows, dtype=np.int64), encoding="utf-8",
                          delimiter=delimiter)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError("malformed delimited text", path=label, code="malformed", detail=str(exc).splitlines()[0]) from exc
    if headers is None:
        raise InputError("file has no rows", path=label, code="empty")


def _joined(sheets: list[RawSheet]) -> RawSheet | None:
    """One sheet of a file's batches (their chunks, not copied); None when the batches kept different columns."""
    first = sheets[0]
    if len(sheets) == 1:
        return first
    if any(sheet.headers != first.headers for sheet in sheets):
        return None
    columns = tuple(pa.chunked_array([chunk for sheet in sheets for chunk in _chunks(sheet.cells[i])], type=pa.string())
                    for i in range(len(first.cells.columns)))  # fmt: skip
    rows = np.concatenate([sheet.rows for sheet in sheets])
    return dataclasses.replace(first, cells=Cells(columns, len(rows)), rows=rows)


def _chunks(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _parse_delimited(path, encoding: str | None, delimiter: str):
    import pandas as pd

    return pd.read_csv(
        path,
        sep=delimiter,
        header=None,
        dtype=str,
        encoding=encoding,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,  # keep row numbers as the spreadsheet shows them
        engine="c",
    )


def delimiter_name(delimiter: str) -> str:
    """',' → 'comma': a delimiter as messages name it."""
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, repr(delimiter))


# ---------------------------------------------------------------- typed formats


def _read_excel(path: Path, label: str, sheet: str | None, max_bytes: int, header: HeaderRule) -> RawSheet:
    from python_calamine import CalamineError, CalamineWorkbook

    if path.suffix.lower() in ZIPPED_WORKBOOKS:
        _check_expansion(path, label, max_bytes)
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        names = list(workbook.sheet_names)
        if not names:
            raise InputError("workbook has no sheets", path=label, code="empty")
        if sheet is None:
            sheet = names[0]
        elif sheet not in names:
            raise InputError(f"no sheet named {sheet!r}", path=label, code="bad_sheet", detail=f"sheets: {', '.join(names)}")
        grid = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    except (CalamineError, OSError, ValueError) as exc:
        raise InputError("not a readable Excel workbook", path=label, code="unreadable",
                         detail=f"{type(exc).__name__}: {_first_line(exc)}") from exc  # fmt: skip
    import pandas as pd

    frame = pd.DataFrame(grid, dtype=object) if grid else pd.DataFrame()
    frame = frame.apply(lambda column: column.map(cell_text)) if not frame.empty else frame
    return _from_grid(frame, label, sheet, header, first_row_number=1)


def _check_expansion(path: Path, label: str, max_bytes: int) -> None:
    """Refuse a zipped workbook whose parts expand beyond `max_bytes` (a zip bomb) before anything is inflated."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(max(0, info.file_size) for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError("not a readable Excel workbook", path=label, code="unreadable", detail=_first_line(exc)) from None
    if expanded > max_bytes:
        raise InputError(
            f"workbook expands to {expanded / 2**20:,.0f} MB, more than the {max_bytes / 2**20:,.0f} MB allowed "
            "(CAMPAIGNS_MAX_WORKBOOK_MB); export it as CSV, or raise the limit if it is genuine",
            path=label, code="too_large",
        )  # fmt: skip


def _read_parquet(path: Path, label: str) -> RawSheet:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError("not a readable Parquet file", path=label, code="unreadable", detail=_first_line(exc)) from exc
    columns = []
    for index in range(table.num_columns):
        column = table.column(index)
        if pa.types.is_floating(column.type) or pa.types.is_temporal(column.type) or pa.types.is_nested(column.type):
            # as a person writes them (cell_text): no ".000000", no "1.0", nested values as compact JSON
            values = column.to_numpy(zero_copy_only=False) if pa.types.is_floating(column.type) else column.to_pylist()
            columns.append([cell_text(value) for value in values])
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            columns.append(column.cast(pa.string()).fill_null(""))
        else:
            try:
                columns.append(pc.cast(column, pa.string()).fill_null(""))
            except pa.ArrowException:
                columns.append([cell_text(value) for value in column.to_pylist()])
    cells = Cells(tuple(column if isinstance(column, (pa.Array, pa.ChunkedArray)) else pa.array(column, type=pa.string())
                        for column in columns), table.num_rows)  # fmt: skip
    headers = [str(name) for name in table.column_names]
    # Parquet has no header row: row N is the Nth record.
    return _finish(label, None, headers, cells, np.arange(1, table.num_rows + 1))


def _read_jsonl(path: Path, label: str, given: str | None = None) -> RawSheet:
    records: list[dict] = []
    line_numbers: list[int] = []
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    encoding = given or detect_encoding(sample)
    with path.open("r", encoding=encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                # Numbers stay exactly as written: parse_int/parse_float keep the text.
                record = json.loads(line, parse_int=JsonNumber, parse_float=JsonNumber)
            except json.JSONDecodeError as exc:
                raise InputError("not valid JSON", path=label, row=number, code="malformed", detail=exc.msg) from exc
            if not isinstance(record, dict):
                raise InputError("each line must be a JSON object", path=label, row=number, code="malformed")
            records.append(record)
            line_numbers.append(number)
    headers: list[str] = []
    for record in records:
        headers.extend(key for key in record if key not in headers)
    cells = Cells.of_texts([[cell_text(record.get(key)) for record in records] for key in headers], len(records))
    # JSON Lines has no header row: the row number is the line number.
    return _finish(label, None, headers, cells, np.asarray(line_numbers, dtype=np.int64))


class JsonNumber(str):
    """A number of a JSON Lines record, kept as the text it was written as (digits are never rounded)."""


def _compact_json(value: object) -> str:
    """Nested JSON as compact text, numbers exactly as written."""
    if isinstance(value, JsonNumber):
        return str.__str__(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(key), ensure_ascii=False)}:{_compact_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_compact_json(item) for item in value) + "]"
    if isinstance(value, (datetime, date, time)):
        return json.dumps(cell_text(value))
    return json.dumps(value, ensure_ascii=False, default=str)


def cell_text(value: object) -> str:
    """The text a person would write for one typed cell: integral numbers as their digits, booleans `true` / `false`,
    a date (or a datetime at midnight) `YYYY-MM-DD`, a datetime ISO 8601 without an empty fraction
    (`2026-01-01T09:30:00`), nested JSON as compact JSON text."""
    if value is None:
        return ""
    if isinstance(value, JsonNumber):  # 3.0 → 3; other numbers exactly as written (1E+3, 4.15555E+09 keep their text)
        integral = re.fullmatch(r"(-?\d+)\.0+", value)
        return integral.group(1) if integral else str.__str__(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value) or math.isinf(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return _compact_json(value)
    return str(value)


# ---------------------------------------------------------------- shared shaping


def _from_grid(
    grid,
    label: str,
    sheet: str | None,
    header: HeaderRule,
    *,
    first_row_number: int,
    encoding: str | None = None,
    delimiter: str | None = None,
    notes: list[str] | tuple[str, ...] = (),
    lengths: np.ndarray | None = None,
) -> RawSheet:
    """Split a pandas grid into headers (the row `header` picks), cells and row numbers. With `lengths` (each row's
    own number of fields, delimited text read record by record) rows longer than the header are malformed and set
    apart, shorter ones padded."""
    if grid.empty:
        raise InputError("file has no rows" if sheet is None else f"sheet {sheet!r} is empty", path=label, code="empty")
    grid = grid.fillna("").astype(object)
    blank = _blank_rows(grid)
    non_blank = np.flatnonzero(~blank)
    if len(non_blank) == 0:
        raise InputError("file has no rows" if sheet is None else f"sheet {sheet!r} is empty", path=label, code="empty")
    top = [(row + first_row_number, [str(value) for value in grid.iloc[row]]) for row in range(min(len(grid), header.depth()))]
    header_at = header.pick(top, label)
    if header_at is None:
        raise InputError("file has no rows" if sheet is None else f"sheet {sheet!r} is empty", path=label, code="empty")
    last = int(non_blank[-1])  # blank rows after the last data row are not rows
    body = grid.iloc[header_at + 1 : last + 1]
    rows = np.arange(header_at + 1 + first_row_number, last + 1 + first_row_number, dtype=np.int64)
    malformed: list[Malformed] = []
    width = grid.shape[1]
    if lengths is not None:
        width = int(lengths[header_at])
        own = lengths[header_at + 1 : last + 1]
        extra = body.iloc[:, width:] if grid.shape[1] > width else None
        long = (own > width) & (~_blank_rows(extra) if extra is not None else False)
        for position in np.flatnonzero(long).tolist():
            fields = [str(value) for value in body.iloc[position, : int(own[position])]]
            malformed.append(Malformed(int(rows[position]), delimiter.join(fields), len(fields), width))
        body, rows = body.iloc[~long, :width], rows[~long]
    headers = [str(value).strip() for value in grid.iloc[header_at, :width]]
    cells = Cells.of_texts([[str(value) for value in body[column]] for column in body.columns], len(body))
    return _finish(label, sheet, headers, cells, rows, encoding=encoding, delimiter=delimiter, notes=notes, malformed=malformed)


def _finish(label, sheet, headers, cells, rows, encoding=None, delimiter=None, notes=(), malformed=()) -> RawSheet:
    """Name headerless columns, drop columns that are blank from top to bottom."""
    keep, names = [], []
    for index, header in enumerate(headers):
        if not header and _blank_column(cells[index]):
            continue
        keep.append(index)
        names.append(header or f"column_{excel_column(index)}")
    return RawSheet(label, sheet, names, Cells(tuple(cells[index] for index in keep), len(cells)), rows, encoding, delimiter,
                    tuple(notes), tuple(malformed))


def _blank_column(column: pa.Array | pa.ChunkedArray) -> bool:
    return len(column) == 0 or not pc.any(pc.not_equal(pc.utf8_trim_whitespace(column.fill_null("")), "")).as_py()


def _blank_rows(grid) -> np.ndarray:
    blank = np.ones(len(grid), dtype=bool)
    for column in grid.columns:
        blank &= (grid[column].astype(str).str.strip() == "").to_numpy()
    return blank


def excel_column(index: int) -> str:
    """0 → 'a', 25 → 'z', 26 → 'aa': the letters a spreadsheet shows for a column."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("a") + remainder) + letters
    return letters


def _first_undecodable_line(path: Path, encoding: str) -> int | None:
    """The number of the first line of the file that is not text in `encoding` (None if each decodes on its own)."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                decoder.decode(line)
    except UnicodeDecodeError:
        return number
    except (OSError, LookupError):
        return None
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
