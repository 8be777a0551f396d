"""Blind blur estimation: find a frame's motion or defocus kernel from its power spectrum.

Method
------
A blur multiplies the frame's spectrum by the kernel's transfer function ``H``, so the power
spectrum of a blurred frame carries the zeros of ``H``:

* linear motion of length ``L`` along direction ``theta``: ``H = sinc(L u)`` with
  ``u = f . (cos theta, -sin theta)``, dark lines perpendicular to the motion, ``1/L`` apart;
* defocus by a disk of radius ``R``: ``H = 2 J1(2 pi R rho) / (2 pi R rho)``, dark rings.

1. :func:`blur_spectrum` averages the power spectra of Hann-windowed tiles of the luma plane
   (Welch's method): the window removes the border discontinuities that would otherwise draw
   a bright cross through the spectrum, and averaging tiles tames the periodogram's variance.
2. Coarse search on 1-D profiles of the log spectrum: for motion, the profile along each
   candidate direction (averaging along the dark lines keeps them sharp only at the right
   angle); for defocus, the radial profile. Each profile, with a smooth trend in ``log rho``
   projected out, is correlated with the same-detrended templates ``log(|H|^2 + eps)`` over a
   fine grid of lengths or radii.
3. Verification in 2-D: the few best candidates of each family are scored by how much of the
   2-D log spectrum's variance their template explains on top of a smooth radial trend (an
   R^2 gain). This settles near-ties of the 1-D search, makes motion and defocus comparable
   (both are scored on the same bins with the same trend basis), and is the confidence.
4. Refinement: the winning motion angle is refined on a fine grid around the coarse one.
5. Decision: the family with the larger R^2 gain wins; a frame whose best gain is below
   :data:`SHARP_MAX_SCORE` or whose blur is below :data:`MIN_LENGTH_PX` /
   :data:`MIN_RADIUS_PX` is reported as ``"none"`` (sharp enough: leave it).

Everything here is a pure function of arrays: no I/O, no threads. Templates depend only on the
tile size and are cached.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.special

from videodeblur.errors import InvalidParameterError

#: Side of the square tiles whose spectra are averaged, in pixels (smaller for small frames).
TILE_PX = 256
#: At most this many tiles per frame, evenly spread (a 1080p frame gives 3 x 8).
MAX_TILES = 24
#: Candidate motion lengths and disk radii searched, in pixels.
MOTION_LENGTHS_PX = np.round(np.arange(2.0, 64.0 + 1e-9, 0.05), 4)
DEFOCUS_RADII_PX = np.round(np.arange(1.0, 24.0 + 1e-9, 0.05), 4)
#: ``eps`` of the templates ``log(|H|^2 + eps)``: how deep a zero of H looks once noise and
#: the window's leakage have filled it in.
TEMPLATE_EPS = 0.02
#: Defocus tries several depths and keeps the best 2-D fit: a ring's depth depends on the
#: noise, and a wrong depth biases the radius (by up to +0.4 px at 2 % noise with one eps).
DEFOCUS_TEMPLATE_EPS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
#: Candidates per depth for defocus.
DEFOCUS_CANDIDATES = 3
#: Frequencies used, in cycles per pixel: below LOW, the window's own spectrum dominates
#: (in bins of the tile); above HIGH, the anisotropic corners and the noise floor.
LOW_FREQUENCY_BINS = 3
HIGH_FREQUENCY = 0.45
#: Coarse and fine angle steps of the motion search, in degrees.
COARSE_ANGLE_STEP_DEG = 2.0
FINE_ANGLE_STEPS_DEG = (0.5, 0.1)
#: The coarse scan scores every 4th length (0.2 px); the angle refinement only lengths
#: within 40 grid steps (2 px) of the best.
COARSE_LENGTH_STRIDE = 4
REFINE_LENGTH_SPAN = 40
#: Candidates of the 1-D search re-scored in 2-D.
CANDIDATES = 6
#: Below this R^2 gain neither model explains the spectrum: the frame is treated as sharp.
SHARP_MAX_SCORE = 0.09
#: Smaller blurs than these are not worth restoring (and are where sharp frames land).
MIN_LENGTH_PX = 3.0
MIN_RADIUS_PX = 1.2
#: R^2 gain at which the confidence reaches 1.
FULL_CONFIDENCE_SCORE = 0.3

KINDS = ("auto", "motion", "defocus")


@dataclass(frozen=True)
class BlurSpectrum:
    """Average power spectrum of a frame's windowed tiles.

    Attributes
    ----------
    power : numpy.ndarray
        float64 array ``(tile_px, tile_px // 2 + 1)``, the one-sided 2-D power spectrum
        (rows: vertical frequency in FFT order; columns: horizontal frequency >= 0).
    tile_px : int
        Tile side in pixels (the frequency resolution is ``1 / tile_px`` cycles per pixel).
    tiles : int
        Number of tiles averaged (more is steadier).
    """

    power: np.ndarray
    tile_px: int
    tiles: int


@dataclass(frozen=True)
class MotionFit:
    """Best linear-motion kernel for a spectrum: ``length_px`` along ``angle_deg`` (0..180)."""

    length_px: float
    angle_deg: float
    score: float


@dataclass(frozen=True)
class DefocusFit:
    """Best defocus disk for a spectrum."""

    radius_px: float
    score: float


@dataclass(frozen=True)
class BlurEstimate:
    """The blur found in one frame.

    Attributes
    ----------
    kind : {"motion", "defocus", "none"}
        ``"none"``: no blur worth restoring was found (sharp enough, leave the frame as is).
    motion, defocus : MotionFit or None
        The best fit of each family that was searched (both for ``kind="auto"``).
    confidence : float
        0 (no evidence) to 1: the winning family's R^2 gain, scaled by
        :data:`FULL_CONFIDENCE_SCORE`.
    """

    kind: str
    motion: MotionFit | None
    defocus: DefocusFit | None
    confidence: float


# --------------------------------------------------------------------------------------
# Spectrum
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _hann_2d(tile_px: int) -> np.ndarray:
    window = np.hanning(tile_px + 2)[1:-1].astype(np.float32)
    return np.outer(window, window)


def blur_spectrum(luma: np.ndarray, tile_px: int = TILE_PX, max_tiles: int = MAX_TILES) -> BlurSpectrum:
    """Average power spectrum of Hann-windowed tiles of a luma plane (Welch's method).

    Parameters
    ----------
    luma : numpy.ndarray
        2-D frame, any real dtype and scale (the estimate does not depend on scale).
    tile_px : int
        Tile side; reduced (halving, down to 64) for frames smaller than a tile.
    max_tiles : int
        Most tiles used; they are spread evenly over the frame, overlapping when the frame is
        small.

    Returns
    -------
    BlurSpectrum
    """
    luma = np.asarray(luma)
    if luma.ndim != 2:
        raise InvalidParameterError(f"blur estimation needs a 2-D luma plane, got shape {luma.shape}")
    rows, columns = luma.shape
    while tile_px > 64 and (rows < tile_px or columns < tile_px):
        tile_px //= 2
    if rows < tile_px or columns < tile_px:
        raise InvalidParameterError(f"frame {columns}x{rows} is too small to estimate blur (needs 64x64)")
    # A grid of up to max_tiles, evenly spread, overlapping by at most three quarters (small
    # frames): overlapping Hann tiles still add information.
    fit_rows = (rows - tile_px) // (tile_px // 4) + 1
    fit_columns = (columns - tile_px) // (tile_px // 4) + 1
    grid_rows = max(1, min(fit_rows, int(math.sqrt(max_tiles * rows / columns))))
    grid_columns = max(1, min(fit_columns, max_tiles // grid_rows))
    tops = np.linspace(0, rows - tile_px, grid_rows).round().astype(int)
    lefts = np.linspace(0, columns - tile_px, grid_columns).round().astype(int)
    tiles = np.empty((grid_rows * grid_columns, tile_px, tile_px), dtype=np.float32)
    for n, (top, left) in enumerate((t, l) for t in tops for l in lefts):
        tiles[n] = luma[top : top + tile_px, left : left + tile_px]
    tiles -= tiles.mean(axis=(1, 2), keepdims=True)
    tiles *= _hann_2d(tile_px)
    spectra = scipy.fft.rfft2(tiles, workers=1)
    power = np.square(spectra.real).sum(axis=0, dtype=np.float64)
    power += np.square(spectra.imag).sum(axis=0, dtype=np.float64)
    power /= len(tiles)
    return BlurSpectrum(power, tile_px, len(tiles))


def average_spectra(spectra) -> BlurSpectrum:
    """Mean of several frames' spectra (same tile size): steadier estimates for a steady blur."""
    spectra = list(spectra)
    if not spectra:
        raise InvalidParameterError("average_spectra needs at least one spectrum")
    tile_px = spectra[0].tile_px
    if any(s.tile_px != tile_px for s in spectra):
        raise InvalidParameterError("spectra to average must share a tile size")
    power = np.mean([s.power for s in spectra], axis=0)
    return BlurSpectrum(power, tile_px, sum(s.tiles for s in spectra))


# --------------------------------------------------------------------------------------
# Frequency geometry and templates (cached per tile size)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Geometry:
    tile_px: int
    selected: np.ndarray  # boolean mask over the one-sided spectrum
    fx: np.ndarray  # horizontal frequency of each selected bin (cycles/px)
    fy: np.ndarray  # vertical frequency, positive downwards (rows)
    rho: np.ndarray
    trend_basis: np.ndarray  # orthonormal columns: 1, log rho, log^2, log^3 over the bins
    profile_bins: int  # 1-D profiles use bins 0.5 / tile_px wide
    profile_range: slice
    profile_u: np.ndarray  # centre frequency of the profile bins in range
    profile_trend: np.ndarray  # orthonormal trend basis over the profile bins
    radial_index: np.ndarray  # profile bin of each selected bin's rho
    coarse_selected: np.ndarray  # every other bin in each direction: the coarse angle scan
    coarse_trend_basis: np.ndarray  # the trend basis orthonormalised over the coarse bins


@functools.lru_cache(maxsize=4)
def _geometry(tile_px: int) -> _Geometry:
    fy = np.fft.fftfreq(tile_px)[:, None]
    fx = np.fft.rfftfreq(tile_px)[None, :]
    fy, fx = np.broadcast_arrays(fy, fx)
    rho = np.hypot(fx, fy)
    selected = (rho >= LOW_FREQUENCY_BINS / tile_px) & (rho <= HIGH_FREQUENCY)
    r = rho[selected]
    trend = _orthonormal_log_trend(r)
    profile_bins = tile_px  # width 0.5 / tile_px up to 0.5 cycles/px
    low, high = LOW_FREQUENCY_BINS, int(HIGH_FREQUENCY * 2 * tile_px)
    centres = (np.arange(profile_bins) + 0.5) / (2 * tile_px)
    profile_u = centres[low:high]
    coarse = np.zeros_like(selected)
    coarse[::2, ::2] = True
    return _Geometry(
        tile_px=tile_px, selected=selected, fx=fx[selected].astype(np.float32), fy=fy[selected].astype(np.float32), rho=r,
        trend_basis=trend, profile_bins=profile_bins, profile_range=slice(low, high), profile_u=profile_u,
        profile_trend=_orthonormal_log_trend(profile_u),
        radial_index=np.minimum((r * 2 * tile_px).astype(np.int64), profile_bins - 1),
        coarse_selected=coarse[selected], coarse_trend_basis=_orthonormal_log_trend(r[coarse[selected]]),
    )


def _orthonormal_log_trend(frequency: np.ndarray) -> np.ndarray:
    # A cubic in log frequency: the smooth fall-off of a natural image's spectrum, which the
    # blur's zeros must stand out from.
    log_f = np.log(frequency)
    basis = np.stack([np.ones_like(log_f), log_f, log_f**2, log_f**3], axis=1)
    q, _ = np.linalg.qr(basis)
    return q


def _detrend_normalise(values: np.ndarray, trend: np.ndarray) -> np.ndarray:
    """Project the trend out of the last axis and scale each row to unit norm."""
    residual = values - (values @ trend) @ trend.T
    norm = np.linalg.norm(residual, axis=-1, keepdims=True)
    return residual / np.maximum(norm, 1e-12)


def _motion_transfer(length_px, u):
    return np.sinc(np.multiply.outer(length_px, u))


def _disk_transfer(radius_px, rho):
    x = 2.0 * np.pi * np.multiply.outer(radius_px, rho)
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, 2.0 * scipy.special.j1(safe) / safe)


@functools.lru_cache(maxsize=4)
def _motion_templates(tile_px: int) -> np.ndarray:
    geometry = _geometry(tile_px)
    transfer = _motion_transfer(MOTION_LENGTHS_PX, geometry.profile_u)
    return _detrend_normalise(np.log(transfer**2 + TEMPLATE_EPS), geometry.profile_trend)


@functools.lru_cache(maxsize=4)
def _defocus_transfer_squared(tile_px: int) -> np.ndarray:
    return _disk_transfer(DEFOCUS_RADII_PX, _geometry(tile_px).profile_u) ** 2


@functools.lru_cache(maxsize=32)
def _defocus_templates(tile_px: int, eps: float) -> np.ndarray:
    geometry = _geometry(tile_px)
    return _detrend_normalise(np.log(_defocus_transfer_squared(tile_px) + eps), geometry.profile_trend)


# --------------------------------------------------------------------------------------
# Searches
# --------------------------------------------------------------------------------------


def _log_power(spectrum: BlurSpectrum, geometry: _Geometry) -> np.ndarray:
    power = spectrum.power[geometry.selected]
    floor = max(float(power.max()), 1e-30) * 1e-12  # a zero tile (black frame) stays finite
    return np.log(power + floor)


def _radial_profile(values: np.ndarray, index: np.ndarray, bins: int) -> np.ndarray:
    sums = np.bincount(index, values, minlength=bins)[:bins]
    counts = np.bincount(index, minlength=bins)[:bins]
    return sums / np.maximum(counts, 1)


def _direction_u(fx: np.ndarray, fy: np.ndarray, angle_deg: float) -> np.ndarray:
    # Frequencies along the motion direction (cos theta, -sin theta) in (x, row) coordinates:
    # angles are counter-clockwise as displayed, and rows grow downwards.
    theta = math.radians(angle_deg)
    return np.abs(fx * math.cos(theta) - fy * math.sin(theta))


@dataclass(frozen=True)
class _Bins:
    """The frequency bins a motion search profiles, with their log power."""

    fx: np.ndarray
    fy: np.ndarray
    log_power: np.ndarray
    tile_px: int
    profile_bins: int
    profile_range: slice
    profile_trend: np.ndarray


def _bins(geometry: _Geometry, log_power: np.ndarray, subset=None) -> _Bins:
    if subset is None:
        fx, fy = geometry.fx, geometry.fy
    else:
        fx, fy, log_power = geometry.fx[subset], geometry.fy[subset], log_power[subset]
    return _Bins(fx, fy, log_power, geometry.tile_px, geometry.profile_bins, geometry.profile_range,
                 geometry.profile_trend)


def _motion_profiles(bins: _Bins, angles_deg) -> np.ndarray:
    """Detrended, unit-norm profiles of the log spectrum along each direction, one row per angle.

    All directions in one ``bincount`` (profile bin + angle offset): a few large NumPy calls
    instead of one small call per angle, which keeps the GIL free for the other workers.
    """
    theta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64)).astype(np.float32)
    u = np.abs(np.multiply.outer(np.cos(theta), bins.fx) - np.multiply.outer(np.sin(theta), bins.fy))
    index = np.minimum((u * np.float32(2 * bins.tile_px)).astype(np.int64), bins.profile_bins - 1)
    index += (np.arange(len(theta)) * bins.profile_bins)[:, None]
    total = len(theta) * bins.profile_bins
    sums = np.bincount(index.ravel(), np.broadcast_to(bins.log_power, u.shape).ravel(), minlength=total)
    counts = np.bincount(index.ravel(), minlength=total)
    profiles = (sums / np.maximum(counts, 1)).reshape(len(theta), bins.profile_bins)[:, bins.profile_range]
    return _detrend_normalise(profiles, bins.profile_trend)


