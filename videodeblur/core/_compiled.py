"""Loops NumPy cannot fuse, compiled by Numba. Imported on first use: the import costs a quarter
of a second that runs which never need these should not pay.

Pure numeric functions on arrays: no I/O, no threads (they release the GIL, so the pipeline's
worker threads run them side by side). Arrays come in C order with the columns to use given
apart (:func:`videodeblur.core.lookup.rows_view`): a strided view would keep the compiled loops
from using vector instructions.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def encode_by_table(scaled, columns, table, limit, fourth_root, out):  # pragma: no cover - compiled
    """``out[r, :columns] = table[int(clip(scaled[r, :columns], 0, limit) ** e)]`` for every row
    ``r``, with ``e = 1/4`` where ``fourth_root`` else 1; NaN indexes the first entry.

    One pass: NumPy needs a clip, a conversion of the indexes to ``intp`` (a frame-sized array of
    8-byte integers) and the gather, three passes over the frame.
    """
    index = np.empty(columns, np.int32)
    zero = np.float32(0.0)
    for row in range(scaled.shape[0]):
        values = scaled[row, :columns]
        if fourth_root:
            for column in range(columns):
                value = values[column]
                value = value if value > zero else zero  # NaN too
                value = value if value < limit else limit
                index[column] = np.int32(np.sqrt(np.sqrt(value)))
        else:
            for column in range(columns):
                value = values[column]
                value = value if value > zero else zero
                value = value if value < limit else limit
                index[column] = np.int32(value)
        target = out[row, :columns]
        for column in range(columns):
            target[column] = table[index[column]]

