"""Human-readable output for the terminal (tables on a TTY, plain text otherwise)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines.redact import redact
from schemas.contacts import ImportSummary


def import_summary(console: Console, summary: ImportSummary, *, out: Path | None = None) -> None:
    """Print the row accounting, reject reasons and batches of one import."""
    mode = "dry run, nothing submitted" if summary.dry_run else "submitted"
    console.print(f"Campaign [bold]{summary.campaign}[/bold] ({mode})", highlight=False)
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("file", "rows read", "accepted", "duplicates", "rejected", "suppressed"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for f in summary.files:
        table.add_row(f.source_file, *(str(v) for v in (f.rows_read, f.accepted, f.duplicates, f.rejected, f.suppressed)))
    if len(summary.files) > 1:
        totals = (summary.rows_read, summary.accepted, summary.duplicates, summary.rejected, summary.suppressed)
        table.add_row("total", *(str(v) for v in totals))
    console.print(table)
    if summary.reject_reasons:
        reasons = ", ".join(f"{reason} {count}" for reason, count in summary.reject_reasons.items())
        console.print(f"Rejected by reason: {reasons}", highlight=False)
    if summary.already_submitted:
        console.print(f"Already submitted to this campaign, skipped: {summary.already_submitted}", highlight=False)
    if summary.cooled_down:
        console.print(f"Called by a campaign within the cooldown, skipped: {summary.cooled_down}", highlight=False)
    sizes = ", ".join(str(b.size) for b in summary.batches) or "none"
    console.print(f"Batches: {len(summary.batches)} (sizes {sizes})", highlight=False)
    if not summary.dry_run:
        for b in summary.batches:
            console.print(f"  {b.key}  {b.size:>5}  {b.status:<14} {b.provider_batch_id or ''}", highlight=False)
    if out is not None:
        console.print(f"Wrote accepted.csv, rejected.csv, duplicates.csv and suppressed.csv to {out}", highlight=False)


def sandbox_banner(console: Console, config, host: str, port: int, *, key_from_env: bool, secret_from_env: bool) -> None:
    """Say what the sandbox accepts, so a user can point a client at it."""
    url = f"http://{host}:{port}"
    key = "(from CAMPAIGNS_SANDBOX_KEY)" if key_from_env else config.api_key.get_secret_value()
    secret = "(from CAMPAIGNS_SANDBOX_SECRET)" if secret_from_env else config.api_secret.get_secret_value()
    console.print(f"Sandbox provider on {url} — simulated calls only, nobody is called.")
    console.print(f"  magpipe:   POST {url}/functions/v1/batch-calls   Authorization: Bearer {key}")
    console.print(f"  batchcall: POST/PUT/GET {url}/batch-call        X-API-KEY: {key}  X-API-SECRET: {secret}")
    console.print(f"  caller ids: {', '.join(config.caller_ids)}")
    console.print(f"  speed x{config.speed:g}, seed {config.seed}, faults: {config.faults or 'none'}, "
                  f"state: {config.state_path or 'in memory'}")
    console.print(f"  inspect: GET {url}/_sandbox/recipients, GET {url}/_sandbox/stats, POST {url}/_sandbox/faults, "
                  f"POST {url}/_sandbox/reset")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"  warning: bound to {host}, reachable from other machines")


def sandbox_notice(console: Console, home: Path) -> None:
    """Said loudly: with no provider configured, nothing real happens."""
    console.print(
        f"[bold yellow]No provider configured: using the embedded sandbox (state in {home / 'sandbox.sqlite'}). "
        "No real calls are placed.[/bold yellow] Set --provider with its credentials to call people."
    )


class SubmitDisplay:
    """A progress bar on a terminal; plain lines otherwise; nothing with --json."""

    def __init__(self, console: Console, *, quiet: bool):
        self.console = console
        self.quiet = quiet
        self.bar = None if quiet or not console.is_terminal else Progress(
            TextColumn("submitting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
        )
        self.task = None
        self.done = 0
        self.total = 0

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def plan(self, total: int) -> None:
        self.total = total
        if self.bar:
            self.task = self.bar.add_task("submit", total=total)
        elif not self.quiet and total:
            self.console.print(f"submitting {total} batch(es)")

    def chunk_started(self, chunk) -> None:
        self.done += 1
        if self.bar:
            self.bar.advance(self.task)
        elif not self.quiet:
            self.console.print(f"started {self.done}/{self.total}: {chunk.key} ({chunk.size} contacts) as {chunk.provider_batch_id}")

    def retry(self, message: str) -> None:
        if not self.quiet:
            self.console.print(redact(message), style="dim", markup=False)


class SyncDisplay:
    """sync --wait: a bar of batches finished on a terminal; otherwise one plain line per poll; nothing with --json."""

    def __init__(self, console: Console, *, quiet: bool):
        self.console = console
        self.quiet = quiet
        self.bar = None if quiet or not console.is_terminal else Progress(
            TextColumn("syncing"), BarColumn(), MofNCompleteColumn(), TextColumn("batches finished, {task.fields[calls]}"),
            TimeElapsedColumn(), console=console, transient=True,
        )  # fmt: skip
        self.task = None

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def poll(self, report, finished: int, followed: int) -> None:
        calls = f"{report.recipients_final:,} of {report.recipients:,} calls over"
        if self.bar:
            if self.task is None:
                self.task = self.bar.add_task("sync", total=followed, calls=calls)
            self.bar.update(self.task, total=followed, completed=finished, calls=calls)
        elif not self.quiet:
            self.console.print(f"poll {report.polls}: {finished} of {followed} {plural(followed, 'batch', 'batches')} "
                               f"finished, {calls}", highlight=False)  # fmt: skip


def sync_summary(console: Console, report) -> None:
    """One line per batch read, then the totals over the whole sync."""
    for b in report.batches:
        console.print(f"{b.id}  {b.status:<10} total {b.total:>5}  completed {b.completed:>5}  failed {b.failed:>5}", highlight=False)
    if not report.batches:
        console.print("Nothing to sync: no started batch is waiting for outcomes.", highlight=False)
    else:
        console.print(
            f"Synced {len(report.batches)} {plural(len(report.batches), 'batch', 'batches')} "
            f"({report.finished} finished) in {report.polls} {plural(report.polls, 'poll', 'polls')}: "
            f"{report.recipients_final:,} of {report.recipients:,} {plural(report.recipients, 'call', 'calls')} over.",
            highlight=False,
        )  # fmt: skip
    if report.skipped_other_provider:
        console.print(f"Left {report.skipped_other_provider} started {plural(report.skipped_other_provider, 'batch', 'batches')} "
                      "of other providers alone (--provider).", highlight=False)  # fmt: skip


def plural(count: int, one: str, many: str) -> str:
    """`one` or `many`, as `count` asks: 1 batch, 2 batches."""
    return one if count == 1 else many


def summary_table(console: Console, frame) -> None:
    """campaign_summary as a readable table: one row per campaign."""
    columns = ["campaign", "rows_read", "accepted", "duplicates", "already_submitted", "rejected", "suppressed", "submitted",
               "cancelled", "completed", "failed", "skipped", "pending", "completion_rate", "estimated_dial_cost"]  # fmt: skip
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        table.add_column(column.replace("_", " "), justify="left" if column == "campaign" else "right")
    for row in frame.to_dict("records"):
        cells = []
        for column in columns:
            value = row.get(column)
            if column == "completion_rate":
                cells.append("" if value is None or value != value else f"{value:.1%}")
            elif column == "estimated_dial_cost":
                cells.append(f"${value:,.3f}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    console.print(table)
