"""Wiener and Tikhonov deconvolution on a given OTF.

The filters are built on the real-FFT half spectrum (see :mod:`videodeblur.core.fourier`) and
keep the full complex OTF: dropping its imaginary part would be wrong for asymmetric kernels.
The ``*_filter`` functions build the frequency response once, so callers can reuse it across
frames; :func:`wiener` and :func:`tikhonov` are the plain reference implementations.

References
----------
.. [1] R. C. Gonzalez, R. E. Woods, "Digital Image Processing", 4th ed., section 5.8-5.9.
.. [2] A. N. Tikhonov, V. Y. Arsenin, "Solutions of Ill-Posed Problems", 1977.
"""

from __future__ import annotations

import numpy as np

from videodeblur.core.fourier import gradient_power, half_spectrum_shape, laplacian_power
from videodeblur.errors import InvalidParameterError

REGULARISERS = {"gradient": gradient_power, "laplacian": laplacian_power}


def _check_positive(name: str, value) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype != np.float32:
        value = value.astype(np.float64)
    if not np.all(np.isfinite(value)) or np.any(value < 0):
        raise InvalidParameterError(f"{name} must be finite and >= 0")
    return value


def wiener_filter(otf: np.ndarray, nsr, scale: float = 1.0) -> np.ndarray:
    """Wiener filter ``conj(H) / (|H|^2 + NSR)``.

    Parameters
    ----------
    otf : numpy.ndarray
        Half-spectrum OTF ``H``: complex in general; real (float) for a kernel symmetric
        about its centre, whose OTF has no imaginary part.
    nsr : float or numpy.ndarray
        Noise-to-signal power ratio, a scalar or an array broadcastable to ``otf`` (a
        frequency-dependent NSR). Must be >= 0; 0 is the (unstable) inverse filter.
    scale : float
        Extra factor folded into the filter (e.g. the inverse FFT's 1/N normalisation).

    Returns
    -------
    numpy.ndarray
        Filter of ``otf``'s shape: complex64 for a complex OTF, float32 for a real one.
    """
    nsr = _check_positive("nsr", nsr)
    # float32 arithmetic in as few passes as possible: the filter is stored in (complex)
    # float32 anyway, and this runs whenever the automatic regularisation moves to a new value.
    if np.iscomplexobj(otf):
        otf = otf.astype(np.complex64, copy=False)
        denominator = otf.real * otf.real
        denominator += otf.imag * otf.imag
    else:
        otf = otf.astype(np.float32, copy=False)
        denominator = otf * otf
    denominator += nsr.astype(np.float32, copy=False)
    # Where both |H| and NSR are 0 no information survives: a floor keeps the gain finite
    # there, and the response is 0 because H is (0, not the NaN of 0 / 0).
    np.maximum(denominator, np.float32(DENOMINATOR_FLOOR), out=denominator)
    gain = np.divide(np.float32(scale), denominator, out=denominator)
    if np.iscomplexobj(otf):
        response = np.conj(otf)
        response *= gain
        return response
    return np.multiply(otf, gain, out=gain)


#: Smallest ``|H|^2 + NSR`` a Wiener filter divides by: far below any meaningful value, and
#: large enough that ``scale / floor`` stays finite in float32.
DENOMINATOR_FLOOR = 1e-30


def tikhonov_filter(otf: np.ndarray, lam: float, regulariser: str = "gradient", scale: float = 1.0,
                    shape: tuple[int, int] | None = None) -> np.ndarray:
    """Tikhonov filter ``conj(H) / (|H|^2 + lam * |P|^2)``.

    Parameters
    ----------
    otf : numpy.ndarray
        Complex half-spectrum OTF of a frame of ``shape``.
    lam : float
        Regularisation weight, >= 0.
    regulariser : {"gradient", "laplacian"}
        ``P``: the forward-difference gradient (penalises edges' energy, the 1/f^2 image prior)
        or the 5-point Laplacian (penalises curvature).
    scale : float
        Extra factor folded into the filter.
    shape : tuple of int, optional
        Frame shape (rows, columns); needed when the column count is ambiguous from the half
        spectrum. Default assumes an even number of columns.
    """
    if regulariser not in REGULARISERS:
        raise InvalidParameterError(f"regulariser must be one of {sorted(REGULARISERS)}, got {regulariser!r}")
    lam = float(_check_positive("lam", lam))
    if shape is None:
        shape = (otf.shape[0], 2 * (otf.shape[1] - 1))
    if half_spectrum_shape(shape) != otf.shape:
        raise InvalidParameterError(f"OTF shape {otf.shape} does not match frame shape {shape}")
    return wiener_filter(otf, lam * REGULARISERS[regulariser](shape).astype(np.float64), scale)


def apply_filter(image: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Apply a half-spectrum frequency response to a 2-D frame by circular convolution (NumPy FFT)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or half_spectrum_shape(image.shape) != response.shape:
        raise InvalidParameterError(
            f"frame shape {image.shape} does not match filter half-spectrum shape {response.shape}"
        )
    return np.fft.irfft2(np.fft.rfft2(image) * response, s=image.shape).astype(np.float32)


def wiener(image: np.ndarray, otf: np.ndarray, nsr) -> np.ndarray:
    """Wiener deconvolution of a 2-D frame by ``conj(H) / (|H|^2 + NSR)`` (circular).

    Parameters
    ----------
    image : numpy.ndarray
        2-D frame, already edge-tapered if wanted.
    otf : numpy.ndarray
        Its complex half-spectrum OTF (:func:`videodeblur.core.fourier.psf2otf`).
    nsr : float or numpy.ndarray
        Noise-to-signal ratio, scalar or per frequency.

    Returns
    -------
    numpy.ndarray
        float32 restored frame.

    Examples
    --------
    >>> import numpy as np
    >>> from videodeblur.core import psf, fourier
    >>> frame = np.random.default_rng(0).random((64, 64))
    >>> otf = fourier.psf2otf(psf.disk(2), frame.shape)
    >>> wiener(frame, otf, 0.01).shape
    (64, 64)
    """
    return apply_filter(image, wiener_filter(otf, nsr))


def tikhonov(image: np.ndarray, otf: np.ndarray, lam: float, regulariser: str = "gradient") -> np.ndarray:
    """Tikhonov deconvolution ``conj(H) / (|H|^2 + lam |P|^2)`` of a 2-D frame (circular).

    See :func:`tikhonov_filter` for the parameters.
    """
    return apply_filter(image, tikhonov_filter(otf, lam, regulariser, shape=np.shape(image)))
