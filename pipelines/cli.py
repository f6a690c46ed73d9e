"""The `campaigns` command line. Every mistake of the user's is one line on stderr and an exit code."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipelines import console as show
from pipelines.providers.registry import batch_limit
from pipelines.config import (
    DEFAULT_HOME,
    IngestSettings,
    ProviderSettings,
    StateSettings,
    build,
    environment,
    load_toml,
    provider_settings,
    state_settings,
)
from pipelines.errors import CampaignError, ExitCode, UsageError
from pipelines.hours import CallingHours
from pipelines.ingest import IngestOptions
from pipelines.read import MAX_WORKBOOK_BYTES
from pipelines.ledger import Ledger
from pipelines.redact import redact
from pipelines import report
from pipelines.output import write_outputs
from pipelines.publish import publish
from pipelines.stream import stream_import
from pipelines.run import Hooks, campaign_provider, import_and_submit, pending_error, sync_ledger

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
ProviderOption = Annotated[
    str | None, typer.Option("--provider", help="sandbox, magpipe or batchcall [default: sandbox; env CAMPAIGNS_PROVIDER].")
]
CallerOption = Annotated[str | None, typer.Option("--caller-id", help="Caller number, E.164 [env CAMPAIGNS_CALLER_ID].")]
AgentOption = Annotated[str | None, typer.Option("--agent-id", help="Agent to take the calls [env CAMPAIGNS_AGENT_ID].")]
StateOption = Annotated[
    str | None, typer.Option("--state", help="Ledger as an SQLAlchemy URL [env CAMPAIGNS_STATE; default sqlite in home].")
]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="campaigns.toml [default: ./campaigns.toml].")]
RegionOption = Annotated[str | None, typer.Option("--region", help="Country for numbers without +code [default: US].")]
PhoneColumnOption = Annotated[str | None, typer.Option("--phone-column", help="Header of the phone column.")]
SheetOption = Annotated[str | None, typer.Option("--sheet", help="Excel sheet to read [default: the first].")]
BatchSizeOption = Annotated[int | None, typer.Option("--batch-size", help="At most this many per batch.")]
WindowOption = Annotated[
    str | None, typer.Option("--window", help="Local calling hours HH:MM-HH:MM [default: 08:00-21:00; env CAMPAIGNS_WINDOW].")
]
DaysOption = Annotated[str | None, typer.Option("--days", help="Calling days: mon-fri, mon,wed,fri, daily [default: daily].")]
AnyHourOption = Annotated[
    bool | None, typer.Option("--allow-any-hour", help="Accept a window outside 08:00-21:00 recipient time.", show_default=False)
]
AccountTzOption = Annotated[
    str | None, typer.Option("--account-timezone", help="The clock magpipe windows run on [default: UTC; env CAMPAIGNS_ACCOUNT_TIMEZONE].")
]
DbOption = Annotated[
    Path | None, typer.Option("--db", help="The DuckDB report file [env CAMPAIGNS_DB; default <home>/campaigns.duckdb].")
]


@dataclass(frozen=True)
class Context:
    """Settings for one command, built once from flags, environment and campaigns.toml."""

    home: Path
    toml: dict
    provider: ProviderSettings
    state: StateSettings


def _context(home: Path | None, config: Path | None, state: str | None, db: Path | None = None, **flags) -> Context:
    env = environment()
    toml = load_toml(config, home)
    home = home or Path(toml.get("home", DEFAULT_HOME))
    if flags.get("provider") not in (None, "sandbox", "magpipe", "batchcall"):
        raise UsageError(f"--provider must be sandbox, magpipe or batchcall, not {flags['provider']!r}")
    return Context(home, toml, provider_settings(flags, env, toml), state_settings(home, state, env, toml, db))


def _ledger_exists(ctx: Context) -> bool:
    return ctx.state.state_url is not None or (ctx.home / "ledger.sqlite").exists()


def _skip_sets(ledger: Ledger | None, options: IngestOptions, files: list[Path] | None, cooldown: float | None) -> dict:
    """Numbers not to call: suppression files (read as contact files are) + the ledger's list; recently called;
    already taken (dry run)."""
    from pipelines.suppress import read_suppression

    suppressed: set[str] = set()
    for path in files or []:
        read = read_suppression(path, options.region)
        suppressed |= read.numbers
        if read.skipped:
            _stderr().print(f"warning: {path}: {sum(read.skipped.values())} row(s) hold no valid number and block nobody "
                            f"(`campaigns suppress add {path}` lists them)", markup=False)  # fmt: skip
    if ledger is None:
        return {"suppressed": suppressed, "cooled_down": set(), "already_submitted": set()}
    suppressed |= ledger.suppressed_numbers()
    cooled = ledger.recently_submitted(cooldown) if cooldown else set()
    return {"suppressed": suppressed, "cooled_down": cooled, "already_submitted": ledger.submitted_numbers(options.campaign)}


suppress_app = typer.Typer(help="The do-not-call list kept in the ledger (applies to every campaign).", no_args_is_help=True)
app.add_typer(suppress_app, name="suppress")


PhoneColumnsOption = Annotated[
    list[str] | None, typer.Option("--phone-column", help="A phone column's header (repeat; order = priority).")
]


def _suppression_inputs(values: list[str], region: str, phone_columns: list[str] | None):
    """Files and typed numbers of `suppress add/remove`, read as contact files are; a typed non-number is refused first."""
    from pipelines.suppress import numbers_from_values, read_suppression

    files = [Path(v) for v in values if Path(v).is_file()]
    typed = [v for v in values if not Path(v).is_file()]
    numbers, invalid = numbers_from_values(typed, region) if typed else (set(), [])
    if invalid:
        raise UsageError(f"not valid phone numbers: {', '.join(invalid)} (files must exist)")
    return [read_suppression(path, region, phone_columns or ()) for path in files], numbers


def _suppression_report(verb: str, change: str, reads, typed: set[str], counts: list[int], typed_count: int, as_json: bool) -> None:
    """Per file: rows read, numbers found, how many were `change`d, rows skipped by reason (and the first ones); totals last."""
    done = sum(counts) + typed_count
    found = sum(len(read.numbers) for read in reads) + len(typed)
    if as_json:
        files = [read.summary() | {change: count} for read, count in zip(reads, counts)]
        print(json.dumps({change: done, "numbers": found, "files": files, "typed": len(typed)}))
        return
    for read, count in zip(reads, counts):
        skipped = sum(read.skipped.values())
        reasons = ", ".join(f"{reason} {n}" for reason, n in read.skipped.items())
        print(f"{read.source}: {read.rows_read} {show.plural(read.rows_read, 'row', 'rows')} read, {len(read.numbers)} "
              f"{show.plural(len(read.numbers), 'number', 'numbers')} ({count} {change.replace('_', ' ')}); "
              f"{skipped} {show.plural(skipped, 'row', 'rows')} without a valid number" + (f" ({reasons})" if reasons else ""))  # fmt: skip
        for example in read.examples:
            print(f"  row {example['row']}: {example['value']!r} is {example['reason']}")
    print(f"{done} {show.plural(done, 'number', 'numbers')} {verb}; {found - done} of the {found} found "
          f"{'were already on the list' if change == 'added' else 'were not on the list'}")  # fmt: skip


@suppress_app.command("add")
def suppress_add(
    numbers: Annotated[list[str], typer.Argument(metavar="NUMBER_OR_FILE", help="Numbers in any format, or files (CSV, XLSX, …) of numbers.")],
    region: RegionOption = None,
    phone_column: PhoneColumnsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    home: HomeOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Add numbers, or every number of do-not-call files (every phone column; a country column applies), to the list."""
    ctx = _context(home, config, state)
    reads, typed = _suppression_inputs(numbers, _region(ctx, region), phone_column)
    with Ledger(ctx.state.ledger_url) as ledger:
        counts = [ledger.suppress(read.numbers, source=Path(read.source).name) for read in reads]
        typed_count = ledger.suppress(typed, source="cli") if typed else 0
    _suppression_report("added to the suppression list", "added", reads, typed, counts, typed_count, as_json)


