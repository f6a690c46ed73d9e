"""`campaigns import` and `campaigns watch`: files into a campaign, exactly once."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipelines.cli.app import app
from pipelines.cli.options import LOCATION, PROVIDER, READING, check_campaign, end_with, json_option, print_json, settings_of
from pipelines.cli.options import settings_options, stderr
from pipelines.errors import CampaignError, ExitCode, InputError, UsageError

if TYPE_CHECKING:
    from pipelines.ingest.options import IngestOptions
    from pipelines.ledger import Ledger


def _skip_sets(ledger: Ledger | None, options: IngestOptions, files: tuple[Path, ...], cooldown: float | None, *, dry_run: bool) -> dict:
    """Numbers not to call: suppression files (read as contact files are); recently called; for a dry run also the
    ledger's do-not-call list, the numbers the campaign took and every number's calls in the last 24 hours (a state's
    cap) — a real import reads those under the campaign's lock (pipelines.run.import_and_submit)."""
    suppressed: set[str] = set()
    for path in files:
        from pipelines.ingest.suppress import read_suppression

        read = read_suppression(path, options.region)
        suppressed |= read.numbers
        if read.skipped:
            stderr().print(f"warning: {path}: {sum(read.skipped.values())} row(s) hold no valid number and block nobody "
                           f"(`campaigns suppress add {path}` lists them)", markup=False)  # fmt: skip
    if ledger is None:
        return {"suppressed": suppressed, "cooled_down": (), "already_submitted": ()}
    cooled = ledger.recently_submitted(cooldown) if cooldown else ()
    if not dry_run:
        return {"suppressed": suppressed, "cooled_down": cooled}
    suppressed |= ledger.suppressed_numbers()
    calls = ledger.recent_calls() if options.rules.capped_states() else None
    return {"suppressed": suppressed, "cooled_down": cooled, "already_submitted": ledger.submitted_keys(options.campaign), "calls": calls}


def _distinct(paths: tuple[Path, ...]) -> list[Path]:
    """Each file once: a path given twice (or two names of one file) is read once, and the user is told."""
    seen, distinct = set(), []
    for path in paths:
        identity = path.resolve() if path.exists() else path
        if identity in seen:
            stderr().print(f"warning: {path} was given more than once; it is read once", markup=False)
            continue
        seen.add(identity)
        distinct.append(path)
    return distinct


def _hours_warning(options: IngestOptions) -> str:
    return (f"campaign {options.campaign}: calling window {options.hours.window_text} reaches outside 08:00-21:00 "
            "recipient time (--allow-any-hour)")  # fmt: skip


@app.command("import")
@click.argument("paths", nargs=-1, required=True, metavar="FILE...", type=click.Path(path_type=Path, readable=False))
@click.option("--campaign", required=True, help="The campaign the contacts belong to.")
@click.option("--dry-run", is_flag=True, help="Read, normalise, dedupe and chunk; submit nothing.")
@click.option("--hold", is_flag=True, help="Plan into the ledger and submit nothing: review, then `campaigns submit`.")
@json_option
@click.option("--out", type=click.Path(path_type=Path), help="Write accepted.csv, rejected.csv, duplicates.csv and suppressed.csv here.")
@click.option("--suppress", "suppress_files", multiple=True, type=click.Path(path_type=Path, readable=False), metavar="FILE",
              help="A do-not-call file (repeat), read as contact files are.")  # fmt: skip
