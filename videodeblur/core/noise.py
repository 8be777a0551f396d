"""Noise and regularisation estimates for automatic Wiener / Tikhonov parameters.

The rule (documented in the README as well)
-------------------------------------------
1. Noise: its power spectrum ``N(f) = C / (|P|^2)^beta`` is read from the frequencies the
   blur erases (``|H|^2 < 0.005``), where the frame holds nothing else
   (:func:`fit_noise_model`): white sensor noise gives ``beta = 0``; compression and the
   border's model error add coarser, redder noise. When the blur erases too few frequencies
   (a very mild blur), white noise is assumed with Immerkaer's estimate of ``sigma``
   (:func:`estimate_noise_sigma`). Both are floored at the quantisation noise of 8-bit video.
2. Image spectrum: natural images have power spectra close to a power law,
   ``S_x(f) = A / (|P(f)|^2)^alpha`` with ``|P|^2`` the gradient power (about ``(2 pi f)^2``)
   and ``alpha`` near 1 (the classic 1/f^2 law). ``A`` and ``alpha`` are fitted to the frame's
   own periodogram wherever the blurred signal is above the noise (:func:`fit_power_law`).
3. Regularisation: the Wiener filter's optimal NSR is ``N(f) / S_x(f)``, a power law again:
   ``NSR(f) = (C / A) (|P(f)|^2)^(alpha - beta)``. Tikhonov uses the ``lambda`` of
   ``lambda |P|^2`` that minimises the expected error under the same models
   (:func:`tikhonov_lambda`).
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


#: Power over noise a bin needs to enter :func:`fit_power_law`. Near the cut-off, what a codec
#: leaves (its quantisation error is redder than the noise read where the blur erased
#: everything) can double a bin's power: with a margin of 2 such a bin entered the fit, tilted
#: the fitted exponent of a texture's spectrum, and the filter amplified the codec's error over
#: the whole frame (a clean H.264 master lost 5 dB). Larger margins start to drop real signal
#: on noisy frames (docs/quality.md).
SIGNAL_MARGIN = 3.0

#: Exponents tried by :func:`fit_power_law`: spectra from 1/f^2 to 1/f^4. Natural images fall
#: at least as fast as 1/f^2; a texture (brick, grass) can make the fitted slope shallower over
#: the low frequencies, and extrapolating that to the high frequencies would leave the noise
#: there unregularised.
ALPHA_GRID = np.round(np.arange(1.0, 2.001, 0.05), 2)


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
    bin_log_regulariser : numpy.ndarray
        Mean ``log |P|^2`` of each bin.
    erased_index : numpy.ndarray
        Flat indices of sampled frequencies the blur erases (``|H|^2 < 0.005``), where the
        frame holds only noise (see :func:`fit_noise_model`), ordered by noise bin.
    erased_bin : numpy.ndarray
        Noise bin (of ``log |P|^2``) of each of them; only bins with enough members are kept.
    noise_bin_centres, noise_bin_weights : numpy.ndarray
        Per noise bin: mean ``log |P|^2`` and sqrt(member count).
    noise_bin_bounds : numpy.ndarray
        Where each noise bin's members start in ``erased_index``, then the end of the last.
    pixel_count : int
        Number of pixels of the frame (the periodogram's scale).
    """

    flat_index: np.ndarray
    weight: np.ndarray
    bin_index: np.ndarray
    bin_counts: np.ndarray
    model: np.ndarray
    bin_log_regulariser: np.ndarray
    erased_index: np.ndarray
    erased_bin: np.ndarray
    noise_bin_centres: np.ndarray
    noise_bin_weights: np.ndarray
    noise_bin_bounds: np.ndarray
    pixel_count: int


def _non_dc_index(regulariser_power: np.ndarray) -> np.ndarray:
    """Flat indices of every half-spectrum bin where the regulariser is not 0 (all but DC)."""
    flat = regulariser_power.ravel()
    if flat[0] == 0 and flat[1:].min() > 0:  # the gradient's: only DC is 0 (a minimum costs less than nonzero)
        return np.arange(1, flat.size)
    return np.flatnonzero(flat > 0)


