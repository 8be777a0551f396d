"""Noise and regularisation estimates for automatic Wiener / Tikhonov parameters.

The rule (documented in the README as well)
-------------------------------------------
1. Noise: the standard deviation ``sigma`` of white noise in the frame is estimated with
   Immerkaer's operator (the difference of two Laplacians, which cancels locally linear image
   content) and the median absolute deviation, ``sigma = median(|F * I|) / 0.6745 / 6``. It is
   floored at the quantisation noise of 8-bit video, ``1 / (255 sqrt 12)``.
2. Image spectrum: natural images have power spectra close to a power law,
   ``S_x(f) = A / (|P(f)|^2)^alpha`` with ``|P|^2`` the gradient power (about ``(2 pi f)^2``)
   and ``alpha`` near 1 (the classic 1/f^2 law). ``A`` and ``alpha`` are fitted, in log-log, to the
   frame's own periodogram where the blur is mild (``|H|^2 >= 0.25``) and the signal is above
   the noise: ``S_x = (|Y|^2 / N - sigma^2) / |H|^2``.
3. Regularisation: the Wiener filter's optimal NSR is ``sigma^2 / S_x(f)``, hence a
   frequency-dependent ``NSR(f) = (sigma^2 / A) (|P(f)|^2)^alpha``. Tikhonov with the gradient
   regulariser is the same rule with ``alpha`` fixed at 1: ``lambda = sigma^2 / A``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from videodeblur.errors import InvalidParameterError

#: Quantisation noise of an 8-bit frame scaled to [0, 1]: a floor for the noise estimate, so a
#: clean synthetic frame never gets a zero NSR (an unstable inverse filter).
QUANTISATION_SIGMA_8BIT = 1.0 / (255.0 * math.sqrt(12.0))

_IMMERKAER_NORM = 6.0  # L2 norm of [[1,-2,1],[-2,4,-2],[1,-2,1]]
_MAD_TO_SIGMA = 1.0 / 0.6745


def estimate_noise_sigma(image: np.ndarray, max_samples: int = 20_000) -> float:
    """Standard deviation of additive white noise in a frame.

    Parameters
    ----------
    image : numpy.ndarray
        2-D frame in [0, 1].
    max_samples : int
        The operator is evaluated on evenly spaced rows only, about this many pixels: a median
        needs far fewer samples than a 1080p frame has, and whole rows keep memory access
        contiguous, so the estimate costs about a millisecond at 1080p.

    Returns
    -------
    float
        Noise sigma in the frame's units, at least :data:`QUANTISATION_SIGMA_8BIT`.

    References
    ----------
    .. [1] J. Immerkaer, "Fast Noise Variance Estimation", CVIU 64(2), 1996.
    .. [2] D. L. Donoho, I. M. Johnstone, "Ideal spatial adaptation by wavelet shrinkage", 1994.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2 or image.shape[0] < 3 or image.shape[1] < 3:
        raise InvalidParameterError(f"noise estimation needs a 2-D frame of at least 3x3, got {image.shape}")
    rows, columns = image.shape
    row_step = max(1, (rows - 2) * (columns - 2) // max_samples)
    centres = np.arange(1, rows - 1, row_step)

    def second_difference_x(lines):
        return lines[:, :-2] - 2.0 * lines[:, 1:-1] + lines[:, 2:]

    # Immerkaer's operator [1,-2,1] x [1,-2,1] is separable: vertical second difference of the
    # horizontal ones.
    response = (
        second_difference_x(image[centres - 1])
        - 2.0 * second_difference_x(image[centres])
        + second_difference_x(image[centres + 1])
    )
    magnitudes = np.abs(response).ravel()
    middle = magnitudes.size // 2
    sigma = float(np.partition(magnitudes, middle)[middle]) * _MAD_TO_SIGMA / _IMMERKAER_NORM
    return max(sigma, QUANTISATION_SIGMA_8BIT)


#: Exponents tried by :func:`fit_power_law` (spectra from 1/f^1.2 to 1/f^4).
ALPHA_GRID = np.round(np.arange(0.6, 2.001, 0.05), 2)


@dataclass(frozen=True)
class SpectrumSamples:
    """Frequencies of one (frame shape, OTF) used to fit the image spectrum, with everything
    about them that does not depend on the frame precomputed.

    Attributes
    ----------
    flat_index : numpy.ndarray
        Indices of the sampled (non-DC) bins into the flattened half spectrum, sorted.
    weight : numpy.ndarray
        How many full-spectrum bins each sampled half-spectrum bin stands for (1 or 2).
    bin_index : numpy.ndarray
        The ``log |P|^2`` bin of each sample.
    bin_counts : numpy.ndarray
        Total weight per bin.
    model : numpy.ndarray
        ``model[a, b] = sum over bin b of weight |H|^2 / (|P|^2)^ALPHA_GRID[a]``.
    noise_index : numpy.ndarray
        Flat indices of the lowest-frequency quarter of the frequencies the blur erases
        (``|H|^2 < 0.005``): what the frame holds there is noise (see
        :func:`spectral_noise_sigma`). Empty when the blur erases too few frequencies.
    pixel_count : int
        Number of pixels of the frame (the periodogram's scale).
    """

    flat_index: np.ndarray
    weight: np.ndarray
    bin_index: np.ndarray
    bin_counts: np.ndarray
    model: np.ndarray
    noise_index: np.ndarray
    pixel_count: int


def spectrum_samples(otf: np.ndarray, regulariser_power: np.ndarray, pixel_count: int,
                     max_samples: int = 8192, bins: int = 20) -> SpectrumSamples:
    """Prepare :func:`fit_power_law` for one (frame shape, OTF).

    At most ``max_samples`` non-DC frequencies are drawn (fixed seed) and grouped into ``bins``
    bins of ``log |P|^2``, so that fitting a frame costs a fraction of a millisecond.
    """
    otf_power = (otf.real.astype(np.float64) ** 2 + otf.imag.astype(np.float64) ** 2).ravel()
    regulariser = regulariser_power.astype(np.float64).ravel()
    index = np.nonzero(regulariser > 0)[0]
    if index.size > max_samples:
        # Runs of 16 neighbouring bins at fixed random places: random, so no stride aliases with
        # the row length, and in runs, so gathering them per frame reads whole cache lines.
        run = 16
        starts = np.random.default_rng(0).choice(index.size // run, max_samples // run, replace=False) * run
        index = index[np.sort((starts[:, None] + np.arange(run)[None, :]).ravel())]
    columns = otf.shape[1]
    column = index % columns
    # Interior half-spectrum columns stand for two bins (their mirror image is implicit).
    weight = np.where((column == 0) | (column == columns - 1), 1.0, 2.0)
    log_p = np.log(regulariser[index])
    edges = np.linspace(log_p.min(), log_p.max() + 1e-9, bins + 1)
    bin_index = np.clip(np.digitize(log_p, edges) - 1, 0, bins - 1)
    bin_counts = np.bincount(bin_index, weights=weight, minlength=bins)
    shape_terms = otf_power[index][None, :] * np.exp(-ALPHA_GRID[:, None] * log_p[None, :])
    model = np.stack([np.bincount(bin_index, weights=weight * row, minlength=bins) for row in shape_terms])
    erased = np.nonzero(otf_power[index] < BLUR_NULL_OTF_POWER)[0]
    # The lowest erased frequencies: nearest to where the filter's gain peaks, and where
    # compressed video keeps most of its noise.
    lowest = erased[np.argsort(regulariser[index][erased], kind="stable")][: max(MIN_NULL_SAMPLES, erased.size // 4)]
    noise_index = index[np.sort(lowest)] if lowest.size >= MIN_NULL_SAMPLES else np.empty(0, dtype=np.intp)
    return SpectrumSamples(index, weight, bin_index, bin_counts, model, noise_index, pixel_count)


#: |H|^2 below which a frequency counts as erased by the blur.
BLUR_NULL_OTF_POWER = 0.005
#: Fewest erased frequencies among the samples for :func:`spectral_noise_sigma` to answer.
MIN_NULL_SAMPLES = 64


def spectral_noise_sigma(spectrum: np.ndarray, samples: SpectrumSamples) -> float:
    """Noise level read from the frequencies the blur erased; NaN if there are too few.

    Where ``|H|^2`` is nearly 0 the frame's spectrum is noise alone, whatever its colour. For
    compressed video this matters: the encoder removes the finest-scale noise that the spatial
    estimate (:func:`estimate_noise_sigma`) measures, but keeps the coarser noise and coding
    artefacts, which is what the deconvolution would amplify. The median periodogram over
    those frequencies, divided by ln 2 (the median of an exponential variable), is robust to
    the few bins where some signal leaks through. Only the lowest-frequency quarter of those
    frequencies is used: compression noise falls with frequency, and the filter amplifies
    noise most near the blur's first zeros.
    """
    if samples.noise_index.size == 0:
        return math.nan
    values = spectrum.ravel()[samples.noise_index]
    periodogram = (values.real.astype(np.float64) ** 2 + values.imag.astype(np.float64) ** 2) / samples.pixel_count
    return math.sqrt(float(np.median(periodogram)) / math.log(2.0))


def fit_power_law(spectrum: np.ndarray, samples: SpectrumSamples, noise_sigma: float,
                  free_exponent: bool = True) -> tuple[float, float]:
    """Fit ``S_x = A / (|P|^2)^alpha`` to a frame's blurred, noisy spectrum.

    The model of the periodogram is ``E |Y|^2 / N = A |H|^2 / (|P|^2)^alpha + sigma^2``. The
    sampled frequencies are grouped in bins of ``log |P|^2``; in each bin whose power is at
    least twice the noise, ``A_b = sum(|Y|^2 / N - sigma^2) / sum(|H|^2 / (|P|^2)^alpha)``. The
    exponent is the one that makes the ``A_b`` most nearly equal across bins (least variance of
    ``log A_b``); ``A`` is their weighted geometric mean. Using every frequency with signal above
    the noise, not only the mildly blurred ones, fits the spectrum near the cut-off frequencies
    where the regularisation matters.

    Parameters
    ----------
    spectrum : numpy.ndarray
        The frame's half-spectrum (unnormalised ``rfft2``).
    samples : SpectrumSamples
        From :func:`spectrum_samples` for the same shape and OTF.
    noise_sigma : float
        Noise standard deviation of the frame.
    free_exponent : bool
        Fit ``alpha`` over :data:`ALPHA_GRID`; otherwise fix ``alpha = 1`` (1/f^2 spectrum).

    Returns
    -------
    (float, float)
        ``(A, alpha)``. ``A`` is NaN when no bin had signal above the noise.
    """
    values = spectrum.ravel()[samples.flat_index]
    periodogram = (values.real.astype(np.float64) ** 2 + values.imag.astype(np.float64) ** 2) / samples.pixel_count
    noise_power = noise_sigma * noise_sigma
    counts = samples.bin_counts
    signal = np.bincount(samples.bin_index, weights=samples.weight * (periodogram - noise_power),
                         minlength=counts.size)
    usable = (counts >= 16) & (signal > counts * noise_power)
    if not np.any(usable):
        return math.nan, 1.0
    rows = slice(None) if free_exponent else np.flatnonzero(ALPHA_GRID == 1.0)
    log_amplitudes = np.log(signal[usable])[None, :] - np.log(samples.model[rows][:, usable])
    bin_weight = np.sqrt(counts[usable])
    mean = np.average(log_amplitudes, axis=1, weights=bin_weight)
    spread = np.average((log_amplitudes - mean[:, None]) ** 2, axis=1, weights=bin_weight)
    best = int(np.argmin(spread))
    return math.exp(mean[best]), float(ALPHA_GRID[rows][best])


@dataclass(frozen=True)
class RiskSamples:
    """A thinned, weighted set of all non-DC frequencies, to evaluate expected errors quickly."""

    otf_power: np.ndarray
    regulariser_power: np.ndarray
    weight: np.ndarray


def risk_samples(otf: np.ndarray, regulariser_power: np.ndarray, max_samples: int = 8192) -> RiskSamples:
    """Thin the half spectrum to at most ``max_samples`` bins (DC excluded) for :func:`tikhonov_lambda`."""
    otf_power = (otf.real.astype(np.float64) ** 2 + otf.imag.astype(np.float64) ** 2).ravel()
    regulariser = regulariser_power.astype(np.float64).ravel()
    index = np.nonzero(regulariser > 0)[0]
    if index.size > max_samples:
        index = index[:: math.ceil(index.size / max_samples)]
    column = index % otf.shape[1]
    weight = np.where((column == 0) | (column == otf.shape[1] - 1), 1.0, 2.0)
    return RiskSamples(otf_power[index], regulariser[index], weight)


def tikhonov_lambda(samples: RiskSamples, noise_sigma: float, amplitude: float, alpha: float) -> float:
    """Tikhonov (gradient) weight that minimises the expected restoration error under a spectrum model.

    With ``S_x = amplitude / (|P|^2)^alpha`` and white noise of ``noise_sigma``, the expected
    squared error of ``G = conj(H) / (|H|^2 + lam |P|^2)`` is
    ``sum_f |1 - G H|^2 S_x + |G|^2 sigma^2``; it is minimised over a log grid of ``lam`` and
    refined by a parabola through the three best points.
    """
    h2 = samples.otf_power[None, :]
    p2 = samples.regulariser_power[None, :]
    image_power = amplitude / p2**alpha
    log_lams = np.linspace(-9.0, 2.0, 45)
    lams = 10.0 ** log_lams[:, None]
    denominator = h2 + lams * p2
    bias = (lams * p2 / denominator) ** 2 * image_power
    variance = h2 / denominator**2 * noise_sigma**2
    risk = ((bias + variance) * samples.weight[None, :]).sum(axis=1)
    best = int(np.argmin(risk))
    if 0 < best < len(log_lams) - 1:
        r0, r1, r2 = np.log(risk[best - 1 : best + 2])
        curvature = r0 - 2 * r1 + r2
        if curvature > 0:
            offset = 0.5 * (r0 - r2) / curvature
            return float(10.0 ** (log_lams[best] + offset * (log_lams[1] - log_lams[0])))
    return float(10.0 ** log_lams[best])
