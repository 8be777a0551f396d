"""The config's sections as frozen pydantic models, with their cross-field rules.

The ``[psf]`` section and its keyframes take their parameters from the registry
(:mod:`videodeblur.registry`): every registered kind's parameters are keys of ``[psf]``, with
the bounds, units and defaults the registry gives, read when a config is validated (so a kind
registered at run time is accepted). Everything else is a plain typed field.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from videodeblur import registry
from videodeblur.config import messages as m
from videodeblur.limits import DEFAULT_MAX_FRAME_PIXELS

MAX_WORKERS = 256
MAX_FRAMES_IN_FLIGHT = 1024
#: Largest ``psf.smoothing_frames``.
MAX_SMOOTHING_FRAMES = 100
#: Largest ``psf.estimate_every``.
MAX_ESTIMATE_EVERY = 2 * MAX_SMOOTHING_FRAMES + 1
PLANES: tuple[str, ...] = ("luma", "all")
#: Where the restoration works: from the stream's tags, in linear light, or on the coded values.
LIGHT: tuple[str, ...] = ("auto", "linear", "encoded")
#: Where a run's frames are rendered: this process's threads, segments in local processes, or
#: segments as tasks on a Dask cluster (:mod:`videodeblur.pipeline.segments`).
BACKENDS: tuple[str, ...] = ("threads", "processes", "dask")
MAX_SEGMENT_FRAMES = 10_000_000

_FROZEN = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
#: The [psf] section and keyframes also hold the registry's parameters (validated here).
_FROZEN_WITH_PARAMETERS = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

_OptSeconds = Annotated[float | None, m.real("must be a number of seconds >= 0", lambda x: x >= 0, optional=True)]
_OptFrame = Annotated[
    int | None, m.integer("must be a frame number (an integer >= 0)", lambda n: n >= 0, optional=True)
]


class RuleViolation(ValueError):
    """Cross-field problems of one section, already formatted with their dotted keys."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def enforce(section: BaseModel, rules: Callable[[Mapping[str, Any], set[str]], list[str]]) -> BaseModel:
    """``section`` itself when its cross-field ``rules`` find nothing; else RuleViolation."""
    problems = rules(section.__dict__, frozenset())
    if problems:
        raise RuleViolation(problems)
    return section


# --------------------------------------------------------------------------------------
# Registry parameters inside a model
# --------------------------------------------------------------------------------------


def _parameter_value(parameter: registry.Parameter, value: object) -> object:
    requirement = "must be " + parameter.requirement(value)
    if parameter.is_path:
        return m.path_value(value, parameter.suffixes, requirement)
    return m.real_value(value, requirement, parameter.accepts)


def _config_error(error: dict) -> InitErrorDetails:
    """One of pydantic's error dicts back as the details it was raised from (to merge errors)."""
    ctx = error.get("ctx") or {}
    kind = PydanticCustomError("config", "{problem}", ctx) if error["type"] == "config" else error["type"]
    details = InitErrorDetails(type=kind, loc=tuple(error["loc"]), input=error.get("input"))
    if ctx and error["type"] != "config":
        details["ctx"] = ctx
    return details


def validate_with_parameters(model: type[BaseModel], data: object, handler: Callable,
                             parameters: dict[str, registry.Parameter], defaults: dict[str, object],
                             rules: Callable[[Mapping[str, Any], set[str]], list[str]] | None):
    """Validate a model whose extra keys are registry parameters.

    Declared fields go through pydantic (``handler``); every other key must be one of
    ``parameters`` and is validated by its registry entry; missing ones get ``defaults``. Then
    ``rules`` checks the section as a whole. All problems are raised together, in the order of
    the keys (declared fields and parameters interleaved as :func:`_key_order` says).
    """
    if isinstance(data, model):
        return data
    if not isinstance(data, Mapping):
        return handler(data)  # pydantic's own "must be a table" error
    declared = {k: v for k, v in data.items() if k in model.model_fields}
    values, errors, invalid = dict(defaults), [], set()
    for key, value in data.items():
        if key in model.model_fields:
            continue
        if key not in parameters:
            errors.append(InitErrorDetails(type="extra_forbidden", loc=(key,), input=value))
            invalid.add(key)
            continue
        if value is None:
            continue
        try:
            values[key] = _parameter_value(parameters[key], value)
        except PydanticCustomError as error:
            errors.append(InitErrorDetails(type=error, loc=(key,), input=value))
            invalid.add(key)
    try:
        result = handler({**declared, **values})
    except ValidationError as error:
        errors.extend(_config_error(e) for e in error.errors(include_url=False))
        invalid.update(str(e["loc"][0]) for e in error.errors() if e["loc"])
        result = None
    if rules is not None:
        merged = {**{k: v for k, v in declared.items() if k not in invalid}, **values}
        problems = rules(merged, invalid)
        if problems:
            errors.append(InitErrorDetails(type="value_error", loc=(), input=data,
                                           ctx={"error": RuleViolation(problems)}))
    if errors:
        order = _key_order(model, parameters)
        errors.sort(key=lambda e: order.get(str(e["loc"][0]) if e["loc"] else "", len(order)))
        raise ValidationError.from_exception_data(model.__name__, errors)
    return result