def _r2_gain(log_power: np.ndarray, trend: np.ndarray, template: np.ndarray) -> float:
    """Fraction of the detrended 2-D log spectrum's variance that ``template`` explains.

    ``log_power``, ``template`` and the orthonormal ``trend`` columns are over the same bins.
    """
    y = log_power - trend @ (trend.T @ log_power)
    t = template - trend @ (trend.T @ template)
    tt, yy, ty = float(t @ t), float(y @ y), float(t @ y)
    if tt <= 0.0 or yy <= 0.0 or ty <= 0.0:
        return 0.0
    return ty**2 / (tt * yy)


def _motion_r2(log_power, geometry, length_px, angle_deg, coarse: bool = False) -> float:
    """R^2 gain of a motion kernel, on all bins or (for ranking candidates) on the coarse quarter."""
    if coarse:
        subset = geometry.coarse_selected
        fx, fy, log_power, trend = geometry.fx[subset], geometry.fy[subset], log_power[subset], geometry.coarse_trend_basis
    else:
        fx, fy, trend = geometry.fx, geometry.fy, geometry.trend_basis
    u = _direction_u(fx, fy, angle_deg)
    template = np.log(_motion_transfer(length_px, u) ** 2 + TEMPLATE_EPS)
    return _r2_gain(log_power, trend, template)


