"""Follow-up commands: `sync`, `cancel`, `resume`, `reschedule`, `retry`.

Each acts on every batch through the provider the ledger recorded for it; --provider
only narrows them to one provider's batches.
"""

from __future__ import annotations

from collections import Counter

import click

from pipelines.cli.app import app
from pipelines.cli.options import (
    LOCATION,
    campaign_required,
    dry_run_option,
    end_with,
    json_option,
    print_json,
    require_ledger,
    settings_of,
    settings_options,
    stderr,
)
from pipelines.errors import CampaignError, UsageError

FOLLOW_UP = (*LOCATION, "provider", "caller_id", "agent_id", "account_timezone")


@app.command("sync")
@click.option("--campaign", help="Only this campaign [default: all].")
@json_option
@click.option("--wait", type=float, default=0, help="Keep syncing until every batch finished, up to this many seconds.")
@settings_options(*LOCATION, "provider")
def sync_command(campaign, as_json, wait, flags) -> None:
    """Read every started, unfinished batch and its recipients into the ledger and DuckDB, each from the provider it
    was submitted to (--provider: only that provider's)."""
    from rich.console import Console

    from pipelines import console as show
    from pipelines.run import sync_ledger
    from pipelines.workspace import Workspace

    if wait < 0:
        raise UsageError("--wait must be a number of seconds ≥ 0")
    settings = settings_of(flags)
    require_ledger(settings)
    with Workspace.open(settings, on_open=sandbox_notice(settings)) as workspace, show.SyncDisplay(stderr(), quiet=as_json or not wait) as display:
        if campaign is not None:
            workspace.ledger.require_campaign(campaign)
        report = sync_ledger(workspace, campaign, wait_seconds=wait, on_poll=display.poll)
    payload = {
        "batches": [b.model_dump(mode="json") for b in report.batches],
        "finished": report.finished,
        "recipients": report.recipients,
        "recipients_final": report.recipients_final,
        "polls": report.polls,
        "skipped_other_provider": report.skipped_other_provider,
        "unread": report.unread,
        "unfinished": report.unfinished,
    }
    error = UsageError("; ".join(report.unread.values())) if report.unread else report.publish_error
    if as_json:
        print_json(payload, error)
    else:
        show.sync_summary(Console(highlight=False, soft_wrap=True), report, waited=wait)
    end_with(error)


def sandbox_notice(settings):
    from pipelines import console as show

    return show.sandbox_notice(stderr(), settings.home)


def _print_control(verb: str, result, as_json: bool, dry_run: bool, extra: dict | None = None,
                   labels: dict[str, str] | None = None, footer: str | None = None) -> None:  # fmt: skip
    """What a control command did (or, with --dry-run, would do: said so, and never an error for what it could not
    do); then it ends with its error, if any. `labels`: how `extra`'s keys read in the text output; `footer`: a last
    line."""
    from rich.console import Console

    from pipelines.text import plural

    error = None if dry_run else _control_error(result, verb)
    for warning in result.warnings:
        stderr().print(f"warning: {warning}", markup=False)
    outcome = result.outcome
    payload = {"dry_run": dry_run, "done": outcome.done, "not_done": outcome.not_done, "already_over": outcome.over,
               "submitted": result.submitted, "pending": result.pending, **(extra or {})}  # fmt: skip
    if as_json:
        print_json(payload, error)
        end_with(error)
        return
    out = Console(highlight=False, soft_wrap=True)
    count = lambda n: f"{n} {plural(n, 'batch', 'batches')}"  # noqa: E731
    out.print(f"{count(len(outcome.done))} {'would be ' if dry_run else ''}{verb}" + (":" if outcome.done else ""))
    for row in outcome.done:
        out.print(f"  {row['chunk_key']}  {row['provider_batch_id'] or '-'}  {row['action']}")
    if outcome.not_done:
        out.print(f"{count(len(outcome.not_done))} {'would not be' if dry_run else 'could not be'} {verb}:")
        for row in outcome.not_done:
            out.print(f"  {row['chunk_key']}  {row['provider_batch_id'] or '-'}  {row['reason']}")
    if outcome.over:
        states = ", ".join(f"{state} {n}" for state, n in sorted(Counter(row["state"] for row in outcome.over).items()))
        out.print(f"{count(len(outcome.over))} already over ({states})")
    for key, value in (extra or {}).items():
        text = (", ".join(f"{k} {v}" for k, v in value.items()) or "none") if isinstance(value, dict) else value
        out.print(f"{(labels or {}).get(key, key.replace('_', ' '))}: {text}")
    if result.submitted:
        out.print(f"{count(len(result.submitted))} submitted")
    if footer:
        out.print(footer)
    end_with(error)