def _key_order(model: type[BaseModel], parameters: Mapping[str, registry.Parameter]) -> dict[str, int]:
    # The parameters come right after the first declared field (psf.kind, keyframes' frame and
    # time_s): the order in which a config lists them.
    fields = list(model.model_fields)
    lead = 2 if "time_s" in fields else 1
    keys = fields[:lead] + list(parameters) + fields[lead:]
    return {key: position for position, key in enumerate(keys)}


# --------------------------------------------------------------------------------------
# [psf]
# --------------------------------------------------------------------------------------


def _keyframe_parameters() -> dict[str, registry.Parameter]:
    return {p.name: p for kind in registry.PSF_KINDS.values() if kind.keyframeable for p in kind.numeric_parameters}


class Keyframe(BaseModel):
    """One entry of ``[[psf.keyframes]]``: the PSF parameters at one frame or time.

    Attributes
    ----------
    frame : int or None
        Frame number (from 0). Exactly one of ``frame`` and ``time_s``.
    time_s : float or None
        Time in seconds from the start of the video.
    radius, length, angle, sigma, ... : float or None
        The numeric parameters of ``psf.kind`` at this point (those of every keyframeable kind
        in :mod:`videodeblur.registry`); one not given keeps the section's value.
    """

    model_config = _FROZEN_WITH_PARAMETERS

    frame: _OptFrame = None
    time_s: _OptSeconds = None

    @model_validator(mode="wrap")
    @classmethod
    def _parameters(cls, data, handler):
        parameters = _keyframe_parameters()
        return validate_with_parameters(cls, data, handler, parameters, dict.fromkeys(parameters), None)

    def value(self, name: str) -> float | None:
        """The keyframe's value of parameter ``name`` (None: not given)."""
        return (self.__pydantic_extra__ or {}).get(name)


def keyframe_value(keyframe: object, key: str) -> object:
    """A keyframe's value: a validated Keyframe, or a raw table when reporting other errors."""
    if isinstance(keyframe, Mapping):
        return keyframe.get(key)
    if isinstance(keyframe, Keyframe):
        return keyframe.value(key) if key not in ("frame", "time_s") else getattr(keyframe, key)
    return None


def psf_rules(values: Mapping[str, Any], invalid: frozenset[str] | set[str]) -> list[str]:
    """Problems of the [psf] section as a whole; keys in ``invalid`` are known to be bad."""
    kind_name = values.get("kind")
    if "kind" in invalid or kind_name not in registry.psf_kind_names():
        return []
    kind = registry.PSF_KINDS.get(kind_name)
    problems = []
    keyframes = () if "keyframes" in invalid else (values.get("keyframes") or ())
    for parameter in kind.parameters if kind else ():
        key = parameter.name
        # A parameter every keyframe gives needs no section value to fall back on.
        given_by_keyframes = bool(keyframes) and all(keyframe_value(k, key) is not None for k in keyframes)
        if key not in invalid and values.get(key) is None and not given_by_keyframes:
            problems.append(f'psf.{key}: required when psf.kind = "{kind_name}"')
        path = values.get(key)
        if parameter.is_path and key not in invalid and isinstance(path, str):
            full = os.path.expanduser(path)
            if not os.path.exists(full):
                problems.append(f"psf.{key}: file not found: {m.quote(path, None)}")
            elif not os.path.isfile(full):
                problems.append(f"psf.{key}: not a file: {m.quote(path, None)}")
    problems.extend(_keyframe_rules(kind, values, invalid))
    return problems


