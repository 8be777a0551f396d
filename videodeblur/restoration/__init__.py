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
from videodeblur.core.colour import TRANSFERS
from videodeblur.restoration.coding import FloatLinearLight, Scaled
from videodeblur.restoration.deconvolver import FrameDeconvolver, Restored, validate_nsr, validate_strength
from videodeblur.restoration.methods import FILTER_CACHE_SIZE, Regularisation

__all__ = ["FILTER_CACHE_SIZE", "FrameDeconvolver", "Regularisation", "Restored", "deconvolve", "validate_nsr"]

#: Deconvolvers of recent (kernel, shape, settings), so repeated calls on a sequence of images
#: reuse their OTF, taper plan and filters.
_deconvolvers: LockedLRU[FrameDeconvolver] = LockedLRU(4)


def _cached_deconvolver(kernel: np.ndarray, shape, method, nsr, edgetaper, strength, guard,
                        point_lights) -> FrameDeconvolver:
    key = (hashlib.sha1(kernel.tobytes()).hexdigest(), kernel.shape, tuple(shape), method, nsr, edgetaper, strength,
           guard, point_lights)
    return _deconvolvers.get(key, lambda: FrameDeconvolver(kernel, shape, method=method, nsr=nsr, edgetaper=edgetaper,
                                                           strength=strength, guard=guard, point_lights=point_lights))


def deconvolve(image, kernel, method: str = "wiener", nsr="auto", edgetaper: bool = True,
               clip: bool = False, strength: float = 1.0, transfer: str | None = None,
               guard: bool = True, point_lights: bool = True) -> np.ndarray:
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
    strength : float
        From 0 (the image as it is) to 1 (the full restoration, the default).
    transfer : str or None
        The curve the image's values are coded with (``"bt709"``, ``"srgb"``, ``"pq"`` ... see
        :data:`videodeblur.core.colour.TRANSFERS`): the blur is undone in linear light, where a
        lens blurs, and point lights are kept as points. None (default): the values are
        restored as they are.
    guard : bool
        Where the image shows less blur than ``kernel`` (a guess too large), restore it with a
        smaller copy of the kernel instead (Wiener and Tikhonov with ``nsr = "auto"``; see
        :mod:`videodeblur.restoration.guard`). An array kernel is never grown: a larger copy
        needs the blur's model (:class:`~videodeblur.restoration.FrameDeconvolver`'s
        ``kernel_at_scale``), as the command line's kernels have.
    point_lights : bool
        With ``transfer``: take point lights' rings out, so that lamps come back as points
        (:func:`videodeblur.restoration.highlights.clean_points`).

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
    if transfer is not None and transfer not in TRANSFERS:
        raise InvalidParameterError(f"transfer must be None or one of {', '.join(TRANSFERS)}, got {transfer!r}")
    kernel = psf_models.normalise(kernel)
    deconvolver = _cached_deconvolver(kernel, array.shape[:2], method, validate_nsr(nsr), bool(edgetaper),
                                      validate_strength(strength), bool(guard), bool(point_lights))
    # Coded values are clipped in the pass that reads the FFT buffer; light is coded first.
    coding = FloatLinearLight(TRANSFERS[transfer]) if transfer is not None else Scaled(clip=(0.0, 1.0) if clip else None)
    channels = [array] if array.ndim == 2 else [np.ascontiguousarray(array[:, :, k]) for k in range(array.shape[2])]
    result = np.empty(array.shape, dtype=np.float32)
    for k, channel in enumerate(channels):
        out = result if array.ndim == 2 else result[:, :, k]
        deconvolver.restore(channel, out=out, coding=coding)
    return np.clip(result, 0.0, 1.0, out=result) if clip and transfer is not None else result
