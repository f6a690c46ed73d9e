"""The `campaigns` command line. Every mistake of the user's is one line on stderr and an exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console

from pipelines import console as show
from pipelines.chunk import batch_limit
from pipelines.config import IngestSettings, build
from pipelines.errors import CampaignError, ExitCode, UsageError
from pipelines.ingest import IngestOptions, ingest
from pipelines.output import write_outputs

app = typer.Typer(
    help="Turn contact spreadsheets into outbound call campaigns, exactly once.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def root() -> None:
    """Turn contact spreadsheets into outbound call campaigns, exactly once."""

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="CAMPAIGNS_HOME", help="Where the tool keeps its state [default: ./.campaigns]."),
]


@app.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="Spreadsheets: CSV, TSV, XLSX, Parquet, JSON Lines.")],
    campaign: Annotated[str, typer.Option("--campaign", help="Campaign the contacts belong to.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read, normalise, dedupe and chunk; submit nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write accepted/rejected/duplicates CSVs here.")] = None,
    home: HomeOption = None,
    region: Annotated[str, typer.Option("--region", help="Country for numbers without +code.")] = "US",
    phone_column: Annotated[str | None, typer.Option("--phone-column", help="Header of the phone column.")] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Excel sheet to read [default: the first].")] = None,
    provider: Annotated[str, typer.Option("--provider", help="sandbox, magpipe or batchcall.")] = "sandbox",
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="At most this many per batch.")] = None,
) -> None:
    """Import spreadsheets into a campaign."""
    if not campaign.strip():
        raise UsageError("--campaign must not be empty")
    if provider not in ("sandbox", "magpipe", "batchcall"):
        raise UsageError(f"--provider must be sandbox, magpipe or batchcall, not {provider!r}")
    settings = build(IngestSettings, home=home, provider=provider, region=region, batch_size=batch_size)
    if not dry_run:
        raise UsageError("submission is not available yet; use --dry-run")
    options = IngestOptions(
        campaign=campaign,
        region=settings.region,
        phone_column=phone_column,
        sheet=sheet,
        batch_size=batch_limit(settings.provider, settings.batch_size),
    )
    result = ingest(paths, options)
    if out is not None:
        write_outputs(result, out)
    summary = result.summary(dry_run=True)
    if as_json:
        print(summary.model_dump_json())
    else:
        show.import_summary(Console(), summary, out=out)


@app.command("sandbox")
def sandbox_command(
    host: Annotated[str, typer.Option("--host", help="Address to bind; loopback unless you mean it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    speed: Annotated[float, typer.Option("--speed", help="Simulated time runs this many times faster.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed for call outcomes and faults.")] = 0,
    faults: Annotated[str, typer.Option("--faults", help="e.g. 429=0.1,500=0.1,503=0.05,slow=0.05,reset=0.2")] = "",
    state: Annotated[Path | None, typer.Option("--state", help="SQLite file that keeps batches across restarts.")] = None,
    caller_id: Annotated[list[str] | None, typer.Option("--caller-id", help="Caller number to accept (repeat).")] = None,
) -> None:
    """Run the provider sandbox: both batch-call APIs over HTTP, simulated calls, injected faults."""
    from pipelines.sandbox.app import SandboxConfig
    from pipelines.sandbox.faults import FaultPlan
    from pipelines.sandbox.server import serve

    env = _sandbox_credentials()
    try:
        FaultPlan.parse(faults)
    except ValueError as exc:
        raise UsageError(f"--faults: {exc}") from None
    if speed <= 0:
        raise UsageError("--speed must be positive")
    config = SandboxConfig(
        speed=speed, seed=seed, faults=faults, state_path=state, caller_ids=tuple(caller_id or SandboxConfig().caller_ids), **env
    )
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    show.sandbox_banner(err, config, host, port, key_from_env="api_key" in env, secret_from_env="api_secret" in env)
    serve(config, host, port)


def _sandbox_credentials() -> dict:
    """The sandbox's own key and secret may be set in the environment (never on the command line)."""
    values = {}
    if os.environ.get("CAMPAIGNS_SANDBOX_KEY"):
        values["api_key"] = os.environ["CAMPAIGNS_SANDBOX_KEY"]
    if os.environ.get("CAMPAIGNS_SANDBOX_SECRET"):
        values["api_secret"] = os.environ["CAMPAIGNS_SANDBOX_SECRET"]
    return values


def main() -> None:
    """Entry point: run the app and turn every failure into one line and an exit code."""
    debug = os.environ.get("CAMPAIGNS_DEBUG") == "1"
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        code = app(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("campaigns: interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE)
    except CampaignError as exc:
        if debug:
            raise
        err.print(f"campaigns: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("campaigns: interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug of ours: still one line, traceback on request
        if debug:
            raise
        err.print(
            f"campaigns: internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            " (set CAMPAIGNS_DEBUG=1 for the traceback, and please report it)",
            markup=False,
        )
        sys.exit(ExitCode.INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)


