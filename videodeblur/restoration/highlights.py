"""Highlights without rings: clipped light estimated, point lights taken back to points.

**Clipped light.** A sensor clips at white: a clipped area carries no information on how bright
the light was, and a filter that takes its values as data sees a plateau at white where the
blurred light went on rising. The plateau's edge does not fit the blur, and the filter answers
it with rings (in daylight, around every blown sky and window). :func:`clipped_light` estimates
the light at clipped pixels that the rest of the frame explains: the values ``y + d`` (``d >= 0``,
only at clipped pixels) that the restoration's own re-blur ``T = H G`` reproduces, solved by a
few conjugate-gradient steps (the missing-data treatment of Cho, Wang and Lee 2011 with the
one-sided bound of Whyte et al. 2014: a clipped pixel was at least as bright as its value), on
2 x 2 block means of a region around each group of clipped pixels.

**Point lights.** A linear filter restores a point of light as its own point spread ``K = IFFT(H G)``: a compact
peak with rings around it (the regularised zeros of the kernel). In linear light a street lamp
is many times white, and against a dark background the rings of its ``a K`` are a bullseye.
Where the restored frame holds a compact bright peak whose neighbourhood has the shape of
``a K`` (on a flat background), the peak is taken as a point source of light ``a``: ``a K`` is
subtracted and ``a`` put back at the peak's pixel, which removes the rings and sharpens the
lamp to a point. This is Hogbom's CLEAN, with the filter's own point spread as the beam.

Peaks are looked for on the means of 4 x 4 blocks first (cheap), then confirmed at full
resolution, all candidates at once. Pure NumPy and OpenCV on arrays: no I/O, no threads.
"""

from __future__ import annotations

import cv2
import numpy as np

from videodeblur.core.blocks import block_means
from videodeblur.fft.plans import RealFFTPair

#: A pixel counts as clipped where its coded value is at least this fraction of white: a
#: codec's error spreads a clipped area a few codes below white at its edge.
CLIPPED_CODED = 0.977
#: Conjugate-gradient steps of :func:`clipped_light` (each one transform pair of the region's block means).
CLIPPED_STEPS = 8
#: A group of fewer clipped pixels is left as it is: the light it lacked is too little to ring.
MIN_CLIPPED_GROUP_PX = 16

#: A peak must stand this far above its neighbourhood's median, in linear light (1 = white).
MIN_EXCESS = 0.1
#: The peak's neighbourhood must correlate this well with the point spread.
MIN_CORRELATION = 0.8
#: ... and not clearly better (by this much) with the point spread of a small patch of light
#: this many pixels wide: a blob of texture a few pixels across also correlates with the point
#: spread, and taken for a point it becomes one bright pixel in a dark ring.
EXTENDED_SOURCE_PX, EXTENDED_MARGIN = 5, 0.02
#: At most this many point lights per frame (a frame full of them is not a frame of lamps).
MAX_POINTS = 500
#: Detection works on a copy this many times smaller in each direction.
DECIMATION = 4
#: The blocks' medians are taken in steps of this fraction of white (:func:`_median5`).
MEDIAN_STEPS_PER_WHITE = 2048