@click.option("--cooldown", type=float, metavar="DAYS", help="Skip numbers any campaign started calling in the last DAYS days.")
@settings_options(*LOCATION, *PROVIDER, *READING)
def import_command(paths, campaign, dry_run, hold, as_json, out, suppress_files, cooldown, flags) -> None:
    """Import spreadsheets (CSV, TSV, XLSX, Parquet, JSON Lines) into a campaign and submit them (or --hold, --dry-run)."""
    from pipelines import console as show
    from pipelines.ingest.options import ingest_options
    from pipelines.providers.registry import campaign_provider

    check_campaign(campaign)
    if hold and dry_run:
        raise UsageError("--hold plans into the ledger and --dry-run changes nothing: give one of them")
    paths = _distinct(paths)
    missing = next((path for path in paths if not path.exists()), None)
    if missing is not None:  # before anything else is said or opened
        raise InputError("file not found", path=str(missing), code="not_found")
    settings = settings_of(flags)
    if cooldown is not None and cooldown < 0:
        raise UsageError("--cooldown must be a number of days ≥ 0")
    err = stderr()
    # The ledger is read if there is one (the campaign's provider, suppression, cooldown, already submitted); it is
    # created only once everything given has been checked, and a dry run changes nothing (on a fresh home it never
    # loads the ledger's code).
    with ExitStack() as stack:
        ledger = stack.enter_context(settings.open_ledger(read_only=dry_run)) if settings.ledger_exists() else None
        chosen = campaign_provider(settings, ledger, campaign)
        options = ingest_options(settings, campaign, chosen)
        skip = _skip_sets(ledger, options, suppress_files, cooldown, dry_run=dry_run)
        from pipelines.ingest import ahead

        # the files are hashed (a real import) and the first is read while the pipeline's modules load
        started = ahead.start(paths, options, hashed=not dry_run)
        stack.callback(started.cancel)  # a command that fails on does not wait for them to finish
        if dry_run:  # streamed: any number of rows in bounded memory
            from pipelines.ingest.pipeline import run
            from pipelines.ingest.sinks import CsvFiles

            if ledger is not None and ledger.stopped_at(campaign) is not None:
                err.print(f"warning: campaign {campaign} is cancelled: a real import would be refused until "
                          f"`campaigns resume --campaign {campaign}`", markup=False)  # fmt: skip
            _print_summary(run(paths, options, [CsvFiles(out)] if out is not None else [], **skip, ahead=started), as_json, out)
            return
        from pipelines.run import Hooks, import_and_submit, pending_error, refuse_if_stopped
        from pipelines.workspace import Workspace

        if ledger is not None:
            refuse_if_stopped(ledger, campaign)  # said before anything else is asked for
        if not hold:
            settings.require_credentials(chosen, creating=True)
        ledger = ledger or stack.enter_context(settings.open_ledger())
        if not options.hours.within_legal:
            err.print(f"warning: {_hours_warning(options)}")
        display = show.SubmitDisplay(err, quiet=as_json)
        hooks = Hooks(on_chunk=display.chunk_started, on_retry=display.retry, on_plan=display.plan)
        workspace = Workspace(settings, ledger, on_open=show.sandbox_notice(err, settings.home))
        with display:
            done = import_and_submit(paths, options, workspace, hooks, out=out, suppressed=skip["suppressed"],
                                     cooled_down=skip["cooled_down"], hold=hold, ahead=started)  # fmt: skip
        error = pending_error(done.report) if done.report.pending else done.report.publish_error
        if done.report.pending and done.report.publish_error is not None:
            err.print(f"campaigns: warning: {done.report.publish_error}", markup=False)
        held = 0 if hold else ledger.held_chunks(campaign)
        _print_summary(done.summary, as_json, out, pending=None if hold else done.report.pending, error=error, held=held)
        end_with(error)


@app.command("submit")
@click.option("--campaign", required=True, help="The campaign whose held and pending batches are started.")
@json_option
@settings_options(*LOCATION, *PROVIDER)
def submit_command(campaign, as_json, flags) -> None:
    """Start what `import --hold` planned (and anything left pending) for a campaign."""
    from pipelines import console as show
    from pipelines.run import Hooks, pending_error, submit_held
    from pipelines.workspace import Workspace

    check_campaign(campaign)
    settings = settings_of(flags)
    if not settings.ledger_exists():
        raise UsageError(f"no ledger in {settings.home}: nothing has been imported there (give --home or CAMPAIGNS_HOME)")
    err = stderr()
    with Workspace.open(settings, on_open=show.sandbox_notice(err, settings.home)) as workspace:
        ledger = workspace.ledger
        if not ledger.chunks(campaign):
            where = settings.home if settings.state is None else f"the ledger at {settings.ledger_label}"
            raise UsageError(f"campaign {campaign!r} has no batches in {where}: nothing has been imported into it; import its files first")
        display = show.SubmitDisplay(err, quiet=as_json)
        with display:
            report, chunks = submit_held(campaign, workspace,
                                         Hooks(on_chunk=display.chunk_started, on_retry=display.retry, on_plan=display.plan))
        keys = {c.key for c in chunks}
        submitted = [c for c in ledger.chunks(campaign) if c.key in keys]  # as they are now
    error = pending_error(report) if report.pending else report.publish_error
    if as_json:
        print_json({"campaign": campaign, "started": report.started, "pending": report.pending,
                    "batches": [{"key": c.key, "size": c.size, "status": c.state, "provider_batch_id": c.provider_batch_id}
                                for c in submitted]}, error)  # fmt: skip
    else:
        from rich.console import Console

        show.submit_summary(Console(highlight=False, soft_wrap=True), campaign, report, submitted)
    end_with(error)


