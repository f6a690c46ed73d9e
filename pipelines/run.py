"""Campaign runs: wire ingest, the ledger and a provider together for the CLI and notebooks."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.settings import Settings
from pipelines.errors import CampaignError, CampaignStopped, InputError, ProviderUnreachable, SubmissionPending, UsageError
from pipelines.ledger import Ledger, now
from pipelines.providers.base import ProviderClient
from pipelines.providers.registry import campaign_provider, spec
from pipelines.providers.retry import RetryPolicy
from pipelines.submit import Failpoints, SubmitReport, Submitter, batch_name
from pipelines.sync import SyncReport, sync
from pipelines.workspace import Workspace
from schemas.contacts import BatchPlan, ImportSummary
from schemas.ledger import ChunkRecord, ChunkState, ImportFileRecord, ImportRecord

if TYPE_CHECKING:  # the ingest modules bring numpy and pyarrow: loaded by the commands that read files
    from pipelines.ingest.ahead import Ahead
    from pipelines.ingest.options import IngestOptions


def make_submitter(
    workspace: Workspace, client: ProviderClient, hooks: Hooks | None = None, report: SubmitReport | None = None,
    provider: str | None = None,
) -> Submitter:
    """A Submitter configured from the provider settings (retries, failpoints, account clock, batches in flight:
    CAMPAIGNS_IN_FLIGHT, else the provider's default)."""
    settings, hooks = workspace.settings, hooks or Hooks()
    in_flight = settings.in_flight or (spec(provider).dialect.in_flight if provider else 1)
    return Submitter(
        workspace.ledger, client, policy=retry_policy(settings), failpoints=Failpoints(settings.failpoint),
        settle_seconds=settings.settle_seconds, on_progress=hooks.on_chunk, on_retry=hooks.on_retry,
        account_timezone=settings.account_timezone, report=report, in_flight=in_flight,
    )  # fmt: skip


def by_provider(chunks: Sequence[ChunkRecord]) -> dict[str, list[ChunkRecord]]:
    """Chunks grouped by the provider the ledger recorded for each, in their order."""
    groups: dict[str, list[ChunkRecord]] = {}
    for chunk in chunks:
        groups.setdefault(chunk.provider, []).append(chunk)
    return groups


def narrowed(chunks: Sequence[ChunkRecord], settings: Settings) -> list[ChunkRecord]:
    """Follow-up commands act on every provider a campaign used; --provider narrows them to one."""
    return [c for c in chunks if settings.provider is None or c.provider == settings.provider]


def refuse_if_stopped(ledger: Ledger, campaign: str, *, dry_run: bool = False) -> list[str]:
    """A cancelled campaign takes nothing new (imports, watch, retries, reschedules) until it is resumed; a dry run
    is not refused, it is warned (the warnings are returned)."""
    stopped = ledger.stopped_at(campaign)
    if stopped is None:
        return []
    said = (f"campaign {campaign!r} was cancelled at {stopped:%Y-%m-%d %H:%M} UTC: nothing more is submitted to it; "
            f"`campaigns resume --campaign {campaign}` lets it take contacts again")  # fmt: skip
    if dry_run:
        return [f"{said} (this dry run shows what would be done once it is resumed)"]
    raise CampaignStopped(said)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.retry_attempts, base_seconds=settings.retry_base_seconds, budget_seconds=settings.retry_budget_seconds
    )


def content_hash(file_hashes: list[str]) -> str:
    """An import's identity: its one file's sha256, or a hash over its files' hashes in order."""
    if len(file_hashes) == 1:
        return file_hashes[0]
    return hashlib.sha256("".join(file_hashes).encode()).hexdigest()


@dataclass
class ImportRun:
    """Everything one `campaigns import` did."""

    summary: ImportSummary
    report: SubmitReport
    chunks: list[ChunkRecord]


@dataclass
class Hooks:
    """How a run talks to the person watching (progress bar, plain lines, nothing)."""

    on_chunk: Callable[[ChunkRecord, datetime | None], None] = lambda chunk, dialling_from: None  # started; dials from
    on_retry: Callable[[str], None] = lambda message: None
    on_plan: Callable[[int], None] = lambda total: None


