"""Campaign control: cancel, reschedule and retry — each decided by reading the provider, so a rerun is safe.

Every action is idempotent and is chosen from what the provider reports now, never from
what a previous (maybe killed) run meant to do:

    cancel       planned / draft        → cancelled in the ledger (magpipe drafts are cancelled there too)
                 started, magpipe       → `cancel` (pending recipients skipped; sync finishes the chunk)
                 started, batchcall     → scheduled and not dialling: PUT status=draft, then cancelled;
                                          dialling: reported as not stoppable (the API documents no stop)
    reschedule   planned / draft        → not_before = AT, then submitted (scheduled for AT, inside calling hours)
                 started, batchcall     → still scheduled: PUT trigger_timestamp (AT, inside calling hours)
                 started, magpipe       → reported: magpipe updates drafts only
    retry        recipients whose latest attempt ended in the given statuses, under the attempt cap,
                 past the gap, never completed, not suppressed, not already in flight, not over the cap on
                 calls per 24 hours of their state (state_cap) → new retry
                 chunks planned in one transaction, then submitted like any chunk (exactly once)

`creating` and `starting` chunks (a run killed mid-request) are first resolved by reading
back, exactly as submission resolves them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from pipelines.errors import ProviderError, TransientProviderError, UsageError
from pipelines.ingest.chunk import cut
from pipelines.ingest.hours import CallingHours, chunk_hours, next_open, timezone_label
from pipelines.ledger import Ledger, aware, now
from pipelines.providers.base import ProviderClient
from pipelines.providers.registry import batch_limit, spec
from pipelines.submit import Submitter, idempotent, batch_name
from pipelines.text import moment
from pipelines.workspace import Workspace
from schemas.ledger import OPEN_STATES, ChunkRecord, ChunkState, RetryRecord
from schemas.provider import FINAL_RECIPIENT, FINISHED, NOT_STARTED, STOPPED, Schedule

DIALLED = {"completed", "busy", "no_answer", "failed"}  # a call was placed and ended
RETRYABLE = ("busy", "no_answer", "failed", "skipped")


@dataclass
class Outcome:
    """What a control command did (or, with --dry-run, would do) to each batch."""

    done: list[dict] = field(default_factory=list)  # {"chunk_key", "provider_batch_id", "action"}
    not_done: list[dict] = field(default_factory=list)  # {"chunk_key", "provider_batch_id", "reason"}
    over: list[dict] = field(default_factory=list)  # nothing to do: already finished or stopped {"chunk_key", …, "state"}

    def extend(self, other: Outcome) -> None:
        self.done += other.done
        self.not_done += other.not_done
        self.over += other.over

    def add(self, chunk: ChunkRecord, action: str, *, failed: bool = False) -> None:
        row = {"chunk_key": chunk.key, "provider_batch_id": chunk.provider_batch_id, ("reason" if failed else "action"): action}
        (self.not_done if failed else self.done).append(row)

    def already(self, chunk: ChunkRecord, state: str) -> None:
        self.over.append({"chunk_key": chunk.key, "provider_batch_id": chunk.provider_batch_id, "state": state})


def _resolve(submitter: Submitter, chunk: ChunkRecord, dry_run: bool) -> ChunkRecord:
    """A chunk left mid-request by a killed run, resolved by reading the provider (read-only in a dry run)."""
    if dry_run or chunk.state not in (ChunkState.CREATING, ChunkState.STARTING):
        return chunk
    return submitter.resolve(chunk)


# ------------------------------------------------------------------ cancel


def cancel_chunks(ledger: Ledger, client: ProviderClient, submitter: Submitter, chunks: list[ChunkRecord], *, dry_run: bool) -> Outcome:
    """Stop every chunk given: nothing planned is sent, no draft is ever started, what dials is stopped where the API can.

    The intent for all of them is committed first, in one transaction, before any request:
    planned chunks become `cancelled`, chunks that may hold a batch not yet dialling
    (`creating`, `draft_created`, `starting`) become `cancelling`. Whatever happens after
    that — a kill, a lost answer — no run ever starts one of them; the next run (cancel,
    import, watch, retry) stops them again and reads them back.
    """
    outcome = Outcome()
    if not dry_run:
        marked = {
            ChunkState.PLANNED: ChunkState.CANCELLED,
            ChunkState.CREATING: ChunkState.CANCELLING,
            ChunkState.DRAFT_CREATED: ChunkState.CANCELLING,
            ChunkState.STARTING: ChunkState.CANCELLING,
        }
        moves = [(c.key, ChunkState(c.state), marked[ChunkState(c.state)]) for c in chunks if c.state in marked]
        ledger.transition_many(moves, intent_at=now())
        submitter.failpoints.hit("after_mark_cancelling")
        chunks = [ledger.chunk(c.key) for c in chunks]
    for chunk in chunks:
        if chunk.state in (ChunkState.PLANNED, ChunkState.CANCELLED) and not chunk.provider_batch_id:
            outcome.add(chunk, "planned → cancelled before it was sent")
        elif chunk.state == ChunkState.CREATING:  # dry run: nothing is read back
            outcome.add(chunk, "a create may have been sent → looked up by name, then cancelled")
        else:
            try:
                stop_chunk(ledger, client, submitter, chunk, outcome, dry_run=dry_run)
            except (ProviderError, TransientProviderError) as exc:  # an emergency stop goes on with the other batches
                outcome.add(chunk, f"not stopped yet; the next run stops it again: {exc}", failed=True)
    return outcome


def stop_chunk(ledger: Ledger, client: ProviderClient, submitter: Submitter, chunk: ChunkRecord, outcome: Outcome, *, dry_run: bool) -> None:
    """Stop one chunk, decided by what the provider reports now; a `cancelling` chunk ends `cancelled` (or
    `started`, when it dialled before it could be stopped: sync then follows it)."""
    hit = submitter.failpoints.hit
    if chunk.state == ChunkState.STARTING and dry_run:
        chunk = chunk.model_copy(update={"state": ChunkState.DRAFT_CREATED})  # what reading it back would show at worst
    if chunk.provider_batch_id is None:  # a create may have been sent: find it by name, never leave it behind
        found = submitter.find_created(chunk, discard=not dry_run)
        if found is None:
            if not dry_run:
                ledger.transition(chunk.key, ChunkState.CANCELLING, ChunkState.CANCELLED)
            outcome.add(chunk, "planned → cancelled before it was sent")
            return
        if not dry_run:
            ledger.update_chunk(chunk.key, provider_batch_id=found.id)
        chunk = chunk.model_copy(update={"provider_batch_id": found.id})
    remote = submitter.read(chunk)
    state = ChunkState(chunk.state)
    dialling = remote.status not in NOT_STARTED | {"scheduled"}
    if remote.status in FINISHED or (dialling and not spec(chunk.provider).dialect.stops_running):
        if state in (ChunkState.DRAFT_CREATED, ChunkState.CANCELLING) and not dry_run:
            # over, or dialling where it cannot be stopped: what dialled is followed by sync, what never did is cancelled
            stopped = remote.status in STOPPED and remote.completed + remote.failed == 0
            ledger.transition(chunk.key, state, ChunkState.CANCELLED if stopped else ChunkState.STARTED,
                              **({} if stopped else {"started_at": chunk.started_at or now()}))  # fmt: skip
        if remote.status in FINISHED:
            outcome.already(chunk, remote.status)
        else:
            outcome.add(chunk, f"{remote.status}: {client.label} documents no way to stop a batch that is dialling", failed=True)
        return
    what = {"draft": "draft → cancelled; never started", "scheduled": "scheduled, not dialling yet → stopped"}.get(
        remote.status, f"{remote.status} → stopped: recipients not yet called are skipped, calls in progress end"
    )
    if dry_run:
        outcome.add(chunk, what)
        return
    if state == ChunkState.STARTED and not dialling:  # a scheduled batch put back to draft is a cancelled chunk
        chunk = ledger.transition(chunk.key, state, ChunkState.CANCELLING, intent_at=now())
    try:
        submitter.retrying(lambda: idempotent(lambda: client.stop(chunk.provider_batch_id, remote.status)))
    except ProviderError as exc:
        if exc.status_code != 400:
            raise
        after = submitter.read(chunk)  # refused: it began dialling before it could be stopped
        if chunk.state == ChunkState.CANCELLING and after.status not in NOT_STARTED | STOPPED:
            ledger.transition(chunk.key, ChunkState.CANCELLING, ChunkState.STARTED, started_at=chunk.started_at or now())
        outcome.add(chunk, f"began dialling before it could be stopped ({exc})", failed=True)
        return
    hit("after_cancel_request")
    if chunk.state == ChunkState.CANCELLING:
        after = submitter.read(chunk)
        stopped = after.status in NOT_STARTED | STOPPED and not dialling
        ledger.transition(chunk.key, ChunkState.CANCELLING, ChunkState.CANCELLED if stopped else ChunkState.STARTED,
                          **({} if stopped else {"started_at": chunk.started_at or now()}))  # fmt: skip
        hit("after_record_cancelled")
    outcome.add(chunk, what)


# ------------------------------------------------------------------ reschedule


def parse_moment(text: str) -> datetime:
    """An ISO-8601 instant with its offset (or Z); a bare local time is ambiguous and refused."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r} is not an ISO-8601 time such as 2026-11-25T09:00-05:00") from None
    if moment.tzinfo is None:
        raise UsageError(f"--at {text!r} has no UTC offset: add one (2026-11-25T09:00-05:00, or Z for UTC)")
    return moment.astimezone(UTC)


