"""The guard against a kernel larger than the blur a frame shows.

A user who guesses a blur guesses it too large as often as too small, and a linear filter with
a kernel 1.5 times too large does not merely under-perform: it divides by the kernel's zeros
where the frame still has detail and covers the frame in ripples. The frame itself says so.
Under the right kernel ``H`` its periodogram follows ``A |H|^2 / (|P|^2)^alpha + N``: bins of
frequency in which ``H`` changes alike should each give the same amplitude ``A``. Under a kernel
that is too large, the bins where it predicts little power hold the detail the true, smaller
blur let through, and the amplitudes climb with frequency.

The bins are laid out by the kernel's own frequency metric ``q = sqrt(f' C f)`` (``C``: the
kernel's covariance in pixels), which follows ``|H|`` for any shape: for a disk or a Gaussian
``q`` is the radius of ``f``, for a streak its component along the streak. Where the spread of
the per-bin amplitudes shows the kernel does not explain the frame, smaller copies of the kernel
(:data:`SCALES`) are tried and the frame is restored with the one that explains it best, if
that explains it well: a wrong guess degrades to "not much sharper", not to damage. No smaller
copy explains a frame whose kernel is too small: there larger copies of the same model are tried,
and taken only where cross-validation (below) clearly prefers one (:func:`decide_scale`).

A power law is a loose model of a picture's spectrum (clipped highlights, point lights, periodic
texture): on some frames a smaller copy fits it better than the right kernel, and on others the
best fit is not the best copy. So the choice is checked by a second, independent test that needs
no model of the picture: generalised cross-validation (Golub, Heath and Wahba 1979; Reeves and
Mersereau 1992 use it to identify a blur), which scores how well each copy's restoration, as it
would be applied, predicts every frequency of the frame from the others (:func:`confirm_scale`).
Cross-validation alone decides where the full kernel explains the frame only as a picture with
far more fine detail than a photograph has (:data:`FLAT_PICTURE_TIERS`): a kernel too large
on a fine texture, which the spread cannot tell from a right kernel.

Pure NumPy on arrays; no I/O, no threads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from videodeblur.cache import LockedLRU
from videodeblur.core.noise import SIGNAL_MARGIN, NoiseModel, power_at
from videodeblur.errors import InvalidParameterError

#: Smaller copies of the kernel tried when it does not explain a frame.
SCALES = (0.85, 0.75, 0.65, 0.55, 0.45)
#: Larger copies tried when it does not explain a frame and no smaller copy does better.
GROWN_SCALES = (1.15, 1.33)
#: Spread (variance of the log amplitudes over bins) up to which a kernel explains a frame:
#: well above what the true kernel gives on the camera-realistic and wrong-guess benchmarks,
#: well below what most kernels 1.5 times too large give (docs/quality.md, "Wrong guesses").
MAX_SPREAD = 0.25
#: A smaller kernel is taken only where it cuts the spread to at most this share, and either
#: explains the frame or cuts the spread to :data:`CLEAR_IMPROVEMENT`.
MIN_IMPROVEMENT = 0.5
CLEAR_IMPROVEMENT = 0.3


class FlatPictureTier(NamedTuple):
    """Fits of the full kernel this flat (``alpha`` at most ``exponent``, spread at most
    ``spread``) are decided by cross-validation, with a copy taken where it scores below
    ``margin`` times the full kernel's score (:data:`FLAT_PICTURE_TIERS`)."""

    exponent: float
    spread: float
    margin: float