@suppress_app.command("remove")
def suppress_remove(
    numbers: Annotated[list[str], typer.Argument(metavar="NUMBER_OR_FILE", help="Numbers in any format, or files of numbers.")],
    region: RegionOption = None,
    phone_column: PhoneColumnsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    home: HomeOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Take numbers (or every number of files) off the suppression list."""
    ctx = _context(home, config, state)
    reads, typed = _suppression_inputs(numbers, _region(ctx, region), phone_column)
    with Ledger(ctx.state.ledger_url) as ledger:
        counts = [ledger.unsuppress(read.numbers) for read in reads]
        typed_count = ledger.unsuppress(typed) if typed else 0
    _suppression_report("removed from the suppression list", "removed", reads, typed, counts, typed_count, as_json)


@suppress_app.command("list")
def suppress_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array on stdout.")] = False,
    home: HomeOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Show the suppression list."""
    ctx = _context(home, config, state)
    if not _ledger_exists(ctx):
        rows = []
    else:
        with Ledger(ctx.state.ledger_url, read_only=True) as ledger:
            rows = [{"e164": r.e164, "source": r.source, "added_at": r.added_at.isoformat()} for r in ledger.suppressions()]
    if as_json:
        print(json.dumps(rows))
    elif not rows:
        print("the suppression list is empty")
    else:
        print(f"{'number':<16}  {'added (UTC)':<19}  source")
        for row in rows:
            print(f"{row['e164']:<16}  {row['added_at'][:19]:<19}  {row['source']}")


def _ingest_options(
    ctx: Context, campaign: str, *, provider: str, region, batch_size, phone_column, sheet, window=None, days=None,
    allow_any_hour=None,
) -> IngestOptions:  # fmt: skip
    """How to read and cut files for one campaign: flags (or a [[watch]] entry) over the environment and campaigns.toml."""
    settings = build(
        IngestSettings, home=ctx.home, region=_first(region, ctx.toml.get("region")),
        batch_size=_first(batch_size, ctx.toml.get("batch_size")),
    )  # fmt: skip
    env = environment()
    hours = CallingHours.parse(
        _first(window, env.get("CAMPAIGNS_WINDOW") or None, ctx.toml.get("window")),
        _first(days, env.get("CAMPAIGNS_DAYS") or None, ctx.toml.get("days")),
    )
    any_hour = _first(allow_any_hour, _truthy(env.get("CAMPAIGNS_ALLOW_ANY_HOUR")), ctx.toml.get("allow_any_hour"))
    hours.check(bool(any_hour))
    return IngestOptions(
        campaign=campaign, region=settings.region, phone_column=phone_column, sheet=sheet,
        batch_size=batch_limit(provider, settings.batch_size), hours=hours,
        max_workbook_bytes=_megabytes(env.get("CAMPAIGNS_MAX_WORKBOOK_MB") or ctx.toml.get("max_workbook_mb"), MAX_WORKBOOK_BYTES),
    )  # fmt: skip


def _megabytes(value, default: int) -> int:
    """A size limit given in MB (environment or campaigns.toml), as bytes."""
    if value is None:
        return default
    try:
        megabytes = float(value)
    except (TypeError, ValueError):
        megabytes = -1
    if megabytes <= 0:
        raise UsageError(f"CAMPAIGNS_MAX_WORKBOOK_MB must be a positive number of megabytes, not {value!r}")
    return int(megabytes * 2**20)


def _check_campaign(name: str) -> str:
    """A campaign name is one line of printable text (it appears in batch names, logs and reports)."""
    if not name.strip():
        raise UsageError("--campaign must not be empty")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in name):
        raise UsageError("--campaign must not contain control characters (line breaks, tabs, …)")
    return name