def reschedule_chunks(
    ledger: Ledger, client: ProviderClient, submitter: Submitter, chunks: list[ChunkRecord], at: datetime, *, dry_run: bool
) -> Outcome:
    outcome = Outcome()
    pending = []
    for chunk in chunks:
        chunk = _resolve(submitter, chunk, dry_run)
        if chunk.state in (ChunkState.CANCELLING, ChunkState.CANCELLED):
            outcome.add(chunk, "being cancelled: it will not be started (run `campaigns cancel` to finish stopping it)", failed=True)
            continue
        if chunk.state in (ChunkState.PLANNED, ChunkState.DRAFT_CREATED, ChunkState.CREATING, ChunkState.STARTING):
            pending.append(chunk)
            continue
        remote = client.get_batch(chunk.provider_batch_id)
        if remote.status in NOT_STARTED:
            pending.append(chunk)
            continue
        if remote.status in FINISHED:  # over at the provider; sync records it
            outcome.already(chunk, remote.status)
            continue
        if remote.status != "scheduled":
            outcome.add(chunk, f"already {remote.status}: it is dialling", failed=True)
            continue
        if not spec(chunk.provider).dialect.moves_scheduled:
            outcome.add(chunk, f"{client.label} updates drafts only; cancel it and import again to move it", failed=True)
            continue
        trigger = next_open(chunk.timezone, chunk_hours(chunk), at)
        if trigger is None:
            outcome.add(chunk, f"calling window never opens in {chunk.timezone}", failed=True)
            continue
        if not dry_run:
            client.start(chunk.provider_batch_id, Schedule(timezone=timezone_label(chunk.timezone), trigger_at=trigger))
            ledger.update_chunk(chunk.key, not_before=at)
        outcome.add(chunk, f"dialling from {moment(trigger, timezone_label(chunk.timezone))}")
    for chunk in pending:
        if not dry_run:
            ledger.update_chunk(chunk.key, not_before=at)
        outcome.add(chunk, f"not sent yet: dialling from {moment(at)}, or when calling hours open then")
    return outcome


