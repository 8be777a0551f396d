"""Linear motion blur from a spectrum: ``H = sinc(L u)``, dark lines ``1/L`` apart.

1. Coarse search on 1-D profiles of the log spectrum along each candidate direction (averaging
   along the dark lines keeps them sharp only at the right angle); each profile, with a smooth
   trend in ``log rho`` projected out, is correlated with the same-detrended templates
   ``log(sinc^2(L u) + eps)`` over a fine grid of lengths.
2. The best few directions are re-scored in 2-D by how much of the 2-D log spectrum's variance
   their template explains on top of the trend (an R^2 gain), which settles near-ties.
3. The winning angle is refined in 2-D (1 and then 0.25 degree steps, a parabola between the
   last ones) against a trend that also models smooth changes of the spectrum with direction,
   which a picture's own edges and textures cause; then the length along it, with a parabola
   through the profile's correlation peak.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from videodeblur.core.estimation.geometry import (
    Geometry,
    ProfileGrid,
    detrend_normalise,
    fill_empty,
    geometry_for,
    local_maxima,
    log_spectrum,
    parabolic_peak,
    r2_gains,
    target,
)
from videodeblur.core.estimation.spectrum import BlurSpectrum

#: Candidate motion lengths and disk radii searched, in pixels.
MOTION_LENGTHS_PX = np.round(np.arange(2.0, 64.0 + 1e-9, 0.05), 4)

#: ``eps`` of the templates ``log(|H|^2 + eps)``: how deep a zero of H looks once noise and
#: the window's leakage have filled it in.
TEMPLATE_EPS = 0.02

#: ``eps`` of the templates that refine the angle: deep zeros, so that the fit rests on where
#: the dark lines are rather than on the envelope around them. With 0.02 the direction of
#: drifting blurs on footage came out biased by +0.8 to +1.7 degrees (bikes) and +0.3 to +1.2
#: (Big Buck Bunny), growing with the noise; with 0.001, +0.5 to +1.1 and +0.1 to +0.6.
REFINE_TEMPLATE_EPS = 0.001

#: Coarse and fine angle steps of the motion search, in degrees.
COARSE_ANGLE_STEP_DEG = 3.0

FINE_ANGLE_STEPS_DEG = (1.0, 0.25)

#: Steps each side of the previous best at each fine step: the coarse winner may be a few
#: degrees off (its 1-D profiles are biased by the picture's orientations), hence +-5 degrees.
FINE_ANGLE_REACH = (5, 2)

#: The coarse scan scores every 4th length (0.2 px); the angle refinement only lengths
#: within 40 grid steps (2 px) of the best.
COARSE_LENGTH_STRIDE = 4

REFINE_LENGTH_SPAN = 40

#: Candidates of the 1-D search re-scored in 2-D, each with its coarse scan's best length: the
#: 1-D profiles rank near-ties wrongly often enough that the 2-D score must see several.
CANDIDATES = 6

#: Streaks shorter than this are left alone: below 5 px a motion fit cannot be told from
#: texture (a brick wall looks like one), and such mild blurs are better given explicitly.
MIN_LENGTH_PX = 5.0

#: The least share of a streak's R^2 gain that must remain beyond a trend that also models
#: the picture's own smooth changes with direction
#: (:func:`~videodeblur.core.estimation.geometry.oriented_log_trend`); a streak of at least
#: :data:`MIN_LENGTH_PX` that keeps less is scored by what it keeps. A short streak's template
#: is mostly an envelope that falls faster along one direction, which a picture with oriented
#: texture (grass, fur, a stretched or upscaled picture) shows without any blur: such fits keep
#: 6-13 % of their gain, a blur's own zeros 27-80 % (docs/quality.md).
MIN_ORIENTED_SHARE = 0.2

#: See :data:`videodeblur.core.estimation.defocus.DEFOCUS_RADIUS_BIAS_PX`.
MOTION_LENGTH_BIAS_PX = {False: -0.07, True: -0.10}


@dataclass(frozen=True)
class MotionFit:
    """Best linear-motion kernel for a spectrum: ``length_px`` along ``angle_deg`` (0..180)."""

    length_px: float
    angle_deg: float
    score: float

    @property
    def values(self) -> dict[str, float]:
        """The fit as ``psf`` parameters (``length``, ``angle``)."""
        return {"length": self.length_px, "angle": self.angle_deg}


def _motion_transfer(length_px, u):
    return np.sinc(np.multiply.outer(length_px, u))


@functools.lru_cache(maxsize=8)
def _motion_templates(tile_px: int, stride: int = 1) -> np.ndarray:
    geometry = geometry_for(tile_px)
    lengths = MOTION_LENGTHS_PX[::stride]
    transfer = _motion_transfer(lengths, geometry.grid.u)
    return detrend_normalise(np.log(transfer**2 + TEMPLATE_EPS), geometry.grid.trend)


@dataclass(frozen=True)
class _Bins:
    """The frequency bins a motion search profiles, with their log power and profile grid."""

    fx: np.ndarray
    fy: np.ndarray
    log_power: np.ndarray
    grid: ProfileGrid


def _bins(geometry: Geometry, log_power: np.ndarray, coarse: bool = False) -> _Bins:
    if not coarse:
        return _Bins(geometry.fx, geometry.fy, log_power, geometry.grid)
    subset = geometry.coarse_selected
    return _Bins(geometry.fx[subset], geometry.fy[subset], log_power[subset], geometry.grid)


def _profile_index(fx, fy, grid: ProfileGrid, angles_deg) -> tuple[np.ndarray, np.ndarray]:
    """Flat profile-bin index of every (angle, frequency bin) pair, and the count per profile bin."""
    theta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    # Exact zeros along the axes: cos(90 deg) is 6e-17 (-4e-8 in float32), and that sliver of
    # the horizontal frequency would send vertical frequencies of either sign to alternate
    # bins, a comb that made vertical motion blurs unrecognisable.
    cos, sin = (np.where(np.abs(v) < 1e-9, 0.0, v).astype(np.float32) for v in (np.cos(theta), np.sin(theta)))
    u = np.abs(np.multiply.outer(cos, fx) - np.multiply.outer(sin, fy))
    index = np.minimum((u * np.float32(1.0 / grid.width)).astype(np.int64), grid.bins - 1)
    index += (np.arange(len(theta)) * grid.bins)[:, None]
    index = index.ravel()
    return index, np.bincount(index, minlength=len(theta) * grid.bins)


@functools.lru_cache(maxsize=4)
def _coarse_scan_index(tile_px: int) -> tuple[np.ndarray, np.ndarray]:
    # The coarse scan always uses the same angles and bins: its binning is computed once.
    geometry = geometry_for(tile_px)
    subset = geometry.coarse_selected
    return _profile_index(geometry.fx[subset], geometry.fy[subset], geometry.grid, _coarse_angles())


def _coarse_angles() -> np.ndarray:
    return np.arange(0.0, 180.0, COARSE_ANGLE_STEP_DEG)


def _motion_profiles(bins: _Bins, angles_deg, binning=None) -> np.ndarray:
    """Detrended, unit-norm profiles of the log spectrum along each direction, one row per angle.

    All directions in one ``bincount`` (profile bin + angle offset): a few large NumPy calls
    instead of one small call per angle, which keeps the GIL free for the other workers.
    ``binning`` is a precomputed :func:`_profile_index` for these bins and angles.
    """
    count = len(angles_deg)
    grid = bins.grid
    index, counts = binning if binning is not None else _profile_index(bins.fx, bins.fy, grid, angles_deg)
    sums = np.bincount(index, np.tile(bins.log_power, count), minlength=count * grid.bins)
    counts = counts.reshape(count, grid.bins)[:, grid.used]
    profiles = sums.reshape(count, grid.bins)[:, grid.used] / np.maximum(counts, 1)
    return detrend_normalise(fill_empty(profiles, counts), grid.trend)


def _log_motion_templates(fx: np.ndarray, fy: np.ndarray, length_px, angles_deg: np.ndarray,
                          eps: float = TEMPLATE_EPS) -> np.ndarray:
    """``log(sinc^2(L u) + eps)`` at the bins (fx, fy) for several directions, one row per
    direction, each with ``length_px`` (one length, or one per direction), in single precision
    (a quarter of the cost of ``np.sinc`` in double)."""
    # Frequencies along the motion direction (cos theta, -sin theta) in (x, row) coordinates:
    # angles are counter-clockwise as displayed, and rows grow downwards.
    theta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64)).astype(np.float32)[:, None]
    lengths = np.broadcast_to(np.asarray(length_px, dtype=np.float64), theta.shape[:1])
    scale = (math.pi * lengths).astype(np.float32)[:, None]
    x = scale * np.abs(fx * np.cos(theta) - fy * np.sin(theta))
    sinc_squared = np.divide(np.square(np.sin(x)), np.square(x), out=np.ones_like(x), where=x > 1e-6)
    return np.log(sinc_squared + np.float32(eps))


def _refined_angle(log_power: np.ndarray, geometry: Geometry, length_px: float, angle_deg: float) -> float:
    """The direction near ``angle_deg`` whose template best explains the 2-D log spectrum.

    Scored in 2-D against :attr:`Geometry.refine_trend_basis` (the first, coarser step on the
    coarse quarter of the bins): the 1-D profiles peak a few degrees off the true direction
    (their correlation rewards dark lines that are slightly smeared, as the template's ``eps``
    assumes), and a radial trend alone leaves the picture's own orientations in the 2-D
    residual, which pull the fit towards them. Harmonics up to ``cos 4 phi`` (the orientation
    check's) left the sharper ones of a picture with many straight lines (poles, railings, a
    frame's edges) to pull a streak by up to 4 degrees; up to ``cos 12 phi`` they do not, and
    the blur's dark lines, sharp in direction, stay in the residual.
    """
    subset = geometry.coarse_selected
    steps = ((target(log_power[subset], geometry.coarse_refine_trend_basis), geometry.fx[subset],
              geometry.fy[subset]), (target(log_power, geometry.refine_trend_basis), geometry.fx, geometry.fy))
    angle = angle_deg
    for (scored, fx, fy), step, reach in zip(steps, FINE_ANGLE_STEPS_DEG, FINE_ANGLE_REACH):
        candidates = angle + step * np.arange(-reach, reach + 1)
        scores = r2_gains(scored, _log_motion_templates(fx, fy, length_px, candidates, REFINE_TEMPLATE_EPS))
        best = int(np.argmax(scores))
        angle = float(candidates[best])
    # Between the last grid's angles: the vertex of a parabola through the best and its neighbours.
    return angle + parabolic_peak(scores, best) * FINE_ANGLE_STEPS_DEG[-1]


def direction_score(spectrum: BlurSpectrum, angle_deg: float) -> float:
    """How well the spectrum's profile along one direction fits the best motion template there
    (the correlation of the detrended profiles, up to 1)."""
    geometry = geometry_for(spectrum.tile_px)
    profile = _motion_profiles(_bins(geometry, log_spectrum(spectrum, geometry)), [angle_deg])
    return float((profile @ _motion_templates(spectrum.tile_px).T).max())


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
    geometry = geometry_for(spectrum.tile_px)
    log_power = log_spectrum(spectrum, geometry)
    lengths = MOTION_LENGTHS_PX
    templates = _motion_templates(spectrum.tile_px)
    full = _bins(geometry, log_power)
    # 1. Coarse scan of directions, on a quarter of the bins and every fourth length: the
    #    best length per direction.
    coarse_bins = _bins(geometry, log_power, coarse=True)
    coarse_templates = _motion_templates(spectrum.tile_px, COARSE_LENGTH_STRIDE)
    angles = _coarse_angles()
    coarse_profiles = _motion_profiles(coarse_bins, angles, _coarse_scan_index(spectrum.tile_px))
    coarse_scores = coarse_profiles @ coarse_templates.T
    coarse = coarse_scores.max(axis=1)
    # 2. The best few directions, with their coarse scan's best length, re-scored by their
    #    2-D R^2 gain (the winner's length is refined at full resolution below).
    peaks = local_maxima(coarse, CANDIDATES, circular=True)
    length_indexes = np.argmax(coarse_scores[peaks], axis=1) * COARSE_LENGTH_STRIDE
    # Candidates ranked on the coarse quarter of the bins; the winner scored on all of them.
    coarse_target = target(coarse_bins.log_power, geometry.coarse_trend_basis)
    # (every candidate in one matrix product; the first of equal scores wins)
    scores = r2_gains(coarse_target, _log_motion_templates(coarse_bins.fx, coarse_bins.fy, lengths[length_indexes],
                                                           angles[peaks]))
    best = int(np.argmax(scores))
    angle, length_index = float(angles[peaks[best]]), int(length_indexes[best])
    # 3. Refine the direction by the 2-D R^2 gain against a trend that knows the picture's own
    #    orientations (:func:`_refined_angle`); then the length along it, with a parabola
    #    through the profile's correlation peak (the grid is 0.05 px).
    oriented = target(log_power, geometry.oriented_trend_basis)
    angle = _refined_angle(log_power, geometry, float(lengths[length_index]), angle)
    near = slice(max(0, length_index - REFINE_LENGTH_SPAN), length_index + REFINE_LENGTH_SPAN + 1)
    scores = (_motion_profiles(full, [angle]) @ templates[near].T)[0]
    k = int(np.argmax(scores))
    length = float(lengths[near][k] + parabolic_peak(scores, k) * (lengths[1] - lengths[0]))
    angle = float(np.round(angle, 6) % 180.0)  # -1e-15 % 180 would be 180.0
    # 4. The score: the R^2 gain beyond the radial trend, unless the streak explains mostly the
    #    picture's own orientations (:data:`MIN_ORIENTED_SHARE`).
    template = _log_motion_templates(geometry.fx, geometry.fy, length, [angle])
    score = float(r2_gains(target(log_power, geometry.trend_basis), template)[0])
    beyond_orientations = float(r2_gains(oriented, template)[0])
    if length >= MIN_LENGTH_PX and beyond_orientations < MIN_ORIENTED_SHARE * score:
        score = beyond_orientations
    return MotionFit(length - MOTION_LENGTH_BIAS_PX[spectrum.linear_light], angle, score)
