"""Edge tapering: make a frame periodic so circular deconvolution does not ring at its borders.

The method is MATLAB's ``edgetaper``: the frame is blended with a circularly blurred copy of
itself, with weights taken from the kernel's autocorrelation, so that the result wraps around
smoothly. Weights are 0 on the border and 1 further than one kernel width inside, so only two
bands along the borders change; only those bands are blurred here, which makes tapering cheap
next to the FFTs of the deconvolution itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from videodeblur.errors import InvalidParameterError


def taper_profile(length: int, psf_projection: np.ndarray) -> np.ndarray:
    """1-D edgetaper weights along one axis.

    Parameters
    ----------
    length : int
        Number of pixels along the axis (>= 2).
    psf_projection : numpy.ndarray
        The kernel summed over the other axis.

    Returns
    -------
    numpy.ndarray
        float32 weights of ``length``: 0 at both ends, 1 from one kernel width inside.
    """
    projection = np.asarray(psf_projection, dtype=np.float64)
    period = length - 1
    # Autocorrelation of the projection on a circle of length-1, closed with its first value
    # so that both the first and the last pixel get weight 0, as in MATLAB.
    spectrum = np.fft.rfft(projection, period)
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2, period)
    autocorrelation = np.append(autocorrelation, autocorrelation[0])
    autocorrelation /= autocorrelation.max()
    weights = 1.0 - autocorrelation
    weights[np.abs(weights) < 1e-7] = 0.0
    weights[np.abs(weights - 1.0) < 1e-7] = 1.0
    return np.clip(weights, 0.0, 1.0).astype(np.float32)


def edgetaper_weights(shape: tuple[int, int], psf: np.ndarray) -> np.ndarray:
    """2-D edgetaper weights (outer product of the per-axis profiles).

    Returns
    -------
    numpy.ndarray
        float32 array of ``shape``: 0 on the border, 1 more than a kernel width inside.
    """
    row_weights, column_weights = _profiles(shape, psf)
    return np.outer(row_weights, column_weights)


def _profiles(shape, psf):
    psf = np.asarray(psf, dtype=np.float64)
    rows, columns = shape
    if rows < 2 or columns < 2:
        raise InvalidParameterError(f"edgetaper needs a frame of at least 2x2 pixels, got {columns}x{rows}")
    if psf.shape[0] > rows or psf.shape[1] > columns:
        raise InvalidParameterError(
            f"the PSF ({psf.shape[1]}x{psf.shape[0]} px) is larger than the frame ({columns}x{rows} px)"
        )
    return taper_profile(rows, psf.sum(axis=1)), taper_profile(columns, psf.sum(axis=0))


def _band_widths(weights: np.ndarray) -> tuple[int, int]:
    """Number of leading and trailing entries with weight < 1."""
    inside = np.nonzero(weights >= 1.0)[0]
    if inside.size == 0:
        return weights.size, 0
    return int(inside[0]), int(weights.size - 1 - inside[-1])


def _separable_factors(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(column, row) vectors whose outer product is ``kernel``, or None if it is not rank 1."""
    if min(kernel.shape) == 1:
        return None  # already 1-D: filter2D is as fast
    u, singular, vt = np.linalg.svd(kernel.astype(np.float64))
    if singular[1] > 1e-6 * singular[0]:
        return None
    scale = np.sqrt(singular[0])
    return (u[:, 0] * scale).astype(np.float32), (vt[0] * scale).astype(np.float32)


@dataclass(frozen=True)
class _Band:
    """One of the two strips that tapering changes: the frame's first and last rows (or columns).

    ``rows``/``columns`` are the slices whose blocks, side by side, gather with wrap-around
    the strip plus the kernel's reach around it (so that the valid part of its blur is the
    band); ``pieces`` are ``(frame slice, blurred slice, 1 - alpha)`` for the band's two halves
    (the wrapped-around end comes first).
    """

    rows: tuple[slice, ...]
    columns: tuple[slice, ...]
    pieces: tuple

    def gather(self, image: np.ndarray) -> np.ndarray:
        """The strip, C-contiguous (OpenCV filters it fastest so), copied block by block:
        plain slices, which unlike fancy indexing never copy a strided frame whole."""
        return np.concatenate(
            [np.concatenate([image[rows, columns] for columns in self.columns], axis=1) for rows in self.rows],
            axis=0,
        )


