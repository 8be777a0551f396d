"""Frequency geometry, trend removal and scores shared by the motion and defocus searches.

Everything here depends only on the tile size (cached) or is a small pure function of arrays.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from videodeblur.core.estimation.spectrum import BlurSpectrum

#: Frequencies used, in cycles per pixel: below LOW, the window's own spectrum dominates
#: (in bins of the tile); above HIGH, the noise floor and what compression removed, which
#: hide the zeros of the blur on compressed footage.
LOW_FREQUENCY_BINS = 3

HIGH_FREQUENCY = 0.40

#: Bins this close to either frequency axis (in bins of the tile) are left out. Straight
#: horizontal and vertical structure that is not the blur (letterbox bars and picture edges,
#: H.264's block grid and deblocking, interlaced lines) puts its energy there, where it looks
#: like a motion streak at 0 or 90 degrees and pulls other angles towards the axes; a blur's
#: zeros cross the whole spectrum and are seen off the axes as well.
AXIS_BINS = 2


@dataclass(frozen=True)
class ProfileGrid:
    """Bins of a 1-D profile (along a direction, or radial): ``width`` cycles/px each.

    A frequency ``u`` goes to bin ``floor(u / width)``; bins are half the spectrum's spacing,
    so along the axes some are empty and are filled by interpolation (:func:`fill_empty`).
    """

    width: float
    bins: int
    used: slice  # the bins correlated with templates (LOW_FREQUENCY_BINS / tile_px .. HIGH_FREQUENCY)
    u: np.ndarray  # centre frequency of the used bins
    trend: np.ndarray  # orthonormal trend basis over the used bins


def profile_grid(tile_px: int) -> ProfileGrid:
    width = 0.5 / tile_px
    bins = int(0.75 / width) + 2  # up to the corner of the spectrum
    low, high = LOW_FREQUENCY_BINS, int(HIGH_FREQUENCY / width)
    u = (np.arange(low, high) + 0.5) * width
    return ProfileGrid(width, bins, slice(low, high), u, orthonormal_log_trend(u))


def fill_empty(profiles: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Replace the value of empty profile bins by linear interpolation between filled ones.

    Along the axes (0 and 90 degrees) the 2-D bins line up, so some profile bins get no sample;
    left at 0 they would draw a comb that hides the blur's zeros.
    """
    empty = counts == 0
    for row in np.flatnonzero(empty.any(axis=1)):
        filled = ~empty[row]
        if filled.sum() >= 2:
            positions = np.arange(profiles.shape[1])
            profiles[row, ~filled] = np.interp(positions[~filled], positions[filled], profiles[row, filled])
    return profiles


@dataclass(frozen=True)
class Geometry:
    tile_px: int
    selected: np.ndarray  # boolean mask over the one-sided spectrum
    fx: np.ndarray  # horizontal frequency of each selected bin (cycles/px)
    fy: np.ndarray  # vertical frequency, positive downwards (rows)
    rho: np.ndarray
    trend_basis: np.ndarray  # orthonormal columns: 1, log rho, log^2, log^3 over the bins
    grid: ProfileGrid  # profiles of all selected bins and of the coarse quarter alike
    radial_index: np.ndarray  # profile bin of each selected bin's rho
    coarse_selected: np.ndarray  # every other bin in each direction: the coarse angle scan
    coarse_trend_basis: np.ndarray  # the trend basis orthonormalised over the coarse bins
    oriented_trend_basis: np.ndarray  # trend_basis plus the picture's own orientations (below)
    coarse_oriented_trend_basis: np.ndarray  # the same orthonormalised over the coarse bins
    refine_trend_basis: np.ndarray  # oriented, with the finer orientations the angle refinement needs
    coarse_refine_trend_basis: np.ndarray  # the same orthonormalised over the coarse bins


