"""Which kernel restores each frame: fixed, keyframed, or estimated and smoothed over time.

A *schedule* turns the frames of a video, in order, into one :class:`TrackRow` per frame (its
:class:`~videodeblur.pipeline.kernels.KernelSpec`). ``run``, ``preview`` and ``estimate`` all
use the same schedules, so a preview shows exactly the kernel a run uses:

* :class:`FixedSchedule`: the ``[psf]`` kernel for every frame;
* :class:`KeyframeSchedule`: ``[[psf.keyframes]]`` interpolated linearly in frame number or
  time, held before the first keyframe and after the last;
* :class:`BlurTracker` (``psf.kind = "auto" | "auto-motion" | "auto-defocus"``): every frame is
  analysed (thread-safe, run in the worker pool: its scene-cut signature, and on every
  ``estimate_every``-th frame its blur, :func:`analyse_frame`) and the analyses are pushed in
  frame order; a frame's kernel is final once the ``smoothing_frames`` frames after it have been
  pushed (or its shot has ended), because it is smoothed over the estimates of the frames
  ``i - W .. i + W`` of its shot (:func:`videodeblur.core.smoothing.smooth_at`).

Motion is smoothed as the vector ``(L cos 2a, L sin 2a)``: the angle of a motion blur is
defined modulo 180 degrees, and on these coordinates 179 and 1 degrees are neighbours, so the
smoothed angle never jumps at the wrap.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from videodeblur import registry
from videodeblur.core import estimation, smoothing
from videodeblur.core.estimation import BlurEstimate
from videodeblur.errors import InvalidParameterError
from videodeblur.fft.plans import tile_transform
from videodeblur.pipeline.kernels import NONE, KernelSpec, quantised_spec, spec_from_config


@dataclass(frozen=True)
class FrameAnalysis:
    """What the worker pool learns about one frame for blur tracking: its scene-cut signature,
    and its blur estimate (None on the frames between estimated ones)."""

    signature: np.ndarray
    estimate: BlurEstimate | None


@dataclass(frozen=True)
class TrackRow:
    """The kernel decided for one frame.

    Attributes
    ----------
    index : int
        Frame number.
    time_s : float or None
        Presentation time.
    spec : KernelSpec
        The kernel the frame is restored with (kind ``"none"``: left as is).
    estimate : BlurEstimate or None
        The frame's own (raw) estimate, for estimated kinds (None on a frame between estimated
        ones, ``psf.estimate_every``).
    scene_cut : bool
        Whether the frame starts a new shot (estimated kinds).
    """

    index: int
    time_s: float | None
    spec: KernelSpec
    estimate: BlurEstimate | None = None
    scene_cut: bool = False


class FixedSchedule:
    """One kernel for every frame."""

    needs_analysis = False
    lookahead_frames = 0
    lookbehind_frames = 0

    def __init__(self, spec: KernelSpec):
        self.spec = spec

    def push(self, item, analysis=None) -> list[TrackRow]:
        return [TrackRow(item.index, item.time_s, self.spec)]

    def finish(self) -> list[TrackRow]:
        return []


class KeyframeSchedule:
    """Parameters interpolated between ``[[psf.keyframes]]``.

    Parameters
    ----------
    psf_section : PsfSection
        Of kind defocus, motion or gaussian, with keyframes.
    frame_rate : fractions.Fraction or None
        Used to place frames without a timestamp on a time axis.
    """

    needs_analysis = False
    lookahead_frames = 0
    lookbehind_frames = 0

    def __init__(self, psf_section, frame_rate=None):
        self.kind = psf_section.kind
        self.by_time = psf_section.keyframes[0].time_s is not None
        self.frame_rate = float(frame_rate) if frame_rate else None
        self.positions = np.array([k.time_s if self.by_time else k.frame for k in psf_section.keyframes], float)
        self.values = {}
        for parameter in registry.psf_kind(self.kind).numeric_parameters:
            name = parameter.name
            values = np.array([k.value(name) if k.value(name) is not None else psf_section.value(name)
                               for k in psf_section.keyframes], float)
            if parameter.period is not None:
                # The shortest way round: from 175 to 5 degrees (period 180) is a 10 degree turn.
                turns = 2.0 * np.pi / parameter.period
                values = np.unwrap(values * turns) / turns
            self.values[name] = values

    def parameters_at(self, index: int, time_s: float | None) -> dict[str, float]:
        """Interpolated parameters at a frame (by frame number or time, as the keyframes are)."""
        if self.by_time:
            if time_s is None:
                if not self.frame_rate:
                    raise InvalidParameterError(f"frame {index} has no timestamp to place it between time keyframes")
                time_s = index / self.frame_rate
            position = time_s
        else:
            position = index
        return {name: float(np.interp(position, self.positions, values)) for name, values in self.values.items()}

    def push(self, item, analysis=None) -> list[TrackRow]:
        spec = quantised_spec(self.kind, self.parameters_at(item.index, item.time_s))
        return [TrackRow(item.index, item.time_s, spec)]

    def finish(self) -> list[TrackRow]:
        return []


def analyse_frame(luma: np.ndarray, max_value: float, family: str, light_table: np.ndarray | None = None) -> FrameAnalysis:
    """Estimate one frame's blur and take its scene-cut signature (pure; any thread).

    Parameters
    ----------
    luma : numpy.ndarray
        The frame's luma plane (integers as decoded).
    max_value : float
        Full-scale value of the plane (255 for 8-bit).
    family : {"auto", "motion", "defocus"}
        Which estimators to run.
    light_table : numpy.ndarray or None
        Linear light of each code: the blur is estimated where it happened, in linear light
        (None: on the codes).
    """
    spectrum = estimation.blur_spectrum(luma, transforms=tile_transform, light_table=light_table)
    return FrameAnalysis(smoothing.frame_signature(luma, max_value), estimation.estimate_blur(spectrum, family))


@dataclass
class _Record:
    index: int
    time_s: float | None
    analysis: FrameAnalysis
    scene: int
    scene_cut: bool


class BlurTracker:
    """Per-frame blur estimates in, smoothed kernels out, in frame order.

    Parameters
    ----------
    family : {"auto", "motion", "defocus"}
        The estimator family (from ``psf.kind``).
    smoothing_frames : int
        ``W``: frames each side of a frame that its kernel is smoothed over.
    max_value : float
        Full-scale luma value (for :meth:`analyse`).
    light_table : numpy.ndarray or None
        Linear light of each luma code (None: estimate on the codes).
    estimate_every : int
        The blur is estimated on the frames whose number is a multiple of this; the frames
        between take the kernel their window's estimates give them. Taken as at most
        ``(2 W + 1) // MIN_AGREEING_FRAMES``, so that the window of a frame inside a shot holds
        the agreeing estimates a kernel needs (:data:`MIN_AGREEING_FRAMES`); with ``W < 3`` every
        frame is estimated.
    """

    needs_analysis = True

    def __init__(self, family: str, smoothing_frames: int, max_value: float = 255.0,
                 light_table: np.ndarray | None = None, estimate_every: int = 1):
        if family not in estimation.KINDS:
            raise InvalidParameterError(f"unknown estimation family {family!r}")
        self.family = family
        self.half_window = int(smoothing_frames)
        self.max_value = float(max_value)
        self.light_table = light_table
        self.estimate_every = max(1, min(int(estimate_every), (2 * self.half_window + 1) // MIN_AGREEING_FRAMES))
        self._records: list[_Record] = []
        self._next_to_emit = 0  # position in _records
        self._scene = 0
        self._previous_signature = None

    @property
    def lookahead_frames(self) -> int:
        return self.half_window

    @property
    def lookbehind_frames(self) -> int:
        # The window reaches W frames back; one more tells whether the first of them starts a shot.
        return self.half_window + 1

    def estimates(self, index: int) -> bool:
        """Whether frame ``index`` has its blur estimated (by frame number, so a preview or a
        segment estimates the frames a whole run does)."""
        return index % self.estimate_every == 0

    def analyse(self, item) -> FrameAnalysis:
        """The analysis :meth:`push` needs for ``item`` (thread-safe; run it in the pool)."""
        if not self.estimates(item.index):
            return FrameAnalysis(smoothing.frame_signature(item.planes[0], self.max_value), None)
        return analyse_frame(item.planes[0], self.max_value, self.family, self.light_table)

    def push(self, item, analysis: FrameAnalysis) -> list[TrackRow]:
        """Add the next frame in order; return the rows that became final."""
        cut = smoothing.is_scene_cut(self._previous_signature, analysis.signature)
        self._previous_signature = analysis.signature
        if cut and self._records:
            self._scene += 1
        self._records.append(_Record(item.index, item.time_s, analysis, self._scene, cut))
        newest = self._records[-1]
        rows = []
        while self._next_to_emit < len(self._records):
            record = self._records[self._next_to_emit]
            complete = record.scene != newest.scene or newest.index - record.index >= self.half_window
            if not complete:
                break
            rows.append(self._row(self._next_to_emit))
            self._next_to_emit += 1
        self._forget()
        return rows

    def finish(self) -> list[TrackRow]:
        """Rows of the frames still waiting for later frames (the end of the video)."""
        rows = [self._row(k) for k in range(self._next_to_emit, len(self._records))]
        self._next_to_emit = len(self._records)
        self._forget()
        return rows

    def _forget(self) -> None:
        # Keep only records a pending frame's window can still reach.
        if self._next_to_emit >= len(self._records):
            oldest_needed = self._records[-1].index - self.half_window if self._records else 0
        else:
            oldest_needed = self._records[self._next_to_emit].index - self.half_window
        drop = 0
        while drop < len(self._records) - 1 and self._records[drop].index < oldest_needed:
            drop += 1
        if drop:
            del self._records[:drop]
            self._next_to_emit -= drop

    def _row(self, position: int) -> TrackRow:
        record = self._records[position]
        window = [r for r in self._records
                  if r.scene == record.scene and abs(r.index - record.index) <= self.half_window]
        spec = smoothed_spec(record.index, window, self.half_window)
        return TrackRow(record.index, record.time_s, spec, record.analysis.estimate, record.scene_cut)


def _tricube(offset: int, half_window: int) -> float:
    return (1.0 - (abs(offset) / (half_window + 1.0)) ** 3) ** 3


#: A kernel is applied only where at least this many frames of its window found it (or every
#: frame of a shorter shot): one frame's estimate, however confident, that its neighbours do not
#: share is not carried into them, nor applied to itself.
MIN_AGREEING_FRAMES = 3
#: Frames agree on a kernel when their estimates lie within this share of its size (in the
#: kind's smoothing coordinates), or within :data:`videodeblur.core.smoothing.OUTLIER_FLOOR`.
AGREEMENT_SHARE = 0.15


def smoothed_spec(index: int, window, half_window: int) -> KernelSpec:
    """The kernel of frame ``index`` from the records of its window (same shot, +-W frames);
    the records without an estimate (``psf.estimate_every``) take no part.

    The kind is a vote of the frames' own decisions, each weighted by its nearness and its
    confidence: a frame that found no blur because it shows nothing (a flat wall, a dark frame:
    low confidence) hardly votes, one that is sharp (a short streak fits it well: high
    confidence) votes "none" firmly. Rival families
    (:attr:`videodeblur.core.estimation.Family.rival`: a Gaussian and a disk) vote as one, and
    the window's frames that chose either decide between them together
    (:func:`videodeblur.core.estimation.pooled_winner`). The parameters are smoothed over the
    frames that decided that kind (with their fit of it), by confidence, in the kind's smoothing
    coordinates
    (:attr:`videodeblur.registry.PsfKind.to_coordinates`): a local line read at the frame, or
    their mean where they all lie on one side of it inside the shot (the blur coming into view).
    The kernel is applied only where at least :data:`MIN_AGREEING_FRAMES` of them agree with it.
    """
    window = [r for r in window if r.analysis.estimate is not None]
    if not window:
        return KernelSpec(NONE)
    # Rival families (a Gaussian and a disk) vote together, then are told apart by the frames'
    # summed fits: one frame's verdict between them is noisy.
    votes: Counter = Counter()
    weights = {}
    for r in window:
        confidence = max(float(r.analysis.estimate.confidence), smoothing.MIN_WEIGHT)
        weights[r.index] = _tricube(r.index - index, half_window) * confidence
        votes[estimation.contest(r.analysis.estimate.kind)] += weights[r.index]
    # Deterministic order on ties: the estimator's family order, then none.
    candidates = dict.fromkeys(estimation.contest(name) for name in (*estimation.FAMILIES, NONE))
    contest = max(candidates, key=lambda key: votes.get(key, 0.0))
    if contest == (NONE,):
        return KernelSpec(NONE)
    voters = [r for r in window if r.analysis.estimate.kind in contest]
    family = estimation.pooled_winner(contest, [r.analysis.estimate for r in voters], [weights[r.index] for r in voters])
    if family is None:
        family = max(contest, key=lambda name: sum(weights[r.index] for r in voters
                                                   if r.analysis.estimate.kind == name))
    kind = registry.kind_for_family(family)
    members = [r for r in voters if r.analysis.estimate.fit(family) is not None]
    offsets = [r.index - index for r in members]
    confidences = [r.analysis.estimate.confidence for r in members]
    coordinates = np.array([kind.to_coordinates(r.analysis.estimate.fit(family).values) for r in members], float)
    # Where the kind's frames all lie on one side of this frame (itself included) while the shot
    # goes on beyond them, the blur has just come into view (or is leaving it): the first frames
    # to show it show the least and estimate worst, and a line through them would carry their
    # error on to the frames that see nothing. Their mean, with the better frames after them,
    # is steadier. At a shot's ends the line still follows a ramp to the last frame.
    one_sided = ((min(offsets) >= 0 and any(r.index < index for r in window))
                 or (max(offsets) <= 0 and any(r.index > index for r in window)))
    smoothed = smoothing.smooth_at(offsets, coordinates, confidences, half_window, follow_ramp=not one_sided)
    tolerance = max(smoothing.OUTLIER_FLOOR, AGREEMENT_SHARE * float(np.linalg.norm(smoothed)))
    agreeing = int(np.count_nonzero(np.linalg.norm(coordinates - smoothed, axis=1) <= tolerance))
    if agreeing < min(MIN_AGREEING_FRAMES, len(window)):
        return KernelSpec(NONE)
    values = kind.coordinates_to_values(tuple(float(c) for c in smoothed))
    if not estimation.FAMILIES[family].big_enough(values):
        return KernelSpec(NONE)
    return quantised_spec(kind.name, values)


def schedule_for(psf_section, info=None, max_value: float = 255.0, light_table: np.ndarray | None = None):
    """A fresh schedule for one pass over a video with this ``[psf]`` section.

    Parameters
    ----------
    psf_section : PsfSection
    info : VideoInfo or None
        For the frame rate (time keyframes on frames without timestamps).
    max_value : float
        Full-scale luma value, for the auto kinds.
    light_table : numpy.ndarray or None
        For the auto kinds: linear light of each luma code, to estimate the blur in linear light.
    """
    estimated = registry.estimated_kinds()
    if psf_section.kind in estimated:
        smallest = estimation.MIN_TILE_PX
        if info is not None and min(info.width, info.height) < smallest:
            raise InvalidParameterError(
                f'psf.kind = "{psf_section.kind}": the video is {info.width}x{info.height}, too small to '
                f"estimate the blur (at least {smallest}x{smallest} pixels); give the blur instead "
                f"(psf.kind = {_or_list(k for k, v in registry.PSF_KINDS.items() if v.keyframeable)})"
            )
        return BlurTracker(estimated[psf_section.kind], psf_section.smoothing_frames, max_value, light_table,
                           psf_section.estimate_every)
    if psf_section.keyframes:
        return KeyframeSchedule(psf_section, getattr(info, "average_rate", None))
    return FixedSchedule(spec_from_config(psf_section))


def _or_list(names) -> str:
    quoted = [f'"{name}"' for name in names]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
