"""Transfer functions on the real-FFT half spectrum.

Every spectrum here has the shape ``(rows, columns // 2 + 1)`` of ``numpy.fft.rfft2`` on a
``(rows, columns)`` frame, so filters can be multiplied directly into a real FFT.
"""

from __future__ import annotations

import cv2
import numpy as np

from videodeblur.errors import InvalidParameterError


def half_spectrum_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """Shape of the real-FFT half spectrum of a frame of ``shape`` (rows, columns)."""
    rows, columns = shape
    return rows, columns // 2 + 1


def fast_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """Smallest shape >= ``shape`` whose sides the frame transforms handle quickly: products
    of 2, 3 and 5 (``cv2.getOptimalDFTSize``; OpenCV does the frame transforms).

    1920x1080 is already fast and is returned unchanged.
    """
    return tuple(cv2.getOptimalDFTSize(int(n)) for n in shape)


def psf2otf(psf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Optical transfer function of a kernel on a frame of ``shape``, as a real-FFT half spectrum.

    The kernel is zero-padded to ``shape`` and circularly shifted so that its centre pixel
    ``(rows // 2, columns // 2)`` lands on the origin, then transformed. The result is complex:
    the phase of an asymmetric kernel (a motion streak whose centre is not its centroid) is kept.

    Parameters
    ----------
    psf : numpy.ndarray
        2-D kernel, no larger than ``shape`` in either axis.
    shape : tuple of int
        Frame shape (rows, columns).

    Returns
    -------
    numpy.ndarray
        complex64 array of shape ``(rows, columns // 2 + 1)``.
    """
    psf = np.asarray(psf, dtype=np.float64)
    rows, columns = shape
    if psf.ndim != 2:
        raise InvalidParameterError(f"a PSF must be 2-D, got shape {psf.shape}")
    if psf.shape[0] > rows or psf.shape[1] > columns:
        raise InvalidParameterError(
            f"the PSF ({psf.shape[1]}x{psf.shape[0]} px) is larger than the frame ({columns}x{rows} px)"
        )
    kernel_rows, kernel_columns = psf.shape
    half_columns = columns // 2 + 1
    # A small kernel's transform is several times cheaper as two matrix products with DFT
    # matrices of its own extent than as an FFT of the padded frame, and the pipeline builds a
    # deconvolver whenever an estimated blur changes. Products (complex multiply-adds) with the
    # row transform first, or with the column transform first:
    rows_first = rows * kernel_columns * (kernel_rows + half_columns)
    columns_first = kernel_rows * half_columns * (kernel_columns + rows)
    if min(rows_first, columns_first) <= DIRECT_OTF_MAX_PRODUCTS:
        # In single precision, the OTF's own: a kernel's few dozen taps per sum lose nothing a
        # complex64 result keeps, and the frame-sized product is made without a double copy.
        row_phases = _dft_matrix(rows, np.arange(kernel_rows) - kernel_rows // 2, rows).astype(np.complex64)
        column_phases = _dft_matrix(columns, np.arange(kernel_columns) - kernel_columns // 2,
                                    half_columns).T.astype(np.complex64)
        kernel = psf.astype(np.complex64)
        if rows_first <= columns_first:
            return (row_phases @ kernel) @ column_phases
        return row_phases @ (kernel @ column_phases)
    # The kernel's centre on the origin: its four quadrants go to the padded frame's corners.
    padded = np.zeros((rows, columns), dtype=np.float64)
    centre_y, centre_x = kernel_rows // 2, kernel_columns // 2
    target_rows = (np.arange(kernel_rows) - centre_y) % rows
    target_columns = (np.arange(kernel_columns) - centre_x) % columns
    padded[np.ix_(target_rows, target_columns)] = psf
    import scipy.fft  # (on first use: a third of the program's start-up, rarely needed)

    return scipy.fft.rfft2(padded, workers=1).astype(np.complex64)


#: Complex multiply-adds up to which :func:`psf2otf` uses DFT matrices instead of an FFT.
DIRECT_OTF_MAX_PRODUCTS = 40_000_000


def _dft_matrix(length: int, positions: np.ndarray, frequencies: int) -> np.ndarray:
    """``exp(-2 pi i k n / length)`` for k in ``0 .. frequencies - 1`` (rows) and n in
    ``positions`` (columns); phases reduced modulo ``length`` in integers, so exact."""
    phase = np.outer(np.arange(frequencies, dtype=np.int64), positions.astype(np.int64)) % length
    return np.exp(-2j * np.pi * phase / length)


def gradient_power(shape: tuple[int, int]) -> np.ndarray:
    """|Dx|^2 + |Dy|^2 of the forward-difference gradient, on the half spectrum of ``shape``.

    Equals ``4 sin^2(pi ky / rows) + 4 sin^2(pi kx / columns)``: 0 at DC, about
    ``(2 pi f)^2`` at low frequencies ``f`` in cycles per pixel.
    """
    rows, columns = shape
    ky = np.fft.fftfreq(rows)[:, None]
    kx = np.fft.rfftfreq(columns)[None, :]
    return (4.0 * np.sin(np.pi * ky) ** 2 + 4.0 * np.sin(np.pi * kx) ** 2).astype(np.float32)


def laplacian_power(shape: tuple[int, int]) -> np.ndarray:
    """|L|^2 of the 5-point Laplacian on the half spectrum of ``shape`` (the square of the gradient power)."""
    return gradient_power(shape) ** 2
