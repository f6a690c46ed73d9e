"""Chunk stage: accepted contacts → batches no larger than the provider accepts, keyed by content."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.ingest.arrow import string_buffers


def cut(count: int, size: int) -> list[int]:
    """Where `count` rows of one zone set and one set of calling rules are cut into chunks of at most `size`:
    the end offset of each chunk. Every chunk but the last is full."""
    if size < 1:
        raise ValueError(f"a chunk holds at least one row, not {size}")
    return list(range(size, count, size)) + [count] if count else []


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


