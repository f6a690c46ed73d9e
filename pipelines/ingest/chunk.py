"""Chunk stage: accepted contacts → batches no larger than the provider accepts, keyed by content."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.ingest.arrow import string_buffers, text_array
from schemas.contacts import CHUNK_KEY, E164, TIMEZONE, BatchPlan

FALLBACK_ZONE = "UTC"

def chunk_key(campaign: str, numbers: list[str]) -> str:
    """A stable key for a chunk: a hash of its campaign and its members in order."""
    digest = hashlib.sha256("\n".join([campaign, *numbers]).encode()).hexdigest()
    return "ck" + digest[:16]


def chunk_keys(campaign: str, digits: pa.Array, bounds: np.ndarray) -> list[str]:
    """chunk_key of each chunk of numbers digits[bounds[i]:bounds[i+1]] (E.164 without its '+'), hashed straight from the Arrow buffers."""
    lines = pc.binary_join_element_wise("+", digits, "\n", "")  # every number in E.164, followed by a newline
    offsets, data = string_buffers(lines)
    head = f"{campaign}\n".encode()
    keys = []
    for begin, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        digest = hashlib.sha256(head)
        digest.update(memoryview(data[offsets[begin] : offsets[end] - 1]))  # without the last newline
        keys.append("ck" + digest.hexdigest()[:16])
    return keys


def chunk(accepted: pd.DataFrame, campaign: str, size: int) -> tuple[pd.DataFrame, list[BatchPlan]]:
    """Cut contacts into chunks of at most `size`, one timezone set per chunk; add each row's chunk key.

    Rows keep their order within a timezone; timezones come in the order they first appear.
    """
    if size < 1:
        raise ValueError("batch size must be at least 1")
    if not len(accepted):
        chunked = accepted.copy()
        chunked[CHUNK_KEY] = pd.Series(dtype=object)
        return chunked, []
    zones = accepted[TIMEZONE] if TIMEZONE in accepted else pd.Series(FALLBACK_ZONE, index=accepted.index)
    codes, names = pd.factorize(zones.to_numpy(dtype=object))
    order = np.argsort(codes, kind="stable")
    ordered = accepted.iloc[order].reset_index(drop=True)
    sorted_codes = codes[order]
    # position of each row within its timezone, then a global chunk number per (timezone, position // size)
    starts = np.searchsorted(sorted_codes, np.arange(len(names)))
    within = np.arange(len(ordered)) - starts[sorted_codes]
    counts = np.bincount(sorted_codes, minlength=len(names))
    chunks_per_zone = -(-counts // size)
    first_chunk = np.concatenate([[0], np.cumsum(chunks_per_zone)[:-1]])
    position = first_chunk[sorted_codes] + within // size
    bounds = np.flatnonzero(np.diff(np.concatenate([[-1], position, [position[-1] + 1]])))
    keys = chunk_keys(campaign, pc.utf8_slice_codeunits(text_array(ordered[E164]), 1), bounds)  # without the "+"
    plans = [BatchPlan(key=key, size=int(end - begin), timezone=str(names[sorted_codes[begin]]))
             for key, begin, end in zip(keys, bounds[:-1], bounds[1:])]  # fmt: skip
    # one key per chunk, stored once: a categorical, not a string per contact
    ordered[CHUNK_KEY] = pd.Categorical.from_codes(position, categories=keys)
    return ordered, plans
