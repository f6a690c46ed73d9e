"""Chunk stage: accepted contacts → batches no larger than the provider accepts, keyed by content."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from schemas.contacts import CHUNK_KEY, E164, BatchPlan

PROVIDER_LIMITS = {"batchcall": 1000, "magpipe": 500, "sandbox": 1000}


def batch_limit(provider: str, requested: int | None = None) -> int:
    """min(requested, the provider's limit): 1000 tasks for batchcall, 500 recipients for magpipe."""
    limit = PROVIDER_LIMITS[provider]
    return limit if requested is None else min(requested, limit)


def chunk_key(campaign: str, numbers: list[str]) -> str:
    """A stable key for a chunk: a hash of its campaign and its members in order."""
    digest = hashlib.sha256("\n".join([campaign, *numbers]).encode()).hexdigest()
    return "ck" + digest[:16]


def chunk(accepted: pd.DataFrame, campaign: str, size: int) -> tuple[pd.DataFrame, list[BatchPlan]]:
    """Cut contacts, in order, into chunks of at most `size`; add each row's chunk key."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    position = np.arange(len(accepted)) // size
    numbers = accepted[E164].to_numpy(dtype=object)
    keys, plans = [], []
    for index in range(int(position.max()) + 1 if len(accepted) else 0):
        members = numbers[index * size : (index + 1) * size].tolist()
        key = chunk_key(campaign, members)
        keys.append(key)
        plans.append(BatchPlan(key=key, size=len(members)))
    chunked = accepted.copy()
    # one key per chunk, stored once: a categorical, not a string per contact
    chunked[CHUNK_KEY] = pd.Categorical.from_codes(position, categories=keys) if keys else pd.Series(dtype=object)
    return chunked, plans
