"""Sync stage: read every started batch that is not finished, and its recipients, into the ledger."""

from __future__ import annotations

import itertools
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pipelines.errors import AmbiguousOutcome, TransientProviderError
from pipelines.ledger import Ledger, now
from pipelines.providers.base import ProviderClient
from pipelines.providers.retry import RetryPolicy, with_retries
from schemas.ledger import ChunkRecord, SnapshotRecord
from schemas.provider import FINAL_RECIPIENT, FINISHED, RemoteBatch


RECORD_BATCHES = 32  # batches read recorded together: one transaction (and one disk flush) for up to this many


@dataclass
class SyncReport:
    batches: list[RemoteBatch] = field(default_factory=list)
    finished: int = 0
    recipients: int = 0  # recipients of the batches read (each once)
    recipients_final: int = 0  # of those, whose call is over
    polls: int = 0
    skipped_other_provider: int = 0
    campaigns: set[str] = field(default_factory=set)
    publish_error: Exception | None = None  # the DuckDB file could not be updated (the ledger is intact)
    unread: dict[str, str] = field(default_factory=dict)  # provider → why its batches could not be read (credentials)
    unfinished: int = 0  # batches followed that are not finished when the sync ended

    def merge(self, later: SyncReport) -> SyncReport:
        """This report followed by a later one: each batch as last read, counts added up."""
        latest = {b.id: b for b in self.batches} | {b.id: b for b in later.batches}
        return SyncReport(
            list(latest.values()), self.finished + later.finished, later.recipients, later.recipients_final,
            self.polls + later.polls, later.skipped_other_provider, self.campaigns | later.campaigns,
            later.publish_error or self.publish_error, self.unread | later.unread, later.unfinished,
        )


def sync(ledger: Ledger, client: ProviderClient, chunks: list[ChunkRecord], *, policy: RetryPolicy, in_flight: int = 4) -> SyncReport:
    """Read started batches (all of one provider) from it; a batch over at the provider, every recipient final, is `finished`.

    Up to `in_flight` batches are read at once (reads are idempotent: each is retried under
    `policy`, 429/Retry-After honoured) while this thread records what arrived, in order,
    RECORD_BATCHES to a transaction, so the provider's work and this process's overlap.
    If a read fails, what was read before it is recorded first.
    """
    report = SyncReport()
    stamp = now()
    snapshots = []

    def read(batch_id: str):
        def once():
            try:
                return client.get_detail(batch_id)
            except AmbiguousOutcome as exc:  # reads are idempotent
                raise TransientProviderError(str(exc)) from exc

        return with_retries(once, policy)

    with ThreadPoolExecutor(max(1, in_flight), thread_name_prefix="sync") as pool:
        reads = deque()
        pending = iter(chunks)
        for chunk in itertools.islice(pending, in_flight):
            reads.append((chunk, pool.submit(read, chunk.provider_batch_id)))
        arrived: list = []
        while reads:
            chunk, future = reads.popleft()
            try:
                detail = future.result()
            except BaseException:
                for _, other in reads:
                    other.cancel()
                _record(ledger, arrived, report, stamp, snapshots)  # what was read is kept
                raise
            following = next(pending, None)
            if following is not None:
                reads.append((following, pool.submit(read, following.provider_batch_id)))
            arrived.append((chunk, detail))
            if len(arrived) >= RECORD_BATCHES or not reads:
                _record(ledger, arrived, report, stamp, snapshots)
                arrived = []
    if snapshots:
        ledger.record_snapshots(snapshots)
    return report


def _record(ledger: Ledger, arrived: list, report: SyncReport, stamp, snapshots: list) -> None:
    """Batches read, recorded in one transaction; a batch over at the provider, every recipient final, is finished
    (a cancelled batch may still have calls in progress: it is read again until they end)."""
    if not arrived:
        return
    finished = {chunk.key for chunk, detail in arrived
                if detail.batch.status in FINISHED and all(r.status in FINAL_RECIPIENT for r in detail.recipients)}  # fmt: skip
    ledger.record_sync(arrived, finished)
    report.finished += len(finished)
    for chunk, detail in arrived:
        b = detail.batch
        report.batches.append(b)
        report.campaigns.add(chunk.campaign)
        snapshots.append(SnapshotRecord(snapshot_at=stamp, provider_batch_id=b.id, campaign=chunk.campaign, chunk_key=chunk.key,
                                        status=b.status, total=b.total, completed=b.completed, failed=b.failed))  # fmt: skip