def _distinct(paths: list[Path]) -> list[Path]:
    """Each file once: a path given twice (or two names of one file) is read once, and the user is told."""
    seen, distinct = set(), []
    for path in paths:
        identity = path.resolve() if path.exists() else path
        if identity in seen:
            _stderr().print(f"warning: {path} was given more than once; it is read once", markup=False)
            continue
        seen.add(identity)
        distinct.append(path)
    return distinct


def _hours_warning(options: IngestOptions) -> str:
    return f"campaign {options.campaign}: calling window {options.hours.window_text} reaches outside 08:00-21:00 recipient time (--allow-any-hour)"


def _truthy(value: str | None) -> bool | None:
    if not value:
        return None
    return value.strip().casefold() in ("1", "true", "yes", "on")


def _region(ctx: Context, region: str | None) -> str:
    """The default region: the flag, else campaigns.toml, else US; validated."""
    return build(IngestSettings, region=_first(region, ctx.toml.get("region"))).region


def _first(*values):
    """The first value that was given at all (0 and "" count as given)."""
    return next((v for v in values if v is not None), None)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@app.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(metavar="FILE", readable=False, help="Spreadsheets: CSV, TSV, XLSX, Parquet, JSON Lines.")],
    campaign: Annotated[str, typer.Option("--campaign", help="Campaign the contacts belong to.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read, normalise, dedupe and chunk; submit nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write accepted.csv, rejected.csv, duplicates.csv and suppressed.csv here.")] = None,
    home: HomeOption = None,
    region: RegionOption = None,
    phone_column: PhoneColumnOption = None,
    sheet: SheetOption = None,
    provider: ProviderOption = None,
    batch_size: BatchSizeOption = None,
    caller_id: CallerOption = None,
    agent_id: AgentOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
    db: DbOption = None,
    suppress: Annotated[list[Path] | None, typer.Option("--suppress", readable=False, help="Do-not-call file (repeat); numbers in any format.")] = None,
    cooldown: Annotated[float | None, typer.Option("--cooldown", help="Skip numbers any campaign called in the last DAYS.")] = None,
    window: WindowOption = None,
    days: DaysOption = None,
    allow_any_hour: AnyHourOption = None,
    account_timezone: AccountTzOption = None,
) -> None:
    """Import spreadsheets into a campaign and submit them (or --dry-run)."""
    _check_campaign(campaign)
    paths = _distinct(paths)
    ctx = _context(
        home, config, state, db, provider=provider, caller_id=caller_id, agent_id=agent_id, account_timezone=account_timezone
    )  # fmt: skip
    if cooldown is not None and cooldown < 0:
        raise UsageError("--cooldown must be a number of days ≥ 0")
    err = _stderr()
    # The ledger is read if there is one (the campaign's provider, suppression, cooldown, already submitted); it is
    # created only once everything given has been checked, and a dry run changes nothing.
    with ExitStack() as stack:
        ledger = stack.enter_context(Ledger(ctx.state.ledger_url, read_only=dry_run)) if _ledger_exists(ctx) else None
        chosen = campaign_provider(ctx.provider, ledger, campaign)
        options = _ingest_options(
            ctx, campaign, provider=chosen, region=region, batch_size=batch_size, phone_column=phone_column, sheet=sheet,
            window=window, days=days, allow_any_hour=allow_any_hour,
        )  # fmt: skip
        skip = _skip_sets(ledger, options, suppress, cooldown)
        if dry_run:  # streamed: any number of rows in bounded memory
            _print_summary(stream_import(paths, options, out, **skip), as_json, out)
            return
        ctx.provider.require_credentials(chosen, creating=True)
        ledger = ledger or stack.enter_context(Ledger(ctx.state.ledger_url))
        if chosen == "sandbox":
            show.sandbox_notice(err, ctx.home)
        if not options.hours.within_legal:
            err.print(f"warning: {_hours_warning(options)}")
        display = show.SubmitDisplay(err, quiet=as_json)
        hooks = Hooks(on_chunk=display.chunk_started, on_retry=display.retry, on_plan=display.plan)
        with display:
            run = import_and_submit(
                paths, options, ctx.provider, ledger, ctx.home, hooks, db=ctx.state.db_path,
                suppressed=skip["suppressed"], cooled_down=skip["cooled_down"],
            )  # fmt: skip
        if out is not None:
            write_outputs(run.result, out)
        error = pending_error(run.report) if run.report.pending else run.report.publish_error
        if run.report.pending and run.report.publish_error is not None:
            err.print(f"campaigns: warning: {run.report.publish_error}", markup=False)
        _print_summary(run.summary, as_json, out, pending=run.report.pending, error=error)
        _raise(error)