def clipped_light(light: np.ndarray, clipped: np.ndarray, resolution: np.ndarray,
                  steps: int = CLIPPED_STEPS) -> np.ndarray:
    """The light to add at clipped pixels so that the restoration explains the frame there.

    With ``T`` the restoration's re-blur (``H G``, half spectrum ``resolution``), the clipped
    pixels' values ``y_M + d`` are those that ``T`` reproduces: ``(I - T)_MM d = (T y - y)_M``,
    a symmetric positive semi-definite system (``T`` is real and between 0 and 1 at every
    frequency), solved by ``steps`` conjugate-gradient steps from ``d = 0``; then ``d`` is
    bounded below by 0 (a clipped pixel was at least as bright as its value).

    Parameters
    ----------
    light : numpy.ndarray
        (rows, columns) float32 light, periodic as the transform sees it (a region of the frame
        with a margin around the clipped pixels as wide as ``T``'s reach).
    clipped : numpy.ndarray
        Boolean mask of the clipped pixels, same shape.
    resolution : numpy.ndarray
        ``T``'s half spectrum on ``light.shape``, real.
    steps : int
        Conjugate-gradient steps (each one transform pair).

    Returns
    -------
    numpy.ndarray
        ``d``: float32, 0 off ``clipped``, at least 0 on it.
    """
    pair = RealFFTPair(light.shape)
    response = (resolution / light.size).astype(np.float32)
    mask = clipped.astype(np.float32)

    def unexplained(values: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``(I - T) values`` on the clipped pixels, 0 elsewhere, into ``out``."""
        pair.frame[...] = values
        spectrum = pair.forward()
        spectrum *= response
        np.subtract(values, pair.inverse(), out=out)
        out *= mask
        return out

    # (OpenCV's scaleAdd, a x + y in one pass, for the updates: no temporaries)
    increment = np.zeros(light.shape, np.float32)
    residual = -unexplained(light, np.empty_like(increment))
    direction = residual.copy()
    product = np.empty_like(increment)
    energy = float(np.vdot(residual, residual))
    for _ in range(steps):
        unexplained(direction, product)
        curvature = float(np.vdot(direction, product))
        if energy <= 0.0 or curvature <= 0.0:
            break
        step = energy / curvature
        cv2.scaleAdd(direction, step, increment, dst=increment)
        cv2.scaleAdd(product, -step, residual, dst=residual)
        next_energy = float(np.vdot(residual, residual))
        cv2.scaleAdd(direction, next_energy / energy, residual, dst=direction)
        energy = next_energy
    np.maximum(increment, 0.0, out=increment)
    return increment


def restored_clipped_light(light: np.ndarray, clipped: np.ndarray, kept: np.ndarray, resolution: np.ndarray,
                           response: np.ndarray, steps: int = CLIPPED_STEPS) -> np.ndarray:
    """The restoration ``G d`` of the light ``d`` the ``kept`` clipped pixels lacked.

    Meant for a grid of 2 x 2 block means of the frame: the light a clipped area lacked is
    blurred light, smooth at the scale of the kernel, and half the resolution is a quarter of
    the transforms' work. :func:`clipped_light` finds ``d`` at every clipped pixel; only the
    ``kept`` ones are restored (a region's own group: another group in its margin is another
    region's).

    Parameters
    ----------
    light : numpy.ndarray
        (rows, columns) float32 light, periodic as the transform sees it.
    clipped, kept : numpy.ndarray
        Boolean masks of the clipped pixels and of those whose light is restored, same shape.
    resolution, response : numpy.ndarray
        ``H G`` (real) and ``G`` (complex) on ``light.shape``'s half spectrum.
    steps : int
        Conjugate-gradient steps of :func:`clipped_light`.

    Returns
    -------
    numpy.ndarray
        ``G d``, float32 of ``light.shape``: the change to the restored frame.
    """
    increment = clipped_light(light, clipped, resolution, steps)
    increment *= kept
    pair = RealFFTPair(light.shape)
    pair.frame[...] = increment
    spectrum = pair.forward()
    spectrum *= (response / increment.size).astype(np.complex64)
    return pair.inverse().copy()


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
    # The fit reads a smaller neighbourhood than the rings reach: the core and the first ring
    # tell a point from texture, and the rest would only cost time.
    test = min(radius, max(4, int(np.argmax(np.cumsum(np.abs(spread[radius, radius:])) >=
                                            0.9 * np.abs(spread[radius, radius:]).sum())) + 3))
    if rows <= 2 * test + 2 * DECIMATION or columns <= 2 * test + 2 * DECIMATION:
        return 0
    # A peak needs its fit's neighbourhood inside the frame; its rings are taken out as far as
    # the frame goes (a lamp near the edge rings as visibly as one in the middle).
    candidates = _candidates(restored, scale, test, background_max)
    if len(candidates) == 0:
        return 0
    # Every candidate's neighbourhood at once: background (the median of its outer ring),
    # amplitude (least squares on the spread) and the correlations with the spread and with the
    # spread of a small patch of light.
    core = spread[radius - test:radius + test + 1, radius - test:radius + test + 1]
    ring = np.hypot(*np.mgrid[-test:test + 1, -test:test + 1]) >= test - 1.5
    kernels = np.stack([core.ravel(), cv2.blur(core, (EXTENDED_SOURCE_PX, EXTENDED_SOURCE_PX),
                                               borderType=cv2.BORDER_CONSTANT).ravel()]).astype(np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(restored, core.shape)
    background, amplitude, correlation, extended = _point_fits(
        windows[candidates[:, 0] - test, candidates[:, 1] - test], ring, kernels)
    passing = _is_point(background, amplitude, correlation, extended, scale, background_max)
    if not passing.any():
        return 0
    # Only a passing candidate is taken out, and only a candidate near one can change its fit
    # (the neighbour's rings go): the rest are never looked at again.
    near = np.zeros(len(candidates), bool)
    for row, column in candidates[passing]:
        near |= (np.abs(candidates[:, 0] - row) <= 2 * radius) & (np.abs(candidates[:, 1] - column) <= 2 * radius)
    taken: list[tuple[int, int]] = []
    for index in np.flatnonzero(near):
        row, column = candidates[index]
        fit = (background[index], amplitude[index], correlation[index], extended[index])
        if any(abs(row - r) <= 2 * radius and abs(column - c) <= 2 * radius for r, c in taken):
            # A neighbour was just taken out: fit again on what is left (its rings are gone).
            patch = restored[row - test:row + test + 1, column - test:column + test + 1]
            fit = tuple(v[0] for v in _point_fits(patch[None], ring, kernels))
        if not _is_point(*fit, scale, background_max):
            continue
        fitted_amplitude = np.float32(fit[1])
        (frame_rows, spread_rows), (frame_columns, spread_columns) = (
            _cut(row, radius, rows), _cut(column, radius, columns))
        restored[frame_rows, frame_columns] -= fitted_amplitude * spread[spread_rows, spread_columns]
        restored[row, column] += fitted_amplitude
        taken.append((int(row), int(column)))
    return len(taken)


def _cut(centre: int, radius: int, length: int) -> tuple[slice, slice]:
    """(frame slice, patch slice) along one axis of a ``2 radius + 1`` patch centred at
    ``centre`` on an axis of ``length``, both cut where the patch reaches past the frame."""
    start, stop = max(0, centre - radius), min(length, centre + radius + 1)
    return slice(start, stop), slice(start - centre + radius, stop - centre + radius)


def _is_point(background, amplitude, correlation, extended, scale: float, background_max: float):
    """Whether fits (arrays or numbers) are point lights: on a dark enough background, bright
    enough, shaped like the point spread and not like a small patch's (``extended``)."""
    return ((background <= background_max * scale) & (amplitude > MIN_EXCESS * scale)
            & (correlation >= MIN_CORRELATION) & (extended <= correlation + EXTENDED_MARGIN))


def _point_fits(patches: np.ndarray, ring: np.ndarray, kernels: np.ndarray):
    """(background, amplitude on ``kernels[0]``, correlation with each of the two kernels) of
    each patch, as arrays; the background is the median of the patch's ``ring``."""
    background = _row_medians(patches[:, ring])
    flat = patches.reshape(len(patches), -1).astype(np.float64)
    overlaps = flat @ kernels.T - background[:, None] * kernels.sum(axis=1)
    energies = np.einsum("ij,ij->i", kernels, kernels)
    deviation_norm = np.sqrt(np.maximum(np.einsum("ij,ij->i", flat, flat) - 2 * background * flat.sum(axis=1)
                                        + background**2 * flat.shape[1], 1e-30))
    correlations = overlaps / (deviation_norm[:, None] * np.sqrt(energies))
    return background, overlaps[:, 0] / energies[0], correlations[:, 0], correlations[:, 1]


def _row_medians(values: np.ndarray) -> np.ndarray:
    """``np.median(values, axis=1)``, from sorted rows: NumPy's vectorised sort of short rows is
    several times faster than its median's partition."""
    ordered = np.sort(values, axis=1)
    middle = values.shape[1] // 2
    if values.shape[1] % 2:
        return ordered[:, middle]
    return (ordered[:, middle - 1] + ordered[:, middle]) * ordered.dtype.type(0.5)


def _median5(small: np.ndarray, scale: float) -> np.ndarray:
    """The 5 x 5 median of ``small`` (float32, linear light times ``scale``), negative values
    counted as 0, to the nearest :data:`MEDIAN_STEPS_PER_WHITE`-th of white (at most 65535 steps).

    OpenCV vectorises its median of 16-bit integers, not of floats. Rounding keeps the order, so
    the median of the rounded values is the rounded median: at most half a step from the exact
    one, far below the thresholds it is compared with; and a median held at 65535 steps (32
    white) is no dark background.
    """
    steps_per_unit = MEDIAN_STEPS_PER_WHITE / scale
    median = cv2.medianBlur(cv2.multiply(small, steps_per_unit, dtype=cv2.CV_16U), 5)
    return cv2.multiply(median, 1.0 / steps_per_unit, dtype=cv2.CV_32F)


def _candidates(restored: np.ndarray, scale: float, radius: int, background_max: float) -> np.ndarray:
    """Full-resolution peaks of the :data:`DECIMATION`-pixel blocks whose mean stands out of
    the median of the 5 x 5 blocks around by :data:`MIN_EXCESS` on a median darker than
    ``background_max``, at least ``radius`` from the frame's edges, the most outstanding
    first (at most :data:`MAX_POINTS`)."""
    rows, columns = restored.shape
    d = DECIMATION
    small_shape = (rows // d, columns // d)
    # The mean of each block (an area resize by a whole factor): a restored point spreads over a
    # few pixels, so its block keeps a good share of its excess; the fits at full resolution
    # then tell lamps from texture.
    whole = restored[: small_shape[0] * d, : small_shape[1] * d]
    small = block_means(whole, d)
    median = _median5(small, scale)
    excess = small - median
    outstanding = (excess > np.float32(MIN_EXCESS * scale)) & (median < np.float32(background_max * scale))
    flat = np.flatnonzero(outstanding)
    if len(flat) > MAX_POINTS:
        flat = np.sort(flat[np.argpartition(-excess.ravel()[flat], MAX_POINTS)[:MAX_POINTS]])
    if len(flat) == 0:
        return np.empty((0, 2), np.intp)
    blocks = np.stack(np.divmod(flat, small_shape[1]), axis=1)
    # Each block's brightest pixel at full resolution, all blocks at once.
    tiles = whole.reshape(small_shape[0], d, small_shape[1], d)
    chosen = tiles[blocks[:, 0], :, blocks[:, 1], :].reshape(len(blocks), d * d)
    offset = np.argmax(chosen, axis=1)
    peaks = np.stack([blocks[:, 0] * d + offset // d, blocks[:, 1] * d + offset % d], axis=1)
    inside = ((peaks[:, 0] >= radius) & (peaks[:, 0] < rows - radius)
              & (peaks[:, 1] >= radius) & (peaks[:, 1] < columns - radius))
    peaks = peaks[inside]
    # Only local maxima: a lamp's blob spreads over neighbouring blocks, whose brightest pixels
    # are its flanks, not points of their own.
    values = restored[peaks[:, 0], peaks[:, 1]]
    neighbours = np.stack([restored[peaks[:, 0] + dr, peaks[:, 1] + dc]
                           for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc], axis=1)
    peaks = peaks[values >= neighbours.max(axis=1)]
    return peaks[np.argsort(-restored[peaks[:, 0], peaks[:, 1]], kind="stable")]
