"""`campaigns report` and `campaigns publish`: the analysts' DuckDB file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipelines.cli.app import app
from pipelines.cli.options import require_ledger, settings_of, settings_options, stderr
from pipelines.errors import UsageError


@app.command("report")
@click.option("--campaign", help="Only this campaign [default: all].")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="A readable table, CSV, or JSON (numbers as numbers).")  # fmt: skip
@click.option("--html", "page", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a self-contained HTML page with charts to this file (opens with no network) and print its path.")  # fmt: skip
@click.option("--by", metavar="COLUMN", help="With --html: also chart outcomes by this spreadsheet column.")
@settings_options("home", "db", "config", "state")
def report_command(campaign, output, page, by, flags) -> None:
    """Print campaign_summary from the DuckDB file: a table on a terminal, or CSV / JSON; or write an HTML page."""
    from pipelines import report

    if by is not None and page is None:
        raise click.UsageError("--by charts a column on the HTML page: give --html FILE too")
    if campaign is not None and not campaign.strip():
        raise click.UsageError("--campaign needs a name (leave it out for every campaign)")
    settings = settings_of(flags)
    rows, state = report.summary_rows(settings.db_path, campaign)
    behind = report.staleness(settings.ledger_url if settings.ledger_exists() else None, settings.db_path, state)
    if behind:
        stderr().print(f"warning: {behind}", markup=False)
    if campaign is not None and not rows:
        known = [row["campaign"] for row in report.summary_rows(settings.db_path)[0]]
        raise UsageError(f"no campaign named {campaign!r} in {settings.db_path}"
                         + (f"; campaigns here: {', '.join(known[:10])}" if known else ""))  # fmt: skip
    if page is not None:
        from pipelines import htmlreport

        print(htmlreport.write(settings.db_path, page, campaign, by).resolve())
        return
    if output == "csv":
        _write_csv(rows)
    elif output == "json":
        print(json.dumps(rows, default=str))
    else:
        import os
        import sys

        width = os.get_terminal_size().columns if sys.stdout.isatty() else None
        print("\n".join(report.summary_lines(rows, width)))


def _write_csv(rows: list[dict]) -> None:
    """campaign_summary as CSV on stdout; text Excel would run as a formula is prefixed with '."""
    import csv

    import pyarrow as pa

    from pipelines.ingest.output import excel_safe_array

    if not rows:
        return
    names = list(rows[0])
    text = [name for name in names if any(isinstance(row[name], str) for row in rows)]
    safe = {name: excel_safe_array(pa.array([row[name] or "" for row in rows], type=pa.string())).to_pylist() for name in text}
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(names)
    for index, row in enumerate(rows):
        writer.writerow([safe[name][index] if name in safe else row[name] for name in names])


@app.command("export")
@click.option("--campaign", required=True, help="The campaign whose contacts to export.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True,
              help="CSV for spreadsheets; Parquet keeps the types (timestamps, numbers).")  # fmt: skip
@click.option("--out", "target", type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write [default: ./<campaign>-outcomes.csv or .parquet].")  # fmt: skip
@settings_options("home", "db", "config", "state")
def export_command(campaign, fmt, target, flags) -> None:
    """Write one row per contact: its latest outcome, attempts, time zone and every spreadsheet column; prints the path."""
    from pipelines import report
    from pipelines.export import export

    settings = settings_of(flags)
    behind = report.staleness(settings.ledger_url if settings.ledger_exists() else None, settings.db_path)
    if behind:
        stderr().print(f"warning: {behind}", markup=False)
    target = target or Path(f"{campaign}-outcomes.{fmt}")
    if target.suffix.lower() in (".csv", ".parquet", ".pq") and target.suffix.lower().lstrip(".") not in (fmt, "pq" if fmt == "parquet" else fmt):
        stderr().print(f"warning: writing {fmt} into {target.name} (its name says otherwise)", markup=False)
    path, rows = export(settings.db_path, campaign, target, fmt)
    stderr().print(f"Exported {rows:,} contacts of campaign {campaign!r}.", markup=False)
    print(path.resolve())


@app.command("publish")
@click.option("--campaign", help="Re-write only this campaign's rows [default: rebuild the whole file].")
@settings_options("home", "db", "config", "state")
def publish_command(campaign, flags) -> None:
    """Bring the DuckDB file up to date from the ledger, or rebuild it (import and sync publish themselves; this repairs)."""
    from pipelines.publish import publish

    settings = settings_of(flags)
    require_ledger(settings)  # publishing an empty home would only make an empty ledger and report
    with settings.open_ledger() as ledger:
        if not ledger.campaigns():  # a database URL is a ledger before anything is imported into it
            raise UsageError(f"no campaign in the ledger at {settings.ledger_label}: nothing has been imported there")
        publish(ledger, settings.db_path, [campaign] if campaign else None, rebuild=campaign is None)
    stderr().print(f"published {settings.db_path}")
