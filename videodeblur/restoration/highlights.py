"""Point lights come back as points: the restored point spread of a linear filter, taken out.

A linear filter restores a point of light as its own point spread ``K = IFFT(H G)``: a compact
peak with rings around it (the regularised zeros of the kernel). In linear light a street lamp
is many times white, and against a dark background the rings of its ``a K`` are a bullseye.
Where the restored frame holds a compact bright peak whose neighbourhood has the shape of
``a K`` (on a flat background), the peak is taken as a point source of light ``a``: ``a K`` is
subtracted and ``a`` put back at the peak's pixel, which removes the rings and sharpens the
lamp to a point. This is Hogbom's CLEAN, with the filter's own point spread as the beam.

Peaks are looked for on a 4x smaller copy of the frame first (cheap), then confirmed at full
resolution. Pure NumPy and OpenCV on arrays: no I/O, no threads.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: A peak must stand this far above its neighbourhood's median, in linear light (1 = white).
MIN_EXCESS = 0.1
#: The peak's neighbourhood must correlate this well with the point spread.
MIN_CORRELATION = 0.7
#: At most this many point lights per frame (a frame full of them is not a frame of lamps).
MAX_POINTS = 2000
#: Detection works on a copy this many times smaller in each direction.
DECIMATION = 4


def point_spread_patch(resolution_spectrum, radius_px: int) -> np.ndarray:
    """The centred ``(2 radius + 1)^2`` patch of the point spread whose half spectrum is
    ``resolution_spectrum`` (``H G`` on some square grid larger than the patch)."""
    size = resolution_spectrum.shape[0]
    spread = np.fft.irfft2(resolution_spectrum, s=(size, size))
    spread = np.roll(np.roll(spread, radius_px, axis=0), radius_px, axis=1)
    return np.ascontiguousarray(spread[: 2 * radius_px + 1, : 2 * radius_px + 1], dtype=np.float32)


def patch_radius(kernel_shape: tuple[int, int]) -> int:
    """How far a restored point's rings reach worth removing: four kernel radii, 6 to 48 px."""
    return int(min(48, max(6, 2 * max(kernel_shape))))


def clean_points(restored: np.ndarray, spread: np.ndarray, scale: float, background_max: float = 0.5) -> int:
    """Replace point lights' ``a K`` by ``a`` in place; returns how many were found.

    Parameters
    ----------
    restored : numpy.ndarray
        The restored frame (float32, modified in place), in linear light times ``scale``.
    spread : numpy.ndarray
        The filter's point spread patch (:func:`point_spread_patch`), odd square.
    scale : float
        The units of ``restored``: linear light times this.
    background_max : float
        Only peaks on a background darker than this (linear light) are taken: rings are
        visible against dark surroundings, and a bright textured area is not a lamp.
    """
    radius = spread.shape[0] // 2
    rows, columns = restored.shape
    if rows <= 2 * radius + 2 * DECIMATION or columns <= 2 * radius + 2 * DECIMATION:
        return 0
    candidates = _candidates(restored, scale, radius, background_max)
    if len(candidates) == 0:
        return 0
    energy = float(np.dot(spread.ravel(), spread.ravel()))
    ring = np.hypot(*np.mgrid[-radius:radius + 1, -radius:radius + 1]) >= radius - 1.5
    found = 0
    for row, column in candidates:
        patch = restored[row - radius:row + radius + 1, column - radius:column + radius + 1]
        background = float(np.median(patch[ring]))
        if background > background_max * scale:
            continue
        deviation = patch - np.float32(background)
        amplitude = float(np.vdot(deviation, spread)) / energy
        if amplitude <= MIN_EXCESS * scale:
            continue
        norm = float(np.linalg.norm(deviation)) * math.sqrt(energy)
        if norm <= 0 or float(np.vdot(deviation, spread)) / norm < MIN_CORRELATION:
            continue
        patch -= np.float32(amplitude) * spread
        patch[radius, radius] += np.float32(amplitude)
        found += 1
    return found


def _candidates(restored: np.ndarray, scale: float, radius: int, background_max: float) -> np.ndarray:
    """Full-resolution peaks of the blocks of a 4x smaller copy that stand out of a dark local
    median, the most outstanding first (at most :data:`MAX_POINTS`)."""
    rows, columns = restored.shape
    small = cv2.resize(restored, (columns // DECIMATION, rows // DECIMATION), interpolation=cv2.INTER_AREA)
    median = cv2.medianBlur(small, 5)
    excess = small - median
    # A restored point spreads over a few pixels, so its block keeps a good share of its excess.
    outstanding = (excess > np.float32(MIN_EXCESS * scale)) & (median < np.float32(background_max * scale))
    blocks = np.argwhere(outstanding)
    if len(blocks) > MAX_POINTS:
        blocks = blocks[np.argsort(-excess[blocks[:, 0], blocks[:, 1]], kind="stable")[:MAX_POINTS]]
    peaks = set()
    for block_row, block_column in blocks:
        top, left = block_row * DECIMATION, block_column * DECIMATION
        window = restored[max(top - 1, 0):top + DECIMATION + 1, max(left - 1, 0):left + DECIMATION + 1]
        r, c = np.unravel_index(int(np.argmax(window)), window.shape)
        peak = (max(top - 1, 0) + int(r), max(left - 1, 0) + int(c))
        if radius <= peak[0] < rows - radius and radius <= peak[1] < columns - radius:
            peaks.add(peak)
    ordered = sorted(peaks, key=lambda p: -float(restored[p]))
    return np.array(ordered, dtype=np.int64).reshape(-1, 2)
