"""Arrow text columns as the stages need them, without per-row Python (public protocols only)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def text_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one Arrow string array, nulls as ""."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    return column.fill_null("") if column.null_count else column


def text_chunks(column: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as Arrow strings, nulls as "", in the chunks it already has (no copy to join them)."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    return column.fill_null("") if column.null_count else column


def string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of an Arrow string array as numpy views, offsets already shifted by the array's slice offset."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset : values.offset + len(values) + 1]
    data_buffer = values.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets, data


def combined(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array (a ChunkedArray's chunks joined; an Array as it is)."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
