"""`campaigns inspect`: how an import would read files, shown before anything is imported."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.cli.app import app
from pipelines.cli.options import READING, json_option, print_json, settings_of, settings_options
from pipelines.errors import InputError


@app.command("inspect")
@click.argument("paths", nargs=-1, required=True, metavar="FILE...", type=click.Path(path_type=Path, readable=False))
@click.option("--rows", "preview_rows", type=click.IntRange(0, 1000), default=5, show_default=True, metavar="N",
              help="How many of the first rows to show as they would be read.")  # fmt: skip
@json_option
@settings_options("home", "config", *READING)
def inspect_command(paths, preview_rows, as_json, flags) -> None:
    """Show how `import` would read FILE: the header row found, which columns become phone candidates (in priority
    order), name, country, timezone and variables, the encoding and delimiter, and the first rows as read. Nothing is
    imported."""
    from pipelines.ingest.inspect import inspect, render
    from pipelines.ingest.options import ingest_options

    missing = next((path for path in paths if not path.exists()), None)
    if missing is not None:
        raise InputError("file not found", path=str(missing), code="not_found")
    settings = settings_of(flags)
    options = ingest_options(settings, "inspect", settings.provider or "sandbox")
    found = [inspect(path, options, preview_rows) for path in paths]
    if as_json:
        print_json({"files": [one.as_dict() for one in found]})
        return
    click.echo("\n\n".join(render(one) for one in found))