@functools.lru_cache(maxsize=8)
def geometry_for(tile_px: int, axis_bins: int = AXIS_BINS) -> Geometry:
    """The bins a search reads on tiles of ``tile_px``, leaving out those within ``axis_bins``
    of either frequency axis (:data:`AXIS_BINS`), and what the searches precompute on them."""
    fy = np.fft.fftfreq(tile_px)[:, None]
    fx = np.fft.rfftfreq(tile_px)[None, :]
    fy, fx = np.broadcast_arrays(fy, fx)
    rho = np.hypot(fx, fy)
    off_axes = (np.abs(fx) * tile_px >= axis_bins - 1e-9) & (np.abs(fy) * tile_px >= axis_bins - 1e-9)
    selected = (rho >= LOW_FREQUENCY_BINS / tile_px) & (rho <= HIGH_FREQUENCY) & off_axes
    r = rho[selected]
    grid = profile_grid(tile_px)
    coarse = np.zeros_like(selected)
    coarse[::2, ::2] = True
    direction = np.arctan2(fy[selected], fx[selected])
    return Geometry(
        tile_px=tile_px, selected=selected, fx=fx[selected].astype(np.float32), fy=fy[selected].astype(np.float32),
        rho=r, trend_basis=orthonormal_log_trend(r), grid=grid,
        radial_index=np.minimum((r / grid.width).astype(np.int64), grid.bins - 1),
        coarse_selected=coarse[selected], coarse_trend_basis=orthonormal_log_trend(r[coarse[selected]]),
        oriented_trend_basis=oriented_log_trend(r, direction),
        coarse_oriented_trend_basis=oriented_log_trend(r[coarse[selected]], direction[coarse[selected]]),
        refine_trend_basis=oriented_log_trend(r, direction, REFINE_HARMONICS).astype(np.float32),
        coarse_refine_trend_basis=oriented_log_trend(r[coarse[selected]], direction[coarse[selected]],
                                                     REFINE_HARMONICS).astype(np.float32),
    )


#: How far (natural log of power) the bins near the axes may stand above their neighbours at the
#: same frequencies for a radial search to read them (:func:`axis_excess`).
AXIS_EXCESS_LIMIT = 1.0


def axis_excess(spectrum: BlurSpectrum) -> float:
    """How far the bins within :data:`AXIS_BINS` of the frequency axes stand above the bins
    just beyond them (up to 3 x as far), in natural log of power: the median over radii.

    Straight horizontal and vertical structure that is not blur puts its energy on the axes.
    Letterbox bars do it by a wide margin (about 2.5); pictures, interlacing and H.264's block
    grid by little (-0.1 to 0.45 on the benchmarks' frames). A disk's or a Gaussian's rings
    cross the axes like any other direction, so a radial search reads the axes where they do
    not stand out: leaving them out costs its size accuracy on ordinary frames.
    """
    on_axes, beside, on_rings, beside_rings, rings = _axis_bands(spectrum.tile_px)
    power = spectrum.power.ravel()
    floor = max(float(spectrum.power.max()), 1e-30) * 1e-12
    on_mean = np.bincount(on_rings, np.log(power[on_axes] + floor), minlength=rings)
    beside_mean = np.bincount(beside_rings, np.log(power[beside] + floor), minlength=rings)
    on_count = np.bincount(on_rings, minlength=rings)
    beside_count = np.bincount(beside_rings, minlength=rings)
    both = (on_count > 0) & (beside_count > 0)
    if not both.any():
        return 0.0
    return float(np.median(on_mean[both] / on_count[both] - beside_mean[both] / beside_count[both]))


@functools.lru_cache(maxsize=4)
def _axis_bands(tile_px: int):
    """(flat indexes of the bins near the axes, of the bins beside them, each one's ring of
    whole-bin radius, rings) among the bins the searches read (:func:`geometry_for`, axes
    included)."""
    band = geometry_for(tile_px, 0)
    places = np.flatnonzero(band.selected)
    distance = np.minimum(np.abs(band.fx), np.abs(band.fy)) * tile_px
    ring = (band.rho * tile_px).astype(np.int64)
    on_axes = distance < AXIS_BINS - 1e-9
    beside = ~on_axes & (distance < 3 * AXIS_BINS)
    return places[on_axes], places[beside], ring[on_axes], ring[beside], int(ring.max()) + 1


def orthonormal_log_trend(frequency: np.ndarray) -> np.ndarray:
    # A cubic in log frequency: the smooth fall-off of a natural image's spectrum, which the
    # blur's zeros must stand out from.
    log_f = np.log(frequency)
    basis = np.stack([np.ones_like(log_f), log_f, log_f**2, log_f**3], axis=1)
    q, _ = np.linalg.qr(basis)
    return q


#: Angular harmonics (of twice the frequency's direction) in :func:`oriented_log_trend`.
ORIENTATION_HARMONICS = 2
#: ... and in the trend the angle refinement scores against: each above
#: :data:`ORIENTATION_HARMONICS` without its ``log rho`` term, which would also take part of a
#: noisy streak's own signal (docs/quality.md); in single precision, half the work.
REFINE_HARMONICS = 6


