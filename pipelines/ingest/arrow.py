"""Moving text columns between pandas and Arrow without per-row Python (public protocols only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

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