def _local_maxima(scores: np.ndarray, count: int, circular: bool) -> list[int]:
    """Indexes of the ``count`` highest local maxima of a 1-D score array."""
    left = np.roll(scores, 1) if circular else np.concatenate([[-np.inf], scores[:-1]])
    right = np.roll(scores, -1) if circular else np.concatenate([scores[1:], [-np.inf]])
    peaks = np.flatnonzero((scores >= left) & (scores >= right))
    return list(peaks[np.argsort(scores[peaks])[::-1][:count]])


def _parabolic_peak(values: np.ndarray, k: int) -> float:
    """Sub-sample offset of a peak at ``k`` from a parabola through its neighbours."""
    if k <= 0 or k >= len(values) - 1:
        return 0.0
    a, b, c = values[k - 1], values[k], values[k + 1]
    curvature = a - 2 * b + c
    return float(0.5 * (a - c) / curvature) if curvature < 0 else 0.0


def estimate_motion(spectrum: BlurSpectrum) -> MotionFit:
    """Linear motion blur that best explains a spectrum.

    Parameters
    ----------
    spectrum : BlurSpectrum
        From :func:`blur_spectrum` (or :func:`average_spectra`).

    Returns
    -------
    MotionFit
        Length in pixels, angle in degrees in [0, 180) (counter-clockwise from +x as
        displayed), and the R^2 gain that scores it.
    """
    geometry = _geometry(spectrum.tile_px)
    log_power = _log_power(spectrum, geometry)
    lengths = MOTION_LENGTHS_PX
    templates = _motion_templates(spectrum.tile_px)
    full = _bins(geometry, log_power)
    # 1. Coarse scan of directions, on a quarter of the bins and every fourth length: the
    #    best length per direction.
    coarse_bins = _bins(geometry, log_power, geometry.coarse_selected)
    coarse_templates = templates[::COARSE_LENGTH_STRIDE]
    angles = np.arange(0.0, 180.0, COARSE_ANGLE_STEP_DEG)
    coarse = (_motion_profiles(coarse_bins, angles) @ coarse_templates.T).max(axis=1)
    # 2. The best few directions, at full resolution, re-scored by their 2-D R^2 gain.
    peaks = _local_maxima(coarse, CANDIDATES, circular=True)
    length_indexes = np.argmax(_motion_profiles(full, angles[peaks]) @ templates.T, axis=1)
    best = None
    for k, length_index in zip(peaks, length_indexes):
        score = _motion_r2(log_power, geometry, float(lengths[length_index]), angles[k], coarse=True)
        if best is None or score > best[0]:
            best = (score, float(angles[k]), int(length_index))
    _, angle, length_index = best
    # 3. Refine the direction on finer grids, scoring only lengths near the one found; then
    #    the length with a parabola through the correlation peak (the grid is 0.05 px).
    near = slice(max(0, length_index - REFINE_LENGTH_SPAN), length_index + REFINE_LENGTH_SPAN + 1)
    span = COARSE_ANGLE_STEP_DEG
    for step in FINE_ANGLE_STEPS_DEG:
        candidates = angle + np.arange(-span, span + 1e-9, step)
        scores_by_angle = _motion_profiles(full, candidates) @ templates[near].T
        best_angle = int(np.argmax(scores_by_angle.max(axis=1)))
        angle, scores = float(candidates[best_angle]), scores_by_angle[best_angle]
        span = step
    k = int(np.argmax(scores))
    length = float(lengths[near][k] + _parabolic_peak(scores, k) * (lengths[1] - lengths[0]))
    angle = angle % 180.0
    return MotionFit(length, angle, _motion_r2(log_power, geometry, length, angle))


