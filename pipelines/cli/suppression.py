"""`campaigns suppress add|remove|list`: the do-not-call list kept in the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipelines.cli.app import suppress_app
from pipelines.cli.options import LOCATION, json_option, settings_of, settings_options
from pipelines.errors import UsageError


def _suppression_inputs(values: tuple[str, ...], region: str, phone_columns: tuple[str, ...]):
    """Files and typed numbers of `suppress add/remove`, read as contact files are; a typed non-number is refused first."""
    from pipelines.ingest.suppress import numbers_from_values, read_suppression

    from pipelines.ingest.read import SUPPORTED
    from pipelines.errors import InputError

    files = [Path(v) for v in values if Path(v).is_file()]
    typed = [v for v in values if not Path(v).is_file()]
    for value in typed:  # a file name that names no file: said as such, not as "not a phone number"
        if Path(value).suffix.lower() in SUPPORTED or "/" in value:
            raise InputError("file not found", path=value, code="not_found")
    numbers, invalid = numbers_from_values(typed, region) if typed else (set(), [])
    if invalid:
        raise UsageError(f"not valid phone numbers: {', '.join(invalid)} (files must exist)")
    return [read_suppression(path, region, phone_columns) for path in files], numbers


def _suppression_report(verb: str, change: str, reads, typed: set[str], counts: list[int], typed_count: int, as_json: bool) -> None:
    """Per file: rows read, numbers found, how many were `change`d, rows skipped by reason (and the first ones); totals last."""
    from pipelines.text import plural

    done = sum(counts) + typed_count
    found = sum(len(read.numbers) for read in reads) + len(typed)
    if as_json:
        files = [read.summary() | {change: count} for read, count in zip(reads, counts)]
        print(json.dumps({change: done, "numbers": found, "files": files, "typed": len(typed)}))
        return
    for read, count in zip(reads, counts):
        skipped = sum(read.skipped.values())
        reasons = ", ".join(f"{reason} {n}" for reason, n in read.skipped.items())
        print(f"{read.source}: {read.rows_read} {plural(read.rows_read, 'row', 'rows')} read, {len(read.numbers)} "
              f"{plural(len(read.numbers), 'number', 'numbers')} ({count} {change.replace('_', ' ')}); "
              f"{skipped} {plural(skipped, 'row', 'rows')} without a valid number" + (f" ({reasons})" if reasons else ""))  # fmt: skip
        for example in read.examples:
            print(f"  row {example['row']}: {example['value']!r} is {example['reason']}")
    print(f"{done} {plural(done, 'number', 'numbers')} {verb}; {found - done} of the {found} found "
          f"{'were already on the list' if change == 'added' else 'were not on the list'}")  # fmt: skip


@suppress_app.command("add")
@click.argument("values", nargs=-1, required=True, metavar="NUMBER_OR_FILE...")
@json_option
@settings_options(*LOCATION, "region", "phone_columns")
def suppress_add(values, as_json, flags) -> None:
    """Add numbers, or every number of do-not-call files (every phone column; a country column applies), to the list."""
    settings = settings_of(flags)
    reads, typed = _suppression_inputs(values, settings.region, settings.phone_columns)
    with settings.open_ledger() as ledger:
        counts = [ledger.suppress(read.numbers, source=Path(read.source).name) for read in reads]
        typed_count = ledger.suppress(typed, source="cli") if typed else 0
    _suppression_report("added to the suppression list", "added", reads, typed, counts, typed_count, as_json)


@suppress_app.command("remove")
@click.argument("values", nargs=-1, required=True, metavar="NUMBER_OR_FILE...")
@json_option
@settings_options(*LOCATION, "region", "phone_columns")
def suppress_remove(values, as_json, flags) -> None:
    """Take numbers (or every number of files) off the suppression list."""
    settings = settings_of(flags)
    reads, typed = _suppression_inputs(values, settings.region, settings.phone_columns)
    with settings.open_ledger() as ledger:
        counts = [ledger.unsuppress(read.numbers) for read in reads]
        typed_count = ledger.unsuppress(typed) if typed else 0
    _suppression_report("removed from the suppression list", "removed", reads, typed, counts, typed_count, as_json)


@suppress_app.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array on stdout.")
@settings_options(*LOCATION)
def suppress_list(as_json, flags) -> None:
    """Show the suppression list."""
    settings = settings_of(flags)
    rows = []
    if settings.ledger_exists():
        with settings.open_ledger(read_only=True) as ledger:
            rows = [{"e164": r.e164, "source": r.source, "added_at": r.added_at.isoformat()} for r in ledger.suppressions()]
    if as_json:
        print(json.dumps(rows))
    elif not rows:
        print("the suppression list is empty")
    else:
        print(f"{'number':<16}  {'added (UTC)':<19}  source")
        for row in rows:
            print(f"{row['e164']:<16}  {row['added_at'][:19]:<19}  {row['source']}")