# ------------------------------------------------------------------ retry


@dataclass(frozen=True)
class RetryRules:
    statuses: tuple[str, ...] = ("busy", "no_answer", "failed")
    max_attempts: int = 3  # calls per person, the first one included
    min_gap_hours: float = 1.0

    @classmethod
    def parse(cls, statuses: str | None, max_attempts: int | None, min_gap_hours: float | None) -> RetryRules:
        chosen = tuple(s.strip() for s in (statuses or ",".join(cls.statuses)).split(",") if s.strip())
        unknown = [s for s in chosen if s not in RETRYABLE]
        if unknown or not chosen:
            raise UsageError(f"--statuses takes {', '.join(RETRYABLE)}; not {', '.join(unknown) or 'nothing'}")
        rules = cls(chosen, max_attempts if max_attempts is not None else cls.max_attempts,
                    min_gap_hours if min_gap_hours is not None else cls.min_gap_hours)  # fmt: skip
        if rules.max_attempts < 2:
            raise UsageError("--max-attempts must be at least 2 (the first call counts)")
        if rules.min_gap_hours < 0:
            raise UsageError("--min-gap must be ≥ 0 hours")
        return rules


def attempt_table(ledger: Ledger, campaign: str) -> pd.DataFrame:
    """One row per (contact, chunk it was in): attempt number, chunk state and the outcome synced for it."""
    contacts = ledger.contact_chunks(campaign)
    contacts = contacts.assign(attempt=1, origin_chunk=contacts["chunk_key"])
    retries = ledger.frame(RetryRecord, [campaign])[["e164", "chunk_key", "attempt", "origin_chunk"]]
    origin = retries["e164"].map(contacts.set_index("e164")["chunk_key"])  # retries planned before origin_chunk was kept
    retries = retries.assign(origin_chunk=retries["origin_chunk"].where(retries["origin_chunk"].notna(), origin))
    members = pd.concat([contacts, retries], ignore_index=True)
    chunks = ledger.frame(ChunkRecord, [campaign])[["key", "state", "provider", "provider_batch_id", "timezone", "us_state", "window",
                                                    "days", "holidays"]]  # fmt: skip
    members = members.merge(chunks.rename(columns={"key": "chunk_key"}), on="chunk_key", how="left")
    outcomes = ledger.recipients([campaign]).select(["provider_batch_id", "e164", "status", "attempted_at", "completed_at"]).to_pandas()
    return members.merge(outcomes, on=["provider_batch_id", "e164"], how="left")