#: A kernel too large explains a frame as a picture spectrum ``1 / (|P|^2)^alpha`` flatter than a
#: photograph's (about 1/f^2 in power, alpha about 1): the detail its extra width would have erased
#: is read as a flat picture, and the spread can stay low. On such fits the spread is no guide,
#: and cross-validation decides (:func:`decide_scale`), with a margin that grows as the fit comes
#: closer to a photograph's, since right kernels' fits do too (docs/quality.md, "Wrong guesses";
#: figures over five draws of the frequencies the fits sample):
#:
#: * 1/f or flatter: 0.15 of a decade (overturning one test takes clearer evidence than the 0.13
#:   that confirms it); right kernels of the camera benchmark's flat frames score at best 0.152
#:   below, kernels 1.5 times too large from 0.07 (those are missed) to 1.6 below;
#: * up to alpha 0.9, where the spread explains the frame: 0.4 of a decade; right kernels score at
#:   best 0.354 below (rocket at night under a Gaussian of sigma 1.5), a streak 1.5 times too long
#:   on coffee 0.39-0.9. On a frame the spread finds unexplained (a texture no power law fits) a
#:   fit this close to a photograph's says nothing (:data:`UNEXPLAINED_GCV_MARGIN` applies).
#:
#: A frame of point lights at night is as flat, and cross-validation keeps its kernel (its scores
#: keep falling to the smallest copy, or stay within the margin).
FLAT_PICTURE_TIERS = (FlatPictureTier(0.5, math.inf, 10.0 ** -0.15), FlatPictureTier(0.9, MAX_SPREAD, 10.0 ** -0.4))
#: Where the spread finds the full kernel does not explain a frame but locates no smaller copy
#: (:func:`choose_scale`'s exceptions, or no copy explains it much better), cross-validation alone
#: decides, with a copy taken where it scores half a decade below the full kernel. Which
#: frequencies the fits sample moves the spreads of such frames more than their scores: with
#: other samples, kernels 1.5 times too large under streaks and disks whose spread locates
#: nothing score 0.7-1.3 of a decade below; right kernels whose spread locates nothing score at
#: best 0.36 below (brick under its 9 px streak; docs/quality.md, "Wrong guesses").
UNEXPLAINED_GCV_MARGIN = 10.0 ** -0.5
#: Image spectra the fit may assume, ``1 / (|P|^2)^alpha``: from flat (a dark frame of point
#: lights) to 1/f^4.
ALPHA_GRID = np.round(np.arange(0.0, 2.001, 0.1), 2)
#: Bins of ``log q``.
METRIC_BINS = 20
#: A clear difference of generalised cross-validation scores (:func:`gcv_score`), by which a copy
#: must predict a frame better than the full kernel to replace it: 0.13 of a decade. On the
#: camera-realistic and wrong-guess benchmarks (the shipped draw of the fits' frequencies,
#: :data:`~videodeblur.core.noise.SAMPLE_SEED`), right kernels' copies score at best 0.10 of a
#: decade below the full kernel, kernels 1.5 times too large at least 0.16 (docs/quality.md,
#: "Wrong guesses").
GCV_MARGIN = 10.0 ** -0.13
#: Where the spread's choice explains the frame, another smaller copy replaces it only where it
#: scores a tenth of a decade lower: below a Gaussian's true scale the copies' scores lie closer.
GCV_CHOICE_MARGIN = 10.0 ** -0.1


@dataclass(frozen=True)
class KernelModel:
    """What a kernel predicts at the sampled frequencies, binned by the frequency metric.

    Attributes
    ----------
    bin_index : numpy.ndarray
        Metric bin of each sample.
    counts : numpy.ndarray
        Total weight of each bin.
    model : numpy.ndarray
        ``model[a, b] = sum over bin b of weight |H|^2 / (|P|^2)^ALPHA_GRID[a]``.
    otf_power : numpy.ndarray
        ``|H|^2`` at the samples (for :func:`gcv_score`).
    """

    bin_index: np.ndarray
    counts: np.ndarray
    model: np.ndarray
    otf_power: np.ndarray


