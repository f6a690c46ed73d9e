"""Submit stage: move each chunk through the two-phase state machine, exactly once.

    planned ──create draft──▶ creating ──id recorded──▶ draft_created ──read back: a draft──▶ starting ──start──▶ started
                                 │ outcome unknown              │ read back: not a draft          │ outcome unknown
                                 ▼                              ▼                                 ▼
                 list by name: found → draft_created     stopped → cancelled           read batch: still draft → draft_created
                               none  → planned           started → started                         otherwise  → started

Each transition is committed before the next request. An ambiguous answer (timeout,
reset, 5xx) is never answered by sending again: it is resolved by reading the provider.
`start` is only ever sent for a batch the provider reports as a draft, read just before,
so a batch that may have run or been stopped is never started again. `cancelling`
chunks (see pipelines.control) are never submitted. The moves allowed are
schemas.ledger.TRANSITIONS.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipelines.errors import AmbiguousOutcome, ProviderError, ProviderUnreachable, TransientProviderError
from pipelines.ledger import Ledger, aware, now
from pipelines.providers.base import ProviderClient
from pipelines.providers.registry import DIALECTS
from pipelines.providers.retry import RetryPolicy, with_retries
from schemas.ledger import ChunkRecord, ChunkState
from pipelines.ingest.hours import account_window, chunk_hours, first_in_window, next_open, timezone_label
from schemas.provider import NOT_STARTED, STOPPED, RemoteBatch, Schedule

MAX_NAME = 255
SETTLE_SECONDS = 1.0  # before concluding an ambiguous create made nothing, look twice


def batch_name(campaign: str, key: str) -> str:
    """'<campaign> [<chunk key>]': people read the campaign, reconciliation matches the key."""
    suffix = f" [{key}]"
    return campaign[: MAX_NAME - len(suffix)] + suffix


class Failpoints:
    """Test-only: CAMPAIGNS_FAILPOINT=name[:n] kills this process (SIGKILL) the nth time it passes `name`."""

    def __init__(self, spec: str | None):
        self.name, _, count = (spec or "").partition(":")
        self.remaining = int(count) if count else 1
        self._lock = threading.Lock()  # chunks in flight pass failpoints from several threads

    def hit(self, name: str) -> None:
        if name == self.name:
            with self._lock:
                self.remaining -= 1
                if self.remaining <= 0:
                    os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class SubmitReport:
    """What a submission run achieved: started chunks, and pending ones with the reason."""

    started: list[str] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)
    reconciled: int = 0  # ambiguous outcomes resolved by reading back
    unreachable: bool = False  # the run ended because the provider could not be reached at all
    publish_error: Exception | None = None  # the DuckDB file could not be updated afterwards (the ledger is intact)


class Submitter:
    """Drives chunks of one campaign to `started` against one provider (several Submitters may share a report)."""

    def __init__(
        self,
        ledger: Ledger,
        client: ProviderClient,
        *,
        policy: RetryPolicy,
        failpoints: Failpoints | None = None,
        settle_seconds: float = SETTLE_SECONDS,
        sleep: Callable[[float], None] | None = None,
        on_progress: Callable[[ChunkRecord, datetime | None], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
        account_timezone: str = "UTC",
        clock: Callable[[], datetime] | None = None,
        report: SubmitReport | None = None,
        in_flight: int = 1,
    ):
        self.ledger = ledger
        self.in_flight = max(1, in_flight)
        self._lock = threading.Lock()
        self.account_timezone = account_timezone
        self.clock = clock or now
        self.client = client
        self.policy = policy
        self.failpoints = failpoints or Failpoints(None)
        self.sleep = sleep or time.sleep
        self.settle_seconds = settle_seconds
        self.on_progress = on_progress or (lambda chunk, dialling_from: None)
        self.dialling_from: dict[str, datetime] = {}  # chunks started to dial later: when the provider was told
        self.on_retry = on_retry or (lambda message: None)
        self.report = report if report is not None else SubmitReport()

    def run(self, chunks: list[ChunkRecord]) -> SubmitReport:
        """Advance every chunk, up to `in_flight` at once, in order; stop taking new ones at the first provider that
        is down (or refuses a request), leaving the rest pending. A refusal is raised once the chunks in flight end.

        Each chunk's own moves stay in order (every state committed before its request);
        chunks in flight at once are independent batches.
        """
        queue = iter(enumerate(chunks))
        running: dict[Future, tuple[int, ChunkRecord]] = {}
        halted: str | None = None  # why no more chunks are taken
        refusal: ProviderError | None = None
        with ThreadPoolExecutor(max_workers=self.in_flight, thread_name_prefix="submit") as pool:
            while True:
                while halted is None and len(running) < self.in_flight:
                    item = next(queue, None)
                    if item is None:
                        break
                    running[pool.submit(self.advance, item[1])] = item
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f][0]):
                    _, chunk = running.pop(future)
                    try:
                        final = future.result()
                    except (TransientProviderError, AmbiguousOutcome) as exc:
                        self.report.unreachable = self.report.unreachable or isinstance(exc, ProviderUnreachable)
                        self._leave_pending(chunk, exc)
                        halted = halted or "not attempted: the provider was unavailable"
                    except ProviderError as exc:
                        self._leave_pending(chunk, exc)
                        halted, refusal = "not attempted after the provider refused a request", refusal or exc
                    else:
                        self.report.started.append(final.key)
                        self.on_progress(final, self.dialling_from.get(final.key))
        for _, rest in queue:
            self.report.pending[rest.key] = halted or "not attempted"
        if refusal is not None:
            raise refusal
        return self.report

    def _count_reconciled(self) -> None:
        with self._lock:
            self.report.reconciled += 1

    def _leave_pending(self, chunk: ChunkRecord, exc: Exception) -> None:
        self.ledger.note_error(chunk.key, str(exc))
        self.report.pending[chunk.key] = str(exc)

    def resolve(self, chunk: ChunkRecord) -> ChunkRecord:
        """A chunk left `creating` or `starting` by a killed run, settled by reading the provider (nothing is sent)."""
        if chunk.state == ChunkState.CREATING:
            return self._reconcile_create(chunk)
        if chunk.state == ChunkState.STARTING:
            return self._reconcile_start(chunk)
        return chunk

    def advance(self, chunk: ChunkRecord) -> ChunkRecord:
        """Take one chunk from whatever state it is in to `started`."""
        steps = {
            ChunkState.PLANNED: self._create,
            ChunkState.CREATING: self._reconcile_create,
            ChunkState.DRAFT_CREATED: self._start,
            ChunkState.STARTING: self._reconcile_start,
        }
        while chunk.state in steps:
            chunk = steps[ChunkState(chunk.state)](chunk)
        return chunk

    # ------------------------------------------------------------------ transitions

    def _schedule(self, chunk: ChunkRecord) -> Schedule:
        """The chunk's calling hours as this moment's provider fields (window on the account clock, trigger time)."""
        hours = chunk_hours(chunk)
        moment = self.clock()
        earliest = max(moment, aware(chunk.not_before)) if chunk.not_before else moment
        dialect = DIALECTS.get(self.client.dialect)
        on_account_clock = dialect is None or dialect.account_window  # batchcall is told a timezone and a start only
        window = account_window(chunk.timezone, hours, self.account_timezone, earliest) if on_account_clock else None
        trigger = next_open(chunk.timezone, hours, earliest)
        if trigger is not None and window is not None:  # a provider on the account clock dials inside its window only
            trigger = first_in_window(window, self.account_timezone, trigger)
        if trigger is None or (on_account_clock and window is None):
            raise ProviderError(f"batch {chunk.key}: calling window {chunk.window} {chunk.days} is never open in {chunk.timezone}")
        return Schedule(timezone=timezone_label(chunk.timezone), trigger_at=None if trigger == moment else trigger, window=window)

    def retrying(self, operation):
        """Run a request under the retry policy (only "not processed" errors are retried)."""
        return with_retries(
            operation, self.policy, sleep=self.sleep, on_retry=lambda n, delay, exc: self.on_retry(f"{exc}; retry {n} in {delay:.1f}s")
        )

    def _create(self, chunk: ChunkRecord) -> ChunkRecord:
        chunk = self.ledger.transition(chunk.key, ChunkState.PLANNED, ChunkState.CREATING, intent_at=now(), attempts=chunk.attempts + 1)
        self.failpoints.hit("after_mark_creating")
        people = self.ledger.chunk_contacts(chunk.key)
        try:
            schedule = self._schedule(chunk)
            remote = self.retrying(lambda: self.client.create_draft(chunk.batch_name, people, schedule))
        except AmbiguousOutcome as exc:
            self.on_retry(f"{exc}; reading back")
            return self._reconcile_create(chunk)
        except TransientProviderError:
            # every attempt was refused before processing (429/503/unreachable): nothing exists
            self.ledger.transition(chunk.key, ChunkState.CREATING, ChunkState.PLANNED)
            raise
        except ProviderError:
            self.ledger.transition(chunk.key, ChunkState.CREATING, ChunkState.PLANNED)
            raise
        self.failpoints.hit("after_create")
        if remote.status not in NOT_STARTED:  # a create answered with a batch already under way: recorded, then adopted
            chunk = self.ledger.transition(chunk.key, ChunkState.CREATING, ChunkState.DRAFT_CREATED, provider_batch_id=remote.id)
            self.failpoints.hit("after_record_draft")
            return self._start(chunk, remote)
        # The draft and the intent to start it in one commit, still before the start is sent: the create's answer is the
        # read-back a start needs (_start). A run killed after it finds the chunk starting and reads the batch back.
        moves = [(chunk.key, ChunkState.CREATING, ChunkState.DRAFT_CREATED), (chunk.key, ChunkState.DRAFT_CREATED, ChunkState.STARTING)]
        chunk = self.ledger.transition_many(moves, provider_batch_id=remote.id, intent_at=now())[-1]
        self.failpoints.hit("after_record_draft")
        self.failpoints.hit("after_mark_starting")
        return self._send_start(chunk)

    def _reconcile_create(self, chunk: ChunkRecord) -> ChunkRecord:
        """A create may have happened: find the batch by its name, never create blindly."""
        self._count_reconciled()
        keep = self.find_created(chunk)
        if keep is None:
            return self.ledger.transition(chunk.key, ChunkState.CREATING, ChunkState.PLANNED)
        if keep.status in NOT_STARTED:
            return self.ledger.transition(chunk.key, ChunkState.CREATING, ChunkState.DRAFT_CREATED, provider_batch_id=keep.id)
        return self._adopt(chunk, keep, provider_batch_id=keep.id)

    def find_created(self, chunk: ChunkRecord, *, discard: bool = True) -> RemoteBatch | None:
        """The batch a create that may have been sent made, looked up by name (twice, a settle apart).

        Several (creates resent by an earlier version, or by hand): one is kept — a started
        one if any — and the other drafts are discarded so nobody can start them.
        """
        since = (chunk.intent_at or chunk.created_at) - timedelta(seconds=5)
        matches = self._find(chunk, since)
        if not matches:
            self.sleep(self.settle_seconds)
            matches = self._find(chunk, since)
        if not matches:
            return None
        keep = _choose(matches)
        for extra in matches:
            if discard and extra.id != keep.id and extra.status in NOT_STARTED:
                try:
                    self.retrying(lambda extra=extra: self.client.discard_draft(extra.id))
                except (ProviderError, TransientProviderError) as exc:  # a stray draft never dials; note and go on
                    self.on_retry(f"could not discard duplicate draft {extra.id}: {exc}")
        return keep

    def _find(self, chunk: ChunkRecord, since: datetime) -> list[RemoteBatch]:
        return self.retrying(lambda: idempotent(lambda: self.client.find_by_name(chunk.batch_name, since)))

    def _start(self, chunk: ChunkRecord, remote: RemoteBatch | None = None) -> ChunkRecord:
        """Start a draft, after reading it back: a batch the provider no longer holds as a draft is never started.

        A draft may have been stopped (a cancel whose answer was lost, someone in the
        provider's console) or started by another hand since it was recorded; magpipe's
        `start` on a cancelled batch would call everyone again. A draft this run has just
        created is started on its create's answer, which is that read (_create: one request
        and one commit fewer per batch); a draft recorded by an earlier run, or found by
        name, is read again. `remote`: that answer.
        """
        remote = remote or self.read(chunk)
        if remote.status not in NOT_STARTED:
            return self._adopt(chunk, remote)
        chunk = self.ledger.transition(chunk.key, ChunkState.DRAFT_CREATED, ChunkState.STARTING, intent_at=now())
        self.failpoints.hit("after_mark_starting")
        return self._send_start(chunk)

    def _send_start(self, chunk: ChunkRecord) -> ChunkRecord:
        """Send the start of a chunk recorded as starting; an unclear or refused answer is read back."""
        try:
            schedule = self._schedule(chunk)
            self.retrying(lambda: self.client.start(chunk.provider_batch_id, schedule))
            if schedule.trigger_at is not None:
                with self._lock:
                    self.dialling_from[chunk.key] = schedule.trigger_at
        except AmbiguousOutcome as exc:
            self.on_retry(f"{exc}; reading back")
            return self._reconcile_start(chunk)
        except TransientProviderError:
            return self._reconcile_start(chunk, or_raise=True)
        except ProviderError as exc:
            if exc.status_code in (401, 403):
                self.ledger.transition(chunk.key, ChunkState.STARTING, ChunkState.DRAFT_CREATED)
                raise
            return self._reconcile_start(chunk)  # refused: read what the batch really is
        self.failpoints.hit("after_start")
        chunk = self.ledger.transition(chunk.key, ChunkState.STARTING, ChunkState.STARTED, started_at=now())
        self.failpoints.hit("after_record_started")
        return chunk

    def read(self, chunk: ChunkRecord) -> RemoteBatch:
        """The chunk's batch as the provider reports it now (reads are retried)."""
        return self.retrying(lambda: idempotent(lambda: self.client.get_batch(chunk.provider_batch_id)))

    def _adopt(self, chunk: ChunkRecord, remote: RemoteBatch, **values) -> ChunkRecord:
        """A batch the provider no longer holds as a draft: stopped stays stopped, started is followed by sync."""
        state = ChunkState(chunk.state)
        if remote.status in STOPPED:
            self.on_retry(f"batch {remote.id} is {remote.status} at the provider: it is not started")
            return self.ledger.transition(chunk.key, state, ChunkState.CANCELLED, **values)
        return self.ledger.transition(chunk.key, state, ChunkState.STARTED, started_at=now(), **values)

    def _reconcile_start(self, chunk: ChunkRecord, *, or_raise: bool = False) -> ChunkRecord:
        """A start may have happened: read the batch. Only a draft may be started (again)."""
        self._count_reconciled()
        remote = self.read(chunk)
        if remote.status in NOT_STARTED:
            chunk = self.ledger.transition(chunk.key, ChunkState.STARTING, ChunkState.DRAFT_CREATED)
            if or_raise:
                raise TransientProviderError(f"{self.client.label} kept refusing to start batch {remote.id}")
            return chunk
        return self._adopt(chunk, remote)


def _choose(matches: list[RemoteBatch]) -> RemoteBatch:
    """The batch to adopt: one already started if any (it must never start twice), else the oldest."""
    started = [m for m in matches if m.status not in NOT_STARTED]
    pool = started or matches
    return min(pool, key=lambda m: (m.created_at is None, m.created_at.timestamp() if m.created_at else 0.0))


def idempotent(request):
    """A request that may safely be repeated (a read, a stop): an ambiguous answer is retried like a refusal."""
    try:
        return request()
    except AmbiguousOutcome as exc:
        raise TransientProviderError(str(exc)) from exc