def _keyframe_rules(kind: registry.PsfKind | None, values: Mapping[str, Any], invalid) -> list[str]:
    """Problems of ``psf.keyframes`` given the kind and the section's own parameters."""
    keyframes = values.get("keyframes") or ()
    if "keyframes" in invalid or not keyframes:
        return []
    if kind is None or not kind.keyframeable:
        allowed = ", ".join(f'"{k.name}"' for k in registry.PSF_KINDS.values() if k.keyframeable)
        return [f'psf.keyframes: only for psf.kind = {allowed}, not "{values.get("kind")}"']
    problems, units, positions = [], set(), []
    allowed_keys = [p.name for p in kind.numeric_parameters]
    for n, keyframe in enumerate(keyframes):
        where = f"psf.keyframes.{n}"
        if not isinstance(keyframe, (Mapping, BaseModel)):
            problems.append(f"{where}: must be a table like {{frame = 0, radius = 2.0}}, got {m.show(keyframe)}")
            continue
        frame, time_s = keyframe_value(keyframe, "frame"), keyframe_value(keyframe, "time_s")
        if (frame is None) == (time_s is None):
            problems.append(f"{where}: needs exactly one of frame or time_s")
        else:
            units.add("frame" if frame is not None else "time_s")
            positions.append(frame if frame is not None else time_s)
        for key in _keyframe_parameters():
            if keyframe_value(keyframe, key) is not None and key not in allowed_keys:
                problems.append(f'{where}.{key}: does not apply to psf.kind = "{kind.name}"')
        for key in allowed_keys:
            if keyframe_value(keyframe, key) is None and values.get(key) is None and key not in invalid:
                problems.append(f"{where}.{key}: required (psf.{key} is not set to fall back on)")
    if len(units) > 1:
        problems.append("psf.keyframes: use frame numbers or times (time_s) for every keyframe, not both")
    elif len(positions) == len(keyframes) and any(
        m.is_number(a) and m.is_number(b) and b <= a for a, b in zip(positions, positions[1:])
    ):
        problems.append("psf.keyframes: must be in increasing order of frame or time, without repeats")
    return problems


class PsfSection(BaseModel):
    """``[psf]``: the blur to undo, described by its point spread function.

    Attributes
    ----------
    kind : str
        A registered kind (:mod:`videodeblur.registry`: ``"defocus"``, ``"motion"``,
        ``"gaussian"``, ``"file"``) or an estimated one (``"auto"``: every family, or
        ``"auto-<family>"``: one). Default ``"defocus"``.
    radius, length, angle, sigma, path, ... : float, str or None
        The parameters of every registered kind, with the registry's bounds and defaults
        (``radius`` 3.0 px, so a bare config restores a mild defocus; the others unset). A
        kind's parameters without a default are required for it. A path in a config file is
        relative to that file's folder, in an override to the current directory; it is stored
        absolute.
    keyframes : tuple of Keyframe
        ``[[psf.keyframes]]``: parameters at given frames or times, linearly interpolated in
        between and held before the first and after the last (a known focus pull or a pan
        that speeds up). For keyframeable kinds.
    smoothing_frames : int
        For the estimated kinds: each frame's blur is smoothed with the estimates of up to
        this many frames before and after it in the same shot (0: no smoothing). Default 8.
    estimate_every : int
        For the estimated kinds: the blur is estimated on every this-many-th frame (by frame
        number); the frames between take the kernel smoothed from their window's estimates.
        Default 2: the smoothing already decides each kernel from the estimates of several
        frames, and one frame in two gives it most of their evidence at half the cost. Taken
        as at most ``2 * smoothing_frames + 1``, so that every frame's window holds an estimate
        (with ``smoothing_frames = 0``, every frame is estimated).
    """

    model_config = _FROZEN_WITH_PARAMETERS

    kind: Annotated[str, m.choice(registry.psf_kind_names)] = "defocus"
    keyframes: tuple[Keyframe, ...] = ()
    smoothing_frames: Annotated[
        int, m.integer(f"must be an integer from 0 to {MAX_SMOOTHING_FRAMES}",
                       lambda n: 0 <= n <= MAX_SMOOTHING_FRAMES)
    ] = 8
    estimate_every: Annotated[
        int, m.integer(f"must be an integer from 1 to {MAX_ESTIMATE_EVERY}",
                       lambda n: 1 <= n <= MAX_ESTIMATE_EVERY)
    ] = 2

    @model_validator(mode="wrap")
    @classmethod
    def _parameters(cls, data, handler):
        parameters = registry.all_parameters()
        defaults = {name: p.default for name, p in parameters.items()}
        return validate_with_parameters(cls, data, handler, parameters, defaults, psf_rules)

    def value(self, name: str):
        """The section's value of parameter ``name`` (None when unset)."""
        return (self.__pydantic_extra__ or {}).get(name)

    @property
    def parameters(self) -> dict[str, Any]:
        """The values of this kind's parameters, by name (empty for estimated kinds)."""
        kind = registry.PSF_KINDS.get(self.kind)
        return {p.name: self.value(p.name) for p in kind.parameters} if kind else {}


# --------------------------------------------------------------------------------------
# The other sections
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
        blur: it is restored with a smaller copy of the kernel instead (Wiener and Tikhonov
        with ``nsr = "auto"``). Default true; the run's summary says how many frames were held.
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

    start_s: _OptSeconds = None
    end_s: _OptSeconds = None
    start_frame: _OptFrame = None
    end_frame: _OptFrame = None

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