@app.command("sync")
def sync_command(
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign [default: all].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    wait: Annotated[float, typer.Option("--wait", help="Keep syncing until every batch finished, up to this many seconds.")] = 0,
    home: HomeOption = None,
    provider: ProviderOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Read every started, unfinished batch and its recipients into the ledger and DuckDB, each from the provider it
    was submitted to (--provider: only that provider's)."""
    if wait < 0:
        raise UsageError("--wait must be a number of seconds ≥ 0")
    ctx = _context(home, config, state, db, provider=provider)
    if not _ledger_exists(ctx):
        raise UsageError(f"no ledger in {ctx.home}: nothing has been imported there")
    with Ledger(ctx.state.ledger_url) as ledger, show.SyncDisplay(_stderr(), quiet=as_json or not wait) as display:
        report = sync_ledger(ctx.provider, ledger, ctx.home, campaign, wait_seconds=wait, db=ctx.state.db_path, on_poll=display.poll)
    payload = {
        "batches": [b.model_dump(mode="json") for b in report.batches],
        "finished": report.finished,
        "recipients": report.recipients,
        "recipients_final": report.recipients_final,
        "polls": report.polls,
        "skipped_other_provider": report.skipped_other_provider,
    }
    if as_json:
        _print_json(payload, report.publish_error)
    else:
        show.sync_summary(Console(highlight=False), report)
    _raise(report.publish_error)


CampaignRequired = Annotated[str, typer.Option("--campaign", help="The campaign to act on.")]
DryRunControl = Annotated[bool, typer.Option("--dry-run", help="Read the provider and say what would be done; change nothing.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _control_context(home, config, state, db, provider, account_timezone=None) -> Context:
    ctx = _context(home, config, state, db, provider=provider, account_timezone=account_timezone)
    if not _ledger_exists(ctx):
        raise UsageError(f"no ledger in {ctx.home}: nothing has been imported there")
    return ctx


def _print_control(verb: str, result, as_json: bool, dry_run: bool, extra: dict | None = None) -> None:
    """What a control command did (or, with --dry-run, would do); then it ends with its error, if any."""
    error = _control_error(result, verb)
    outcome = result.outcome
    payload = {"dry_run": dry_run, "done": outcome.done, "not_done": outcome.not_done, "already_over": outcome.over,
               "submitted": result.submitted, "pending": result.pending, **(extra or {})}  # fmt: skip
    if as_json:
        _print_json(payload, error)
        _raise(error)
        return
    out = Console(highlight=False, soft_wrap=True)
    count = lambda n: f"{n} {show.plural(n, 'batch', 'batches')}"  # noqa: E731
    out.print(f"{count(len(outcome.done))} {'would be ' if dry_run else ''}{verb}" + (":" if outcome.done else ""))
    for row in outcome.done:
        out.print(f"  {row['chunk_key']}  {row['provider_batch_id'] or '-'}  {row['action']}")
    if outcome.not_done:
        out.print(f"{count(len(outcome.not_done))} could not be {verb}:")
        for row in outcome.not_done:
            out.print(f"  {row['chunk_key']}  {row['provider_batch_id'] or '-'}  {row['reason']}")
    if outcome.over:
        states = ", ".join(f"{state} {n}" for state, n in sorted(Counter(row["state"] for row in outcome.over).items()))
        out.print(f"{count(len(outcome.over))} already over ({states})")
    for key, value in (extra or {}).items():
        text = ", ".join(f"{k} {v}" for k, v in value.items()) or "none" if isinstance(value, dict) else value
        out.print(f"{key.replace('_', ' ')}: {text}")
    if result.submitted:
        out.print(f"{count(len(result.submitted))} submitted")
    _raise(error)


def _control_error(result, verb: str) -> CampaignError | None:
    from pipelines.errors import SubmissionPending
    from pipelines.submit import SubmitReport

    if result.pending:
        return pending_error(SubmitReport(pending=result.pending, unreachable=result.unreachable))
    if result.outcome.not_done:
        return SubmissionPending(f"{len(result.outcome.not_done)} batch(es) could not be {verb} (listed above)")
    return result.publish_error


@app.command("cancel")
def cancel_command(
    campaign: CampaignRequired,
    dry_run: DryRunControl = False,
    as_json: JsonOption = False,
    home: HomeOption = None,
    provider: ProviderOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Stop every batch of a campaign that has not finished: nothing more is dialled that can be stopped."""
    from pipelines.control import cancel_campaign

    ctx = _control_context(home, config, state, db, provider)
    with Ledger(ctx.state.ledger_url) as ledger:
        result = cancel_campaign(campaign, ctx.provider, ledger, ctx.home, ctx.state.db_path, dry_run=dry_run)
    _print_control("stopped", result, as_json, dry_run)


@app.command("resume")
def resume_command(
    campaign: CampaignRequired,
    as_json: JsonOption = False,
    home: HomeOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Let a cancelled campaign take contacts again (imports, watch, retry); cancelled batches stay cancelled."""
    ctx = _control_context(home, config, state, None, None)
    with Ledger(ctx.state.ledger_url) as ledger:
        if not ledger.chunks(campaign):
            raise UsageError(f"campaign {campaign!r} has no batches in the ledger")
        resumed = ledger.resume_campaign(campaign)
    if as_json:
        _print_json({"campaign": campaign, "resumed": resumed})
    elif resumed:
        print(f"campaign {campaign} takes contacts again; its cancelled batches stay cancelled "
              f"(`campaigns retry --campaign {campaign} --statuses skipped` calls their people)")  # fmt: skip
    else:
        print(f"campaign {campaign} was not stopped; nothing to do")


@app.command("reschedule")
def reschedule_command(
    campaign: CampaignRequired,
    at: Annotated[str, typer.Option("--at", help="New start, ISO-8601 with offset: 2026-11-25T09:00-05:00.")],
    dry_run: DryRunControl = False,
    as_json: JsonOption = False,
    home: HomeOption = None,
    provider: ProviderOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
    db: DbOption = None,
    account_timezone: AccountTzOption = None,
) -> None:
    """Move the batches of a campaign that have not started to a new start time (calling hours still apply)."""
    from pipelines.control import parse_moment, reschedule_campaign

    moment = parse_moment(at)
    ctx = _control_context(home, config, state, db, provider, account_timezone)
    with Ledger(ctx.state.ledger_url) as ledger:
        result = reschedule_campaign(campaign, moment, ctx.provider, ledger, ctx.home, ctx.state.db_path, dry_run=dry_run)
    _print_control("moved", result, as_json, dry_run)


@app.command("retry")
def retry_command(
    campaign: CampaignRequired,
    statuses: Annotated[str | None, typer.Option("--statuses", help="Latest outcomes to call again [default: busy,no_answer,failed].")] = None,
    max_attempts: Annotated[int | None, typer.Option("--max-attempts", help="Calls per person, the first included [default: 3].")] = None,
    min_gap: Annotated[float | None, typer.Option("--min-gap", help="Hours since the last call ended [default: 1].")] = None,
    dry_run: DryRunControl = False,
    as_json: JsonOption = False,
    batch_size: BatchSizeOption = None,
    home: HomeOption = None,
    provider: ProviderOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
    db: DbOption = None,
    account_timezone: AccountTzOption = None,
) -> None:
    """Sync, then call again exactly the people whose last call did not connect (never anyone twice)."""
    from pipelines.control import RetryRules, retry_campaign

    rules = RetryRules.parse(statuses, max_attempts, min_gap)
    ctx = _control_context(home, config, state, db, provider, account_timezone)
    size = _first(batch_size, ctx.toml.get("batch_size"))
    if size is not None and size < 1:
        raise UsageError("--batch-size must be at least 1")
    with Ledger(ctx.state.ledger_url) as ledger:
        result = retry_campaign(campaign, rules, ctx.provider, ledger, ctx.home, ctx.state.db_path, batch_size=size, dry_run=dry_run)
    extra = {"retried_contacts": result.planned, "not_retried": result.skipped}
    _print_control("planned for a retry", result, as_json, dry_run, extra)


@app.command("report")
def report_command(
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign [default: all].")] = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    home: HomeOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Print campaign_summary from the DuckDB file: a table on a terminal, or CSV / JSON."""
    if output not in ("table", "csv", "json"):
        raise UsageError(f"--format must be table, csv or json, not {output!r}")
    ctx = _context(home, config, None, db)
    frame = report.summary(ctx.state.db_path, campaign)
    behind = report.staleness(ctx.state.ledger_url if _ledger_exists(ctx) else None, ctx.state.db_path)
    if behind:
        _stderr().print(f"warning: {behind}", markup=False)
    if campaign is not None and frame.empty:
        raise UsageError(f"no campaign named {campaign!r} in {ctx.state.db_path}")
    if output == "csv":
        import pandas as pd

        from pipelines.output import excel_safe

        text = [c for c in frame.columns if frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype)]
        sys.stdout.write(frame.assign(**{c: excel_safe(frame[c]) for c in text}).to_csv(index=False))
    elif output == "json":
        print(frame.to_json(orient="records", date_format="iso"))
    else:
        out = Console(highlight=False)
        show.summary_table(out if out.is_terminal else Console(highlight=False, width=240), frame)


@app.command("publish")
def publish_command(
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign [default: all].")] = None,
    home: HomeOption = None,
    db: DbOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Rewrite the DuckDB file from the ledger (import and sync do this themselves; this repairs)."""
    ctx = _context(home, config, state, db)
    with Ledger(ctx.state.ledger_url) as ledger:
        publish(ledger, ctx.state.db_path, [campaign] if campaign else None, rebuild=campaign is None)
    _stderr().print(f"published {ctx.state.db_path}")


@app.command("watch")
def watch_command(
    inbox: Annotated[Path | None, typer.Argument(metavar="INBOX", help="Folder to watch [default: the [[watch]] entries of campaigns.toml].")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Campaign the inbox feeds.")] = None,
    once: Annotated[bool, typer.Option("--once", help="Process what is there and exit (for cron).")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls without --once.")] = 60,
    settle: Annotated[float, typer.Option("--settle", help="A file must not change for this many seconds.")] = 5,
    pattern: Annotated[str, typer.Option("--pattern", help="Only files matching this glob.")] = "*",
    log_format: Annotated[str, typer.Option("--log-format", help="text or json (one object per line).")] = "text",
    home: HomeOption = None,
    region: RegionOption = None,
    phone_column: PhoneColumnOption = None,
    sheet: SheetOption = None,
    provider: ProviderOption = None,
    batch_size: BatchSizeOption = None,
    caller_id: CallerOption = None,
    agent_id: AgentOption = None,
    state: StateOption = None,
    config: ConfigOption = None,
    db: DbOption = None,
    window: WindowOption = None,
    days: DaysOption = None,
    allow_any_hour: AnyHourOption = None,
    account_timezone: AccountTzOption = None,
) -> None:
    """Import every new spreadsheet dropped into an inbox, exactly once; move it to processed/ or failed/."""
    from pipelines.logs import EventLog
    from pipelines.watch import Inbox, run_cycle

    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format must be text or json, not {log_format!r}")
    if settle < 0 or interval <= 0:
        raise UsageError("--settle must be ≥ 0 and --interval > 0")
    ctx = _context(
        home, config, state, db, provider=provider, caller_id=caller_id, agent_id=agent_id, account_timezone=account_timezone
    )  # fmt: skip
    entries = [{"inbox": inbox, "campaign": campaign, "pattern": pattern}] if inbox else ctx.toml.get("watch", [])
    if not entries:
        raise UsageError("give an INBOX folder and --campaign, or [[watch]] entries in campaigns.toml")
    log = EventLog(log_format)
    with Ledger(ctx.state.ledger_url) as ledger:
        inboxes = []
        for entry in entries:  # flags given on the command line beat an entry's own settings
            folder, name = Path(entry.get("inbox", "")), entry.get("campaign")
            if not name:
                raise UsageError(f"inbox {folder}: --campaign (or campaign = … in [[watch]]) is required")
            _check_campaign(name)
            if not folder.is_dir():
                raise UsageError(f"inbox {folder} is not a folder")
            chosen = campaign_provider(ctx.provider, ledger, name)
            ctx.provider.require_credentials(chosen, creating=True)
            options = _ingest_options(
                ctx, name, provider=chosen, region=_first(region, entry.get("region")),
                batch_size=_first(batch_size, entry.get("batch_size")), phone_column=_first(phone_column, entry.get("phone_column")),
                sheet=_first(sheet, entry.get("sheet")), window=_first(window, entry.get("window")),
                days=_first(days, entry.get("days")), allow_any_hour=_first(allow_any_hour, entry.get("allow_any_hour")),
            )  # fmt: skip
            inboxes.append(Inbox(folder, options, entry.get("pattern", pattern)))
            if not options.hours.within_legal:
                log.warning("calling_hours", message=_hours_warning(options))
            if chosen == "sandbox":
                log.warning("sandbox", campaign=name,
                            message="no provider configured: using the embedded sandbox; no real calls are placed")  # fmt: skip
        while True:
            worst = ExitCode.OK
            for box in inboxes:
                result = run_cycle(box, ctx.provider, ledger, ctx.home, ctx.state.db_path, log, settle_seconds=settle)
                log.info("cycle_done", campaign=box.options.campaign, inbox=str(box.folder), imported=len(result.imported),
                         already_imported=len(result.already_imported), failed=len(result.failed),
                         deferred=len(result.deferred), exit_code=int(result.exit_code))  # fmt: skip
                worst = _worse(worst, result.exit_code)
            if once:
                raise typer.Exit(int(worst))
            time.sleep(interval)


def _worse(a: ExitCode, b: ExitCode) -> ExitCode:
    from pipelines.watch import SEVERITY

    return next((code for code in SEVERITY if code in (a, b)), ExitCode.OK)


def _print_summary(summary, as_json: bool, out: Path | None, pending: dict | None = None, error: CampaignError | None = None) -> None:
    if as_json:
        payload = summary.model_dump(mode="json")
        if pending is not None:
            payload["pending"] = pending
        _print_json(payload, error)
    else:
        show.import_summary(Console(highlight=False), summary, out=out)


def _print_json(payload: dict, error: CampaignError | None = None) -> None:
    """The one JSON object a command prints; a command that ends in an error says so in it (`error`, `exit_code`)."""
    if error is not None:
        payload = {**payload, "error": redact(str(error)), "exit_code": int(error.exit_code)}
        error.reported = True
    print(json.dumps(payload))


def _raise(error: CampaignError | None) -> None:
    """End the command with its error, if it has one (after its output was printed)."""
    if error is not None:
        raise error


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
    from pipelines.config import credential

    values = {}
    for field, variable in (("api_key", "CAMPAIGNS_SANDBOX_KEY"), ("api_secret", "CAMPAIGNS_SANDBOX_SECRET")):
        if os.environ.get(variable):
            try:
                values[field] = credential(variable, os.environ[variable])
            except ValueError as exc:
                raise UsageError(str(exc)) from None
    return values


STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG}


def _traceback(exc: BaseException) -> None:
    """CAMPAIGNS_DEBUG=1: the traceback, secrets redacted like every other text the tool prints."""
    import traceback

    sys.stderr.write(redact("".join(traceback.format_exception(exc))))


def main() -> None:
    """Entry point: run the app and turn every failure into one line and an exit code.

    Usage mistakes (typer's own exceptions: typer vendors its click, so they are caught as
    typer.TyperException) exit 2 with click's message; our errors exit with their code;
    anything else is a bug (exit 1). With --json an error is also one JSON object on stdout.
    """
    debug = os.environ.get("CAMPAIGNS_DEBUG") == "1"
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    as_json = "--json" in sys.argv[1:]

    def fail(message: str, code: int, reported: bool = False) -> None:
        if as_json and not reported:  # a command that printed its result put the error in it
            print(json.dumps({"error": message, "exit_code": int(code)}))
        sys.exit(code)

    try:
        code = app(standalone_mode=False, prog_name="campaigns")
    except typer.Exit as exc:  # e.g. the exit code of `watch --once`
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("campaigns: interrupted")
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (`| head`): nothing to say, and nobody to say it to
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except typer.TyperException as exc:  # a usage mistake: click's own "Usage: … Error: …"
        exc.show()
        fail(redact(exc.format_message()), ExitCode.USAGE)
    except CampaignError as exc:
        if debug:
            _traceback(exc)
        message = redact(str(exc))
        err.print(f"campaigns: error: {message}", markup=False)
        fail(message, exc.exit_code, getattr(exc, "reported", False))
    except Exception as exc:  # a bug of ours: still one line, traceback on request
        if debug:
            _traceback(exc)
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:  # a local file the system refused to write
            where = f" {exc.filename}" if exc.filename else ""
            message = f"cannot write{where}: {exc.strerror}; free space or fix permissions, then run again"
            err.print(f"campaigns: error: {message}", markup=False)
            fail(message, ExitCode.STORAGE)
        message = f"internal error: {type(exc).__name__}: {redact(str(exc).splitlines()[0]) if str(exc) else ''}"
        err.print(f"campaigns: {message} (set CAMPAIGNS_DEBUG=1 for the traceback, and please report it)", markup=False)
        fail(message, ExitCode.INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)