def estimate_defocus(spectrum: BlurSpectrum) -> DefocusFit:
    """Defocus disk that best explains a spectrum.

    Parameters
    ----------
    spectrum : BlurSpectrum

    Returns
    -------
    DefocusFit
        Radius in pixels and the R^2 gain that scores it.
    """
    geometry = _geometry(spectrum.tile_px)
    log_power = _log_power(spectrum, geometry)
    profile = _radial_profile(log_power, geometry.radial_index, geometry.profile_bins)[geometry.profile_range]
    normalised = _detrend_normalise(profile[None, :], geometry.profile_trend)[0]
    radii = DEFOCUS_RADII_PX
    # Candidates ranked on the coarse quarter of the bins; the winner scored on all of them.
    subset = geometry.coarse_selected
    coarse_rho, coarse_log_power = geometry.rho[subset], log_power[subset]
    best = None
    for eps in DEFOCUS_TEMPLATE_EPS:
        scores = _defocus_templates(spectrum.tile_px, eps) @ normalised
        for k in _local_maxima(scores, DEFOCUS_CANDIDATES, circular=False):
            radius = float(radii[k] + _parabolic_peak(scores, k) * (radii[1] - radii[0]))
            template = np.log(_disk_transfer(radius, coarse_rho) ** 2 + eps)
            score = _r2_gain(coarse_log_power, geometry.coarse_trend_basis, template)
            if best is None or score > best[0]:
                best = (score, radius, eps)
    _, radius, eps = best
    score = _r2_gain(log_power, geometry.trend_basis, np.log(_disk_transfer(radius, geometry.rho) ** 2 + eps))
    return DefocusFit(radius, score)


