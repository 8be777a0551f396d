"""Frame restoration: edgetaper + Wiener/Tikhonov or total variation, with per-thread FFT buffers and cached filters.

:class:`FrameDeconvolver` is what the video pipeline calls for every frame; :func:`deconvolve`
is the convenience entry point for single images. Both share one code path.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import OrderedDict

import numpy as np

from videodeblur.core import psf as psf_models
from videodeblur.core.deconvolution import wiener_filter
from videodeblur.core.edgetaper import edgetaper_inplace, taper_plan
from videodeblur.core.fourier import fast_shape, gradient_power, psf2otf
from videodeblur.core.noise import (
    NoiseModel,
    estimate_noise_sigma,
    fit_noise_model,
    fit_power_law,
    risk_samples,
    spectrum_samples,
    tikhonov_lambda,
)
from videodeblur.core.total_variation import tv_deconvolve, tv_lambda
from videodeblur.errors import InvalidParameterError
from videodeblur.fft.plans import plan_pair

METHODS = ("wiener", "tikhonov", "tv")
#: Automatic regularisation is quantised to this step of log10(lambda) and of alpha, so that
#: frames with nearly the same statistics share one cached filter, and a frame's filter depends
#: on that frame alone (a preview of frame N equals frame N of a full run). A tenth of a decade
#: (26 %) of NSR changes the restoration by about 0.01 dB: the error curve is flat at its minimum.
LOG_LAMBDA_STEP = 0.1
ALPHA_STEP = 0.1
#: How many filters one deconvolver keeps (each rows x (columns/2+1) float32 for symmetric
#: kernels, complex64 otherwise: 4 or 8 MB at 1080p).
FILTER_CACHE_SIZE = 8


def _validate_nsr(nsr):
    if isinstance(nsr, str):
        if nsr != "auto":
            raise InvalidParameterError(f'nsr must be "auto" or a positive number, got {nsr!r}')
        return nsr
    if isinstance(nsr, bool):
        raise InvalidParameterError(f'nsr must be "auto" or a positive number, got {nsr!r}')
    try:
        value = float(nsr)
    except (TypeError, ValueError):
        raise InvalidParameterError(f'nsr must be "auto" or a positive number, got {nsr!r}') from None
    if not math.isfinite(value) or value <= 0:
        raise InvalidParameterError(f'nsr must be "auto" or a positive number, got {nsr!r}')
    return value


class FrameDeconvolver:
    """Restores 2-D frames of one shape blurred by one kernel.

    Everything that depends only on (shape, kernel, settings) is computed once here: the OTF,
    the edgetaper weights, the frequencies used to fit the image spectrum and, per
    regularisation value, the filter itself. One instance may be shared by many threads: each
    thread uses its own FFT buffers, and the filter cache is locked.

    Parameters
    ----------
    kernel : array_like
        The PSF (normalised here).
    frame_shape : tuple of int
        (rows, columns) of the frames to restore.
    method : {"wiener", "tikhonov", "tv"}
        Wiener with a power-law image spectrum (frequency-dependent NSR), Tikhonov with a
        gradient regulariser, or total variation (:mod:`videodeblur.core.total_variation`:
        sharper and cleaner, about 15 times slower).
    nsr : "auto" or float
        ``"auto"`` estimates noise and image spectrum per frame (see :mod:`videodeblur.core.noise`);
        a number is the NSR (Wiener, constant over frequency), lambda (Tikhonov) or the weight
        of the total variation (tv).
    edgetaper : bool
        Taper the borders before the circular deconvolution (strongly recommended).
    """

    def __init__(self, kernel, frame_shape, method="wiener", nsr="auto", edgetaper=True):
        if method not in METHODS:
            raise InvalidParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.method = method
        self.nsr = _validate_nsr(nsr)
        self.edgetaper = bool(edgetaper)
        self.kernel = psf_models.normalise(kernel)
        rows, columns = (int(n) for n in frame_shape)
        if self.kernel.shape[0] > rows or self.kernel.shape[1] > columns:
            raise InvalidParameterError(
                f"the PSF ({self.kernel.shape[1]}x{self.kernel.shape[0]} px) is larger than the frame "
                f"({columns}x{rows} px)"
            )
        if rows < 3 or columns < 3:
            raise InvalidParameterError(f"frames must be at least 3x3 pixels, got {columns}x{rows}")
        self.frame_shape = (rows, columns)
        self.padded_shape = fast_shape(self.frame_shape)
        self.pixel_count = self.padded_shape[0] * self.padded_shape[1]
        self.otf = psf2otf(self.kernel, self.padded_shape)
        self.otf_is_real = bool(np.abs(self.otf.imag).max() <= 1e-6 * np.abs(self.otf).max())
        self.regulariser_power = _regulariser(self.padded_shape)[0]
        self.taper_plan = taper_plan(self.padded_shape, self.kernel) if self.edgetaper else None
        self.samples = self.risk = None
        if self.nsr == "auto":  # (tv needs the samples for its noise estimate)
            self.samples = spectrum_samples(self.otf, self.regulariser_power, self.pixel_count)
            if method == "tikhonov":
                self.risk = risk_samples(self.otf, self.regulariser_power)
        self._filters: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        #: (lambda, alpha) used for the last frame restored by this object (any thread).
        self.last_regularisation: tuple[float, float] | None = None

    # -- regularisation -------------------------------------------------------------------
    @property
    def needs_spatial_noise(self) -> bool:
        """True when the noise is measured on the frame itself, not on its spectrum: the blur
        erases too few frequencies to read the noise there (a very small kernel)."""
        return self.samples is not None and self.samples.erased_index.size == 0

    def noise_for(self, frame: np.ndarray | None, spectrum: np.ndarray | None) -> NoiseModel:
        """This frame's noise spectrum (:func:`videodeblur.core.noise.fit_noise_model`), read
        from ``spectrum``, or from ``frame`` when :attr:`needs_spatial_noise` (then only the
        frame is read and ``spectrum`` may be None)."""
        noise = None if self.needs_spatial_noise else fit_noise_model(spectrum, self.samples)
        if noise is None:  # the blur erases too few frequencies: assume white noise
            if frame is None:
                raise InvalidParameterError("this kernel erases too few frequencies: the noise needs the frame")
            noise = NoiseModel(estimate_noise_sigma(frame) ** 2)
        return noise

    def regularisation_for(self, spectrum: np.ndarray, noise: NoiseModel | None = None) -> tuple[float, float]:
        """(lambda, alpha) such that ``NSR(f) = lambda * (|P(f)|^2)^alpha`` for this frame.

        ``noise`` is the frame's noise model; None reads it from ``spectrum``, which needs a
        kernel that erases frequencies (not :attr:`needs_spatial_noise`).
        """
        if self.nsr != "auto":
            return float(self.nsr), (0.0 if self.method == "wiener" else 1.0)
        if noise is None:
            noise = self.noise_for(None, spectrum)
        amplitude, alpha = fit_power_law(spectrum, self.samples, noise)
        if not math.isfinite(amplitude) or amplitude <= 0:
            # No frequency carries signal above the noise (a flat or pure-noise frame):
            # regularise hard, which keeps the mean and removes nothing that is there.
            return 1.0, 1.0
        if self.method == "wiener":
            lam, alpha = noise.power / amplitude, max(alpha - noise.slope, 0.0)
        else:
            lam, alpha = tikhonov_lambda(self.risk, noise, amplitude, alpha), 1.0
        # Quantise so that neighbouring frames reuse one filter.
        lam = 10.0 ** (round(math.log10(lam) / LOG_LAMBDA_STEP) * LOG_LAMBDA_STEP)
        alpha = round(round(alpha / ALPHA_STEP) * ALPHA_STEP, 6)
        return lam, alpha

    def filter_for(self, lam: float, alpha: float, output_scale: float = 1.0) -> np.ndarray:
        """The cached frequency response for a regularisation, with ``output_scale / N`` folded
        in (N: the inverse FFT's normalisation)."""
        key = (round(lam, 15), round(alpha, 6), float(output_scale))
        with self._lock:
            response = self._filters.get(key)
            if response is not None:
                self._filters.move_to_end(key)
                return response
        if alpha == 0.0:
            # A constant NSR everywhere but at DC: the textbook filter would scale the mean
            # brightness by 1 / (1 + NSR); nobody wants a restored shot darker than the input.
            nsr = np.full(self.otf.shape, lam, dtype=np.float32)
            nsr[0, 0] = 0.0
        else:
            nsr = _regulariser_power_to(self.padded_shape, alpha) * np.float32(lam)
        # A kernel symmetric about its centre (every built-in model) has a real OTF: its filter
        # is stored real, half the memory of a complex one. Asymmetric kernels keep the phase.
        otf = self.otf.real if self.otf_is_real else self.otf
        response = wiener_filter(otf, nsr, scale=float(output_scale) / self.pixel_count)
        with self._lock:
            self._filters[key] = response
            while len(self._filters) > FILTER_CACHE_SIZE:
                self._filters.popitem(last=False)
        return response

    # -- restoration ----------------------------------------------------------------------
    def restore(self, frame: np.ndarray, out: np.ndarray | None = None, input_scale: float = 1.0,
                output_scale: float = 1.0, output_offset: float = 0.0,
                clip: tuple[float, float] | None = None) -> np.ndarray:
        """Restore one 2-D frame of ``frame_shape``.

        The result is ``restored * output_scale + output_offset``, where ``restored`` is the
        restoration of ``frame * input_scale``. The scales and the offset cost nothing: they are
        folded into the cached filter and into the spectrum's DC bin, which saves an integer
        pipeline three passes over the frame. (Wiener and Tikhonov are linear, and their
        automatic regularisation depends only on ratios of spectral powers, so the frame is
        restored in its own units; total variation is not linear and is scaled first.)

        Parameters
        ----------
        frame : numpy.ndarray
            2-D frame; ``frame * input_scale`` should be in [0, 1]. Integer planes (uint8,
            uint16) are converted while being copied into the FFT buffer, with no temporary.
        out : numpy.ndarray, optional
            Array of ``frame_shape`` to write the result into, of any real dtype: an integer
            array receives the result truncated (with ``clip`` and ``output_offset = 0.5``,
            rounded into range), converted in the same pass that reads the FFT buffer.
        input_scale : float
            Factor applied to ``frame`` first, e.g. ``1 / 255`` for 8-bit planes.
        output_scale, output_offset : float
            Applied to the restored frame, e.g. ``255`` and ``0.5`` to round to 8 bits by
            truncation.
        clip : tuple of float, optional
            ``(low, high)``: clip the result to this range (after scale and offset). Not
            clipped by default: overshoot is information a float caller may want.

        Returns
        -------
        numpy.ndarray
            ``out``, or a new float32 array.
        """
        if frame.shape != self.frame_shape:
            raise InvalidParameterError(f"frame shape {frame.shape} does not match {self.frame_shape}")
        if out is not None and (out.shape != self.frame_shape or out.dtype.kind not in "uif"
                                or not out.flags.writeable):
            raise InvalidParameterError(
                f"out must be a writeable real array of shape {self.frame_shape}, got {out.dtype} {out.shape}")
        rows, columns = self.frame_shape
        pair = plan_pair(self.padded_shape)
        buffer = pair.frame
        # A plain converting copy: half the cost of converting and scaling in one pass.
        np.copyto(buffer[:rows, :columns], frame, casting="unsafe")
        if self.padded_shape != self.frame_shape:
            _reflect_pad_inplace(buffer, rows, columns)
        if self.edgetaper:
            edgetaper_inplace(buffer, self.taper_plan)
        if self.method == "tv":
            if input_scale != 1.0:
                buffer *= np.float32(input_scale)
            restored = self._restore_tv(pair)
            if output_scale != 1.0 or output_offset != 0.0:  # (TV's passes dwarf these two)
                restored *= np.float32(output_scale)
                restored += np.float32(output_offset)
        else:
            # The forward transform is in place and overwrites the frame: measure the noise
            # on the frame first if it has to be measured there.
            noise = self.noise_for(buffer[:rows, :columns], None) if self.needs_spatial_noise else None
            spectrum = pair.forward()
            lam, alpha = self.regularisation_for(spectrum, noise)
            self.last_regularisation = (lam, alpha)
            spectrum *= self.filter_for(lam, alpha, output_scale * input_scale)
            # The unnormalised inverse adds the DC bin to every pixel: the offset goes there.
            spectrum[0, 0] += np.float32(output_offset)
            restored = pair.inverse()[:rows, :columns]  # a view of this thread's FFT buffer
        if out is None:
            out = np.empty(self.frame_shape, dtype=np.float32)
        if clip is None:
            np.copyto(out, restored, casting="unsafe")
        else:
            np.clip(restored, np.float32(clip[0]), np.float32(clip[1]), out=out, casting="unsafe")
        return out

    def _restore_tv(self, pair) -> np.ndarray:
        """Total-variation restoration of the tapered frame in ``pair.frame`` (a new array)."""
        rows, columns = self.frame_shape
        tapered = pair.frame.copy()
        image_spectrum = pair.forward().copy()  # (the transform overwrites pair.frame)
        if self.nsr == "auto":
            lam = tv_lambda(math.sqrt(self.noise_for(tapered[:rows, :columns], image_spectrum).power))
        else:
            lam = float(self.nsr)
        self.last_regularisation = (lam, 1.0)
        inverse_size = np.float32(1.0 / self.pixel_count)

        def rfft2(image: np.ndarray) -> np.ndarray:
            pair.frame[...] = image
            return pair.forward()

        def irfft2(spectrum: np.ndarray) -> np.ndarray:
            if spectrum is not pair.spectrum:
                pair.spectrum[...] = spectrum
            restored = pair.inverse()
            restored *= inverse_size
            return restored

        return tv_deconvolve(tapered, self.otf, lam, rfft2, irfft2, image_spectrum=image_spectrum)[:rows, :columns]


@functools.lru_cache(maxsize=4)
def _regulariser(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """|P|^2 of the gradient on ``shape`` and its log (-inf at DC), read-only, shared by every
    deconvolver of that shape: the pipeline builds one whenever an estimated blur changes."""
    power = gradient_power(shape)
    with np.errstate(divide="ignore"):
        log_power = np.log(power)
    power.flags.writeable = False
    log_power.flags.writeable = False
    return power, log_power


@functools.lru_cache(maxsize=4)
def _regulariser_power_to(shape: tuple[int, int], alpha: float) -> np.ndarray:
    """(|P|^2)^alpha on ``shape`` (0 at DC), read-only: frames and kernels share the few
    exponents the automatic regularisation picks (quantised to :data:`ALPHA_STEP`)."""
    powered = np.exp(np.float32(alpha) * _regulariser(shape)[1])  # exp(-inf) = 0 at DC
    powered.flags.writeable = False
    return powered


def _reflect_pad_inplace(buffer: np.ndarray, rows: int, columns: int) -> None:
    """Fill buffer beyond [:rows, :columns] with a mirror image of the frame (no jump at the seam)."""
    padded_rows, padded_columns = buffer.shape
    extra_columns = padded_columns - columns
    if extra_columns:
        source = np.arange(columns - 1, columns - 1 - extra_columns, -1) % columns
        buffer[:rows, columns:] = buffer[:rows, source]
    extra_rows = padded_rows - rows
    if extra_rows:
        source = np.arange(rows - 1, rows - 1 - extra_rows, -1) % rows
        buffer[rows:, :] = buffer[source, :]


_deconvolvers: OrderedDict = OrderedDict()
_deconvolvers_lock = threading.Lock()


def _cached_deconvolver(kernel: np.ndarray, shape, method, nsr, edgetaper) -> FrameDeconvolver:
    key = (hashlib.sha1(kernel.tobytes()).hexdigest(), kernel.shape, tuple(shape), method, nsr, edgetaper)
    with _deconvolvers_lock:
        found = _deconvolvers.get(key)
        if found is not None:
            _deconvolvers.move_to_end(key)
            return found
    deconvolver = FrameDeconvolver(kernel, shape, method=method, nsr=nsr, edgetaper=edgetaper)
    with _deconvolvers_lock:
        _deconvolvers[key] = deconvolver
        while len(_deconvolvers) > 4:
            _deconvolvers.popitem(last=False)
    return deconvolver


def deconvolve(image, kernel, method: str = "wiener", nsr="auto", edgetaper: bool = True,
               clip: bool = False) -> np.ndarray:
    """Restore a blurred image with a known kernel.

    Parameters
    ----------
    image : array_like
        2-D float image in [0, 1], or 3-D channels-last (each channel restored on its own).
    kernel : array_like
        The blur's PSF, e.g. ``psf.disk(3)``; normalised to sum 1.
    method : {"wiener", "tikhonov"}
        See :class:`FrameDeconvolver`.
    nsr : "auto" or float
        Noise-to-signal ratio (Wiener) or lambda (Tikhonov); ``"auto"`` estimates it per image.
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
    deconvolver = _cached_deconvolver(kernel, array.shape[:2], method, _validate_nsr(nsr), bool(edgetaper))
    limits = (0.0, 1.0) if clip else None
    if array.ndim == 2:
        return deconvolver.restore(array, clip=limits)
    result = np.empty(array.shape, dtype=np.float32)
    for channel in range(array.shape[2]):
        deconvolver.restore(np.ascontiguousarray(array[:, :, channel]), out=result[:, :, channel], clip=limits)
    return result