def metric_bin_index(kernel: np.ndarray, padded_shape: tuple[int, int], flat_index: np.ndarray) -> np.ndarray:
    """Bin of ``log q`` of each half-spectrum sample ``flat_index`` of a ``padded_shape``
    transform, ``q`` the frequency metric of ``kernel`` (see the module's docstring). Scaled
    copies of a kernel have the same bins (their metric is the same up to a factor)."""
    rows, columns = padded_shape
    half_columns = columns // 2 + 1
    fy = np.fft.fftfreq(rows)[flat_index // half_columns]
    fx = (flat_index % half_columns) / columns
    y, x = np.mgrid[: kernel.shape[0], : kernel.shape[1]].astype(np.float64)
    k = kernel.astype(np.float64) / kernel.sum()
    cy, cx = (k * y).sum(), (k * x).sum()
    syy, sxx, sxy = (k * (y - cy) ** 2).sum(), (k * (x - cx) ** 2).sum(), (k * (y - cy) * (x - cx)).sum()
    log_metric = np.log(np.sqrt(np.maximum(sxx * fx**2 + syy * fy**2 + 2 * sxy * fx * fy, 0.0)) + 1e-12)
    edges = np.linspace(log_metric.min(), log_metric.max() + 1e-9, METRIC_BINS + 1)
    return np.clip(np.digitize(log_metric, edges) - 1, 0, METRIC_BINS - 1)


def kernel_model(bin_index: np.ndarray, weight: np.ndarray, log_regulariser: np.ndarray,
                 otf_power: np.ndarray) -> KernelModel:
    """Prepare :func:`fit_spread` for one kernel (``otf_power``: ``|H|^2`` at the samples)."""
    counts = np.bincount(bin_index, weights=weight, minlength=METRIC_BINS)
    shapes = otf_power[None, :] * np.exp(-ALPHA_GRID[:, None] * log_regulariser[None, :])
    model = np.stack([np.bincount(bin_index, weights=weight * row, minlength=METRIC_BINS) for row in shapes])
    return KernelModel(bin_index, counts, model, otf_power)


class SpreadFit(NamedTuple):
    """How well a kernel explains a frame (:func:`fit_spread`).

    Attributes
    ----------
    spread : float
        The least weighted variance of the per-bin log amplitudes (0: explained perfectly).
    picture_exponent : float or None
        The picture spectrum's exponent ``alpha`` of that least spread (:data:`ALPHA_GRID`);
        None where fewer than three bins hold signal.
    """

    spread: float
    picture_exponent: float | None


def fit_spread(periodogram: np.ndarray, weight: np.ndarray, log_regulariser: np.ndarray, kernel: KernelModel,
               noise: NoiseModel) -> SpreadFit:
    """How well ``A |H|^2 / (|P|^2)^alpha + N`` explains a frame's periodogram at the samples.

    Per metric bin with signal :data:`~videodeblur.core.noise.SIGNAL_MARGIN` times above the
    noise, ``A_b = sum(|Y|^2 - N) / sum(|H|^2 / (|P|^2)^alpha)``; the spread is the least
    weighted variance of ``log A_b`` over ``alpha`` in
    :data:`ALPHA_GRID` (0: the kernel explains the frame perfectly), and ``alpha`` the picture
    spectrum's exponent it takes.
    Fewer than three bins with signal give a spread of 0: nothing contradicts the kernel.
    """
    noise_power = noise.at(log_regulariser)
    signal = np.bincount(kernel.bin_index, weights=weight * (periodogram - noise_power), minlength=METRIC_BINS)
    noise_total = np.bincount(kernel.bin_index, weights=weight * noise_power, minlength=METRIC_BINS)
    usable = (kernel.counts >= 16) & (signal > (SIGNAL_MARGIN - 1.0) * noise_total)
    if usable.sum() < 3:
        return SpreadFit(0.0, None)
    log_amplitudes = np.log(signal[usable])[None, :] - np.log(np.maximum(kernel.model[:, usable], 1e-300))
    bin_weight = np.sqrt(kernel.counts[usable])
    bin_weight = bin_weight / bin_weight.sum()
    mean = log_amplitudes @ bin_weight
    spread = (log_amplitudes - mean[:, None]) ** 2 @ bin_weight
    best = int(np.argmin(spread))
    return SpreadFit(float(spread[best]), float(ALPHA_GRID[best]))


def choose_scale(spreads: dict[float, float]) -> float:
    """The kernel scale a frame is restored with, from ``{scale: spread}`` (1.0 included).

    1.0 where the full kernel explains the frame (spread up to :data:`MAX_SPREAD`). Else the
    smaller scale with the least spread, where that cuts the spread to :data:`MIN_IMPROVEMENT`
    of the full kernel's and either explains the frame or cuts it to :data:`CLEAR_IMPROVEMENT`
    (a texture no power law fits well still tells a right kernel from a wrong one), with two
    exceptions where the spread does not locate the blur:

    * the spread still falls at the smallest copy tried: the frame's spectrum is flatter than
      any kernel's, not a kernel too large, and the full kernel is kept;
    * the best is the mildest copy (``SCALES[0]``) and the next one does not explain the frame
      at all: a spread that jumps between neighbouring scales (a periodic texture) locates
      nothing, and the full kernel is kept.

    A kernel too small is not helped by shrinking it further, so it is kept.
    """
    full = spreads[1.0]
    if full <= MAX_SPREAD:
        return 1.0
    best = min((s for s in spreads if s < 1.0), key=spreads.__getitem__, default=1.0)
    if best == 1.0:
        return 1.0
    least = spreads[best]
    if not (least <= MIN_IMPROVEMENT * full and (least <= MAX_SPREAD or least <= CLEAR_IMPROVEMENT * full)):
        return 1.0
    if best == min(spreads) and len(spreads) > 2:
        return 1.0
    if best == SCALES[0] and spreads.get(SCALES[1], math.inf) > MAX_SPREAD:
        return 1.0
    return best


def grow_scale(scores: dict[float, float]) -> float:
    """The larger copy (:data:`GROWN_SCALES`) with the least :func:`gcv_score` where it predicts
    the frame clearly better (:data:`GCV_MARGIN`) than the full kernel (``scores[1.0]``), else 1.0.

    Growing is decided by cross-validation alone: a power law fits a right kernel's frame loosely
    enough that a larger copy's spread can be lower, and a right kernel grown is the damage the
    guard exists to prevent; a larger copy's restoration predicts such a frame worse.
    """
    best = min(scores, key=scores.__getitem__)
    return best if best > 1.0 and scores[best] <= GCV_MARGIN * scores[1.0] else 1.0


def least_score_copy(scores: dict[float, float]) -> float:
    """The copy with the least :func:`gcv_score` among those other than the smallest in
    ``scores`` (like a spread, a score still falling at the smallest copy locates nothing); 1.0
    where there is no other."""
    smallest = min(scores)
    return min((key for key in scores if key != smallest), key=scores.__getitem__, default=1.0)


def located_scale(scores: dict[float, float]) -> float:
    """The smaller copy cross-validation locates the blur at, alone (where the spread is no guide):
    :func:`least_score_copy`, unless the smallest copy scores clearly lower still
    (:data:`GCV_CHOICE_MARGIN`): scores that keep falling to the smallest copy locate nothing (a
    frame of point lights is flatter than any copy explains), and then 1.0."""
    scale = least_score_copy(scores)
    return 1.0 if scores[min(scores)] <= GCV_CHOICE_MARGIN * scores[scale] else scale


def confirm_scale(scale: float, spreads: dict[float, float], scores: dict[float, float]) -> float:
    """The smaller scale :func:`choose_scale` chose, checked by generalised cross-validation.

    ``spreads`` and ``scores`` (:func:`fit_spread`, :func:`gcv_score`) hold the full kernel (1.0)
    and every smaller copy tried. The copy :func:`least_score_copy` names replaces ``scale``
    where ``scale`` does not explain the frame either (a texture no power law fits: the spread
    says the kernel is too large, not by how much), or where it scores lower by
    :data:`GCV_CHOICE_MARGIN`. The result is kept only where it predicts the frame clearly
    better (:data:`GCV_MARGIN`) than the full kernel; otherwise the full kernel is.
    """
    if scale == 1.0:
        return 1.0
    best = least_score_copy(scores)
    if spreads[scale] > MAX_SPREAD or scores[best] <= GCV_CHOICE_MARGIN * scores[scale]:
        scale = best
    return scale if scores[scale] <= GCV_MARGIN * scores[1.0] else 1.0


def cross_validation_margin(fit: SpreadFit) -> float | None:
    """The factor on the full kernel's :func:`gcv_score` that a copy must score below to be taken
    by cross-validation alone, where the spread chooses no smaller copy: the first of
    :data:`FLAT_PICTURE_TIERS` that ``fit`` (the full kernel's) falls in, else
    :data:`UNEXPLAINED_GCV_MARGIN` where it finds the frame unexplained, else None (the frame is
    explained, as a photograph: the full kernel stands)."""
    if fit.picture_exponent is not None:
        for tier in FLAT_PICTURE_TIERS:
            if fit.picture_exponent <= tier.exponent and fit.spread <= tier.spread:
                return tier.margin
    return UNEXPLAINED_GCV_MARGIN if fit.spread > MAX_SPREAD else None


def decide_scale(spreads: dict[float, float], scores: dict[float, float], alone_margin: float | None = None) -> float:
    """The kernel scale a frame the full kernel does not explain is restored with.

    ``spreads`` (:func:`fit_spread`) holds the full kernel (1.0) and the smaller copies tried;
    ``scores`` (:func:`gcv_score`) those and the larger copies. A larger copy that
    :func:`grow_scale` takes wins where no smaller copy is chosen, or where the smaller copies'
    score still falls at the smallest one (for a kernel too small, every smaller copy predicts
    the frame better than it, down to the smallest: that locates nothing; for one too large the
    score has its least at the true scale), but never where the spread's choice explains the
    frame (at most :data:`MAX_SPREAD`: the kernel is too large, whatever the scores say).
    Otherwise the smaller copy :func:`choose_scale` chooses and :func:`confirm_scale` confirms,
    or the full kernel. Where the spread chooses no smaller copy, the copy :func:`located_scale`
    names is taken where it scores below ``alone_margin`` times the full kernel's score
    (:func:`cross_validation_margin`; None: not looked for).
    """
    smaller = {key: score for key, score in scores.items() if key <= 1.0}
    scale = choose_scale(spreads)
    if scale == 1.0 and alone_margin is not None:
        located = located_scale(smaller)
        if smaller[located] <= alone_margin * smaller[1.0]:
            scale = located
    larger = grow_scale({key: score for key, score in scores.items() if key >= 1.0})
    # Never grown where a smaller copy explains the frame: the spread then says the kernel is too
    # large, and a kernel too large grown is the worst damage the guard can do.
    explained_smaller = scale < 1.0 and spreads[scale] <= MAX_SPREAD
    if larger != 1.0 and not explained_smaller and (
            scale == 1.0 or min(smaller, key=smaller.__getitem__) == min(smaller)):
        return larger
    return confirm_scale(scale, spreads, smaller)


def gcv_score(periodogram: np.ndarray, weight: np.ndarray, log_regulariser: np.ndarray, otf_power: np.ndarray,
              regularisation) -> float:
    """Generalised cross-validation of a filter ``conj(H) / (|H|^2 + NSR)`` on a frame.

    ``V = mean(|(1 - a) Y|^2) / mean(1 - a)^2`` with ``a = |H|^2 / (|H|^2 + NSR)`` the filter's
    influence at each frequency (re-blurring the restored frame multiplies ``Y`` by ``a``), over
    the sampled frequencies with their weights: the error of predicting each frequency of the
    frame from the others under this kernel and regularisation. Lower is better; only ratios
    between filters on the same frame mean anything.

    Parameters
    ----------
    periodogram, weight, log_regulariser : numpy.ndarray
        ``|Y|^2 / N``, the sample weights and ``log |P|^2`` at the sampled frequencies.
    otf_power : numpy.ndarray
        ``|H|^2`` at the same frequencies.
    regularisation : Regularisation
        ``NSR = weight * (|P|^2)^exponent`` (a constant ``weight`` for exponent 0).
    """
    nsr = regularisation.weight * np.exp(regularisation.exponent * log_regulariser)
    residual_share = nsr / (otf_power + nsr)  # 1 - a
    total = weight.sum()
    error = (weight * residual_share**2 * periodogram).sum() / total
    return float(error / max((weight * residual_share).sum() / total, 1e-150) ** 2)


class KernelGuard:
    """Chooses, per frame, the kernel scale a linear method restores with (see the module).

    Parameters
    ----------
    method : LinearFilter
        The method of the full kernel, with ``nsr = "auto"`` and a noise read from its spectrum.
    kernel : numpy.ndarray
        Its (normalised) kernel.
    build : callable
        ``build(scale)`` returns the same method for the kernel ``scale`` times as large (built
        once per scale, the first time a frame needs it).
    grown_scales : tuple of float
        The larger copies tried (:data:`GROWN_SCALES`; none where a larger copy cannot be made
        as sharp as the blur it stands for, e.g. a streak resampled to a greater length).
    """

    def __init__(self, method, kernel: np.ndarray, build: Callable, grown_scales: tuple[float, ...] = GROWN_SCALES):
        samples = method.noise.samples
        self.method = method
        self.flat_index = samples.flat_index
        self.weight = samples.weight
        self.pixel_count = samples.pixel_count
        self.log_regulariser = np.log(method.regulariser_power.ravel()[samples.flat_index].astype(np.float64))
        self.bin_index = metric_bin_index(kernel, method.padded_shape, samples.flat_index)
        self.full = self._model(method)
        self._build = build
        self.grown_scales = tuple(grown_scales)
        self._alternatives: LockedLRU[tuple] = LockedLRU(len(SCALES) + len(self.grown_scales))

    def _model(self, method) -> KernelModel:
        return kernel_model(self.bin_index, self.weight, self.log_regulariser, power_at(method.otf, self.flat_index))

    def _alternative(self, scale: float) -> tuple:
        def build():
            try:
                method = self._build(scale)
            except InvalidParameterError:  # larger than the frame, or a kernel without a model to grow
                return None
            return method, self._model(method)

        return self._alternatives.get(scale, build)

    def choose(self, spectrum: np.ndarray, noise: NoiseModel,
               weighting: tuple[float, float] = (1.0, 0.0)) -> tuple[object, float]:
        """``(method, scale)`` for a frame of this ``spectrum`` whose noise under the full kernel
        is ``noise``: the full kernel's method and 1.0 unless it over-reaches or falls short
        (:func:`decide_scale`). ``weighting`` is the coding's weighting of the automatic
        regularisation (as the methods take it)."""
        # The frame's power at the samples, read once for every kernel tried.
        periodogram = power_at(spectrum, self.flat_index) / self.pixel_count
        fit = fit_spread(periodogram, self.weight, self.log_regulariser, self.full, noise)
        alone_margin = cross_validation_margin(fit)
        if alone_margin is None:
            return self.method, 1.0
        spreads = {1.0: fit.spread}
        candidates = {1.0: (self.method, self.full, noise)}
        for scale in SCALES:
            if self._add_candidate(candidates, scale, spectrum):
                spreads[scale] = fit_spread(periodogram, self.weight, self.log_regulariser, candidates[scale][1],
                                            candidates[scale][2]).spread
        # Perhaps the kernel is too small instead: larger copies, judged by cross-validation only.
        for grown in self.grown_scales:
            self._add_candidate(candidates, grown, spectrum)
        scores = {key: gcv_score(periodogram, self.weight, self.log_regulariser, model.otf_power,
                                 method.regularisation_for(spectrum, frame_noise, weighting))
                  for key, (method, model, frame_noise) in candidates.items()}
        scale = decide_scale(spreads, scores, alone_margin)
        return candidates[scale][0], scale

    def method_at(self, scale: float):
        """The method of the copy at ``scale`` (one :meth:`choose` returned for some frame)."""
        return self.method if scale == 1.0 else self._alternative(scale)[0]

    def _add_candidate(self, candidates: dict, scale: float, spectrum: np.ndarray) -> bool:
        """Add the copy at ``scale`` to ``candidates`` as (method, model, the frame's noise under
        it); False where it cannot be tried (larger than the frame, a kernel that cannot be grown,
        or shrunk too far to read its noise from the spectrum)."""
        alternative = self._alternative(scale)
        if alternative is None or alternative[0].noise.needs_spatial_noise:
            return False
        method, model = alternative
        candidates[scale] = (method, model, method.noise.noise_for(None, spectrum))
        return True
