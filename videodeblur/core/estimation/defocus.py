"""Defocus from a spectrum: ``H = 2 J1(2 pi R rho) / (2 pi R rho)``, dark rings.

The radial profile of the log spectrum, detrended, is correlated with disk templates
``log(|H|^2 + eps)`` at several zero depths ``eps`` (the depth depends on the noise, and a
wrong depth biases the radius); the best candidates are re-scored in 2-D (R^2 gain).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from videodeblur.core.estimation.geometry import (
    ProfileGrid,
    detrend_normalise,
    fill_empty,
    geometry_for,
    local_maxima,
    log_spectrum,
    parabolic_peak,
    r2_gain,
    target,
)
from videodeblur.core.estimation.spectrum import BlurSpectrum

DEFOCUS_RADII_PX = np.round(np.arange(1.0, 24.0 + 1e-9, 0.05), 4)

#: Defocus tries several depths and keeps the best 2-D fit: a ring's depth depends on the
#: noise, and a wrong depth biases the radius.
DEFOCUS_TEMPLATE_EPS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)

#: Candidates per depth for defocus.
DEFOCUS_CANDIDATES = 3

#: Systematic errors (the median signed error on the estimation benchmarks), added back, for
#: spectra of coded values and of linear light: the window's leakage fills a zero more from its
#: brighter, lower-frequency side, which moves the apparent zero outwards (the blur looks
#: slightly smaller); coding the blurred light with a transfer curve moves it further.
DEFOCUS_RADIUS_BIAS_PX = {False: -0.12, True: -0.03}


@dataclass(frozen=True)
class DefocusFit:
    """Best defocus disk for a spectrum."""

    radius_px: float
    score: float

    @property
    def values(self) -> dict[str, float]:
        """The fit as ``psf`` parameters (``radius``)."""
        return {"radius": self.radius_px}


def _disk_transfer(radius_px, rho):
    import scipy.special  # (on first use: a third of the program's start-up; only estimation needs it)

    x = 2.0 * np.pi * np.multiply.outer(radius_px, rho)
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, 2.0 * scipy.special.j1(safe) / safe)

#: ``log(jinc^2 + eps)`` tabulated over ``x = R rho``: candidates are scored in 2-D many times
#: per frame, and interpolating this table is several times cheaper than Bessel functions.
_JINC_TABLE_STEP = 1e-3

_JINC_TABLE_X = np.arange(0.0, 64.0 * 0.75 + 1.0, _JINC_TABLE_STEP)


@functools.lru_cache(maxsize=16)
def _log_disk_table(eps: float) -> np.ndarray:
    return np.log(_disk_transfer(1.0, _JINC_TABLE_X) ** 2 + eps)


def _log_disk_template(radius_px: float, rho: np.ndarray, eps: float) -> np.ndarray:
    """``log(|H_disk(rho)|^2 + eps)`` for one radius, from the table."""
    table = _log_disk_table(eps)
    position = np.minimum(radius_px * rho, _JINC_TABLE_X[-2]) * (1.0 / _JINC_TABLE_STEP)
    index = position.astype(np.int64)
    fraction = position - index
    return table[index] * (1.0 - fraction) + table[index + 1] * fraction


@functools.lru_cache(maxsize=4)
def _radial_bin_rho(tile_px: int) -> np.ndarray:
    """Mean frequency of the 2-D bins in each used radial bin (the centre where none falls)."""
    geometry = geometry_for(tile_px)
    grid = geometry.grid
    sums = np.bincount(geometry.radial_index, geometry.rho, minlength=grid.bins)[: grid.bins][grid.used]
    counts = np.bincount(geometry.radial_index, minlength=grid.bins)[: grid.bins][grid.used]
    return np.where(counts > 0, sums / np.maximum(counts, 1), grid.u)


@functools.lru_cache(maxsize=4)
def _defocus_transfer_squared(tile_px: int) -> np.ndarray:
    # Evaluated where the bins' frequencies really are: at low frequencies a radial bin holds
    # few 2-D bins, off its centre, and the centre would bias the radius.
    return _disk_transfer(DEFOCUS_RADII_PX, _radial_bin_rho(tile_px)) ** 2


@functools.lru_cache(maxsize=32)
def _defocus_templates(tile_px: int, eps: float) -> np.ndarray:
    geometry = geometry_for(tile_px)
    return detrend_normalise(np.log(_defocus_transfer_squared(tile_px) + eps), geometry.grid.trend)


def _radial_profile(values: np.ndarray, index: np.ndarray, grid: ProfileGrid) -> np.ndarray:
    """Mean of ``values`` per radial bin over the used range (empty bins interpolated)."""
    sums = np.bincount(index, values, minlength=grid.bins)[: grid.bins][grid.used]
    counts = np.bincount(index, minlength=grid.bins)[: grid.bins][grid.used]
    return fill_empty((sums / np.maximum(counts, 1))[None, :], counts[None, :])[0]


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
    geometry = geometry_for(spectrum.tile_px)
    log_power = log_spectrum(spectrum, geometry)
    profile = _radial_profile(log_power, geometry.radial_index, geometry.grid)
    normalised = detrend_normalise(profile[None, :], geometry.grid.trend)[0]
    radii = DEFOCUS_RADII_PX
    # Candidates ranked on the coarse quarter of the bins; the winner scored on all of them.
    subset = geometry.coarse_selected
    coarse_rho = geometry.rho[subset]
    coarse_target = target(log_power[subset], geometry.coarse_trend_basis)
    best = None
    for eps in DEFOCUS_TEMPLATE_EPS:
        scores = _defocus_templates(spectrum.tile_px, eps) @ normalised
        for k in local_maxima(scores, DEFOCUS_CANDIDATES, circular=False):
            radius = float(radii[k] + parabolic_peak(scores, k) * (radii[1] - radii[0]))
            template = _log_disk_template(radius, coarse_rho, eps)
            score = r2_gain(coarse_target, template)
            if best is None or score > best[0]:
                best = (score, radius, eps)
    _, radius, eps = best
    score = r2_gain(target(log_power, geometry.trend_basis), _log_disk_template(radius, geometry.rho, eps))
    return DefocusFit(radius - DEFOCUS_RADIUS_BIAS_PX[spectrum.linear_light], score)
