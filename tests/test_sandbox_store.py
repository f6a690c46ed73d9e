"""The sandbox's store in-process: what a batch looks like at any moment is what its planned calls say then."""

from __future__ import annotations

import random

import pytest

from pipelines.sandbox.simulation import TERMINAL, Window, call_status, plan_run
from pipelines.sandbox.state import SandboxStore

START = 1_900_000_000.0


def _store(clock) -> SandboxStore:
    return SandboxStore(None, speed=50, seed=3, clock=clock)


@pytest.mark.parametrize("seed", range(6))
def test_every_view_agrees_with_the_planned_calls(seed):
    """Statuses, counts and the batch status, read at moments before, during and after a run (scheduled ahead or
    started now, cancelled part way or not), equal what call_status says of each stored call: the shortcuts a view
    takes (nobody is dialled before the run's start) change nothing."""
    rng = random.Random(seed)
    now = [START]
    store = _store(lambda: now[0])
    batch = store.create("magpipe", f"b{seed}", "n", "draft", {}, [(f"+1415555{i:04d}", None, None, None) for i in range(40)])
    start_at = START + rng.choice([0.0, 30.0])
    store.start_run(batch.id, at=start_at, status="scheduled" if start_at > START else "running")
    cancel_at = START + rng.uniform(10, 60) if rng.random() < 0.5 else None
    for moment in sorted([START, start_at - 1, start_at, *(START + rng.uniform(0, 120) for _ in range(12))]):
        now[0] = moment
        if cancel_at is not None and moment >= cancel_at and store.get(batch.id).status != "cancelled":
            store.cancel(batch.id, at=cancel_at)
        stored = store.get(batch.id)
        calls = store._calls(stored.id, stored.run)
        cancelled = stored.status == "cancelled"
        expected = [call_status(call, moment, store.speed, cancelled=cancelled) for call in calls]
        for recipients in (False, True):
            view = store.view(stored, recipients=recipients)
            assert view.statuses == expected
            assert view.count("pending", "skipped") == sum(s in ("pending", "skipped") for s in expected)
            assert view.dial_times() == [call[0] for call, s in zip(calls, expected) if s not in ("pending", "skipped")]
            if recipients:
                assert [r.status for r in view.recipients] == expected
        if not cancelled:
            want = "scheduled" if moment < start_at else "completed" if set(expected) <= TERMINAL else "running"
            assert view.status == want


def test_a_batch_never_started_is_pending_throughout():
    store = _store(lambda: START)
    batch = store.create("batchcall", "b", "n", "draft", {}, [("+14155550100", None, None, None)] * 3)
    view = store.view(batch, recipients=False)
    assert view.statuses == ["pending"] * 3 and view.dial_times() == [] and view.status == "draft"


def test_a_run_is_planned_from_its_start_and_never_dials_before_it():
    calls = plan_run(500, start_at=START, window=Window(), concurrency=5, speed=1, seed="x")
    dials = [call[0] for call in calls]
    assert dials[0] == START and dials == sorted(dials)
    windowed = plan_run(50, start_at=START, window=Window("09:00", "10:00", (1, 2, 3, 4, 5)), concurrency=2, speed=1, seed="y")
    assert min(call[0] for call in windowed) >= START
