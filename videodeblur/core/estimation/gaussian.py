"""Gaussian blur from a spectrum: ``|H|^2 = exp(-4 pi^2 sigma^2 rho^2)``, no zeros.

A soft lens, a scaler's filter or a diffuser blurs like a Gaussian: the spectrum falls
smoothly, faster and faster, into the floor of noise and compression, without the dark rings of
a defocus disk. The radial search (:mod:`~videodeblur.core.estimation.radial`) with templates
``log(|H|^2 + eps)`` finds sigma at any floor depth, but scores the Gaussian only with shallow
floors (``eps`` from 0.03): with a deep floor, a Gaussian's steep fall mimics a disk's first
zero, and it would explain a defocused frame as well as the disk does. Sigma itself needs the
deep floors on clean footage, where a Gaussian falls far before noise fills it in (a shallow
floor there underestimates sigma by 30 %).

Without rings a small disk and a Gaussian look alike, so a Gaussian fit counts only where it
explains the spectrum clearly better than the disk (:data:`GAUSSIAN_ADVANTAGE`, applied by
:func:`videodeblur.core.estimation.estimate_blur`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from videodeblur.core.estimation.radial import RadialModel, radial_search
from videodeblur.core.estimation.spectrum import BlurSpectrum

GAUSSIAN_SIGMAS_PX = np.round(np.arange(0.5, 12.0 + 1e-9, 0.05), 4)

#: Floor depths tried for sigma. On Big Buck Bunny frames blurred in linear light and coded with
#: H.264, true Gaussians fit best at 0.01-0.2, clean (lossless) ones at 0.001; disks at 0.001.
GAUSSIAN_TEMPLATE_EPS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.5)

#: Floor depths that score the fit (see the module's docstring): a deep floor is what lets a
#: Gaussian imitate a disk.
GAUSSIAN_SCORING_EPS = (0.03, 0.1, 0.2, 0.5)

#: Share of clipped pixels (:attr:`BlurSpectrum.clipped_share`) at which a spectrum's lack of
#: rings is no evidence of a Gaussian at all: clipped areas fill a disk's zeros in. A Gaussian's
#: gain is discounted in proportion below it. Measured: a disk of radius 3 px on a Big Buck Bunny
#: shot exposed 2.5 x (a fifth of the pixels clipped) fitted a Gaussian 3-10 % better than the
#: disk on 73 % of its frames; unclipped disks 7 % worse to 7 % better.
CLIPPED_SHARE_VOID = 0.1

#: One candidate per depth: without rings, the profile correlation over sigma has a single peak.
GAUSSIAN_CANDIDATES = 1

#: The share by which a Gaussian's R^2 gain must exceed the other families' to win. Measured on
#: 48-frame H.264 clips blurred in linear light (docs/quality.md): a Gaussian's gain over a
#: disk's fit of the same frame is +2.5 to +8.4 % on sigma 2 blur (median +5.6 %), and -7 to
#: +6.6 % on disks of radius 3 (median -1.5 to +0.5 %, 1 frame in 192 above 4 %).
GAUSSIAN_ADVANTAGE = 0.04

#: Over time a Gaussian and a disk are decided by a window's frames together (their gains
#: summed, weighted by nearness and confidence: :func:`videodeblur.core.estimation.pooled_winner`),
#: and the Gaussian wins where its sum exceeds the disk's by this share. One frame's margin is
#: noisy, the window's is not: on the same clips over five noise seeds, windows of +-8 frames
#: summed to +3.4 % and more on sigma 2 blur, +2.2 % and less on disks of radius 3
#: (docs/quality.md); this lies between.
POOLED_GAUSSIAN_ADVANTAGE = 0.028


@dataclass(frozen=True)
class GaussianFit:
    """Best Gaussian blur for a spectrum."""

    sigma_px: float
    score: float

    @property
    def values(self) -> dict[str, float]:
        """The fit as ``psf`` parameters (``sigma``)."""
        return {"sigma": self.sigma_px}


def _transfer_squared(sigmas_px, rho):
    return np.exp(-4.0 * np.pi**2 * np.multiply.outer(np.square(sigmas_px), np.square(rho)))


def _log_template(sigmas_px: np.ndarray, rho: np.ndarray, eps: float) -> np.ndarray:
    return np.log(_transfer_squared(sigmas_px, rho) + eps)


#: The Gaussian as the radial search sees it.
GAUSSIAN = RadialModel(GAUSSIAN_SIGMAS_PX, GAUSSIAN_TEMPLATE_EPS, GAUSSIAN_CANDIDATES, _transfer_squared,
                       _log_template)


def estimate_gaussian(spectrum: BlurSpectrum) -> GaussianFit:
    """Gaussian blur that best explains a spectrum.

    Parameters
    ----------
    spectrum : BlurSpectrum

    Returns
    -------
    GaussianFit
        Sigma in pixels and the R^2 gain that scores it, discounted by the share of clipped
        pixels (:data:`CLIPPED_SHARE_VOID`).
    """
    fit = radial_search(spectrum, GAUSSIAN, GAUSSIAN_SCORING_EPS)
    evidence = max(0.0, 1.0 - spectrum.clipped_share / CLIPPED_SHARE_VOID)
    return GaussianFit(fit.size_px, fit.score * evidence)
