"""The `campaigns` click group; command modules add their commands to it."""

from __future__ import annotations

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(name="campaigns", context_settings=CONTEXT, no_args_is_help=True)
def app() -> None:
    """Turn contact spreadsheets into outbound call campaigns, exactly once."""


@app.group("suppress", context_settings=CONTEXT, no_args_is_help=True)
def suppress_app() -> None:
    """The do-not-call list kept in the ledger (applies to every campaign)."""