@app.command("watch")
@click.argument("inbox", required=False, type=click.Path(path_type=Path), metavar="[INBOX]")
@click.option("--campaign", help="The campaign the inbox feeds (or [[watch]] entries in campaigns.toml).")
@click.option("--once", is_flag=True, help="Process what is there and exit (for cron).")
@click.option("--interval", type=float, default=60, show_default=True, help="Seconds between polls without --once.")
@click.option("--settle", type=float, default=5, show_default=True, help="A file must not change for this many seconds.")
@click.option("--pattern", default="*", show_default=True, help="Only files matching this glob.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Readable lines, or one JSON object per line.")  # fmt: skip
@settings_options(*LOCATION, *PROVIDER, *READING)
def watch_command(inbox, campaign, once, interval, settle, pattern, log_format, flags) -> None:
    """Import every new spreadsheet dropped into an inbox, exactly once; move it to processed/ or failed/."""
    from pipelines.logs import EventLog
    from pipelines.ingest.options import ingest_options
    from pipelines.ingest.states import rules_off
    from pipelines.providers.registry import campaign_provider
    from pipelines.settings import resolve
    from pipelines.watch import Inbox, run_cycle

    if settle < 0 or interval <= 0:
        raise UsageError("--settle must be ≥ 0 and --interval > 0")
    base = settings_of(flags)
    entries = [{"inbox": str(inbox), "campaign": campaign, "pattern": pattern}] if inbox else base.toml.get("watch", [])
    if not entries:
        raise UsageError("give an INBOX folder and --campaign, or [[watch]] entries in campaigns.toml")
    log = EventLog(log_format)
    with base.open_ledger() as ledger:
        inboxes = []
        for entry in entries:
            folder, name = Path(entry.get("inbox", "")), entry.get("campaign")
            if not name:
                raise UsageError(f"inbox {folder}: --campaign (or campaign = … in [[watch]]) is required")
            check_campaign(name)
            if not folder.is_dir():
                raise UsageError(f"inbox {folder} is not a folder")
            settings = resolve(flags, entry={k: v for k, v in entry.items() if k not in ("inbox", "campaign", "pattern")})
            chosen = campaign_provider(settings, ledger, name)
            if ledger.stopped_at(name) is None:  # a stopped campaign's inbox only says so, each cycle
                settings.require_credentials(chosen, creating=True)
            options = ingest_options(settings, name, chosen)
            inboxes.append(Inbox(folder, options, settings, entry.get("pattern", pattern)))
            if not options.hours.within_legal:
                log.warning("calling_hours", message=_hours_warning(options))
            if not options.rules.enabled:
                log.warning("calling_hours", message=f"campaign {name}: {rules_off(options.hours)}")
            if chosen == "sandbox":
                log.warning("sandbox", campaign=name,
                            message="no provider configured: using the embedded sandbox; no real calls are placed")  # fmt: skip
        while True:
            worst = ExitCode.OK
            for box in inboxes:
                result = run_cycle(box, ledger, log, settle_seconds=settle)
                log.info("cycle_done", campaign=box.options.campaign, inbox=str(box.folder), imported=len(result.imported),
                         already_imported=len(result.already_imported), failed=len(result.failed),
                         deferred=len(result.deferred), exit_code=int(result.exit_code))  # fmt: skip
                worst = _worse(worst, result.exit_code)
            if once:
                raise SystemExit(int(worst))
            time.sleep(interval)


def _worse(a: ExitCode, b: ExitCode) -> ExitCode:
    from pipelines.watch import SEVERITY

    return next((code for code in SEVERITY if code in (a, b)), ExitCode.OK)


def _print_summary(summary, as_json: bool, out: Path | None, pending: dict | None = None, error: CampaignError | None = None,
                   held: int = 0) -> None:  # fmt: skip
    from rich.console import Console

    from pipelines import console as show

    if as_json:
        payload = summary.model_dump(mode="json")
        if pending is not None:
            payload["pending"] = pending
        if held:
            payload["held_batches"] = held
        print_json(payload, error)
    else:
        show.import_summary(Console(highlight=False, soft_wrap=True), summary, out=out, held=held)