@contextmanager
def campaign_lock(ledger: Ledger, campaign: str) -> Iterator[str]:
    """Hold the campaign's lock (LockHeld if another live run has it), its lease renewed by a heartbeat every tenth
    of the lease while the block runs: a run on another host takes it over only once this one has stopped beating.
    (Were it taken over anyway, each chunk's move is a compare-and-set: no chunk is created or started twice.)"""
    import threading

    token = ledger.acquire(campaign)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(ledger.lease_seconds / 10):
            try:
                if not ledger.heartbeat(campaign, token):
                    return  # taken over: nothing left to renew
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next; the lease spans ten
                continue

    heart = threading.Thread(target=beat, name="lock-heartbeat", daemon=True)
    heart.start()
    try:
        yield token
    finally:
        stop.set()
        heart.join()
        ledger.release(campaign, token)


EARLY_PUBLISH_BATCHES = 20


def import_and_submit(
    paths: Sequence[str | Path], options: IngestOptions, workspace: Workspace, hooks: Hooks | None = None, *,
    lock: bool = True, out: Path | None = None,
    suppressed: Collection[str] = (), cooled_down: Collection[str] = (), hashes: Sequence[str] | None = None,
    hold: bool = False, ahead: Ahead | None = None,
) -> ImportRun:  # fmt: skip
    """Plan new contacts into the ledger, then submit every pending chunk of the campaign (oldest first); with
    `hold`, plan only: the import is held until `campaigns submit` (submit_held) releases it.

    The one pipeline (pipelines.ingest.pipeline) reads the files once and hands its results
    to the plan (spilled to Arrow files as it goes, so memory stays bounded) and, with
    `out`, to the output files. Each file is hashed before it is read and again after: the
    plan is loaded into the ledger, in one transaction, only if nothing changed — the hash
    recorded is the content whose contacts were planned. `ahead`: the hashes and the first read, if the caller
    started them (ahead.start with hashed=True).
    """
    from pipelines.ingest.ahead import Ahead, hash_input
    from pipelines.ingest.pipeline import run
    from pipelines.ingest.sinks import CsvFiles, PlanSpill, sweep_spills

    ledger, home = workspace.ledger, workspace.home
    provider = campaign_provider(workspace.settings, ledger, options.campaign)
    workspace = workspace.for_campaign(options.campaign)
    settings = workspace.settings
    if not hold:  # a held plan sends nothing: credentials are needed by `campaigns submit`
        settings.require_credentials(provider, creating=True)
    with campaign_lock(ledger, options.campaign) if lock else nullcontext():
        refuse_if_stopped(ledger, options.campaign)
        before = list(hashes) if hashes is not None else (ahead or Ahead(None, None)).hashes(paths)
        sweep_spills(home)
        spill = PlanSpill(home)
        try:
            sinks = [spill] + ([CsvFiles(out)] if out is not None else [])
            calls = ledger.recent_calls() if options.rules.capped_states() else None  # under the lock: counts hold
            summary = run(paths, options, sinks, already_submitted=ledger.submitted_keys(options.campaign),
                          suppressed=set(suppressed) | ledger.suppressed_numbers(), cooled_down=cooled_down, calls=calls,
                          ahead=ahead)  # fmt: skip
            for path, digest in zip(paths, before):
                if hash_input(path) != digest:
                    raise InputError("the file changed while it was being read: nothing was imported; import it again once "
                                     "it is complete", path=str(path), code="changed_while_reading")  # fmt: skip
            record = _plan(workspace, summary, paths, before, provider, options, _Watched(spill, settings))
            Failpoints(settings.failpoint).hit("after_planning")
        finally:
            spill.discard()
        if hold:
            ledger.finish_import(record.id, "held")
            report, chunks = SubmitReport(), []
            report.publish_error = workspace.publish()
        else:
            report, chunks = submit_pending(options.campaign, workspace, hooks, import_id=record.id)
        touched = {c.key for c in chunks} | {b.key for b in summary.batches}
        batches = [_plan_of(c) for c in ledger.chunks(options.campaign) if c.key in touched]
        return ImportRun(summary.model_copy(update={"batches": batches, "dry_run": False, "held": hold}), report, chunks)


