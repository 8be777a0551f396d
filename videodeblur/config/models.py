"""The config's sections as frozen pydantic models, with their cross-field rules.

The ``[psf]`` section takes its keys from the registry (:mod:`videodeblur.config.psf_section`);
everything else is a plain typed field.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator

from videodeblur import registry
from videodeblur.config import messages as m
from videodeblur.config.messages import OptionalFrame, OptionalSeconds, RuleViolation
from videodeblur.config.psf_section import PsfSection
from videodeblur.limits import DEFAULT_MAX_FRAME_PIXELS

MAX_WORKERS = 256
MAX_FRAMES_IN_FLIGHT = 1024
PLANES: tuple[str, ...] = ("luma", "all")
#: Where the restoration works: from the stream's tags, in linear light, or on the coded values.
LIGHT: tuple[str, ...] = ("auto", "linear", "encoded")
#: Where a run's frames are rendered: this process's threads, segments in local processes, or
#: segments as tasks on a Dask cluster (:mod:`videodeblur.pipeline.segments`).
BACKENDS: tuple[str, ...] = ("threads", "processes", "dask")
MAX_SEGMENT_FRAMES = 10_000_000

_FROZEN = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def enforce(section: BaseModel, rules: Callable[[Mapping[str, Any], set[str]], list[str]]) -> BaseModel:
    """``section`` itself when its cross-field ``rules`` find nothing; else RuleViolation."""
    problems = rules(section.__dict__, frozenset())
    if problems:
        raise RuleViolation(problems)
    return section


# --------------------------------------------------------------------------------------
# The sections besides [psf]
# --------------------------------------------------------------------------------------


class DeconvolutionSection(BaseModel):
    """``[deconvolution]``: how the blur is undone.

    Attributes
    ----------
    method : str
        A registered method (:mod:`videodeblur.registry`): ``"wiener"`` (default),
        ``"tikhonov"`` or ``"tv"``.
    nsr : "auto" or float
        The regularisation (> 0): the noise-to-signal power ratio for Wiener, lambda for
        Tikhonov, the total variation's weight for tv. ``"auto"`` estimates it from each frame.
    edgetaper : bool
        Taper the frame borders before deconvolving to avoid ringing. Default true.
    planes : {"luma", "all"}
        Restore only the brightness plane (fast, usually enough) or every plane.
    strength : float
        From 0 (the input as it is) to 1 (the full restoration, default): how much of the
        restoration is applied.
    light : {"auto", "linear", "encoded"}
        Where the blur is undone: ``"linear"`` light (where a lens blurs; needs a known transfer
        curve), the ``"encoded"`` values as they are, or ``"auto"`` (default): linear light when
        the stream's transfer tag is a known curve, an untagged stream taken as BT.709.
    guard : bool
        Hold back a frame whose own spectrum shows that the given kernel is larger than its
        blur: it is restored with a smaller copy of the kernel instead; and restore one that
        shows a larger blur with a larger copy of the kernel's model (Wiener and Tikhonov with
        ``nsr = "auto"``). Default true; the run's summary says how many frames were held back
        or restored with a larger kernel.
    point_lights : bool
        In linear light, take compact bright peaks on a dark background (lamps, stars,
        speculars) back to points instead of leaving the filter's rings around them (Wiener and
        Tikhonov). Default true; off for footage whose small bright specks are texture (rendered
        animation), which the step would turn into single bright pixels.
    """

    model_config = _FROZEN

    method: Annotated[str, m.choice(lambda: tuple(registry.METHODS))] = "wiener"
    nsr: Annotated[Literal["auto"] | float, PlainValidator(m.validate_nsr)] = "auto"
    edgetaper: Annotated[bool, PlainValidator(m.validate_bool)] = True
    planes: Annotated[str, m.choice(PLANES)] = "luma"
    strength: Annotated[float, m.real("must be a number from 0 (the input) to 1 (the full restoration)",
                                      lambda x: 0.0 <= x <= 1.0, optional=False)] = 1.0
    light: Annotated[str, m.choice(LIGHT)] = "auto"
    guard: Annotated[bool, PlainValidator(m.validate_bool)] = True
    point_lights: Annotated[bool, PlainValidator(m.validate_bool)] = True


_PRESET = m.choice(registry.presets)


class OutputSection(BaseModel):
    """``[output]``: how the restored video is encoded.

    Attributes
    ----------
    codec : str
        A registered encoder (:mod:`videodeblur.registry`). Default ``"libx264"``.
    crf : int
        Constant rate factor (lower is better quality), for codecs that have one: 0..51 for
        libx264/libx265, 0..63 for AV1 and VP9.
    preset : str
        Speed preset, for codecs that have presets. Default ``"medium"``.
    pix_fmt : str
        ``""`` keeps the input's pixel format; otherwise an FFmpeg pixel format name.
    profile : str
        For codecs with profiles (DNxHR: ``dnxhr_hq``, ``dnxhr_hqx``, ``dnxhr_444``,
        ``dnxhr_sq``, ``dnxhr_lb``); ``""`` chooses by the source's format.
    audio : {"copy", "none", "aac", "opus"}
        The input's audio streams: copied packet for packet (default), left out, or
        re-encoded (for a container that cannot hold the source's audio codec).
    """

    model_config = _FROZEN

    codec: Annotated[str, m.choice(lambda: tuple(registry.CODECS))] = "libx264"
    crf: Annotated[int, m.integer(f"must be an integer from 0 to {registry.max_crf()}",
                                  lambda n: 0 <= n <= registry.max_crf())] = 18
    preset: Annotated[str, PlainValidator(lambda value: _PRESET.func(
        str(value) if isinstance(value, int) and not isinstance(value, bool) else value))] = "medium"  # AV1's are numbers
    pix_fmt: Annotated[str, PlainValidator(m.validate_pix_fmt)] = ""
    profile: Annotated[str, m.choice(lambda: ("", *registry.profiles()))] = ""
    audio: Annotated[str, m.choice(lambda: tuple(registry.AUDIO_MODES))] = "copy"

    @model_validator(mode="after")
    def _check_codec(self) -> OutputSection:
        return enforce(self, output_rules)


#: The preset ``output.preset`` has when not set (libx264's and libx265's own default).
DEFAULT_PRESET = "medium"


def output_rules(values: Mapping[str, Any], invalid: frozenset[str] | set[str]) -> list[str]:
    """Problems of the [output] section as a whole: values the chosen codec does not take."""
    if "codec" in invalid:
        return []
    entry = registry.codec(values.get("codec", "libx264"))
    if entry is None:
        return []
    problems = []
    crf = values.get("crf")
    if "crf" not in invalid and entry.crf and isinstance(crf, int) and not entry.crf[0] <= crf <= entry.crf[1]:
        problems.append(f"output.crf: {entry.name} takes {entry.crf[0]} to {entry.crf[1]}, got {crf}")
    preset = values.get("preset", DEFAULT_PRESET)
    if "preset" not in invalid and entry.presets and preset != DEFAULT_PRESET and preset not in entry.presets:
        problems.append(f"output.preset: {entry.name}'s presets are {', '.join(entry.presets)} (fastest first), "
                        f"got {m.show(preset)}")
    profile = values.get("profile", "")
    if "profile" not in invalid and profile:
        names = [name for name, _ in entry.profiles]
        if profile not in names:
            problems.append(f"output.profile: {entry.name} has " +
                            (f"the profiles {', '.join(names)}" if names else "no profiles") + f", got {m.show(profile)}")
        elif values.get("pix_fmt") and "pix_fmt" not in invalid and values["pix_fmt"] != entry.profile_pix_fmt(profile):
            problems.append(f"output.pix_fmt: {profile} encodes {entry.profile_pix_fmt(profile)}, "
                            f"got {m.show(values['pix_fmt'])}")
    return problems


class PipelineSection(BaseModel):
    """``[pipeline]``: parallelism and how damaged input is handled.

    Attributes
    ----------
    workers : int
        Worker threads; 0 means one per CPU core, otherwise 1..256.
    frames_in_flight : int
        Frames decoded but not yet written; 0 means ``2 * workers + 2``, otherwise 1..1024.
    tolerate_decode_errors : bool
        false (default): a packet that fails to decode stops the run (exit 3, the message
        names the frame). true: such packets are skipped, the run completes and the number
        of decode errors and the frame numbers where they happened are reported.
    max_frame_pixels : int
        Largest frame (width x height, >= 1) that is opened; a larger declared size is
        refused before anything is decoded. Default 8192 x 8192 = 67108864.
    backend : {"threads", "processes", "dask"}
        ``"threads"`` (default): one process, ``workers`` threads. ``"processes"``: the clip
        in segments, ``workers`` local processes at a time. ``"dask"``: segments as tasks on
        the Dask cluster at ``scheduler``.
    scheduler : str
        The Dask scheduler's address (``"tcp://host:8786"``); needed by the dask backend.
    segment_frames : int
        Frames per segment for the processes and dask backends; 0 (default): about 10 s of
        video.
    """

    model_config = _FROZEN

    workers: Annotated[int, m.integer(f"must be 0 (one per CPU core) or an integer from 1 to {MAX_WORKERS}",
                                      lambda n: 0 <= n <= MAX_WORKERS)] = 0
    frames_in_flight: Annotated[int, m.integer(
        f"must be 0 (automatic) or an integer from 1 to {MAX_FRAMES_IN_FLIGHT}",
        lambda n: 0 <= n <= MAX_FRAMES_IN_FLIGHT)] = 0
    tolerate_decode_errors: Annotated[bool, PlainValidator(m.validate_bool)] = False
    max_frame_pixels: Annotated[int, m.integer("must be an integer >= 1 (width x height in pixels)",
                                               lambda n: n >= 1)] = DEFAULT_MAX_FRAME_PIXELS
    backend: Annotated[str, m.choice(BACKENDS)] = "threads"
    scheduler: Annotated[str, PlainValidator(m.validate_scheduler)] = ""
    segment_frames: Annotated[int, m.integer(
        f"must be 0 (about 10 s of video) or a number of frames from 1 to {MAX_SEGMENT_FRAMES}",
        lambda n: 0 <= n <= MAX_SEGMENT_FRAMES)] = 0

    @model_validator(mode="after")
    def _check_backend(self) -> PipelineSection:
        return enforce(self, pipeline_rules)


def pipeline_rules(values: Mapping[str, Any], invalid: frozenset[str] | set[str]) -> list[str]:
    """Problems of the [pipeline] section as a whole; keys in ``invalid`` are ignored."""
    if "backend" in invalid or "scheduler" in invalid or values.get("backend") != "dask":
        return []
    if not values.get("scheduler"):
        return ['pipeline.scheduler: the dask backend needs the scheduler\'s address, '
                'e.g. pipeline.scheduler = "tcp://127.0.0.1:8786"']
    return []


def trim_rules(values: Mapping[str, Any], invalid: frozenset[str] | set[str]) -> list[str]:
    """Problems of the [trim] section as a whole; keys in ``invalid`` are ignored."""

    def get(key: str) -> Any:
        return None if key in invalid else values.get(key)

    problems = []
    for seconds, frame in (("start_s", "start_frame"), ("end_s", "end_frame")):
        if get(seconds) is not None and get(frame) is not None:
            problems.append(f"trim.{frame}: conflicts with trim.{seconds}; set only one of them")
    for start, end, unit in (("start_s", "end_s", " s"), ("start_frame", "end_frame", "")):
        first, last = get(start), get(end)
        if first is not None and last is not None and last <= first:
            problems.append(f"trim.{end}: must be after trim.{start} ({m.show(first)}{unit}), got {m.show(last)}")
    return problems


class TrimSection(BaseModel):
    """``[trim]``: the part of the video to process (all of it when nothing is set).

    Attributes
    ----------
    start_s, end_s : float or None
        Start and end time in seconds (>= 0).
    start_frame, end_frame : int or None
        First frame and the frame after the last one (end exclusive), counted from 0.

    Notes
    -----
    At most one of ``start_s`` / ``start_frame`` and one of ``end_s`` / ``end_frame`` may
    be set; when both ends use the same unit the end must come after the start. Mixed
    units (seconds and frames) are checked once the frame rate is known.
    """

    model_config = _FROZEN

    start_s: OptionalSeconds = None
    end_s: OptionalSeconds = None
    start_frame: OptionalFrame = None
    end_frame: OptionalFrame = None

    @model_validator(mode="after")
    def _check_range(self) -> TrimSection:
        return enforce(self, trim_rules)


def _cpu_count() -> int:
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    return max(1, min(count, MAX_WORKERS))


class Config(BaseModel):
    """The whole, validated, immutable configuration.

    Attributes
    ----------
    psf : PsfSection
    deconvolution : DeconvolutionSection
    output : OutputSection
    pipeline : PipelineSection
    trim : TrimSection
    """

    model_config = _FROZEN

    psf: PsfSection = Field(default_factory=PsfSection)
    deconvolution: DeconvolutionSection = Field(default_factory=DeconvolutionSection)
    output: OutputSection = Field(default_factory=OutputSection)
    pipeline: PipelineSection = Field(default_factory=PipelineSection)
    trim: TrimSection = Field(default_factory=TrimSection)

    @classmethod
    def default(cls) -> Config:
        """Return the built-in defaults (a mild 3 px defocus, Wiener, x264 CRF 18).

        Returns
        -------
        Config
        """
        return cls()

    def resolved_workers(self) -> int:
        """Return the number of worker threads to start.

        Returns
        -------
        int
            ``pipeline.workers``, or when it is 0 the number of CPU cores this process may
            use (at least 1, at most 256).
        """
        return self.pipeline.workers or _cpu_count()

    def resolved_frames_in_flight(self) -> int:
        """Return how many frames may be between decoder and encoder at once.

        Returns
        -------
        int
            ``pipeline.frames_in_flight``, or when it is 0 ``2 * resolved_workers() + 2``.
        """
        return self.pipeline.frames_in_flight or 2 * self.resolved_workers() + 2


#: Section name -> model.
SECTIONS: dict[str, type[BaseModel]] = {name: field.annotation for name, field in Config.model_fields.items()}
#: Section name -> its cross-field rules, for sections that have them.
SECTION_RULES: dict[str, Callable[[Mapping[str, Any], set[str]], list[str]]] = {
    "trim": trim_rules, "pipeline": pipeline_rules, "output": output_rules}


def section_keys(section: str) -> list[str]:
    """Every key a section accepts (the registry's parameters included for [psf])."""
    model = SECTIONS[section]
    keys = list(model.model_fields)
    if section == "psf":
        keys[1:1] = list(registry.all_parameters())
    return keys