def retry_candidates(
    table: pd.DataFrame, rules: RetryRules, suppressed: set[str], moment: datetime, capped: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """The latest attempt of each contact that may be called again, and why the others may not.

    `capped`: which of these latest attempts' numbers had as many calls in the last 24 hours as their state allows
    (state_cap: retried by a later `retry` once the cap allows)."""
    if not len(table):
        return table, {}
    table = table.sort_values(["e164", "attempt"])
    # stopped before its batch dialled them (never sent, or read as pending before the stop): skipped
    never_called = table["state"].eq(ChunkState.CANCELLED) & ~table["status"].isin(FINAL_RECIPIENT)
    table = table.assign(status=table["status"].mask(never_called, "skipped"))
    dialled = table["status"].isin(DIALLED).groupby(table["e164"]).sum()
    ever_completed = table["status"].eq("completed").groupby(table["e164"]).any()
    latest = table.groupby("e164").tail(1).set_index("e164")
    latest = latest.assign(dials=dialled.reindex(latest.index).fillna(0).astype(int),
                           completed_once=ever_completed.reindex(latest.index).fillna(False))  # fmt: skip
    ended = pd.to_datetime(latest["completed_at"].fillna(latest["attempted_at"]), utc=True)
    settled = latest["state"].isin([ChunkState.FINISHED, ChunkState.CANCELLED]) | latest["status"].isin(DIALLED | {"skipped"})
    why = pd.Series("eligible", index=latest.index, dtype=object)
    why[~latest["status"].isin(rules.statuses)] = "status_not_retried"
    why[~settled] = "in_flight"
    why[latest["completed_once"]] = "completed"
    why[(why == "eligible") & (latest["dials"] >= rules.max_attempts)] = "max_attempts"
    why[(why == "eligible") & (ended > moment - timedelta(hours=rules.min_gap_hours))] = "too_soon"
    why[(why == "eligible") & latest.index.isin(list(suppressed))] = "suppressed"
    if capped is not None and (why == "eligible").any():
        eligible = why == "eligible"
        why[eligible.to_numpy() & capped(latest.reset_index())] = "state_cap"
    reasons = {str(k): int(v) for k, v in why[why != "eligible"].value_counts().items()}
    return latest[why == "eligible"].reset_index(), reasons


def plan_retry(
    ledger: Ledger, campaign: str, candidates: pd.DataFrame, *, batch_size: int | None, record: bool = True
) -> list[ChunkRecord]:
    """Retry chunks for the candidates: per provider, timezone and original hours, at most batch_size each (and the
    provider's limit), recorded in one transaction (or, with record=False, only computed: a dry run)."""
    stamp = now()
    chunks, members = [], []
    hours = ["provider", "timezone", "us_state", "window", "days", "holidays"]
    groups = candidates.sort_values([*hours, "chunk_key", "e164"], kind="stable")
    for (provider, zones, us_state, window, days, holidays), group in groups.groupby(hours, sort=True):
        rows = group.to_dict("records")
        start = 0
        for end in cut(len(rows), batch_limit(provider, batch_size)):
            part, start = rows[start:end], end
            identity = "\n".join([campaign, "retry", *(f"{r['e164']}:{int(r['attempt']) + 1}" for r in part)])
            key = "ck" + hashlib.sha256(identity.encode()).hexdigest()[:16]
            chunks.append(ChunkRecord(
                key=key, campaign=campaign, provider=provider, dialect=spec(provider).dialect.name,
                batch_name=batch_name(campaign, key), size=len(part), state=ChunkState.PLANNED, import_id=0, created_at=stamp,
                updated_at=stamp, timezone=zones, us_state=us_state, window=window, days=days, holidays=holidays, kind="retry",
            ))  # fmt: skip
            members += [
                {"chunk_key": key, "e164": r["e164"], "campaign": campaign, "attempt": int(r["attempt"]) + 1, "position": i,
                 "reason": str(r["status"]), "planned_at": stamp, "origin_chunk": r["origin_chunk"]}
                for i, r in enumerate(part)
            ]
    if chunks and record:
        ledger.record_retry(chunks, members)
    return chunks


def chunks_to_control(workspace: Workspace, campaign: str) -> list[ChunkRecord]:
    """The campaign's batches that are not over, on every provider it used (--provider narrows); an unknown campaign
    (a typo) is refused."""
    from pipelines.run import narrowed

    workspace.ledger.require_campaign(campaign)
    return narrowed(workspace.ledger.chunks(campaign, OPEN_STATES), workspace.settings)


def latest_not_before(chunks: list[ChunkRecord]) -> datetime | None:
    moments = [aware(c.not_before) for c in chunks if c.not_before]
    return max(moments) if moments else None


# ------------------------------------------------------------------ the commands, end to end


@dataclass
class ControlResult:
    outcome: Outcome
    submitted: list[str] = field(default_factory=list)  # chunk keys started by this run
    pending: dict[str, str] = field(default_factory=dict)
    unreachable: bool = False
    skipped: dict[str, int] = field(default_factory=dict)  # retry: contacts not retried, by reason
    planned: int = 0  # retry: contacts put into new chunks
    publish_error: Exception | None = None  # the DuckDB file could not be updated (the ledger is intact)
    warnings: list[str] = field(default_factory=list)  # said on stderr whatever the outcome


def cancel_campaign(campaign: str, workspace: Workspace, *, dry_run: bool) -> ControlResult:
    from pipelines.run import by_provider, campaign_lock, make_submitter, narrowed

    ledger, settings = workspace.ledger, workspace.settings
    with campaign_lock(ledger, campaign):
        chunks = chunks_to_control(workspace, campaign)
        if not dry_run:
            ledger.stop_campaign(campaign)  # first: no later import, watch, retry or reschedule submits anything
        outcome = Outcome()
        for chunk in narrowed(ledger.chunks(campaign, [ChunkState.FINISHED, ChunkState.CANCELLED]), settings):
            outcome.already(chunk, chunk.state)
        with workspace.providers() as providers:
            for name, group in by_provider(chunks).items():
                client = providers.client(name)
                outcome.extend(cancel_chunks(ledger, client, make_submitter(workspace, client), group, dry_run=dry_run))
        return ControlResult(outcome, publish_error=None if dry_run or not chunks else workspace.publish())


def reschedule_campaign(campaign: str, at: datetime, workspace: Workspace, *, dry_run: bool) -> ControlResult:
    from pipelines.run import by_provider, campaign_lock, make_submitter, refuse_if_stopped, submit_pending

    ledger = workspace.ledger
    if at <= now():
        raise UsageError(f"--at {at.isoformat()} is in the past")
    with campaign_lock(ledger, campaign):
        chunks = chunks_to_control(workspace, campaign)
        warnings = refuse_if_stopped(ledger, campaign, dry_run=dry_run)
        if not chunks:
            return ControlResult(Outcome(), warnings=warnings)
        outcome = Outcome()
        with workspace.providers() as providers:
            for name, group in by_provider(chunks).items():
                client = providers.client(name)
                outcome.extend(reschedule_chunks(ledger, client, make_submitter(workspace, client), group, at, dry_run=dry_run))
        if dry_run:
            return ControlResult(outcome, warnings=warnings)
        report, _ = submit_pending(campaign, workspace)  # drafts and planned chunks, scheduled for AT
        return ControlResult(outcome, report.started, report.pending, report.unreachable, publish_error=report.publish_error)


def _state_caps(workspace: Workspace) -> Callable[[pd.DataFrame], np.ndarray] | None:
    """The state_cap test of retry_candidates under the settings' state rules (None when no state has a cap)."""
    from pipelines import segments
    from pipelines.ingest.states import STATE_CODE, load_rules, over_cap

    calling_rules = load_rules(workspace.settings.rules)
    if not calling_rules.capped_states():
        return None
    calls, caps = workspace.ledger.recent_calls(), calling_rules.caps()

    def capped(latest: pd.DataFrame) -> np.ndarray:
        import pyarrow as pa

        keys = segments.keys_of(pa.array(latest["e164"].astype(str).tolist(), pa.string()))
        states = latest["us_state"].fillna("").map(STATE_CODE).fillna(0).astype(int).to_numpy()
        return over_cap(keys, states, calls, caps)

    return capped


def retry_campaign(
    campaign: str, rules: RetryRules, workspace: Workspace, *, batch_size: int | None, dry_run: bool
) -> ControlResult:
    """Sync, then plan and submit retry chunks, each on the provider of the attempt it repeats."""
    from pipelines.run import campaign_lock, narrowed, refuse_if_stopped, submit_pending, sync_ledger

    ledger, settings = workspace.ledger, workspace.settings
    with campaign_lock(ledger, campaign):
        ledger.require_campaign(campaign)
        warnings = refuse_if_stopped(ledger, campaign, dry_run=dry_run)
        if narrowed(ledger.chunks(campaign, [ChunkState.STARTED]), settings):
            sync_ledger(workspace.without_publishing() if dry_run else workspace, campaign)  # decide on fresh outcomes
        table = attempt_table(ledger, campaign)
        if settings.provider is not None and len(table):
            table = table[table["provider"] == settings.provider]
        candidates, skipped = retry_candidates(table, rules, ledger.suppressed_numbers(), now(), _state_caps(workspace))
        outcome = Outcome()
        chunks = plan_retry(ledger, campaign, candidates, batch_size=batch_size, record=not dry_run)
        for chunk in chunks:
            outcome.add(chunk, f"a retry of {chunk.size} {'contact' if chunk.size == 1 else 'contacts'} on {chunk.provider}")
        wide = sorted({c.window for c in chunks if not CallingHours.parse(c.window, c.days).within_legal})
        warnings += [f"campaign {campaign}: retries keep the calling window they were planned with ({', '.join(wide)}), "
                    "outside 08:00-21:00 recipient time"] if wide else []  # fmt: skip
        if dry_run:
            return ControlResult(outcome, skipped=skipped, planned=len(candidates), warnings=warnings)
        report, _ = submit_pending(campaign, workspace)
        return ControlResult(outcome, report.started, report.pending, report.unreachable, skipped, len(candidates),
                             report.publish_error, warnings)  # fmt: skip