def submit_held(campaign: str, workspace: Workspace, hooks: Hooks | None = None) -> tuple[SubmitReport, list[ChunkRecord]]:
    """`campaigns submit`: release the campaign's held imports and submit everything pending, under its lock."""
    ledger = workspace.ledger
    with campaign_lock(ledger, campaign):
        refuse_if_stopped(ledger, campaign)
        pending = ledger.pending_chunks(campaign)
        if ledger.held_chunks(campaign) or pending:
            for name in {c.provider for c in ledger.chunks(campaign, [ChunkState.PLANNED])}:
                workspace.for_campaign(campaign).settings.require_credentials(name, creating=True)
        ledger.release_held(campaign)
        return submit_pending(campaign, workspace, hooks)


def submit_pending(
    campaign: str, workspace: Workspace, hooks: Hooks | None = None, *, import_id: int | None = None,
) -> tuple[SubmitReport, list[ChunkRecord]]:
    """Submit every chunk of the campaign not yet started, oldest first, each to the provider it was planned for;
    the caller holds the lock.

    A chunk left `cancelling` by an interrupted cancel is stopped again and read back
    first: it is never started.
    """
    from pipelines.control import cancel_chunks

    hooks = hooks or Hooks()
    workspace = workspace.for_campaign(campaign)
    ledger = workspace.ledger
    pending = ledger.pending_chunks(campaign)
    stopping = ledger.chunks(campaign, [ChunkState.CANCELLING])
    hooks.on_plan(len(pending))
    report = SubmitReport()
    # a long submission publishes the new plan beside it (each publish copies the file: a short one publishes once)
    early = _Background(workspace.publish) if workspace.db is not None and len(pending) >= EARLY_PUBLISH_BATCHES else None
    try:
        if pending or stopping:
            with workspace.providers(creating=bool(pending)) as providers:
                for name, group in by_provider(stopping).items():
                    client = providers.client(name)
                    cancel_chunks(ledger, client, make_submitter(workspace, client, hooks), group, dry_run=False)
                for name, group in by_provider(pending).items():
                    make_submitter(workspace, providers.client(name), hooks, report, provider=name).run(group)
    finally:
        if import_id is not None:
            ledger.finish_import(import_id, "pending" if report.pending else "submitted")
        ledger.settle_imports(campaign)
        if early is not None:
            early.join()
        report.publish_error = workspace.publish()  # what the ledger now knows, submitted or not
    return report, pending


