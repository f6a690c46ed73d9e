"""The Submitter in-process, over a fake provider that fails on cue: every state a chunk can be left in and every
kind of failure, checked in milliseconds. Each chunk ends with exactly one batch, started at most once, and a batch
that was stopped is never started. (tests/test_submit_exactly_once.py proves the same end to end: real processes
killed at each step, the sandbox over HTTP.)"""

from __future__ import annotations

import collections
import itertools
from datetime import UTC, datetime

import pytest

from pipelines.errors import AmbiguousOutcome, ProviderError, ProviderUnreachable, TransientProviderError
from pipelines.ledger import Ledger
from pipelines.providers.retry import RetryPolicy
from pipelines.submit import Submitter
from schemas.ledger import ChunkState
from schemas.provider import RemoteBatch
from tests.test_ledger_segments import _plan

FAILURES = {
    "refused": lambda: TransientProviderError("429 slow down", status_code=429),  # not processed
    "unreachable": lambda: ProviderUnreachable("cannot reach fake"),  # not processed
    "lost": lambda: AmbiguousOutcome("timeout: the change may or may not have been made"),  # processed, answer lost
    "timed_out": lambda: AmbiguousOutcome("timeout: the change may or may not have been made"),  # not processed
    "rejected": lambda: ProviderError("400 bad request", status_code=400),
}


class FakeProvider:
    """An in-memory batchcall-like provider. `fail[operation]` is a list of failure names used one per call; "lost"
    applies the change before failing, the others fail before it."""

    dialect = "batchcall"
    label = "fake"

    def __init__(self, **fail: list[str]):
        self.fail = {operation: list(names) for operation, names in fail.items()}
        self.batches: dict[str, dict] = {}
        self.started: list[str] = []  # every start that took effect
        self.created: list[str] = []  # every create that took effect
        self.ids = itertools.count(1)
        self.calls: collections.Counter[str] = collections.Counter()  # requests made, by operation

    def _failure(self, operation: str) -> str | None:
        names = self.fail.get(operation)
        return names.pop(0) if names else None

    def _call(self, operation: str, effect):
        self.calls[operation] += 1
        failure = self._failure(operation)
        if failure == "lost":
            effect()
        if failure:
            raise FAILURES[failure]()
        return effect()

    def _remote(self, batch_id: str) -> RemoteBatch:
        batch = self.batches[batch_id]
        return RemoteBatch(id=batch_id, name=batch["name"], status=batch["status"], created_at=batch["created_at"])

    def create_draft(self, name, people, schedule) -> RemoteBatch:
        def effect():
            batch_id = f"b{next(self.ids)}"
            self.batches[batch_id] = {"name": name, "status": "draft", "size": len(people), "created_at": datetime.now(UTC)}
            self.created.append(name)
            return self._remote(batch_id)

        return self._call("create", effect)

    def start(self, batch_id, schedule) -> None:
        def effect():
            if self.batches[batch_id]["status"] != "draft":
                raise ProviderError(f"{batch_id} is {self.batches[batch_id]['status']}", status_code=400)
            self.batches[batch_id]["status"] = "running"
            self.started.append(batch_id)

        self._call("start", effect)

    def find_by_name(self, name, since) -> list[RemoteBatch]:
        return self._call("find", lambda: [self._remote(i) for i, b in self.batches.items() if b["name"] == name])

    def get_batch(self, batch_id) -> RemoteBatch:
        return self._call("get", lambda: self._remote(batch_id))

    def get_detail(self, batch_id):
        raise AssertionError("submission never reads recipients")

    def discard_draft(self, batch_id) -> None:
        self.batches[batch_id]["status"] = "cancelled"

    def stop(self, batch_id, status) -> None:
        self.batches[batch_id]["status"] = "cancelled"

    def close(self) -> None:
        pass


def _ledger(tmp_path, chunks: int = 3) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    _plan(ledger, "c", {f"ck{i}": [f"+1415555{i:04d}"] for i in range(chunks)})
    return ledger


def _submitter(ledger: Ledger, provider: FakeProvider, in_flight: int = 2) -> Submitter:
    policy = RetryPolicy(attempts=3, base_seconds=0, budget_seconds=60)
    return Submitter(ledger, provider, policy=policy, settle_seconds=0, sleep=lambda seconds: None, in_flight=in_flight)


def _exactly_once(ledger: Ledger, provider: FakeProvider) -> None:
    """Every chunk started, with one batch of its own that was started once; no other batch can ever dial."""
    chunks = ledger.chunks("c")
    assert {c.state for c in chunks} == {ChunkState.STARTED}
    assert sorted(provider.started) == sorted(c.provider_batch_id for c in chunks)
    live = [i for i, b in provider.batches.items() if b["status"] != "cancelled"]
    assert sorted(live) == sorted(c.provider_batch_id for c in chunks)


