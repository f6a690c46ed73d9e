"""Fault injection for mutating requests: 429, 500, 503, slow answers and dropped connections."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field

KINDS = ("429", "500", "503", "slow", "reset")
SETTINGS = ("slow_seconds", "retry_after")


@dataclass
class FaultPlan:
    """Probability of each fault per mutating request, plus how slow 'slow' is and the Retry-After."""

    rates: dict[str, float] = field(default_factory=dict)
    slow_seconds: float = 30.0
    retry_after: float = 1.0

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan:
        """'429=0.1,500=0.1,reset=0.2,slow_seconds=3' → FaultPlan; raises ValueError with the culprit."""
        plan = cls()
        for part in filter(None, (p.strip() for p in (spec or "").split(","))):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or (key not in KINDS and key not in SETTINGS):
                raise ValueError(f"bad fault {part!r}: use KIND=PROBABILITY with KIND in {', '.join(KINDS + SETTINGS)}")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"bad fault {part!r}: {value!r} is not a number") from None
            if not math.isfinite(number):  # nan would slip past every comparison below
                raise ValueError(f"bad fault {part!r}: {value!r} is not a finite number")
            if key in SETTINGS:
                if number < 0:
                    raise ValueError(f"bad fault {part!r}: must not be negative")
                setattr(plan, key, number)
            else:
                if not 0 <= number <= 1:
                    raise ValueError(f"bad fault {part!r}: a probability is between 0 and 1")
                plan.rates[key] = number
        if sum(plan.rates.values()) > 1:
            raise ValueError("fault probabilities add up to more than 1")
        return plan

    def spec(self) -> str:
        parts = [f"{k}={v:g}" for k, v in self.rates.items() if v]
        return ",".join(parts + [f"slow_seconds={self.slow_seconds:g}", f"retry_after={self.retry_after:g}"])


class FaultInjector:
    """Draws one fault (or none) per mutating request and counts what it injected."""

    def __init__(self, plan: FaultPlan, seed: int):
        self._seed = seed
        self._lock = threading.Lock()
        self.set_plan(plan)

    def set_plan(self, plan: FaultPlan) -> None:
        """A new plan starts a new, reproducible sequence of draws, and counts from zero."""
        with self._lock:
            self.plan = plan
            self._rng = random.Random(f"faults:{self._seed}:{plan.spec()}")
            self.requests = 0
            self.injected: dict[str, int] = {kind: 0 for kind in KINDS}

    def draw(self) -> str | None:
        with self._lock:
            self.requests += 1
            roll = self._rng.random()
            for kind in KINDS:
                rate = self.plan.rates.get(kind, 0.0)
                if roll < rate:
                    self.injected[kind] += 1
                    return kind
                roll -= rate
            return None

    def commit_before_500(self) -> bool:
        """A 500 is ambiguous: half the time the change was committed before the server failed."""
        with self._lock:
            return self._rng.random() < 0.5

    def stats(self) -> dict:
        with self._lock:
            return {"mutating_requests": self.requests, "injected": dict(self.injected), "spec": self.plan.spec()}
