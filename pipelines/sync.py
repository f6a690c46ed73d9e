"""Sync stage: read every started batch that is not finished, and its recipients, into the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.errors import AmbiguousOutcome, TransientProviderError
from pipelines.ledger import Ledger, now
from pipelines.providers.base import ProviderClient
from pipelines.providers.retry import RetryPolicy, with_retries
from schemas.ledger import ChunkRecord, ChunkState, SnapshotRecord
from schemas.provider import FINAL_RECIPIENT, FINISHED, RemoteBatch


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


def sync(ledger: Ledger, client: ProviderClient, chunks: list[ChunkRecord], *, policy: RetryPolicy) -> SyncReport:
    """Read started batches (all of one provider) from it; a batch over at the provider, every recipient final, is `finished`."""
    report = SyncReport()
    stamp = now()
    snapshots = []
    for chunk in chunks:

        def read(batch_id=chunk.provider_batch_id):
            try:
                return client.get_detail(batch_id)
            except AmbiguousOutcome as exc:  # reads are idempotent
                raise TransientProviderError(str(exc)) from exc

        detail = with_retries(read, policy)
        ledger.record_sync(chunk, detail)
        report.batches.append(detail.batch)
        report.campaigns.add(chunk.campaign)
        b = detail.batch
        snapshots.append(
            SnapshotRecord(snapshot_at=stamp, provider_batch_id=b.id, campaign=chunk.campaign, chunk_key=chunk.key,
                           status=b.status, total=b.total, completed=b.completed, failed=b.failed)  # fmt: skip
        )
        if detail.batch.status in FINISHED and all(r.status in FINAL_RECIPIENT for r in detail.recipients):
            # a cancelled batch may still have calls in progress: it is read again until they end
            ledger.transition(chunk.key, ChunkState.STARTED, ChunkState.FINISHED)
            report.finished += 1
    if snapshots:
        ledger.record_snapshots(snapshots)
    return report