@pytest.mark.parametrize("operation", ["create", "start", "get", "find"])
@pytest.mark.parametrize("failure", ["refused", "unreachable", "lost", "timed_out"])
def test_every_chunk_is_started_exactly_once_whatever_fails_once(tmp_path, operation, failure):
    ledger = _ledger(tmp_path)
    provider = FakeProvider(**{operation: [failure]})
    report = _submitter(ledger, provider).run(ledger.pending_chunks("c"))
    _exactly_once(ledger, provider)
    assert sorted(report.started) == ["ck0", "ck1", "ck2"] and not report.pending
    if operation in ("create", "start") and failure in ("lost", "timed_out"):
        assert report.reconciled >= 1  # an ambiguous change was read back, never sent again blindly


def test_a_provider_that_stays_down_leaves_everything_pending_and_sends_nothing_twice(tmp_path):
    ledger = _ledger(tmp_path)
    provider = FakeProvider(create=["unreachable"] * 20)
    report = _submitter(ledger, provider, in_flight=1).run(ledger.pending_chunks("c"))
    assert report.unreachable and sorted(report.pending) == ["ck0", "ck1", "ck2"] and not report.started
    assert {c.state for c in ledger.chunks("c")} == {ChunkState.PLANNED} and not provider.batches
    provider.fail.clear()  # back up: the next run takes everything
    _submitter(ledger, provider).run(ledger.pending_chunks("c"))
    _exactly_once(ledger, provider)


def test_a_refusal_ends_the_run_with_the_chunk_left_planned(tmp_path):
    ledger = _ledger(tmp_path)
    provider = FakeProvider(create=["rejected"])
    with pytest.raises(ProviderError, match="400"):
        _submitter(ledger, provider, in_flight=1).run(ledger.pending_chunks("c"))
    assert ledger.chunk("ck0").state == ChunkState.PLANNED and "400" in ledger.chunk("ck0").last_error


def test_a_draft_made_a_moment_ago_is_started_on_its_creates_answer_without_a_read(tmp_path):
    ledger = _ledger(tmp_path)
    provider = FakeProvider()
    _submitter(ledger, provider).run(ledger.pending_chunks("c"))
    _exactly_once(ledger, provider)
    assert provider.calls == {"create": 3, "start": 3}


def test_a_batch_stopped_at_the_provider_before_its_start_is_never_started(tmp_path):
    ledger = _ledger(tmp_path, chunks=1)
    provider = FakeProvider()
    submitter = _submitter(ledger, provider)
    ledger.transition("ck0", ChunkState.PLANNED, ChunkState.CREATING)
    remote = provider.create_draft("ck0", [], None)
    chunk = ledger.transition("ck0", ChunkState.CREATING, ChunkState.DRAFT_CREATED, provider_batch_id=remote.id)
    provider.batches[remote.id]["status"] = "cancelled"  # someone stopped it in the provider's console
    assert submitter.advance(chunk).state == ChunkState.CANCELLED
    assert provider.started == [] and provider.calls["get"] == 1  # a draft recorded earlier is read before its start


@pytest.mark.parametrize(
    "state,remote_status,creates,starts",
    [
        (ChunkState.CREATING, None, 1, 1),  # killed before the create was sent: created once now
        (ChunkState.CREATING, "draft", 0, 1),  # killed after the create: adopted by name, not created again
        (ChunkState.CREATING, "running", 0, 0),  # killed after create and start: adopted as started
        (ChunkState.DRAFT_CREATED, "draft", 0, 1),
        (ChunkState.STARTING, "draft", 0, 1),  # the start never took effect: read back, started once
        (ChunkState.STARTING, "running", 0, 0),  # the start took effect: read back, not sent again
    ],
)
def test_a_chunk_left_in_any_state_by_a_killed_run_is_finished_once(tmp_path, state, remote_status, creates, starts):
    ledger = _ledger(tmp_path, chunks=1)
    provider = FakeProvider()
    moves = {ChunkState.CREATING: [ChunkState.CREATING], ChunkState.DRAFT_CREATED: [ChunkState.CREATING, ChunkState.DRAFT_CREATED],
             ChunkState.STARTING: [ChunkState.CREATING, ChunkState.DRAFT_CREATED, ChunkState.STARTING]}[state]  # fmt: skip
    remote_id = None
    if remote_status is not None:
        remote_id = provider.create_draft("ck0", [], None).id
        provider.batches[remote_id]["status"] = remote_status
        provider.created.clear()
    before = ChunkState.PLANNED
    for after in moves:
        ledger.transition("ck0", before, after, **({"provider_batch_id": remote_id} if after == ChunkState.DRAFT_CREATED else {}))
        before = after
    already_started = remote_status == "running"
    _submitter(ledger, provider).run(ledger.pending_chunks("c"))
    chunk = ledger.chunk("ck0")
    assert chunk.state == ChunkState.STARTED and len(provider.created) == creates and len(provider.started) == starts
    assert len(provider.batches) == 1 and (chunk.provider_batch_id == remote_id or remote_id is None)
    assert already_started or provider.batches[chunk.provider_batch_id]["status"] == "running"