def power_at(spectrum: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``|spectrum|^2`` (float64) at the flat indices ``index`` of a half spectrum (an OTF or a
    frame's transform) only: the full arrays are a million bins at 1080p."""
    values = spectrum.ravel()[index]
    return values.real.astype(np.float64) ** 2 + values.imag.astype(np.float64) ** 2


def _at(otf: np.ndarray, regulariser_power: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|H|^2 and |P|^2 (float64) at the flat indices ``index`` only (the pipeline builds samples
    whenever an estimated blur changes)."""
    return power_at(otf, index), regulariser_power.ravel()[index].astype(np.float64)


def _mirror_weight(flat_index: np.ndarray, columns: int) -> np.ndarray:
    """How many full-spectrum bins each half-spectrum bin stands for: interior columns are two
    (their mirror image is implicit), the first and last column one."""
    column = flat_index % columns
    return np.where((column == 0) | (column == columns - 1), 1.0, 2.0)


#: Seed of the frequencies :func:`spectrum_samples` draws. Fixed, so that a frame is always
#: restored alike; the benchmarks vary it (``--sample-seed``) to measure how much the automatic
#: regularisation and the kernel guard depend on which frequencies were drawn.
SAMPLE_SEED = 0


def spectrum_samples(otf: np.ndarray, regulariser_power: np.ndarray, pixel_count: int,
                     max_samples: int = 8192, bins: int = 20) -> SpectrumSamples:
    """Prepare :func:`fit_power_law` for one (frame shape, OTF).

    At most ``max_samples`` non-DC frequencies are drawn (fixed seed) and grouped into ``bins``
    bins of ``log |P|^2``, so that fitting a frame costs a fraction of a millisecond.
    """
    index = _non_dc_index(regulariser_power)
    if index.size > max_samples:
        # Runs of 16 neighbouring bins at fixed random places: random, so no stride aliases with
        # the row length, and in runs, so gathering them per frame reads whole cache lines.
        run = 16
        starts = np.random.default_rng(SAMPLE_SEED).choice(index.size // run, max_samples // run, replace=False) * run
        index = index[np.sort((starts[:, None] + np.arange(run)[None, :]).ravel())]
    otf_power_at, regulariser_at = _at(otf, regulariser_power, index)
    weight = _mirror_weight(index, otf.shape[1])
    log_p = np.log(regulariser_at)
    edges = np.linspace(log_p.min(), log_p.max() + 1e-9, bins + 1)
    bin_index = np.clip(np.digitize(log_p, edges) - 1, 0, bins - 1)
    bin_counts = np.bincount(bin_index, weights=weight, minlength=bins)
    shape_terms = otf_power_at[None, :] * np.exp(-ALPHA_GRID[:, None] * log_p[None, :])
    model = np.stack([np.bincount(bin_index, weights=weight * row, minlength=bins) for row in shape_terms])
    bin_log_regulariser = np.bincount(bin_index, weights=weight * log_p, minlength=bins) / np.maximum(bin_counts, 1)
    erased = np.flatnonzero(otf_power_at < BLUR_NULL_OTF_POWER)
    if erased.size > MAX_ERASED_SAMPLES:  # medians of a few hundred per bin are plenty
        erased = np.sort(np.random.default_rng(SAMPLE_SEED + 1).choice(erased, MAX_ERASED_SAMPLES, replace=False))
    erased_log_p = log_p[erased]
    noise_edges = np.linspace(erased_log_p.min(), erased_log_p.max() + 1e-9, NOISE_BINS + 1) if erased.size else [0, 1]
    erased_bin = np.clip(np.digitize(erased_log_p, noise_edges) - 1, 0, NOISE_BINS - 1)
    members = np.bincount(erased_bin, minlength=NOISE_BINS)
    keep = members[erased_bin] >= MIN_ERASED_PER_BIN
    order = np.argsort(erased_bin[keep], kind="stable")
    erased, erased_bin, erased_log_p = erased[keep][order], erased_bin[keep][order], erased_log_p[keep][order]
    counts = np.bincount(erased_bin, minlength=NOISE_BINS)
    used = np.flatnonzero(counts)
    bounds = np.concatenate([[0], np.cumsum(counts[used])])
    centres = np.bincount(erased_bin, weights=erased_log_p, minlength=NOISE_BINS)[used] / counts[used]
    return SpectrumSamples(index, weight, bin_index, bin_counts, model, bin_log_regulariser,
                           index[erased], erased_bin, centres, np.sqrt(counts[used]), bounds, pixel_count)


#: |H|^2 below which a frequency counts as erased by the blur.
BLUR_NULL_OTF_POWER = 0.005
#: Erased frequencies per bin needed for a noise level, and bins of them for a noise model.
MIN_ERASED_PER_BIN = 16
NOISE_BINS = 8
MAX_ERASED_SAMPLES = 2048
#: Largest noise slope fitted: noise no redder than 1/f^3.
MAX_NOISE_SLOPE = 1.5


@dataclass(frozen=True)
class NoiseModel:
    """Noise power spectrum ``N(f) = power / (|P(f)|^2)^slope`` (``slope`` 0: white noise).

    Attributes
    ----------
    power : float
        Noise power at ``|P|^2 = 1`` (about 0.16 cycles per pixel); ``sigma^2`` for white noise.
    slope : float
        How fast the noise falls with frequency, >= 0.
    """

    power: float
    slope: float = 0.0

    def at(self, log_regulariser: np.ndarray) -> np.ndarray:
        """``N`` at frequencies given by ``log |P|^2``."""
        return self.power * np.exp(-self.slope * log_regulariser)


def _weighted_slope(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> float:
    """Slope of the weighted least-squares line through (x, y) (closed form: np.polyfit is slow)."""
    # Dot products, not np.average: these run for every frame, where np.average's argument
    # checks cost more than the arithmetic on a few bins.
    total = weight.sum()
    x_centred = x - weight @ x / total
    weighted = weight * x_centred
    return float(weighted @ (y - weight @ y / total) / (weighted @ x_centred))


def fit_noise_model(spectrum: np.ndarray, samples: SpectrumSamples) -> NoiseModel | None:
    """Noise power spectrum read from the frequencies the blur erased; None if too few.

    Where ``|H|^2`` is nearly 0 the frame's spectrum is noise alone, whatever its colour: the
    sensor's white noise, but also what video compression leaves (it removes the finest-scale
    noise and keeps coarser noise and coding artefacts) and the error of the periodic model at
    the frame's borders, which edgetaper reduces but does not remove. The erased frequencies
    are grouped in bins of ``log |P|^2``; each bin's level is its median periodogram over ln 2
    (the median of an exponential variable: robust to the few bins where signal leaks through);
    a line through the levels in log-log gives ``power`` and ``slope`` (clamped to
    [0, :data:`MAX_NOISE_SLOPE`]).
    """
    if samples.erased_index.size == 0:
        return None
    periodogram = power_at(spectrum, samples.erased_index) / samples.pixel_count
    # The members are ordered by bin: each bin's median by a partial sort of its own run
    # (a tenth of the time of sorting all of them by bin and power).
    bounds = samples.noise_bin_bounds
    medians = np.empty(bounds.size - 1)
    for position, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        middle = (stop - start) // 2
        medians[position] = np.partition(periodogram[start:stop], middle)[middle]
    levels = np.log(medians / math.log(2.0) + 1e-30)
    centres, weights = samples.noise_bin_centres, samples.noise_bin_weights
    slope = 0.0
    if centres.size >= 2 and np.ptp(centres) > 0.5:
        # Least squares with each bin weighted by its member count (its level's precision).
        slope = float(np.clip(-_weighted_slope(centres, levels, weights**2), 0.0, MAX_NOISE_SLOPE))
    power = math.exp(float(weights @ (levels + slope * centres) / weights.sum()))
    # As for the spatial estimate: never below the quantisation noise of 8-bit video, so that
    # a clean synthetic frame does not get an unstable, nearly inverse filter.
    return NoiseModel(max(power, QUANTISATION_SIGMA_8BIT**2), slope)


def fit_power_law(spectrum: np.ndarray, samples: SpectrumSamples, noise,
                  free_exponent: bool = True) -> tuple[float, float]:
    """Fit ``S_x = A / (|P|^2)^alpha`` to a frame's blurred, noisy spectrum.

    The model of the periodogram is ``E |Y|^2 / N = A |H|^2 / (|P|^2)^alpha + N(f)``. The
    sampled frequencies are grouped in bins of ``log |P|^2``; in each bin whose power is at
    least :data:`SIGNAL_MARGIN` times the noise, ``A_b = sum(|Y|^2 - N(f)) / sum(|H|^2 / (|P|^2)^alpha)``. The
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
    noise : NoiseModel or float
        The frame's noise spectrum, or the standard deviation of white noise.
    free_exponent : bool
        Fit ``alpha`` over :data:`ALPHA_GRID`; otherwise fix ``alpha = 1`` (1/f^2 spectrum).

    Returns
    -------
    (float, float)
        ``(A, alpha)``. ``A`` is NaN when no bin had signal above the noise.
    """
    periodogram = power_at(spectrum, samples.flat_index) / samples.pixel_count
    if not isinstance(noise, NoiseModel):
        noise = NoiseModel(float(noise) ** 2)
    noise_power = noise.at(samples.bin_log_regulariser)  # per bin
    counts = samples.bin_counts
    signal = np.bincount(samples.bin_index, weights=samples.weight * periodogram, minlength=counts.size)
    signal -= counts * noise_power
    usable = (counts >= 16) & (signal > (SIGNAL_MARGIN - 1.0) * counts * noise_power)
    if not np.any(usable):
        return math.nan, 1.0
    rows = slice(None) if free_exponent else np.flatnonzero(ALPHA_GRID == 1.0)
    log_amplitudes = np.log(signal[usable])[None, :] - np.log(samples.model[rows][:, usable])
    bin_weight = np.sqrt(counts[usable])
    bin_weight = bin_weight / bin_weight.sum()
    mean = log_amplitudes @ bin_weight
    spread = (log_amplitudes - mean[:, None]) ** 2 @ bin_weight
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
    index = _non_dc_index(regulariser_power)
    if index.size > max_samples:
        index = index[:: math.ceil(index.size / max_samples)]
    return RiskSamples(*_at(otf, regulariser_power, index), _mirror_weight(index, otf.shape[1]))


def tikhonov_lambda(samples: RiskSamples, noise: NoiseModel, amplitude: float, alpha: float) -> float:
    """Tikhonov (gradient) weight that minimises the expected restoration error under a spectrum model.

    With ``S_x = amplitude / (|P|^2)^alpha`` and noise spectrum ``N`` (:class:`NoiseModel`), the
    expected squared error of ``G = conj(H) / (|H|^2 + lam |P|^2)`` is
    ``sum_f |1 - G H|^2 S_x + |G|^2 N``; it is minimised over a log grid of ``lam`` and refined
    by a parabola through the three best points.
    """
    h2 = samples.otf_power[None, :]
    p2 = samples.regulariser_power[None, :]
    image_power = amplitude / p2**alpha
    log_lams = np.linspace(-9.0, 2.0, 45)
    lams = 10.0 ** log_lams[:, None]
    denominator = h2 + lams * p2
    bias = (lams * p2 / denominator) ** 2 * image_power
    variance = h2 / denominator**2 * noise.at(np.log(p2))
    risk = ((bias + variance) * samples.weight[None, :]).sum(axis=1)
    best = int(np.argmin(risk))
    if 0 < best < len(log_lams) - 1:
        r0, r1, r2 = np.log(risk[best - 1 : best + 2])
        curvature = r0 - 2 * r1 + r2
        if curvature > 0:
            offset = 0.5 * (r0 - r2) / curvature
            return float(10.0 ** (log_lams[best] + offset * (log_lams[1] - log_lams[0])))
    return float(10.0 ** log_lams[best])
