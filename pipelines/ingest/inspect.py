"""`campaigns inspect`: how the pipeline would read a file, without importing it.

Everything shown comes from the pipeline's own stages run on the file (the reader that
`import` uses, the column mapping, the normalise stage on the first rows), so what it
says is what an import would do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipelines.ingest.columns import map_columns
from pipelines.ingest.normalise import REASON_TEXT, normalise_columns
from pipelines.ingest.options import IngestOptions
from pipelines.ingest.read import JSONL_SUFFIXES, PARQUET_SUFFIXES, Cells, RawSheet, delimiter_name


@dataclass
class PreviewRow:
    row: int
    phone: str  # the cell as written (of the candidate the number came from, or whose reason is shown)
    e164: str | None
    reason: str | None
    name: str
    variables: dict[str, str]


@dataclass
class Inspection:
    file: str
    format: str
    sheet: str | None
    encoding: str | None
    delimiter: str | None
    header_row: int | None  # as the spreadsheet numbers it; None for formats without one (JSON Lines, Parquet)
    headers: list[str]
    phone_columns: list[str]  # candidates, in priority order
    name_columns: list[str]  # the name column, first + last name, or the name column then first + last (where it is empty)
    country_column: str | None
    timezone_column: str | None
    state_column: str | None  # the US state over the area code's (state calling rules)
    variables: dict[str, str]  # variable key → header
    not_variables: list[str]  # headers left out by --variables / --exclude-column
    rows: int  # data rows read (in the first batch of a file over 1M rows)
    malformed_rows: list[int]
    notes: list[str]
    region: str  # of numbers written without +code, where no country column says otherwise
    preview: list[PreviewRow] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def inspect(path: str | Path, options: IngestOptions, preview_rows: int = 5) -> Inspection:
    """Read `path` as `campaigns import` would (its first batch, for a file over a million rows) and say how."""
    from pipelines.ingest.pipeline import sheets

    sheet, _ = next(sheets([path], options))
    columns = map_columns(sheet.headers, label=sheet.source_file, phone_columns=options.phone_columns,
                          keep=options.variables, exclude=options.exclude_columns, roles=options.roles)  # fmt: skip
    used = {*columns.phones, *columns.variables.values()} | {i for i in (columns.name, columns.first_name, columns.last_name,
                                                                          columns.country, columns.timezone) if i is not None}  # fmt: skip
    names = [sheet.headers[i] for i in (columns.name, columns.first_name, columns.last_name) if i is not None]
    typed = Path(path).suffix.lower() in PARQUET_SUFFIXES | JSONL_SUFFIXES  # no header row: a record is a row
    header_row = None if typed or not len(sheet.rows) else int(sheet.rows[0]) - 1
    return Inspection(
        file=sheet.source_file, format=_format(Path(path)), sheet=sheet.sheet, encoding=sheet.encoding, delimiter=sheet.delimiter, header_row=header_row,
        headers=list(sheet.headers), phone_columns=[sheet.headers[i] for i in columns.phones], name_columns=names,
        country_column=sheet.headers[columns.country] if columns.country is not None else None,
        timezone_column=sheet.headers[columns.timezone] if columns.timezone is not None else None,
        state_column=sheet.headers[columns.state] if columns.state is not None else None,
        variables={key: sheet.headers[i] for key, i in columns.variables.items()},
        not_variables=[header for i, header in enumerate(sheet.headers) if i not in used],
        rows=len(sheet.rows), malformed_rows=[row.row for row in sheet.malformed],
        notes=[*sheet.notes, *(f"{name} names no column of {sheet.source_file}" for name in columns.unmatched), *columns.notes],
        region=options.region,
        preview=_preview(sheet, columns, options, preview_rows),
    )  # fmt: skip


def _preview(sheet: RawSheet, columns, options: IngestOptions, count: int) -> list[PreviewRow]:
    """The first rows through the normalise stage, as an import would read them."""
    count = min(count, len(sheet.rows))
    if not count:
        return []
    head = RawSheet(sheet.source_file, sheet.sheet, sheet.headers, Cells(tuple(column.slice(0, count) for column in sheet.cells.columns), count),
                    sheet.rows[:count], sheet.encoding, sheet.delimiter)  # fmt: skip
    done = normalise_columns(head, columns, options.region)
    names = done.names.to_pylist()
    variables = {key: values.to_pylist() for key, values in done.variables.items()}
    raws = done.raw.to_pylist()
    return [PreviewRow(int(head.rows[i]), str(raws[i]), f"+{done.keys[i]}" if done.keys[i] else None,
                       None if done.keys[i] else str(REASON_TEXT[done.reasons[i]]), names[i],
                       {key: values[i] for key, values in variables.items() if values[i]})
            for i in range(count)]  # fmt: skip


def render(found: Inspection) -> str:
    """The inspection as a person reads it on a terminal."""
    what = found.file + (f" (sheet {found.sheet!r})" if found.sheet else "")
    read_as = ", ".join(part for part in (found.format, found.encoding, f"delimiter {delimiter_name(found.delimiter)}" if found.delimiter else None) if part)
    lines = [what]
    rows = [
        ("read as", read_as or "typed cells"),
        ("header row", f"{found.header_row}" + (" (rows above it are not data)" if found.header_row and found.header_row > 1 else "")
         if found.header_row is not None else "none (each record is a row)"),
        ("rows", f"{found.rows:,}" + (f", and {len(found.malformed_rows)} malformed (longer than the header; an import rejects "
                 f"them as malformed_row): row {_few(found.malformed_rows)}" if found.malformed_rows else "")),
        ("phone", ", ".join(found.phone_columns) + ("  (in priority order)" if len(found.phone_columns) > 1 else "")),
        ("name", _name(found)),
        ("country", found.country_column or f"- (numbers without +code are read as {found.region} numbers: --region)"),
        ("timezone", found.timezone_column or "- (from the number)"),
        ("US state", f"{found.state_column} (over the area code's)" if found.state_column else "- (from the area code)"),
        ("variables", ", ".join(f"{key} <- {header}" if key != header else key for key, header in found.variables.items()) or "-"),
    ]  # fmt: skip
    if found.not_variables:
        rows.append(("left out", ", ".join(found.not_variables)))
    lines += [f"  {label:<12}{value}" for label, value in rows]
    lines += [f"  warning: {note}" for note in found.notes]
    if found.preview:
        lines.append(f"  first {len(found.preview)} row(s) as an import reads them:")
        width = max(len(row.phone) for row in found.preview)
        for row in found.preview:
            outcome = row.e164 or f"rejected: {row.reason}"
            variables = ", ".join(f"{key}={value}" for key, value in row.variables.items())
            lines.append(f"    row {row.row:<6} {row.phone:<{width}}  ->  {outcome:<22} {row.name}" + (f"  [{variables}]" if variables else ""))
    return "\n".join(lines)


def _name(found: Inspection) -> str:
    columns = found.name_columns
    if not columns:
        return "-"
    if len(columns) == 3 or len(columns) == 2 and columns[0] not in found.variables.values():  # a name column and parts
        return f"{columns[0]} (where it is empty: {' + '.join(columns[1:])})"
    return " + ".join(columns)


def _format(path: Path) -> str:
    from pipelines.ingest.read import EXCEL_SUFFIXES, TSV_SUFFIXES

    suffix = path.suffix.lower()
    for suffixes, name in ((TSV_SUFFIXES, "TSV"), (EXCEL_SUFFIXES, "workbook"), (PARQUET_SUFFIXES, "Parquet"), (JSONL_SUFFIXES, "JSON Lines")):
        if suffix in suffixes:
            return name
    return "CSV"


def _few(rows: list[int]) -> str:
    return ", ".join(str(row) for row in rows[:5]) + (", …" if len(rows) > 5 else "")
