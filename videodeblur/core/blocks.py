"""Means of square blocks of a plane: the cheap, noise-averaged copy that detectors scan first."""

from __future__ import annotations

import cv2
import numpy as np

from videodeblur.errors import InvalidParameterError


def block_means(plane: np.ndarray, factor: int) -> np.ndarray:
    """Means of the ``factor`` x ``factor`` blocks of a 2-D plane (its sides cut to multiples of
    ``factor``).

    A power-of-two factor is reached by area resizes by 2: OpenCV vectorises that one and not
    the others (by 4 it is five times slower on an 8-bit frame). An integer plane is rounded
    at each halving, which moves a block's mean by at most one code; a float one is exact.

    Parameters
    ----------
    plane : numpy.ndarray
        uint8, uint16, float32 or float64 (OpenCV's area resize).
    factor : int
        Block side in pixels, at least 1 and at most the plane's sides.

    Returns
    -------
    numpy.ndarray
        ``(rows // factor, columns // factor)``, the plane's dtype.
    """
    rows, columns = plane.shape
    if factor < 1 or rows < factor or columns < factor:
        raise InvalidParameterError(f"blocks of {factor} px need a plane at least that large, got {columns}x{rows}")
    plane = plane[: rows - rows % factor, : columns - columns % factor]
    side = factor
    while side > 1 and side % 2 == 0:
        plane = cv2.resize(plane, (plane.shape[1] // 2, plane.shape[0] // 2), interpolation=cv2.INTER_AREA)
        side //= 2
    if side > 1:
        plane = cv2.resize(plane, (plane.shape[1] // side, plane.shape[0] // side), interpolation=cv2.INTER_AREA)
    return plane
