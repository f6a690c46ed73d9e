"""Human-readable output for the terminal (tables on a TTY, plain text otherwise)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.providers.registry import DEFAULT_PROVIDER
from pipelines.redact import redact
from pipelines.text import aligned, plural

if TYPE_CHECKING:
    from schemas.contacts import ImportSummary


def import_summary(console: Console, summary: ImportSummary, *, out: Path | None = None, held: int = 0) -> None:
    """Print the row accounting, reject reasons and batches of one import, as plain aligned lines (`held`: the
    campaign's batches still held by an earlier import --hold)."""
    if summary.dry_run:
        mode = "dry run, nothing submitted"
    elif summary.held:
        mode = "held for review, nothing submitted"
    else:
        mode = "submitted" if summary.batches else "nothing new to submit"
    lines = [f"Campaign {summary.campaign} ({mode})"]
    header = ["file", "rows read", "accepted", "duplicates", "rejected", "suppressed"]
    rows = [[f.source_file, f.rows_read, f.accepted, f.duplicates, f.rejected, f.suppressed] for f in summary.files]
    if len(summary.files) > 1:
        rows.append(["total", summary.rows_read, summary.accepted, summary.duplicates, summary.rejected, summary.suppressed])
    lines += aligned(header, rows)
    if summary.reject_reasons:
        lines.append("Rejected by reason: " + ", ".join(f"{reason} {count}" for reason, count in summary.reject_reasons.items()))
    if summary.already_submitted:
        lines.append(f"Already submitted to this campaign, skipped: {summary.already_submitted}")
    if summary.cooled_down:
        lines.append(f"Called by a campaign within the cooldown, skipped: {summary.cooled_down}")
    if summary.state_capped:
        lines.append(f"Called as often in 24 hours as their state allows, skipped (a later import plans them): {summary.state_capped}")
    lines += [f"Warning: {warning}" for warning in summary.warnings]
    lines.append(f"Batches: {len(summary.batches)}" + (f" ({_sizes([b.size for b in summary.batches])})" if summary.batches else ""))
    if not summary.dry_run and summary.batches:
        lines += _batch_table(summary.batches)
    if summary.held and summary.batches:
        lines.append(f"Nobody is called until `campaigns submit --campaign {summary.campaign}` starts "
                     f"{plural(len(summary.batches), 'this batch', 'these batches')}.")  # fmt: skip
    elif held:
        lines.append(f"{held} {plural(held, 'batch', 'batches')} of this campaign held by `import --hold` "
                     f"{plural(held, 'waits', 'wait')} for `campaigns submit --campaign {summary.campaign}`.")  # fmt: skip
    if out is not None:
        lines.append(f"Wrote accepted.csv, rejected.csv, duplicates.csv and suppressed.csv to {out}")
    for line in lines:
        console.print(line, markup=False, highlight=False)


LISTED = 20  # batches listed one per line; a larger import lists the first ones and says where the rest are


def _sizes(sizes: list[int]) -> str:
    """'sizes 1000, 1000, 412', or for many batches 'sizes 841 × 1000, 1 × 421' (count × size); past four sizes, the
    three most common and the rest counted."""
    if len(sizes) <= 10:
        return "sizes " + ", ".join(map(str, sizes))
    counts: dict[int, int] = {}
    for size in sizes:
        counts[size] = counts.get(size, 0) + 1
    common = sorted(counts.items(), key=lambda item: (-item[1], -item[0]))
    shown = ", ".join(f"{count} × {size}" for size, count in common[: 4 if len(common) <= 4 else 3])
    if len(common) <= 4:
        return "sizes " + shown
    others = sum(count for _, count in common[3:])
    return "sizes " + shown + f" and {others} {plural(others, 'batch', 'batches')} of {len(common) - 3} other sizes"


def _batch_table(batches) -> list[str]:
    rows = [[b.key, b.size, b.status, b.provider_batch_id or "-"] for b in batches[:LISTED]]
    lines = ["  " + line for line in aligned(["batch", "contacts", "state", "provider batch"], rows, left=1)]
    if len(batches) > LISTED:
        states: dict[str, int] = {}
        for b in batches:
            states[b.status] = states.get(b.status, 0) + 1
        lines.append(f"  … and {len(batches) - LISTED} more ({', '.join(f'{n} {state}' for state, n in states.items())} in all; "
                     "every batch is in DuckDB's `batches` table and in --json)")  # fmt: skip
    return lines


def submit_summary(console: Console, campaign: str, report, chunks) -> None:
    """What `campaigns submit` started, and what is left pending."""
    if not chunks:
        console.print(f"Campaign {campaign}: nothing to submit (no planned or held batches).", markup=False, highlight=False)
        return
    lines = [f"Campaign {campaign}: started {len(report.started)} of {len(chunks)} {plural(len(chunks), 'batch', 'batches')}"]
    lines += _batch_table([_Row(c) for c in chunks])
    for line in lines:
        console.print(line, markup=False, highlight=False)


class _Row:
    """A ledger chunk as the batch table shows it."""

    def __init__(self, chunk):
        self.key, self.size, self.status, self.provider_batch_id = chunk.key, chunk.size, chunk.state, chunk.provider_batch_id


def sandbox_banner(console: Console, config, host: str, port: int, *, key_from_env: bool, secret_from_env: bool) -> None:
    """Say what the sandbox accepts, so a user can point a client at it."""
    url = f"http://{host}:{port}"
    key = "(from CAMPAIGNS_SANDBOX_KEY)" if key_from_env else config.api_key.get_secret_value()
    secret = "(from CAMPAIGNS_SANDBOX_SECRET)" if secret_from_env else config.api_secret.get_secret_value()
    console.print(f"Sandbox provider on {url} — simulated calls only, nobody is called.")
    from pipelines.providers.registry import DIALECTS

    for name, dialect in DIALECTS.items():
        console.print(f"  {name + ':':<10} " + dialect.sandbox_hint.format(url=url, key=key, secret=secret))
    console.print(f"  caller ids: {', '.join(config.caller_ids)}")
    console.print(f"  speed x{config.speed:g}, seed {config.seed}, faults: {config.faults or 'none'}, "
                  f"state: {config.state_path or 'in memory'}")
    console.print(f"  inspect: GET {url}/_sandbox/recipients, GET {url}/_sandbox/stats, POST {url}/_sandbox/faults, "
                  f"POST {url}/_sandbox/reset, POST {url}/_sandbox/clock {{\"advance_seconds\": N}}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"  warning: bound to {host}, reachable from other machines")


def sandbox_notice(console: Console, home: Path) -> Callable[[str], None]:
    """What a command tells the workspace to call as it opens each provider (Workspace.on_open): the embedded sandbox
    is said loudly, every time it is used — with no provider configured, nothing real happens."""

    def opened(provider: str) -> None:
        if provider == DEFAULT_PROVIDER:
            console.print(
                f"[bold yellow]No provider configured: using the embedded sandbox (state in {home / 'sandbox.sqlite'}). "
                "No real calls are placed.[/bold yellow] Set --provider with its credentials to call people."
            )

    return opened


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
            if total:  # nothing to submit: no empty 0/0 bar
                self.task = self.bar.add_task("submit", total=total)
        elif not self.quiet and total:
            self.console.print(f"submitting {total} {plural(total, 'batch', 'batches')}", markup=False, highlight=False)

    def chunk_started(self, chunk, dialling_from=None) -> None:
        """One batch started; `dialling_from`: when the provider was told to begin, if not at once. On a terminal
        the bar moves and only a batch that waits gets a line (above the bar); otherwise every batch gets one."""
        self.done += 1
        later = _later(chunk, dialling_from)
        if self.bar and self.task is not None:
            self.bar.advance(self.task)
        if self.quiet or (self.bar and not later):
            return
        self.console.print(f"started {self.done}/{self.total}: {chunk.key} ({chunk.size} {plural(chunk.size, 'contact', 'contacts')}) "
                           f"as {chunk.provider_batch_id}{later}", markup=False, highlight=False)  # fmt: skip

    def retry(self, message: str) -> None:
        if not self.quiet:
            self.console.print(redact(message), style="dim", markup=False)


def _later(chunk, dialling_from) -> str:
    """', dialling from <UTC> (<local date and time> <zone>)' for a batch the provider holds, else ''."""
    from datetime import UTC, datetime, timedelta

    from pipelines.ingest.hours import timezone_label
    from pipelines.text import moment

    if dialling_from is None or dialling_from <= datetime.now(UTC) + timedelta(minutes=1):
        return ""
    return f", dialling from {moment(dialling_from, timezone_label(chunk.timezone))}"  # the zone the provider is told


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
        self.last = None

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def poll(self, report, finished: int, followed: int) -> None:
        """Each poll on the bar; off a terminal, a line for each poll that moved something (and the first)."""
        calls = f"{report.recipients_final:,} of {report.recipients:,} calls over"
        if self.bar:
            if self.task is None:
                self.task = self.bar.add_task("sync", total=followed, calls=calls)
            self.bar.update(self.task, total=followed, completed=finished, calls=calls)
        elif not self.quiet and (finished, report.recipients_final) != self.last:
            self.last = (finished, report.recipients_final)
            self.console.print(f"poll {report.polls}: {finished} of {followed} {plural(followed, 'batch', 'batches')} "
                               f"finished, {calls}", markup=False, highlight=False)  # fmt: skip


def sync_summary(console: Console, report, *, waited: float = 0) -> None:
    """One line per batch read, then the totals over the whole sync (and, after --wait, what is still unfinished)."""
    if report.batches:
        rows = [[b.id, b.status, b.total, b.completed, b.failed] for b in report.batches]
        for line in aligned(["provider batch", "status", "recipients", "completed", "failed"], rows, left=2):
            console.print(line, markup=False, highlight=False)
    if not report.batches and report.unread:
        console.print("Nothing was synced: the started batches of a provider could not be read (see below).", highlight=False)
    elif not report.batches:
        console.print("Nothing to sync: no started batch is waiting for outcomes.", highlight=False)
    else:
        console.print(
            f"Synced {len(report.batches)} {plural(len(report.batches), 'batch', 'batches')} "
            f"({report.finished} finished) in {report.polls} {plural(report.polls, 'poll', 'polls')}: "
            f"{report.recipients_final:,} of {report.recipients:,} {plural(report.recipients, 'call', 'calls')} over.",
            highlight=False,
        )  # fmt: skip
    if waited and report.unfinished:
        later = sum(1 for b in report.batches if b.status == "scheduled")
        console.print(f"Stopped waiting after {waited:g} s: {report.unfinished} {plural(report.unfinished, 'batch is', 'batches are')} "
                      f"not finished yet{f' ({later} scheduled to start dialling later)' if later else ''}; "
                      "`campaigns sync` reads them again.", highlight=False)  # fmt: skip
    if report.skipped_other_provider:
        console.print(f"Left {report.skipped_other_provider} started {plural(report.skipped_other_provider, 'batch', 'batches')} "
                      "of other providers alone (--provider).", highlight=False)  # fmt: skip