def estimate_blur(spectrum: BlurSpectrum, kind: str = "auto") -> BlurEstimate:
    """Estimate a frame's blur: motion, defocus, or none worth restoring.

    Parameters
    ----------
    spectrum : BlurSpectrum
        From :func:`blur_spectrum` (or :func:`average_spectra`).
    kind : {"auto", "motion", "defocus"}
        Which families to search. ``"auto"`` searches both and keeps the better one.

    Returns
    -------
    BlurEstimate
        Its ``kind`` is ``"none"`` when the winning fit is too weak
        (:data:`SHARP_MAX_SCORE`) or the blur too small to matter.
    """
    if kind not in KINDS:
        raise InvalidParameterError(f"estimation kind must be one of {', '.join(KINDS)}, got {kind!r}")
    motion = estimate_motion(spectrum) if kind in ("auto", "motion") else None
    defocus = estimate_defocus(spectrum) if kind in ("auto", "defocus") else None
    motion_score = motion.score if motion is not None else -1.0
    defocus_score = defocus.score if defocus is not None else -1.0
    if motion_score >= defocus_score:
        chosen, score, big_enough = "motion", motion_score, motion.length_px >= MIN_LENGTH_PX
    else:
        chosen, score, big_enough = "defocus", defocus_score, defocus.radius_px >= MIN_RADIUS_PX
    if score < SHARP_MAX_SCORE or not big_enough:
        chosen = "none"
    confidence = float(min(1.0, max(0.0, score) / FULL_CONFIDENCE_SCORE))
    return BlurEstimate(chosen, motion, defocus, confidence)
