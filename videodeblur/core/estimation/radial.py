"""Isotropic blurs from a spectrum's radial profile: the search that defocus and Gaussian share.

An isotropic kernel's transfer function depends on the frequency's radius alone, so its
signature is a radial profile: the mean log spectrum per ring of frequencies. The profile,
detrended, is correlated with templates ``log(|H|^2 + eps)`` over a grid of sizes at each of
several floor depths ``eps`` (how far the spectrum falls before noise and compression fill it
in); the best few candidates of each depth are re-scored in 2-D (the R^2 gain on the coarse
quarter of the bins), and the winner is scored on all bins.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from videodeblur.core.estimation.geometry import (
    AXIS_BINS,
    AXIS_EXCESS_LIMIT,
    ProfileGrid,
    axis_excess,
    detrend_normalise,
    fill_empty,
    geometry_for,
    local_maxima,
    log_spectrum,
    parabolic_peak,
    r2_gain,
    r2_gains,
    target,
)
from videodeblur.core.estimation.spectrum import BlurSpectrum


@dataclass(frozen=True, eq=False)
class RadialModel:
    """One isotropic kernel family, as the radial search needs it.

    Attributes
    ----------
    sizes_px : numpy.ndarray
        The grid of sizes searched (a radius, a sigma), in pixels, evenly spaced.
    floors : tuple of float
        The template depths ``eps`` tried.
    candidates : int
        Local maxima of each depth's profile correlation re-scored in 2-D.
    transfer_squared : callable
        ``transfer_squared(sizes_px, rho)``: ``|H|^2`` for every size (rows) at the
        frequencies ``rho`` (cycles per pixel).
    log_template : callable
        ``log_template(sizes_px, rho, eps)``: ``log(|H|^2 + eps)`` of each size (a 1-D array;
        rows) at ``rho`` (the 2-D scores call it for every frame: it may be tabulated).
    """

    sizes_px: np.ndarray
    floors: tuple[float, ...]
    candidates: int
    transfer_squared: Callable[[np.ndarray, np.ndarray], np.ndarray]
    log_template: Callable[[np.ndarray, np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class RadialFit:
    """The size that best explains a spectrum and its R^2 gain."""

    size_px: float
    score: float


@functools.lru_cache(maxsize=8)
def radial_bin_rho(tile_px: int, axis_bins: int) -> np.ndarray:
    """Mean frequency of the 2-D bins in each used radial bin (the centre where none falls).

    Templates are evaluated where the bins' frequencies really are: at low frequencies a radial
    bin holds few 2-D bins, off its centre, and the centre would bias the size.
    """
    geometry = geometry_for(tile_px, axis_bins)
    grid = geometry.grid
    sums = np.bincount(geometry.radial_index, geometry.rho, minlength=grid.bins)[: grid.bins][grid.used]
    counts = np.bincount(geometry.radial_index, minlength=grid.bins)[: grid.bins][grid.used]
    return np.where(counts > 0, sums / np.maximum(counts, 1), grid.u)


def radial_profile(values: np.ndarray, index: np.ndarray, grid: ProfileGrid) -> np.ndarray:
    """Mean of ``values`` per radial bin over the used range (empty bins interpolated)."""
    sums = np.bincount(index, values, minlength=grid.bins)[: grid.bins][grid.used]
    counts = np.bincount(index, minlength=grid.bins)[: grid.bins][grid.used]
    return fill_empty((sums / np.maximum(counts, 1))[None, :], counts[None, :])[0]


@functools.lru_cache(maxsize=16)
def _transfer_squared_at_bins(model: RadialModel, tile_px: int, axis_bins: int) -> np.ndarray:
    return model.transfer_squared(model.sizes_px, radial_bin_rho(tile_px, axis_bins))


@functools.lru_cache(maxsize=128)
def _profile_templates(model: RadialModel, tile_px: int, eps: float, axis_bins: int) -> np.ndarray:
    geometry = geometry_for(tile_px, axis_bins)
    return detrend_normalise(np.log(_transfer_squared_at_bins(model, tile_px, axis_bins) + eps), geometry.grid.trend)


def radial_axis_bins(spectrum: BlurSpectrum) -> int:
    """The bins near the frequency axes a radial search leaves out: none, unless they stand out
    of the spectrum (:func:`~videodeblur.core.estimation.geometry.axis_excess`: letterbox bars)."""
    return AXIS_BINS if axis_excess(spectrum) > AXIS_EXCESS_LIMIT else 0


def radial_search(spectrum: BlurSpectrum, model: RadialModel,
                  scoring_floors: tuple[float, ...] | None = None) -> RadialFit:
    """The size of ``model``'s kernel that best explains a spectrum.

    Parameters
    ----------
    spectrum : BlurSpectrum
    model : RadialModel
    scoring_floors : tuple of float, optional
        Score the fit by the best template among these depths only (a subset of the model's);
        the size is still the best over all of them. None: the best template scores.

    Returns
    -------
    RadialFit
        The size (sub-grid, from a parabola through the profile correlation's peak; found on
        the bins near the axes as well where they do not stand out, :func:`radial_axis_bins`)
        and the R^2 gain of the scoring template on the bins every family's score reads.
    """
    axis_bins = radial_axis_bins(spectrum)
    geometry = geometry_for(spectrum.tile_px, axis_bins)
    log_power = log_spectrum(spectrum, geometry)
    profile = radial_profile(log_power, geometry.radial_index, geometry.grid)
    normalised = detrend_normalise(profile[None, :], geometry.grid.trend)[0]
    sizes = model.sizes_px
    # Candidates ranked on the coarse quarter of the bins; the winner scored on all of them.
    subset = geometry.coarse_selected
    coarse_rho = geometry.rho[subset]
    coarse_target = target(log_power[subset], geometry.coarse_trend_basis)
    candidates = []  # (coarse R^2 gain, size, depth)
    for eps in model.floors:
        scores = _profile_templates(model, spectrum.tile_px, eps, axis_bins) @ normalised
        peaks = local_maxima(scores, model.candidates, circular=False)
        found = np.array([sizes[k] + parabolic_peak(scores, k) * (sizes[1] - sizes[0]) for k in peaks])
        # (one matrix product scores every candidate of a depth)
        gains = r2_gains(coarse_target, model.log_template(found, coarse_rho, eps)) if len(found) else []
        candidates.extend((float(gain), float(size), eps) for gain, size in zip(gains, found))
    # The first of equal scores, as a strict comparison in the order tried would keep.
    best = max(candidates, key=lambda c: c[0])
    scoring = best if scoring_floors is None else max((c for c in candidates if c[2] in scoring_floors),
                                                      key=lambda c: c[0])
    _, size, eps = scoring
    # The score, which decides between families, reads the bins every family reads.
    scored = geometry_for(spectrum.tile_px)
    score = r2_gain(target(log_spectrum(spectrum, scored), scored.trend_basis),
                    model.log_template(np.array([size]), scored.rho, eps)[0])
    return RadialFit(best[1], score)