class _Background:
    """`function(*args)` in a thread, started at once; `join()` waits for it. While chunks are submitted (the
    provider's pace, not this process's CPU), the plan just recorded is published to DuckDB beside them, so the
    publish that ends the command has only the submission's own changes left. What the thread returns or raises is
    dropped: the final publish applies whatever it did not, and reports any failure."""

    def __init__(self, function, *args):
        import threading

        def work() -> None:
            try:
                function(*args)
            except Exception:  # noqa: BLE001 - the final publish redoes the work and reports
                pass

        self._thread = threading.Thread(target=work, name="publish", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()


def _plan(
    workspace: Workspace, summary: ImportSummary, paths, hashes: list[str], provider: str, options: IngestOptions, spill,
) -> ImportRecord:  # fmt: skip
    """The import's record, chunks and files' accounting, with the spilled rows, into the ledger in one transaction.

    Each chunk keeps the hours it was planned with: the campaign's, within its state's rule."""
    files = [{"path": str(p), "sha256": digest} for p, digest in zip(paths, hashes)]
    stamp = now()
    record = ImportRecord(
        campaign=summary.campaign, provider=provider, content_hash=content_hash(hashes), files=json.dumps(files),
        caller_id=workspace.settings.caller_id, agent_id=workspace.settings.agent_id, rows_read=summary.rows_read, accepted=summary.accepted,
        duplicates=summary.duplicates, rejected=summary.rejected, already_submitted=summary.already_submitted,
        suppressed=summary.suppressed, cooled_down=summary.cooled_down, state_capped=summary.state_capped,
        planned=sum(b.size for b in summary.batches),
        started_at=stamp,
    )  # fmt: skip
    chunks = [
        ChunkRecord(
            key=plan.key, campaign=summary.campaign, provider=provider, dialect=spec(provider).dialect.name,
            batch_name=batch_name(summary.campaign, plan.key), size=plan.size, state=ChunkState.PLANNED,
            import_id=0, created_at=stamp, updated_at=stamp, timezone=plan.timezone, us_state=plan.us_state,
            window=hours.window_text, days=hours.days_text, holidays=hours.holidays,
        )  # fmt: skip
        for plan, hours in ((plan, options.rules.hours(options.hours, plan.us_state)) for plan in summary.batches)
    ]
    digests = {str(p): digest for p, digest in zip(paths, hashes)}
    accounted = [ImportFileRecord(import_id=0, campaign=summary.campaign, sha256=digests[f.source_file], **f.model_dump())
                 for f in summary.files]  # fmt: skip
    return workspace.ledger.record_plan(record, chunks, accounted, spill)


class _Watched:
    """A plan's spill as the ledger reads it, passing the `during_planning` failpoint before each batch
    (tests kill the process with the plan's transaction half written)."""

    def __init__(self, spill, settings: Settings):
        self.spill, self.failpoints = spill, Failpoints(settings.failpoint)

    def batches(self):
        for batch in self.spill.batches():
            self.failpoints.hit("during_planning")
            yield batch


def _plan_of(chunk: ChunkRecord) -> BatchPlan:
    return BatchPlan(key=chunk.key, size=chunk.size, timezone=chunk.timezone, us_state=chunk.us_state, provider_batch_id=chunk.provider_batch_id,
                     status=chunk.state)  # fmt: skip


def sync_ledger(
    workspace: Workspace, campaign: str | None, *, wait_seconds: float = 0,
    on_poll: Callable[[SyncReport, int, int], None] | None = None,
) -> SyncReport:
    """Read the provider's view of every started batch into the ledger, each from the provider it was submitted to
    (again, until every batch is finished or `wait_seconds` have passed). --provider narrows it to one provider.

    The report covers the whole wait: every batch read (as last read), how many finished,
    and their recipients; `on_poll(report so far, batches finished, batches followed)` is
    called after each poll.
    """
    ledger, settings = workspace.ledger, workspace.settings
    deadline = time.monotonic() + wait_seconds
    failpoints = Failpoints(settings.failpoint)
    policy = retry_policy(settings)
    total = SyncReport()
    followed: set[str] = set()
    pause, last_progress = 1.0, None  # between polls: 1 s while calls end, up to 5 s while nothing changes
    with workspace.providers() as providers:
        while True:
            started = ledger.chunks(campaign, [ChunkState.STARTED])
            chosen = narrowed(started, settings)
            followed |= {c.key for c in chosen}
            poll = SyncReport(polls=1, skipped_other_provider=len(started) - len(chosen))
            for name, chunks in by_provider(chosen).items():
                if name in total.unread:
                    continue
                try:
                    client = providers.client(name)
                except UsageError as exc:  # one provider's missing credentials do not keep the others' outcomes away
                    poll.unread[name] = f"{len(chunks)} started {'batch' if len(chunks) == 1 else 'batches'} not read: {exc}"
                    continue
                poll = poll.merge(sync(ledger, client, chunks, policy=policy, in_flight=settings.in_flight or spec(name).dialect.in_flight))
            failpoints.hit("after_sync_commit")
            poll.publish_error = workspace.publish()
            poll.recipients_final, poll.recipients = ledger.recipient_progress(b.id for b in total.merge(poll).batches)
            total = total.merge(poll)
            unfinished = [c for c in narrowed(ledger.chunks(campaign, [ChunkState.STARTED]), settings) if c.provider not in total.unread]
            if on_poll is not None:
                on_poll(total, len(followed) - len(unfinished), len(followed))
            if not unfinished or time.monotonic() >= deadline:
                total.unfinished = len(unfinished)
                return total
            progress = (len(unfinished), total.recipients_final)
            pause = 1.0 if progress != last_progress else min(5.0, pause * 1.5)
            last_progress = progress
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))


def pending_error(report: SubmitReport) -> CampaignError:
    """The error a run ends with when batches are left pending: exit 5 if unreachable, else 4."""
    lines = "; ".join(f"{key}: {why}" for key, why in list(report.pending.items())[:3])
    more = f" (+{len(report.pending) - 3} more)" if len(report.pending) > 3 else ""
    message = f"{len(report.pending)} batch(es) pending, resumed first by the next run: {lines}{more}"
    return ProviderUnreachable(message) if report.unreachable else SubmissionPending(message)


