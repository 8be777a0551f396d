"""Edge tapering: make a frame periodic so circular deconvolution does not ring at its borders.

The method is MATLAB's ``edgetaper``: the frame is blended with a circularly blurred copy of
itself, with weights taken from the kernel's autocorrelation, so that the result wraps around
smoothly. Weights are 0 on the border and 1 further than one kernel width inside, so only two
bands along the borders change; only those bands are blurred here, which makes tapering cheap
next to the FFTs of the deconvolution itself.
"""

from __future__ import annotations

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


def _circular_blur_band(image: np.ndarray, psf: np.ndarray, first: int, last: int, axis: int) -> np.ndarray:
    """Circular convolution of ``image`` with ``psf`` on rows (axis 0) or columns (axis 1)
    ``first .. last - 1``; negative indices wrap around, so one call covers both opposite bands.
    """
    kernel_rows, kernel_columns = psf.shape
    centre_y, centre_x = kernel_rows // 2, kernel_columns // 2
    # Offsets of the kernel's support before and after the centre, per axis.
    before_y, after_y = kernel_rows - 1 - centre_y, centre_y
    before_x, after_x = kernel_columns - 1 - centre_x, centre_x
    rows, columns = image.shape
    if axis == 0:
        row_index = np.arange(first - before_y, last + after_y) % rows
        column_index = np.arange(-before_x, columns + after_x) % columns
        strip = image[row_index][:, column_index]
    else:
        row_index = np.arange(-before_y, rows + after_y) % rows
        column_index = np.arange(first - before_x, last + after_x) % columns
        strip = image[:, column_index][row_index]
    # OpenCV correlates; the flipped kernel with this anchor convolves with psf centred at its centre.
    flipped = np.ascontiguousarray(psf[::-1, ::-1])
    anchor = (before_x, before_y)
    factors = _separable_factors(flipped)
    if factors is not None:  # a separable kernel (Gaussian, box): two 1-D passes, K times cheaper
        column_factor, row_factor = factors
        blurred = cv2.sepFilter2D(strip, -1, row_factor, column_factor, anchor=anchor, borderType=cv2.BORDER_CONSTANT)
    else:
        blurred = cv2.filter2D(strip, -1, flipped, anchor=anchor, borderType=cv2.BORDER_CONSTANT)
    return blurred[before_y : strip.shape[0] - after_y, before_x : strip.shape[1] - after_x]


def _separable_factors(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(column, row) vectors whose outer product is ``kernel``, or None if it is not rank 1."""
    if min(kernel.shape) == 1:
        return None  # already 1-D: filter2D is as fast
    u, singular, vt = np.linalg.svd(kernel.astype(np.float64))
    if singular[1] > 1e-6 * singular[0]:
        return None
    scale = np.sqrt(singular[0])
    return (u[:, 0] * scale).astype(np.float32), (vt[0] * scale).astype(np.float32)


def edgetaper_inplace(image: np.ndarray, psf: np.ndarray, profiles=None) -> None:
    """Taper ``image`` (float32, 2-D, C-contiguous) in place; see :func:`edgetaper`.

    ``profiles`` may pass the cached ``(row_weights, column_weights)`` for this shape and kernel.
    """
    psf = np.asarray(psf, dtype=np.float32)
    row_weights, column_weights = profiles if profiles is not None else _profiles(image.shape, psf)
    rows, columns = image.shape
    top, bottom = _band_widths(row_weights)
    left, right = _band_widths(column_weights)
    # Blur both bands from the untouched frame before writing either (they share the corners).
    blurred_rows = _circular_blur_band(image, psf, -bottom, top, axis=0) if top + bottom else None
    blurred_columns = _circular_blur_band(image, psf, -right, left, axis=1) if left + right else None
    # Blend J = I + (1 - alpha) (B - I) band by band, with slices (the blurred bands start with
    # the wrapped-around last rows/columns, then the first ones).
    if blurred_rows is not None:
        for band, blurred in ((slice(rows - bottom, rows), blurred_rows[:bottom]),
                              (slice(0, top), blurred_rows[bottom:])):
            one_minus_alpha = 1.0 - row_weights[band][:, None] * column_weights[None, :]
            image[band] += one_minus_alpha * (blurred - image[band])
    if blurred_columns is not None:
        inner = slice(top, rows - bottom)  # rows not already written through the row band
        for band, blurred in ((slice(columns - right, columns), blurred_columns[inner, :right]),
                              (slice(0, left), blurred_columns[inner, right:])):
            one_minus_alpha = 1.0 - row_weights[inner][:, None] * column_weights[band][None, :]
            image[inner, band] += one_minus_alpha * (blurred - image[inner, band])


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
    edgetaper_inplace(image, psf)
    return image
