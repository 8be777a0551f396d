"""Frame restoration: edgetaper + a registered method (Wiener, Tikhonov, total variation).

:class:`FrameDeconvolver` is what the video pipeline calls for every plane; :func:`deconvolve`
is the convenience entry point for single images. Both share one code path.
"""

from __future__ import annotations

import hashlib

import numpy as np

from videodeblur.cache import LockedLRU
from videodeblur.core import psf as psf_models
from videodeblur.errors import InvalidParameterError
from videodeblur.restoration.deconvolver import FrameDeconvolver, Restored, validate_nsr
from videodeblur.restoration.methods import FILTER_CACHE_SIZE, Regularisation

__all__ = ["FILTER_CACHE_SIZE", "FrameDeconvolver", "Regularisation", "Restored", "deconvolve", "validate_nsr"]

#: Deconvolvers of recent (kernel, shape, settings), so repeated calls on a sequence of images
#: reuse their OTF, taper plan and filters.
_deconvolvers: LockedLRU[FrameDeconvolver] = LockedLRU(4)


def _cached_deconvolver(kernel: np.ndarray, shape, method, nsr, edgetaper) -> FrameDeconvolver:
    key = (hashlib.sha1(kernel.tobytes()).hexdigest(), kernel.shape, tuple(shape), method, nsr, edgetaper)
    return _deconvolvers.get(key, lambda: FrameDeconvolver(kernel, shape, method=method, nsr=nsr, edgetaper=edgetaper))


def deconvolve(image, kernel, method: str = "wiener", nsr="auto", edgetaper: bool = True,
               clip: bool = False) -> np.ndarray:
    """Restore a blurred image with a known kernel.

    Parameters
    ----------
    image : array_like
        2-D float image in [0, 1], or 3-D channels-last (each channel restored on its own).
    kernel : array_like
        The blur's PSF, e.g. ``psf.disk(3)``; normalised to sum 1.
    method : str
        A registered method: ``"wiener"``, ``"tikhonov"`` or ``"tv"`` (see :class:`FrameDeconvolver`).
    nsr : "auto" or float
        Noise-to-signal ratio (Wiener), lambda (Tikhonov) or the total variation's weight;
        ``"auto"`` estimates it per image.
    edgetaper : bool
        Taper the borders first to prevent ringing.
    clip : bool
        Clip the result to [0, 1]. Off by default: overshoot is information a caller may want.

    Returns
    -------
    numpy.ndarray
        float32 array of the input's shape.

    Raises
    ------
    InvalidParameterError
        Bad shapes, non-finite pixels, a kernel larger than the image, bad method or nsr.

    Examples
    --------
    >>> import numpy as np
    >>> from videodeblur import deconvolve, psf
    >>> blurred = np.full((64, 64), 0.5, dtype=np.float32)
    >>> deconvolve(blurred, psf.disk(2)).shape
    (64, 64)
    """
    array = np.asarray(image)
    if array.dtype.kind not in "fiub":
        raise InvalidParameterError(f"image must be a real array, got dtype {array.dtype}")
    if array.ndim not in (2, 3):
        raise InvalidParameterError(f"image must be 2-D or 3-D channels-last, got shape {array.shape}")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        raise InvalidParameterError("image holds NaN or Inf values")
    kernel = psf_models.normalise(kernel)
    deconvolver = _cached_deconvolver(kernel, array.shape[:2], method, validate_nsr(nsr), bool(edgetaper))
    limits = (0.0, 1.0) if clip else None
    if array.ndim == 2:
        return deconvolver.restore(array, clip=limits).image
    result = np.empty(array.shape, dtype=np.float32)
    for channel in range(array.shape[2]):
        deconvolver.restore(np.ascontiguousarray(array[:, :, channel]), out=result[:, :, channel], clip=limits)
    return result
