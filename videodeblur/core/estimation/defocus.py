"""Defocus from a spectrum: ``H = 2 J1(2 pi R rho) / (2 pi R rho)``, dark rings.

The radial search (:mod:`~videodeblur.core.estimation.radial`) with disk templates
``log(|H|^2 + eps)`` at several zero depths ``eps`` (the depth depends on the noise, and a
wrong depth biases the radius).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from videodeblur.core.estimation.radial import RadialModel, radial_search
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


def _log_disk_template(radii_px: np.ndarray, rho: np.ndarray, eps: float) -> np.ndarray:
    """``log(|H_disk(rho)|^2 + eps)`` for each radius (rows), from the table."""
    table = _log_disk_table(eps)
    position = np.minimum(np.multiply.outer(radii_px, rho), _JINC_TABLE_X[-2]) * (1.0 / _JINC_TABLE_STEP)
    index = position.astype(np.int64)
    fraction = position - index
    return table[index] * (1.0 - fraction) + table[index + 1] * fraction


#: The disk as the radial search sees it.
DISK = RadialModel(DEFOCUS_RADII_PX, DEFOCUS_TEMPLATE_EPS, DEFOCUS_CANDIDATES,
                   lambda radii, rho: _disk_transfer(radii, rho) ** 2, _log_disk_template)


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
    fit = radial_search(spectrum, DISK)
    return DefocusFit(fit.size_px - DEFOCUS_RADIUS_BIAS_PX[spectrum.linear_light], fit.score)