def _circular_slices(start: int, stop: int, length: int) -> tuple[slice, ...]:
    """Slices of an axis of ``length`` that, one after the other, cover indices
    ``start .. stop - 1`` taken modulo ``length``."""
    slices = []
    index = start
    while index < stop:
        first = index % length
        count = min(stop - index, length - first)
        slices.append(slice(first, first + count))
        index += count
    return tuple(slices)


@dataclass(frozen=True)
class TaperPlan:
    """Everything :func:`edgetaper_inplace` needs that depends only on (frame shape, kernel).

    Build it once with :func:`taper_plan`; tapering a frame then only gathers two thin strips,
    blurs them and blends them in.
    """

    shape: tuple[int, int]
    kernel_shape: tuple[int, int]
    #: The flipped kernel's (column, row) factors when it is separable, else None.
    factors: tuple[np.ndarray, np.ndarray] | None
    #: ``(row, column, taps)``: the flipped kernel in blocks of one shape (:func:`_kernel_pieces`).
    kernel_pieces: tuple
    bands: tuple[_Band, ...]


def taper_plan(shape: tuple[int, int], psf: np.ndarray) -> TaperPlan:
    """Precompute the edgetaper of frames of ``shape`` by ``psf`` (see :func:`edgetaper`).

    Raises
    ------
    InvalidParameterError
        A frame under 2x2 pixels or a kernel larger than the frame.
    """
    psf = np.asarray(psf, dtype=np.float32)
    rows, columns = (int(n) for n in shape)
    row_weights, column_weights = _profiles((rows, columns), psf)
    top, bottom = _band_widths(row_weights)
    left, right = _band_widths(column_weights)
    kernel_rows, kernel_columns = psf.shape
    centre_y, centre_x = kernel_rows // 2, kernel_columns // 2
    # Offsets of the kernel's support before and after its centre, per axis.
    before_y, after_y = kernel_rows - 1 - centre_y, centre_y
    before_x, after_x = kernel_columns - 1 - centre_x, centre_x
    bands = []
    if top + bottom:
        # Rows -bottom .. top-1 (negative indices wrap): both horizontal bands in one strip.
        strip_rows = _circular_slices(-bottom - before_y, top + after_y, rows)
        strip_columns = _circular_slices(-before_x, columns + after_x, columns)
        pieces = (
            ((slice(rows - bottom, rows), slice(None)), (slice(0, bottom), slice(None)),
             1.0 - row_weights[rows - bottom:, None] * column_weights[None, :]),
            ((slice(0, top), slice(None)), (slice(bottom, bottom + top), slice(None)),
             1.0 - row_weights[:top, None] * column_weights[None, :]),
        )
        bands.append(_Band(strip_rows, strip_columns, pieces))
    if left + right and rows - bottom - top > 0:
        inner = slice(top, rows - bottom)  # rows not already written through the row bands
        strip_rows = _circular_slices(top - before_y, rows - bottom + after_y, rows)
        strip_columns = _circular_slices(-right - before_x, left + after_x, columns)
        pieces = (
            ((inner, slice(columns - right, columns)), (slice(None), slice(0, right)),
             1.0 - row_weights[inner, None] * column_weights[None, columns - right:]),
            ((inner, slice(0, left)), (slice(None), slice(right, right + left)),
             1.0 - row_weights[inner, None] * column_weights[None, :left]),
        )
        bands.append(_Band(strip_rows, strip_columns, pieces))
    # OpenCV correlates: correlating with the flipped kernel convolves with the PSF.
    flipped = np.ascontiguousarray(psf[::-1, ::-1])
    return TaperPlan((rows, columns), psf.shape, _separable_factors(flipped), _kernel_pieces(flipped), tuple(bands))


#: OpenCV's filter2D switches to a DFT for kernels of 50 taps or more, which on the thin strips
#: tapering blurs is several times slower than filtering directly.
DIRECT_FILTER_MAX_TAPS = 49


