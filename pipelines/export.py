"""`campaigns export`: one row per contact with its latest outcome and every spreadsheet column, for a spreadsheet or
a data tool — read from the DuckDB file (recipient_outcomes), written to a temporary name and renamed."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.errors import StorageError, UsageError
from pipelines.report import reader

# recipient_outcomes' columns, in the order a person reads them; the contact's variables follow, one column each
COLUMNS = ["campaign", "e164", "name", "status", "attempts", "timezone", "attempted_at", "attempted_local", "completed_at",
           "duration_seconds", "call_record_id", "error", "source_file", "source_sheet", "source_row", "chunk_key",
           "provider_batch_id"]  # fmt: skip


def export(db: Path, campaign: str, target: Path, fmt: str) -> tuple[Path, int]:
    """Write the campaign's contacts to `target` as CSV or Parquet; returns the path and how many rows."""
    import duckdb as relations  # noqa: F401 - attaches .sql to connections (used below)

    with reader(db) as connection:
        if not connection.execute("SELECT count(*) FROM contacts WHERE campaign = ?", [campaign]).fetchone()[0]:
            known = [name for (name,) in connection.execute("SELECT DISTINCT campaign FROM contacts ORDER BY 1").fetchall()]
            raise UsageError(f"no contacts for campaign {campaign!r} in {db}" + (f"; campaigns here: {', '.join(known[:10])}" if known else ""))
        keys: list[str] = []  # in spreadsheet order: each distinct header row's keys, as its JSON keeps them
        for (names,) in connection.execute(
                "SELECT json_keys(variables) AS names FROM contacts WHERE campaign = ? GROUP BY names "
                "ORDER BY min(source_file), min(source_row)", [campaign]).fetchall():  # fmt: skip
            keys += [key for key in names if key not in keys]
        names = [f"var_{key}" if key in COLUMNS else key for key in keys]  # a spreadsheet column named like ours
        selected = ", ".join([*COLUMNS, *(f"variables->>{_literal(key)} AS {_identifier(name)}" for key, name in zip(keys, names))])
        query = f"SELECT {selected} FROM recipient_outcomes WHERE campaign = $campaign ORDER BY source_file, source_sheet, source_row"  # noqa: S608
        table = connection.sql(query, params={"campaign": campaign}).to_arrow_table()
    return target, write_atomically(target, lambda path: _write(table, path, fmt))


def _write(table, path: Path, fmt: str) -> int:
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv

        from pipelines.ingest.output import excel_safe_array

        for index, field in enumerate(table.schema):  # text a spreadsheet would run as a formula is prefixed with '
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                column = pc.cast(table.column(index), pa.string()).combine_chunks()
                table = table.set_column(index, field.name, excel_safe_array(column))
        pcsv.write_csv(table, path)
    return table.num_rows


def write_atomically(target: Path, write) -> object:
    """`write(temporary path)` next to `target`, then renamed over it: readers see the old file or the new one, never
    half of one. A target that is not a regular file (a folder, a device) is refused; a file that cannot be written is
    one StorageError line."""
    if target.exists() and not target.is_file():
        raise UsageError(f"{target} is not a regular file: give a file path to write")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        result = write(temporary)
        os.replace(temporary, target)
        return result
    except OSError as exc:
        raise StorageError(f"cannot write {target} ({exc.strerror or exc})") from exc
    finally:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
