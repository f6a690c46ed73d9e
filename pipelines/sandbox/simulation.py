"""Simulated dialling, as pure functions of timestamps.

A run's calls are planned once, when the run starts: each recipient gets a dial time
(in order, at most `concurrency` calls at once, one dial per `dial_interval`, only
inside the batch's window), a ring time, an end time and an outcome from a seeded RNG.
Every status is then derived from those timestamps and the current time, so nothing
runs between requests and a server restarted on the same state file carries on.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np

OUTCOMES = ("completed", "no_answer", "busy", "failed")
OUTCOME_WEIGHTS = (0.6, 0.2, 0.1, 0.1)
CUMULATIVE_WEIGHTS = tuple(itertools.accumulate(OUTCOME_WEIGHTS))[:-1]  # one draw in [0, 1) falls between them
DIAL_INTERVAL = 1.2  # seconds between dials, as the real dialler paces them
CALLING, INITIATED = 1.0, 1.0  # seconds spent in each status before ringing
RING = (3.0, 12.0)
TALK = (15.0, 90.0)


@dataclass(frozen=True)
class Window:
    """Calling hours on the server's clock (UTC): HH:MM inclusive to the minute, days 0=Sunday."""

    start: str = "00:00"
    end: str = "23:59"
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)

    def always_open(self) -> bool:
        """Every minute of every day (the window fields' defaults)."""
        return self.start == "00:00" and self.end == "23:59" and len(set(self.days)) == 7

    def next_open(self, at: float) -> float:
        """The first moment at or after `at` when a dial is allowed."""
        if self.always_open():
            return at
        moment = datetime.fromtimestamp(at, UTC)
        start_minutes, end_minutes = _minutes(self.start), _minutes(self.end)
        for day in range(8):
            current = moment if day == 0 else (moment + timedelta(days=day)).replace(hour=0, minute=0, second=0, microsecond=0)
            weekday = current.isoweekday() % 7
            if weekday not in self.days:
                continue
            minutes = current.hour * 60 + current.minute
            if start_minutes <= minutes <= end_minutes:
                return current.timestamp()
            if minutes < start_minutes:
                return current.replace(hour=start_minutes // 60, minute=start_minutes % 60, second=0, microsecond=0).timestamp()
        return at + 7 * 86400  # no allowed day: never, in practice


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class PlannedCall(NamedTuple):
    """One dial of one recipient in one run, as stored: a run's calls are kept as these five values each (a tuple or
    the list JSON gives back: `call_status` reads them by position)."""

    dial_at: float
    ring_end: float
    end_at: float
    outcome: str
    call_record_id: str


def plan_run(
    count: int, *, start_at: float, window: Window, concurrency: int, speed: float, seed: str
) -> list[tuple[float, float, float, str, str]]:
    """Plan when each of `count` recipients is dialled and how the call ends: one PlannedCall's values per recipient.

    One seeded stream per run (numpy's PCG64 from the seed's hash): outcomes, ring and talk
    times and call ids are drawn for the whole run at once, then the dials are placed in
    order — at most `concurrency` at once, one per dial interval, only inside the window.
    """
    concurrency = max(1, concurrency)
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "little"))
    outcomes = np.take(OUTCOMES, np.searchsorted(CUMULATIVE_WEIGHTS, rng.random(count), side="right")).tolist()
    ring = ((CALLING + INITIATED + rng.uniform(*RING, count)) / speed).tolist()
    talk = (rng.uniform(*TALK, count) / speed).tolist()
    ids = _uuid_texts(rng.bytes(16 * count).hex(), count)
    free_at = [start_at] * concurrency  # a heap: when each line is free again
    gap = DIAL_INTERVAL / speed
    last_dial = start_at - gap
    always_open = window.always_open()
    calls = []
    for outcome, ring_time, talk_time, record in zip(outcomes, ring, talk, ids):
        dial_at = last_dial + gap
        if free_at[0] > dial_at:
            dial_at = free_at[0]
        if not always_open:
            dial_at = window.next_open(dial_at)
        ring_end = dial_at + ring_time
        end_at = ring_end + talk_time if outcome == "completed" else ring_end
        calls.append((dial_at, ring_end, end_at, outcome, record))
        heapq.heapreplace(free_at, end_at)  # the line free soonest takes this call
        last_dial = dial_at
    return calls


def _uuid_texts(hexes: str, count: int) -> list[str]:
    """`count` 32-digit hex strings, concatenated, as UUID texts (8-4-4-4-12), formatted as one array."""
    digits = np.frombuffer(hexes.encode(), np.uint8).reshape(count, 32)
    dash = np.full((count, 1), ord("-"), np.uint8)
    parts = (digits[:, :8], dash, digits[:, 8:12], dash, digits[:, 12:16], dash, digits[:, 16:20], dash, digits[:, 20:])
    return np.ascontiguousarray(np.hstack(parts)).view("S36").ravel().astype("U36").tolist()


def call_status(call, now: float, speed: float, *, cancelled: bool = False) -> str:
    """A recipient's magpipe status at `now` from its call's stored values (None: never dialled): pending → calling →
    initiated → ringing → … → outcome."""
    if call is None or now < call[0]:
        return "skipped" if cancelled else "pending"
    if now < call[0] + CALLING / speed:
        return "calling"
    if now < call[0] + (CALLING + INITIATED) / speed:
        return "initiated"
    if now < call[1]:
        return "ringing"
    if call[3] == "completed" and now < call[2]:
        return "in_progress"
    return call[3]


TERMINAL = {"completed", "busy", "no_answer", "failed", "skipped"}


def iso(ts: float | None) -> str | None:
    """Epoch seconds → '2024-02-15T09:00:00.000Z', as magpipe writes times."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def millis(ts: float | None) -> int | None:
    """Epoch seconds → Unix milliseconds, as batchcall writes times."""
    return None if ts is None else int(round(ts * 1000))
