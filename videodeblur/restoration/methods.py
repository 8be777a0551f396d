"""Restoration methods: Wiener, Tikhonov and total variation behind one protocol.

A method is prepared once for one (padded frame shape, OTF, regularisation setting) and then
restores frames that :class:`~videodeblur.restoration.deconvolver.FrameDeconvolver` (the shell)
has copied, padded and tapered into a thread's FFT buffer. It returns a view of the restored
frame and the regularisation it chose for that frame; it never stores per-frame state, so one
instance serves many threads.

Each method is registered in :mod:`videodeblur.registry`; adding one is an entry there and a
class here with the same constructor and :meth:`RestorationMethod.restore`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple, Protocol

import numpy as np

from videodeblur.cache import LockedLRU
from videodeblur.core.deconvolution import wiener_filter
from videodeblur.core.fourier import gradient_power
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
from videodeblur.fft.plans import RealFFTPair

#: Automatic regularisation is quantised to this step of log10(lambda) and of alpha, so that
#: frames with nearly the same statistics share one cached filter, and a frame's filter depends
#: on that frame alone (a preview of frame N equals frame N of a full run). The error curve is
#: flat at its minimum, so a tenth of a decade changes the restoration very little.
LOG_LAMBDA_STEP = 0.1
ALPHA_STEP = 0.1
#: How many filters one method keeps (each rows x (columns/2+1) float32 for symmetric
#: kernels, complex64 otherwise).
FILTER_CACHE_SIZE = 8


class Regularisation(NamedTuple):
    """What a method chose for one frame: ``NSR(f) = weight * (|P(f)|^2)^exponent`` for the
    linear filters (``|P|^2``: the gradient's power), the total variation's weight for tv, and
    ``kernel_scale``: below 1 where the guard held the frame back to a smaller copy of the
    kernel, above 1 where it restored it with a larger one (:mod:`videodeblur.restoration.guard`)."""

    weight: float
    exponent: float
    kernel_scale: float = 1.0


class Scaling(NamedTuple):
    """The restoration of ``frame * input_scale``, returned as ``restored * output_scale + output_offset``."""

    input_scale: float = 1.0
    output_scale: float = 1.0
    output_offset: float = 0.0


class RestorationMethod(Protocol):
    """What the shell needs of a method.

    ``Method(otf, padded_shape, nsr, strength)`` prepares it for one kernel (``otf``: the
    half-spectrum OTF on ``padded_shape``; ``nsr``: ``"auto"`` or a positive number;
    ``strength``: 0 gives the input back, 1 the full restoration).
    """

    def restore(self, pair: RealFFTPair, frame_shape: tuple[int, int], coding,
                weighting: tuple[float, float] = (1.0, 0.0)) -> tuple[np.ndarray, Regularisation]:
        """Restore the tapered frame in ``pair.frame`` (loaded by ``coding``, whose
        :meth:`~videodeblur.restoration.coding.Coding.scaling` the method folds in); return a
        (rows, columns) view of the result (it may be ``pair``'s buffer) and the regularisation
        chosen. ``weighting`` is the frame's
        :meth:`~videodeblur.restoration.coding.Coding.regularisation_weighting`."""


@functools.lru_cache(maxsize=4)
def regulariser(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """|P|^2 of the gradient on ``shape`` and its log (-inf at DC), read-only, shared by every
    method of that shape: the pipeline prepares one whenever an estimated blur changes."""
    power = gradient_power(shape)
    with np.errstate(divide="ignore"):
        log_power = np.log(power)
    power.flags.writeable = False
    log_power.flags.writeable = False
    return power, log_power


@functools.lru_cache(maxsize=4)
def regulariser_power_to(shape: tuple[int, int], alpha: float) -> np.ndarray:
    """(|P|^2)^alpha on ``shape`` (0 at DC), read-only: frames and kernels share the few
    exponents the automatic regularisation picks (quantised to :data:`ALPHA_STEP`)."""
    powered = np.exp(np.float32(alpha) * regulariser(shape)[1])  # exp(-inf) = 0 at DC
    powered.flags.writeable = False
    return powered


class AutoNoise:
    """A frame's noise spectrum, read from the frequencies the blur erases (or from the frame).

    Parameters
    ----------
    otf : numpy.ndarray
        Half-spectrum OTF.
    padded_shape : tuple of int
        The transform's shape.
    """

    def __init__(self, otf: np.ndarray, padded_shape: tuple[int, int]):
        self.regulariser_power = regulariser(padded_shape)[0]
        self.samples = spectrum_samples(otf, self.regulariser_power, padded_shape[0] * padded_shape[1])

    @property
    def needs_spatial_noise(self) -> bool:
        """True when the noise is measured on the frame itself, not on its spectrum: the blur
        erases too few frequencies to read the noise there (a very small kernel)."""
        return self.samples.erased_index.size == 0

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


class LinearFilter:
    """A filter ``conj(H) / (|H|^2 + NSR(f))`` with one FFT pair per frame (Wiener, Tikhonov).

    Integer planes enter the FFT buffer by a plain copy: the input scale, the output scale and
    the inverse FFT's ``1/N`` are folded into the cached filter and the output offset into the
    spectrum's DC bin (both methods are linear, and their automatic regularisation depends only
    on ratios of spectral powers, so a frame is restored in its own units).
    """

    #: The exponent of a fixed ``nsr`` number.
    fixed_exponent = 0.0
    #: A :class:`~videodeblur.restoration.guard.KernelGuard` that may hold a frame back to a
    #: smaller kernel (set by the shell), or None.
    guard = None

    def __init__(self, otf: np.ndarray, padded_shape: tuple[int, int], nsr, strength: float = 1.0):
        self.otf = otf
        self.padded_shape = tuple(padded_shape)
        self.pixel_count = self.padded_shape[0] * self.padded_shape[1]
        self.nsr = nsr
        self.strength = float(strength)
        # A kernel symmetric about its centre (every built-in model) has a real OTF: its filter
        # is stored real, half the memory of a complex one. Asymmetric kernels keep the phase.
        self.otf_is_real = bool(np.abs(otf.imag).max() <= 1e-6 * np.abs(otf).max())
        self.regulariser_power = regulariser(self.padded_shape)[0]
        self.noise = AutoNoise(otf, self.padded_shape) if nsr == "auto" else None
        self._filters: LockedLRU[np.ndarray] = LockedLRU(FILTER_CACHE_SIZE)

    def _auto_weight(self, noise: NoiseModel, amplitude: float, alpha: float) -> tuple[float, float]:
        """(lambda, exponent) for an image spectrum ``amplitude / (|P|^2)^alpha``."""
        raise NotImplementedError

    def regularisation_for(self, spectrum: np.ndarray, noise: NoiseModel | None = None,
                           weighting: tuple[float, float] = (1.0, 0.0)) -> Regularisation:
        """The regularisation of a frame with this ``spectrum`` (see :class:`Regularisation`).

        ``noise`` is the frame's noise model; None reads it from ``spectrum``, which needs a
        kernel that erases frequencies (not ``noise.needs_spatial_noise``). ``weighting``
        multiplies the automatic weight and adds to its exponent (the coding's
        :meth:`~videodeblur.restoration.coding.Coding.regularisation_weighting`).
        """
        if self.noise is None:
            return Regularisation(float(self.nsr), self.fixed_exponent)
        if noise is None:
            noise = self.noise.noise_for(None, spectrum)
        amplitude, alpha = fit_power_law(spectrum, self.noise.samples, noise)
        if not math.isfinite(amplitude) or amplitude <= 0:
            # No frequency carries signal above the noise (a flat or pure-noise frame):
            # regularise hard, which keeps the mean and removes nothing that is there.
            return Regularisation(1.0, 1.0)
        lam, alpha = self._auto_weight(noise, amplitude, alpha)
        lam, alpha = lam * weighting[0], alpha + weighting[1]
        # Quantise so that neighbouring frames reuse one filter.
        lam = 10.0 ** (round(math.log10(lam) / LOG_LAMBDA_STEP) * LOG_LAMBDA_STEP)
        return Regularisation(lam, round(round(alpha / ALPHA_STEP) * ALPHA_STEP, 6))

    def filter_for(self, lam: float, alpha: float, output_scale: float = 1.0) -> np.ndarray:
        """The cached frequency response for a regularisation, with ``output_scale / N`` folded
        in (N: the inverse FFT's normalisation), at the method's strength."""
        key = (round(lam, 15), round(alpha, 6), float(output_scale))
        return self._filters.get(key, lambda: self._build_filter(lam, alpha, output_scale))

    def _build_filter(self, lam: float, alpha: float, output_scale: float) -> np.ndarray:
        if alpha == 0.0:
            # A constant NSR everywhere but at DC: the textbook filter would scale the mean
            # brightness by 1 / (1 + NSR); nobody wants a restored shot darker than the input.
            nsr = np.full(self.otf.shape, lam, dtype=np.float32)
            nsr[0, 0] = 0.0
        else:
            nsr = regulariser_power_to(self.padded_shape, alpha) * np.float32(lam)
        otf = self.otf.real if self.otf_is_real else self.otf
        scale = float(output_scale) / self.pixel_count
        response = wiener_filter(otf, nsr, scale=scale * self.strength)
        if self.strength != 1.0:
            # A linear method's strength folds into its filter: s G + (1 - s), the input back
            # at 0, the full restoration at 1.
            response += np.float32(scale * (1.0 - self.strength))
        return response

    def response(self, otf: np.ndarray, shape: tuple[int, int], regularisation: Regularisation) -> np.ndarray:
        """The filter ``G = conj(H) / (|H|^2 + NSR)`` at a regularisation on another grid
        (``otf`` of the same kernel on ``shape``), at full strength, unscaled (complex128)."""
        lam, alpha = regularisation.weight, regularisation.exponent
        power = gradient_power(shape).astype(np.float64)
        nsr = np.full(power.shape, lam) if alpha == 0.0 else lam * power**alpha
        nsr[0, 0] = 0.0
        otf = otf.astype(np.complex128)
        return np.conj(otf) / np.maximum(np.abs(otf) ** 2 + nsr, 1e-30)

    def resolution(self, otf: np.ndarray, shape: tuple[int, int], regularisation: Regularisation) -> np.ndarray:
        """``H G`` on another grid (``otf`` of the same kernel on ``shape``): the spectrum of the
        filter's restored point spread (a point of light comes back as its inverse transform),
        real and between 0 and 1."""
        return (otf.astype(np.complex128) * self.response(otf, shape, regularisation)).real

    def restore(self, pair: RealFFTPair, frame_shape: tuple[int, int], coding,
                weighting: tuple[float, float] = (1.0, 0.0)) -> tuple[np.ndarray, Regularisation]:
        """See :class:`RestorationMethod`; the result is a view of ``pair``'s buffer."""
        rows, columns = frame_shape
        scaling = coding.scaling()
        # The forward transform is in place and overwrites the frame: measure the noise on the
        # frame first if it has to be measured there.
        spatial = self.noise is not None and self.noise.needs_spatial_noise
        noise = self.noise.noise_for(pair.frame[:rows, :columns], None) if spatial else None
        spectrum = pair.forward()
        method, kernel_scale = self, 1.0
        if self.guard is not None:
            noise = self.noise.noise_for(None, spectrum)
            method, kernel_scale = self.guard.choose(spectrum, noise, weighting)
        regularisation = method.regularisation_for(spectrum, noise if method is self else None, weighting)
        spectrum *= method.filter_for(regularisation.weight, regularisation.exponent,
                                      scaling.output_scale * scaling.input_scale)
        # The unnormalised inverse adds the DC bin to every pixel: the offset goes there.
        spectrum[0, 0] += np.float32(scaling.output_offset)
        return pair.inverse()[:rows, :columns], regularisation._replace(kernel_scale=kernel_scale)


class Wiener(LinearFilter):
    """Wiener filter with the frame's own power-law image spectrum and noise spectrum:
    ``NSR(f) = N(f) / S(f) = (C / A) (|P(f)|^2)^(alpha - beta)`` (:mod:`videodeblur.core.noise`)."""

    def _auto_weight(self, noise, amplitude, alpha):
        return noise.power / amplitude, max(alpha - noise.slope, 0.0)


class Tikhonov(LinearFilter):
    """Tikhonov with a gradient regulariser ``lambda |P|^2``; with ``nsr = "auto"`` the lambda
    that minimises the expected error under the same models (:func:`tikhonov_lambda`)."""

    fixed_exponent = 1.0

    def __init__(self, otf, padded_shape, nsr, strength=1.0):
        super().__init__(otf, padded_shape, nsr, strength)
        self.risk = risk_samples(otf, self.regulariser_power) if nsr == "auto" else None

    def _auto_weight(self, noise, amplitude, alpha):
        return tikhonov_lambda(self.risk, noise, amplitude, alpha), 1.0


class TotalVariation:
    """Total variation by half-quadratic splitting (:mod:`videodeblur.core.total_variation`);
    with ``nsr = "auto"`` the weight :func:`tv_lambda` of the frame's noise."""

    def __init__(self, otf: np.ndarray, padded_shape: tuple[int, int], nsr, strength: float = 1.0):
        self.otf = otf
        self.padded_shape = tuple(padded_shape)
        self.pixel_count = self.padded_shape[0] * self.padded_shape[1]
        self.nsr = nsr
        self.strength = float(strength)
        self.noise = AutoNoise(otf, self.padded_shape) if nsr == "auto" else None

    def restore(self, pair: RealFFTPair, frame_shape: tuple[int, int], coding,
                weighting: tuple[float, float] = (1.0, 0.0)) -> tuple[np.ndarray, Regularisation]:
        """See :class:`RestorationMethod`; the result is a new array. Not linear: the frame is
        scaled first, and the strength blends the result with the (tapered) input; its weight
        comes from the noise alone (``weighting`` is not used)."""
        rows, columns = frame_shape
        scaling = coding.scaling()
        if scaling.input_scale != 1.0:
            pair.frame[...] *= np.float32(scaling.input_scale)
        tapered = pair.frame.copy()
        image_spectrum = pair.forward().copy()  # (the transform overwrites pair.frame)
        if self.noise is not None:
            lam = tv_lambda(math.sqrt(self.noise.noise_for(tapered[:rows, :columns], image_spectrum).power))
        else:
            lam = float(self.nsr)
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

        restored = tv_deconvolve(tapered, self.otf, lam, rfft2, irfft2, image_spectrum=image_spectrum)[:rows, :columns]
        if self.strength != 1.0:
            restored *= np.float32(self.strength)
            restored += np.float32(1.0 - self.strength) * tapered[:rows, :columns]
        if scaling.output_scale != 1.0 or scaling.output_offset != 0.0:  # (TV's passes dwarf these two)
            restored *= np.float32(scaling.output_scale)
            restored += np.float32(scaling.output_offset)
        return restored, Regularisation(lam, 1.0)