def oriented_log_trend(frequency: np.ndarray, direction_rad: np.ndarray,
                       harmonics: int = ORIENTATION_HARMONICS) -> np.ndarray:
    """:func:`orthonormal_log_trend` plus smooth changes of the spectrum with direction.

    A picture's own edges (a horizon, tree trunks, a wall's corners) give its spectrum more power
    along some directions than others: a smooth, low-order function of direction that a radial
    trend leaves in the residual, where a motion template a few degrees off explains part of it
    and wins. Harmonics ``cos 2k phi``, ``sin 2k phi`` (k <= :data:`ORIENTATION_HARMONICS`), each
    times 1 and ``log rho``, absorb it; a blur's dark lines, sharp in direction at all but the
    lowest frequencies, stay in the residual. Harmonics above :data:`ORIENTATION_HARMONICS` (up
    to ``harmonics``) enter without their ``log rho`` term.
    """
    log_f = np.log(frequency)
    columns = [np.ones_like(log_f), log_f, log_f**2, log_f**3]
    for k in range(1, harmonics + 1):
        for wave in (np.cos(2 * k * direction_rad), np.sin(2 * k * direction_rad)):
            columns += [wave, wave * log_f] if k <= ORIENTATION_HARMONICS else [wave]
    q, _ = np.linalg.qr(np.stack(columns, axis=1))
    return q


def detrend_normalise(values: np.ndarray, trend: np.ndarray) -> np.ndarray:
    """Project the trend out of the last axis and scale each row to unit norm."""
    residual = values - (values @ trend) @ trend.T
    norm = np.linalg.norm(residual, axis=-1, keepdims=True)
    return residual / np.maximum(norm, 1e-12)


def log_spectrum(spectrum: BlurSpectrum, geometry: Geometry) -> np.ndarray:
    power = spectrum.power[geometry.selected]
    floor = max(float(power.max()), 1e-30) * 1e-12  # a zero tile (black frame) stays finite
    return np.log(power + floor)


@dataclass(frozen=True)
class Target:
    """A frame's log spectrum on one set of bins with its trend removed, to score templates
    against: detrended once per frame, not once per candidate."""

    values: np.ndarray
    energy: float
    trend: np.ndarray


#: A residual energy below this share of the log spectrum's own is rounding error (:func:`target`).
RESIDUAL_ROUNDING = 1e-20


def target(log_power: np.ndarray, trend: np.ndarray) -> Target:
    """``log_power`` minus its projection on the orthonormal ``trend`` columns (same bins).

    A spectrum the trend explains to rounding error (a black frame's is flat) leaves nothing to
    explain: its energy is taken as 0, not as the rounding error that any template would then
    "explain" many times over.
    """
    values = log_power - trend @ (trend.T @ log_power)
    energy = float(values @ values)
    if energy <= RESIDUAL_ROUNDING * float(log_power @ log_power):
        energy = 0.0
    return Target(values, energy, trend)


def r2_gain(target: Target, template: np.ndarray) -> float:
    """Fraction of the detrended 2-D log spectrum's variance that ``template`` explains."""
    return float(r2_gains(target, template[None, :])[0])


def r2_gains(target: Target, templates: np.ndarray) -> np.ndarray:
    """:func:`r2_gain` of each row of ``templates`` (one matrix product for all candidates).

    The target is orthogonal to its trend, so a template's projection on the trend does not
    change ``t . y``; and the trend's columns are orthonormal, so ``|t|^2`` is the template's
    energy less that of its projection.
    """
    ty = templates @ target.values
    tt = np.einsum("ij,ij->i", templates, templates) - np.square(templates @ target.trend).sum(axis=1)
    valid = (tt > 0.0) & (ty > 0.0) & (target.energy > 0.0)
    return np.where(valid, np.square(ty) / np.maximum(tt * target.energy, 1e-300), 0.0)


def local_maxima(scores: np.ndarray, count: int, circular: bool) -> list[int]:
    """Indexes of the ``count`` highest local maxima of a 1-D score array."""
    left = np.roll(scores, 1) if circular else np.concatenate([[-np.inf], scores[:-1]])
    right = np.roll(scores, -1) if circular else np.concatenate([scores[1:], [-np.inf]])
    peaks = np.flatnonzero((scores >= left) & (scores >= right))
    return list(peaks[np.argsort(scores[peaks])[::-1][:count]])


def parabolic_peak(values: np.ndarray, k: int) -> float:
    """Sub-sample offset of a peak at ``k`` from a parabola through its neighbours."""
    if k <= 0 or k >= len(values) - 1:
        return 0.0
    a, b, c = values[k - 1], values[k], values[k + 1]
    curvature = a - 2 * b + c
    return float(0.5 * (a - c) / curvature) if curvature < 0 else 0.0
