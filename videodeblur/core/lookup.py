"""Frame-sized table look-ups in one pass (compiled by Numba on first use).

Pure numeric functions on arrays: no I/O, no threads.
"""

from __future__ import annotations

import numpy as np


def rows_view(array: np.ndarray) -> np.ndarray:
    """``array`` (2-D) as a C-ordered array whose rows run the full row stride, the first
    ``array.shape[1]`` columns being ``array`` (a copy only where a row is not contiguous).

    The compiled loops take such an array and the number of columns to use: a view of the
    padded FFT buffer then needs no copy, and the loops can use vector instructions."""
    itemsize = array.dtype.itemsize
    if array.ndim != 2 or array.strides[1] != itemsize or array.strides[0] % itemsize or array.strides[0] < 0:
        array = np.ascontiguousarray(array)
        if array.ndim != 2:
            raise ValueError("rows_view needs a 2-D array")
    # The last row is widened to the stride; only the first shape[1] columns are ever read.
    return np.lib.stride_tricks.as_strided(array, (array.shape[0], array.strides[0] // itemsize),
                                           (array.strides[0], itemsize))


def encode_by_table(scaled: np.ndarray, table: np.ndarray, limit: float, fourth_root: bool,
                    out: np.ndarray) -> np.ndarray:
    """``out = table[int(clip(scaled, 0, limit) ** e)]``, ``e = 1/4`` where ``fourth_root`` else 1.

    Parameters
    ----------
    scaled : numpy.ndarray
        float32 values in table-index units (before the root), any shape (2-D views of a
        larger buffer are read in place).
    table : numpy.ndarray
        1-D table, at least ``int(limit ** e) + 1`` long, of ``out``'s dtype.
    limit : float
        Values are clipped to ``[0, limit]`` first; NaN takes the first entry.
    fourth_root : bool
    out : numpy.ndarray
        Array of ``scaled``'s shape, written in place.

    Returns
    -------
    numpy.ndarray
        ``out``.
    """
    from videodeblur.core import _compiled

    if scaled.shape != out.shape or scaled.dtype != np.float32 or out.dtype != table.dtype:
        raise ValueError(f"encode_by_table: {scaled.dtype} {scaled.shape} -> {out.dtype} {out.shape} "
                         f"through a {table.dtype} table")
    if int(float(limit) ** (0.25 if fourth_root else 1.0)) >= table.size:
        raise ValueError("encode_by_table: the limit reaches beyond the table")
    if scaled.ndim != 2:
        flat = np.empty((1, scaled.size), out.dtype)
        encode_by_table(np.ascontiguousarray(scaled).reshape(1, -1), table, limit, fourth_root, flat)
        out[...] = flat.reshape(out.shape)
        return out
    target = out if out.strides[1] == out.dtype.itemsize else np.empty_like(out)
    _compiled.encode_by_table(rows_view(scaled), scaled.shape[1], np.ascontiguousarray(table),
                              np.float32(limit), bool(fourth_root), rows_view(target))
    if target is not out:
        np.copyto(out, target)
    return out
