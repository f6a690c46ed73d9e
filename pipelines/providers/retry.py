"""Exponential backoff with full jitter, honouring Retry-After, bounded in attempts and total time."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pipelines.errors import CampaignError, Retry

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_seconds: float = 0.5
    cap_seconds: float = 20.0
    budget_seconds: float = 120.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in [0, min(cap, base · 2^(attempt-1))]."""
        return rng() * min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))


def with_retries(
    operation: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[int, float, Exception], None] | None = None,
) -> T:
    """Run `operation`, retrying only errors whose class says "not processed, send again" (Retry.RESEND)."""
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except CampaignError as exc:
            if exc.retry is not Retry.RESEND or attempt >= policy.attempts:
                raise
            after = getattr(exc, "retry_after", None)
            delay = after if after is not None else policy.backoff(attempt)
            if clock() - started + delay > policy.budget_seconds:
                raise
            if on_retry:
                on_retry(attempt, delay, exc)
            sleep(delay)