def _control_error(result, verb: str) -> CampaignError | None:
    from pipelines.errors import SubmissionPending
    from pipelines.run import pending_error
    from pipelines.submit import SubmitReport

    if result.pending:
        return pending_error(SubmitReport(pending=result.pending, unreachable=result.unreachable))
    if result.outcome.not_done:
        count = len(result.outcome.not_done)
        return SubmissionPending(f"{count} {'batch' if count == 1 else 'batches'} could not be {verb} (listed above)")
    return result.publish_error


@app.command("cancel")
@campaign_required
@dry_run_option
@json_option
@settings_options(*LOCATION, "provider")
def cancel_command(campaign, dry_run, as_json, flags) -> None:
    """Stop every batch of a campaign that has not finished, and the campaign itself until `campaigns resume`."""
    from pipelines.control import cancel_campaign
    from pipelines.workspace import Workspace

    settings = settings_of(flags)
    require_ledger(settings)
    with Workspace.open(settings, on_open=sandbox_notice(settings)) as workspace:
        result = cancel_campaign(campaign, workspace, dry_run=dry_run)
    stopped = "would be stopped" if dry_run else "is stopped"
    _print_control("stopped", result, as_json, dry_run, footer=f"campaign {campaign} {stopped}: nothing more is submitted "
                   f"to it until `campaigns resume --campaign {campaign}`")  # fmt: skip


@app.command("resume")
@campaign_required
@json_option
@settings_options(*LOCATION)
def resume_command(campaign, as_json, flags) -> None:
    """Let a cancelled campaign take contacts again (imports, watch, retry); cancelled batches stay cancelled."""
    settings = settings_of(flags)
    require_ledger(settings)
    with settings.open_ledger() as ledger:
        ledger.require_campaign(campaign)
        resumed = ledger.resume_campaign(campaign)
    if as_json:
        print_json({"campaign": campaign, "resumed": resumed})
    elif resumed:
        print(f"campaign {campaign} takes contacts again; its cancelled batches stay cancelled "
              f"(`campaigns retry --campaign {campaign} --statuses skipped` calls their people)")  # fmt: skip
    else:
        print(f"campaign {campaign} was not stopped; nothing to do")


@app.command("reschedule")
@campaign_required
@click.option("--at", "at", required=True, metavar="TIME", help="The new start, ISO-8601 with an offset: 2026-11-25T09:00-05:00.")
@dry_run_option
@json_option
@settings_options(*FOLLOW_UP)
def reschedule_command(campaign, at, dry_run, as_json, flags) -> None:
    """Move the batches of a campaign that have not started to a new start time (calling hours still apply)."""
    from pipelines.control import parse_moment, reschedule_campaign
    from pipelines.workspace import Workspace

    moment = parse_moment(at)
    settings = settings_of(flags)
    require_ledger(settings)
    with Workspace.open(settings, on_open=sandbox_notice(settings)) as workspace:
        result = reschedule_campaign(campaign, moment, workspace, dry_run=dry_run)
    _print_control("moved", result, as_json, dry_run)


@app.command("retry")
@campaign_required
@click.option("--statuses", help="Latest outcomes to call again [default: busy,no_answer,failed; also skipped].")
@click.option("--max-attempts", type=int, help="Calls per person, the first included [default: 3].")
@click.option("--min-gap", type=float, metavar="HOURS", help="Hours since the last call ended [default: 1].")
@dry_run_option
@json_option
@settings_options(*FOLLOW_UP, "batch_size")
def retry_command(campaign, statuses, max_attempts, min_gap, dry_run, as_json, flags) -> None:
    """Sync, then call again exactly the people whose last call did not connect (never anyone twice)."""
    from pipelines.control import RetryRules, retry_campaign
    from pipelines.workspace import Workspace

    rules = RetryRules.parse(statuses, max_attempts, min_gap)
    settings = settings_of(flags)
    require_ledger(settings)
    with Workspace.open(settings, on_open=sandbox_notice(settings)) as workspace:
        result = retry_campaign(campaign, rules, workspace, batch_size=settings.batch_size, dry_run=dry_run)
    extra = {"retried_contacts": result.planned, "not_retried": result.skipped}
    labels = {"retried_contacts": "contacts to call again", "not_retried": "contacts not called again, by reason"}
    _print_control("planned for a retry", result, as_json, dry_run, extra, labels)
