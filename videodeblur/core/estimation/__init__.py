"""Blind blur estimation: find a frame's motion or defocus kernel from its power spectrum.

A blur multiplies the frame's spectrum by the kernel's transfer function ``H``, so the power
spectrum of a blurred frame (:mod:`~videodeblur.core.estimation.spectrum`) carries the zeros of
``H`` (or, for a Gaussian, its smooth fall). Each family searches for its own signature
(:mod:`~videodeblur.core.estimation.motion`, :mod:`~videodeblur.core.estimation.defocus`,
:mod:`~videodeblur.core.estimation.gaussian`) and scores its best fit by the share of the 2-D
log spectrum's variance it explains beyond a smooth trend (an R^2 gain). The family with the
larger gain wins (a Gaussian only by a margin, :attr:`Family.advantage`); a frame whose best
gain is below its family's minimum, or whose blur is below :data:`MIN_LENGTH_PX` /
:data:`MIN_RADIUS_PX` / :data:`MIN_SIGMA_PX`, is reported as ``"none"`` (sharp enough: leave it).

Everything here is a pure function of arrays: no I/O, no threads. Templates depend only on the
tile size and are cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from videodeblur.core.estimation.defocus import DefocusFit, estimate_defocus
from videodeblur.core.estimation.gaussian import (
    GAUSSIAN_ADVANTAGE,
    POOLED_GAUSSIAN_ADVANTAGE,
    GaussianFit,
    estimate_gaussian,
)
from videodeblur.core.estimation.motion import MIN_LENGTH_PX, MotionFit, estimate_motion
from videodeblur.core.estimation.spectrum import MIN_TILE_PX, TILE_PX, BlurSpectrum, average_spectra, blur_spectrum
from videodeblur.errors import InvalidParameterError

__all__ = [
    "BlurEstimate", "BlurSpectrum", "DefocusFit", "FAMILIES", "GaussianFit", "KINDS", "MIN_TILE_PX", "MotionFit",
    "TILE_PX", "average_spectra", "blur_spectrum", "contest", "estimate_blur", "estimate_defocus", "estimate_gaussian",
    "estimate_motion", "pooled_winner",
]

#: Below these R^2 gains a model does not explain the spectrum: sharp photographs fit motion
#: only as short streaks (a periodic texture such as a brick wall looks like one) and hardly
#: fit defocus at all, while blurred footage scores above these (docs/quality.md).
MOTION_MIN_SCORE = 0.09

DEFOCUS_MIN_SCORE = 0.04

#: Sharp footage fits a Gaussian only below sigma 1 px and with gains under 0.02 (H.264's
#: own loss of fine detail included), blurred footage from 0.09 up.
GAUSSIAN_MIN_SCORE = 0.04

DECISIVE_DEFOCUS_SCORE = 0.25

MIN_RADIUS_PX = 1.2

MIN_SIGMA_PX = 0.8

#: R^2 gain at which the confidence reaches 1.
FULL_CONFIDENCE_SCORE = 0.3


@dataclass(frozen=True)
class Family:
    """One estimation family: how it searches a spectrum and when its fit counts.

    Attributes
    ----------
    name : str
        The family, as named by a PSF kind's ``estimator`` in :mod:`videodeblur.registry`.
    search : callable
        ``search(spectrum) -> fit`` with ``.score`` and ``.values`` (the kind's parameters).
    min_score : float
        Below this R^2 gain the fit does not explain the spectrum.
    big_enough : callable
        ``big_enough(values)``: the blur is large enough to be told from texture.
    decisive_score : float or None
        A fit scoring this high settles ``"auto"`` without searching the families it
        :attr:`spares`.
    spares : tuple of str
        The families a decisive fit makes unnecessary to search.
    advantage : float
        The share by which this family's gain must exceed another's to win over it (0: the
        larger gain wins).
    rival : str or None
        A family whose fits look so much like this one's that a single frame cannot tell them
        apart reliably: over time the two are decided together, by a window's frames' summed
        gains (:func:`pooled_winner`), not by each frame's verdict.
    pooled_advantage : float
        The share by which this family's summed gains must exceed its rival's.
    """

    name: str
    search: Callable[[BlurSpectrum], object]
    min_score: float
    big_enough: Callable[[dict], bool]
    decisive_score: float | None = None
    spares: tuple[str, ...] = ()
    advantage: float = 0.0
    rival: str | None = None
    pooled_advantage: float = 0.0


#: The families, in the order that breaks ties between equal scores.
FAMILIES: dict[str, Family] = {
    "motion": Family("motion", estimate_motion, MOTION_MIN_SCORE, lambda v: v["length"] >= MIN_LENGTH_PX),
    # A decisive defocus fit settles "auto" without the (costlier) motion search: no motion fit
    # of a defocused frame, and no defocus fit of a motion-blurred one, scores that high. It
    # does not spare the Gaussian's (cheap) search: a Gaussian blur fits a disk that well too.
    "defocus": Family("defocus", estimate_defocus, DEFOCUS_MIN_SCORE, lambda v: v["radius"] >= MIN_RADIUS_PX,
                      decisive_score=DECISIVE_DEFOCUS_SCORE, spares=("motion",)),
    "gaussian": Family("gaussian", estimate_gaussian, GAUSSIAN_MIN_SCORE, lambda v: v["sigma"] >= MIN_SIGMA_PX,
                       advantage=GAUSSIAN_ADVANTAGE, rival="defocus", pooled_advantage=POOLED_GAUSSIAN_ADVANTAGE),
}
#: What :func:`estimate_blur` may search: every family (``"auto"``) or one.
KINDS = ("auto", *FAMILIES)


@dataclass(frozen=True)
class BlurEstimate:
    """The blur found in one frame.

    Attributes
    ----------
    kind : str
        The winning family (``"motion"``, ``"defocus"``, ``"gaussian"``) or ``"none"``: no blur worth
        restoring was found (sharp enough, leave the frame as is).
    fits : dict
        The best fit of each family that was searched, by family (a decisive fit of one
        family can spare the search of the others: :attr:`Family.decisive_score`).
    confidence : float
        0 (no evidence) to 1: the winning family's R^2 gain, scaled by
        :data:`FULL_CONFIDENCE_SCORE`.
    """

    kind: str
    fits: dict
    confidence: float

    def fit(self, family: str):
        """The fit of ``family``, or None when it was not searched."""
        return self.fits.get(family)


def estimate_blur(spectrum: BlurSpectrum, kind: str = "auto") -> BlurEstimate:
    """Estimate a frame's blur: one of the families, or none worth restoring.

    Parameters
    ----------
    spectrum : BlurSpectrum
        From :func:`blur_spectrum` (or :func:`average_spectra`).
    kind : {"auto", "motion", "defocus", "gaussian"}
        Which families to search (:data:`KINDS`). ``"auto"`` searches all of them and keeps
        the best.

    Returns
    -------
    BlurEstimate
        Its ``kind`` is ``"none"`` when the winning fit is too weak (:attr:`Family.min_score`)
        or the blur too small to matter (:attr:`Family.big_enough`).
    """
    if kind not in KINDS:
        raise InvalidParameterError(f"estimation kind must be one of {', '.join(KINDS)}, got {kind!r}")
    searched = list(FAMILIES) if kind == "auto" else [kind]
    # Families that can settle the search go first.
    searched.sort(key=lambda name: FAMILIES[name].decisive_score is None)
    fits, spared = {}, set()
    for name in searched:
        if name in spared:
            continue
        fits[name] = fit = FAMILIES[name].search(spectrum)
        decisive = FAMILIES[name].decisive_score
        if kind == "auto" and decisive is not None and fit.score >= decisive:
            spared.update(FAMILIES[name].spares)
    # A family with an advantage to make up competes with its gain shrunk by it.
    best = max((name for name in FAMILIES if name in fits),
               key=lambda name: fits[name].score / (1.0 + FAMILIES[name].advantage))
    family, score = FAMILIES[best], fits[best].score
    chosen = best if score >= family.min_score and family.big_enough(fits[best].values) else "none"
    confidence = float(min(1.0, max(0.0, score) / FULL_CONFIDENCE_SCORE))
    return BlurEstimate(chosen, fits, confidence)


def contest(family: str) -> tuple[str, ...]:
    """The families decided together with ``family`` over time: itself and its rival (either
    way round), in the order of :data:`FAMILIES`; ``(family,)`` where it has none (or is
    ``"none"``)."""
    together = {family}
    for name, member in FAMILIES.items():
        if member.rival is not None and family in (name, member.rival):
            together.update((name, member.rival))
    return tuple(name for name in FAMILIES if name in together) if len(together) > 1 else (family,)


def pooled_winner(rivals: tuple[str, ...], estimates, weights) -> str | None:
    """Of two rival families, the one a window's frames favour together.

    The family with the :attr:`Family.rival` wins where its R^2 gains, weighted and summed over
    the frames, exceed the rival's summed gains by its :attr:`Family.pooled_advantage`; else the
    rival wins. One frame's margin is noisy; the window's sum averages it out.

    Parameters
    ----------
    rivals : tuple of str
        Two families decided together (:func:`contest`).
    estimates : sequence of BlurEstimate
        The window's frames whose own verdict is one of the two.
    weights : sequence of float
        Each frame's weight (nearness times confidence).

    Returns
    -------
    str or None
        The winning family; None for a single family, or where not every frame has fits of both
        (a kind that searches one family only).
    """
    challengers = [name for name in rivals if FAMILIES.get(name) and FAMILIES[name].rival in rivals]
    if len(rivals) != 2 or len(challengers) != 1:
        return None
    challenger = FAMILIES[challengers[0]]
    own = theirs = 0.0
    for estimate, weight in zip(estimates, weights):
        mine, rival = estimate.fit(challenger.name), estimate.fit(challenger.rival)
        if mine is None or rival is None:
            return None
        own += weight * mine.score
        theirs += weight * rival.score
    return challenger.name if own > (1.0 + challenger.pooled_advantage) * max(theirs, 0.0) else challenger.rival
