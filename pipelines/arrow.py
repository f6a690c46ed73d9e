"""Moving text columns between pandas and Arrow without per-row Python (public protocols only)."""

from __future__ import annotations

import ctypes
import os

import numpy as np
import pandas as pd
import pyarrow as pa

# Arrow's default allocator in the wheels (mimalloc) gives freed memory back to the kernel,
# so it comes back as fresh pages the kernel must zero: in a profiled 1M-row dry run, zeroing
# pages took 28% of the CPU samples with mimalloc and 8% with glibc's allocator, which makes
# that run ~20% faster (bench/RESULTS.md). An explicit ARROW_DEFAULT_MEMORY_POOL still wins.
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    pa.set_memory_pool(pa.system_memory_pool())


def _tune_glibc_malloc() -> None:
    """One malloc arena for all threads, and freed memory kept for reuse rather than handed back.

    Each thread otherwise gets its own arena, and memory freed in one is fresh, zeroed
    pages to the next: a 1M-row dry run touched ~20% more memory (faults and peak RSS).
    Not glibc (macOS, musl): nothing to do.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    for option, value in ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 1 << 30)):
        mallopt(ctypes.c_int(option), ctypes.c_int(value))


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's malloc.h
_tune_glibc_malloc()


def text_array(column: pd.Series) -> pa.Array:
    """A pandas column as one Arrow string array, nulls as "" (zero-copy when it is Arrow-backed)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = pa.array(column.cat.categories.astype(str).to_numpy(dtype=object), type=pa.string())
        codes = column.cat.codes.to_numpy()
        return categories.take(pa.array(codes, mask=codes < 0)).fill_null("")
    if isinstance(column.dtype, (pd.ArrowDtype, pd.StringDtype)):
        array = pa.array(column.array)
    else:
        array = pa.array(column.to_numpy(dtype=object), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_string(array.type):
        array = array.cast(pa.string())
    return array.fill_null("")


def text_chunks(column: pd.Series) -> pa.ChunkedArray:
    """A pandas column as Arrow strings, nulls as "", in the chunks it already has (no copy to join them)."""
    if isinstance(column.dtype, pd.ArrowDtype) and pa.types.is_string(column.dtype.pyarrow_dtype):
        array = pa.array(column.array)
        array = array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])
        return array.fill_null("") if array.null_count else array
    return pa.chunked_array([text_array(column)])


def text_series(array: pa.Array, index=None) -> pd.Series:
    """An Arrow string array as a pandas column, without copying."""
    return pd.Series(pd.arrays.ArrowExtensionArray(array), index=index, copy=False)


def string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of an Arrow string array as numpy views, offsets already shifted by the array's slice offset."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset : values.offset + len(values) + 1]
    data_buffer = values.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets, data