def _kernel_pieces(kernel: np.ndarray) -> tuple:
    """``(row, column, taps)`` such that correlating with each ``taps`` at that offset and
    summing equals correlating with ``kernel``: the whole kernel when it is small enough to be
    filtered directly, else blocks of at most :data:`DIRECT_FILTER_MAX_TAPS` taps. All blocks
    have one shape (taps already covered by an earlier block are zeroed), so the partial results
    have one shape too and add up contiguously; all-zero blocks are left out.
    """
    if kernel.size <= DIRECT_FILTER_MAX_TAPS:
        return ((0, 0, kernel),)

    def even_runs(length: int, most: int) -> tuple[int, int]:
        count = -(-length // most)
        return count, -(-length // count)

    kernel_rows, kernel_columns = kernel.shape
    column_runs, width = even_runs(kernel_columns, DIRECT_FILTER_MAX_TAPS)
    row_runs, height = even_runs(kernel_rows, DIRECT_FILTER_MAX_TAPS // width)
    covered = np.zeros(kernel.shape, dtype=bool)
    pieces = []
    for row_run in range(row_runs):
        row = min(row_run * height, kernel_rows - height)
        for column_run in range(column_runs):
            column = min(column_run * width, kernel_columns - width)
            block = (slice(row, row + height), slice(column, column + width))
            taps = np.where(covered[block], 0.0, kernel[block]).astype(np.float32)
            covered[block] = True
            if np.any(taps):
                pieces.append((row, column, taps))
    return tuple(pieces)


def _blur_valid(strip: np.ndarray, plan: TaperPlan) -> np.ndarray:
    """The strip correlated with the flipped kernel where the kernel fits inside it (its
    "valid" part: ``kernel_rows - 1`` fewer rows and ``kernel_columns - 1`` fewer columns).

    OpenCV's filters keep the default anchor (the kernel's centre; another anchor makes
    ``sepFilter2D`` half as fast) and the valid part is cropped from their output.
    """
    kernel_rows, kernel_columns = plan.kernel_shape
    out_rows, out_columns = strip.shape[0] - kernel_rows + 1, strip.shape[1] - kernel_columns + 1
    if plan.factors is not None:  # a separable kernel (Gaussian, box): two 1-D passes
        column_factor, row_factor = plan.factors
        blurred = cv2.sepFilter2D(strip, -1, row_factor, column_factor, borderType=cv2.BORDER_CONSTANT)
        top, left = kernel_rows // 2, kernel_columns // 2
        return blurred[top : top + out_rows, left : left + out_columns]
    taps_rows, taps_columns = plan.kernel_pieces[0][2].shape  # every block has this shape
    total = None
    for row, column, taps in plan.kernel_pieces:
        # Output (i, j) of the window's valid part is the sum of taps[r, t] * window[i + r, j + t].
        window = strip[row : row + out_rows + taps_rows - 1, column : column + out_columns + taps_columns - 1]
        part = cv2.filter2D(window, -1, taps, borderType=cv2.BORDER_CONSTANT)
        # Every part has the window's shape; add them whole (contiguous) and crop once.
        if total is None:
            total = part
        else:
            total += part
    top, left = taps_rows // 2, taps_columns // 2
    return total[top : top + out_rows, left : left + out_columns]


def edgetaper_inplace(image: np.ndarray, plan: TaperPlan, changes: list | None = None) -> None:
    """Taper ``image`` (float32, 2-D, of ``plan.shape``) in place; see :func:`edgetaper`.

    ``changes``, when a list, receives ``(region, change)`` for every piece changed: the
    slices of ``image`` and what tapering added there (so a caller can take it back).
    """
    if image.shape != plan.shape:
        raise InvalidParameterError(f"frame shape {image.shape} does not match the taper plan's {plan.shape}")
    # Blur every band from the untouched frame before writing any (they share the corners).
    blurred_bands = []
    for band in plan.bands:
        blurred_bands.append(_blur_valid(band.gather(image), plan))
    # Blend J = I + (1 - alpha) (B - I) piece by piece.
    for band, blurred in zip(plan.bands, blurred_bands):
        for target, source, one_minus_alpha in band.pieces:
            region = image[target]
            change = one_minus_alpha * (blurred[source] - region)
            region += change
            if changes is not None:
                changes.append((target, change))


def edgetaper(image, psf) -> np.ndarray:
    """Blend the frame's borders with a circularly blurred copy (MATLAB's ``edgetaper``).

    ``J = alpha * I + (1 - alpha) * (I circularly convolved with psf)`` where ``alpha`` is
    :func:`edgetaper_weights`. Only the border bands where ``alpha < 1`` are computed.

    Parameters
    ----------
    image : array_like
        2-D frame (any real dtype; computed in float32).
    psf : array_like
        Kernel, no larger than the frame.

    Returns
    -------
    numpy.ndarray
        float32 tapered frame of the same shape.
    """
    image = np.array(image, dtype=np.float32, order="C", copy=True)
    if image.ndim != 2:
        raise InvalidParameterError(f"edgetaper works on a 2-D frame, got shape {image.shape}")
    edgetaper_inplace(image, taper_plan(image.shape, psf))
    return image
