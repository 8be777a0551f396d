"""Typed, validated configuration: defaults < TOML file < ``--set`` overrides.

A configuration has five sections::

    [psf]            the blur to undo (point spread function)
    [deconvolution]  how to undo it
    [output]         how to encode the restored video
    [pipeline]       parallelism and input safety limits
    [trim]           which part of the video to process

Every value is checked before any frame is touched, and *every* problem is reported at
once in one :class:`~videodeblur.errors.ConfigError`, one line per problem, each line
starting with the dotted key it concerns, for example::

    psf.radiuss: unknown key (did you mean 'psf.radius'?)
    deconvolution.nsr: must be "auto" or a positive number, got -1
    psf.length: required when psf.kind = "motion"

Nothing but :class:`~videodeblur.errors.ConfigError` leaves :func:`load_config`: a missing,
unreadable or too large file, a TOML syntax error and a wrong value all become one.

Units are part of the key documentation: lengths of the PSF are in pixels of the input
frame, angles in degrees counter-clockwise from the +x axis (pointing right), times in
seconds and frame numbers counted from 0.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, get_args

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from videodeblur.errors import ConfigError

__all__ = [
    "CODECS",
    "Config",
    "DEFAULT_MAX_FRAME_PIXELS",
    "DeconvolutionSection",
    "Keyframe",
    "MAX_CONFIG_BYTES",
    "OutputSection",
    "PipelineSection",
    "PRESETS",
    "PSF_FILE_SUFFIXES",
    "PSF_KINDS",
    "PsfSection",
    "TrimSection",
    "config_to_toml",
    "load_config",
    "parse_override",
]

#: A config file larger than this (1 MiB) is refused unread.
MAX_CONFIG_BYTES = 1 << 20

PsfKind = Literal["defocus", "motion", "gaussian", "file", "auto", "auto-motion", "auto-defocus"]
Method = Literal["wiener", "tikhonov", "tv"]
Planes = Literal["luma", "all"]
Codec = Literal["libx264", "libx265", "prores_ks", "ffv1"]
Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
]

PSF_KINDS: tuple[str, ...] = get_args(PsfKind)
METHODS: tuple[str, ...] = get_args(Method)
PLANES: tuple[str, ...] = get_args(Planes)
CODECS: tuple[str, ...] = get_args(Codec)
#: x264 / x265 speed presets, fastest first.
PRESETS: tuple[str, ...] = get_args(Preset)
#: File types a measured PSF may be read from (compared case-insensitively).
PSF_FILE_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff", ".npy")

MAX_WORKERS = 256
MAX_FRAMES_IN_FLIGHT = 1024
#: Default of ``pipeline.max_frame_pixels``: 8192 x 8192.
DEFAULT_MAX_FRAME_PIXELS = 8192 * 8192

#: The keys that must be set for each PSF kind.
_REQUIRED_BY_KIND: dict[str, tuple[str, ...]] = {
    "defocus": ("radius",),
    "motion": ("length", "angle"),
    "gaussian": ("sigma",),
    "file": ("path",),
    "auto": (),
    "auto-motion": (),
    "auto-defocus": (),
}
#: The parameters a keyframe may set, per PSF kind that accepts keyframes.
KEYFRAME_PARAMETERS: dict[str, tuple[str, ...]] = {
    "defocus": ("radius",),
    "motion": ("length", "angle"),
    "gaussian": ("sigma",),
}
#: Largest ``psf.smoothing_frames``.
MAX_SMOOTHING_FRAMES = 100

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PIX_FMT = re.compile(r"[a-z0-9_]{1,32}")
_TOML_POSITION = re.compile(r"\s*\((?:at line \d+, column \d+|at end of document)\)\s*$")
_MAX_SHOWN = 60


# --------------------------------------------------------------------------------------
# Showing values and keys in one-line messages
# --------------------------------------------------------------------------------------


def _quote(text: str, limit: int | None = _MAX_SHOWN) -> str:
    """Double-quote ``text`` TOML-style, escaping anything that is not printable."""
    inner = json.dumps(text, ensure_ascii=False)[1:-1]
    inner = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in inner)
    if limit is not None and len(inner) > limit:
        inner = inner[: _MAX_SHOWN - 3] + "..."
    return f'"{inner}"'


def _show(value: object) -> str:
    """Show a (TOML-ish) value the way the user wrote it, on one short line."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        text = str(value)
        return text if len(text) <= _MAX_SHOWN else text[:20] + "...(a very long integer)"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):  # TOML dates and times
        return str(isoformat())
    return f"a {type(value).__name__}"


def _key_part(part: object) -> str:
    if isinstance(part, str):
        return part if _BARE_KEY.fullmatch(part) else _quote(part)
    return str(part)


def _dotted(loc: Sequence[object]) -> str:
    return ".".join(_key_part(p) for p in loc) or "config"


def _closest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to ``name`` (case-insensitive), or None if none is close."""
    lowered = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


# --------------------------------------------------------------------------------------
# Field validators: strict about types, one readable message per bad value
# --------------------------------------------------------------------------------------


def _reject(requirement: str, value: object, hint: str = "") -> PydanticCustomError:
    problem = f"{requirement}, got {_show(value)}{hint}"
    return PydanticCustomError("config", "{problem}", {"problem": problem})


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _real(requirement: str, ok: Callable[[float], bool], *, optional: bool) -> PlainValidator:
    """A finite float (an int is accepted and converted; bool and str are not)."""

    def validate(value: object) -> float | None:
        if value is None and optional:
            return None
        if _is_number(value):
            try:
                number = float(value)  # type: ignore[arg-type]
            except OverflowError:
                raise _reject(requirement, value) from None
            if math.isfinite(number) and ok(number):
                return number
        raise _reject(requirement, value)

    return PlainValidator(validate)


def _integer(requirement: str, ok: Callable[[int], bool], *, optional: bool = False) -> PlainValidator:
    """An int (not a bool, not a float even if integral)."""

    def validate(value: object) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and ok(value):
            return int(value)
        raise _reject(requirement, value)

    return PlainValidator(validate)


def _choice(options: Sequence[str]) -> PlainValidator:
    requirement = "must be one of " + ", ".join(f'"{o}"' for o in options)

    def validate(value: object) -> str:
        if isinstance(value, str) and value in options:
            return value
        hint = ""
        if isinstance(value, str):
            close = _closest(value, options)
            if close is not None:
                hint = f' (did you mean "{close}"?)'
        raise _reject(requirement, value, hint)

    return PlainValidator(validate)


def _validate_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _reject("must be true or false", value)


_NSR_REQUIREMENT = 'must be "auto" or a positive number'


def _validate_nsr(value: object) -> str | float:
    if value == "auto" and isinstance(value, str):
        return "auto"
    if _is_number(value):
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:
            raise _reject(_NSR_REQUIREMENT, value) from None
        if math.isfinite(number) and number > 0:
            return number
    hint = ' (did you mean "auto"?)' if isinstance(value, str) and value.strip().lower() == "auto" else ""
    raise _reject(_NSR_REQUIREMENT, value, hint)


def _validate_pix_fmt(value: object) -> str:
    if isinstance(value, str) and (value == "" or _PIX_FMT.fullmatch(value)):
        return value
    raise _reject(
        'must be "" (same as the input) or an FFmpeg pixel format name such as "yuv420p"', value
    )


_PATH_REQUIREMENT = "must be the path of a " + ", ".join(PSF_FILE_SUFFIXES[:-1]) + (
    f" or {PSF_FILE_SUFFIXES[-1]} file"
)


def _validate_psf_path(value: object) -> str | None:
    """A PSF file path; ``~`` is expanded and the path made absolute (relative to the cwd)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip() and "\0" not in value:
        if value.lower().endswith(PSF_FILE_SUFFIXES):
            return os.path.abspath(os.path.expanduser(value))
    raise _reject(_PATH_REQUIREMENT, value)


# Annotated field types.
_Pixels = Annotated[float, _real("must be a number > 0 (pixels)", lambda x: x > 0, optional=False)]
_OptPixels = Annotated[
    float | None, _real("must be a number > 0 (pixels)", lambda x: x > 0, optional=True)
]
_OptLength = Annotated[
    float | None, _real("must be a number >= 1 (pixels)", lambda x: x >= 1, optional=True)
]
_OptDegrees = Annotated[
    float | None, _real("must be a finite number (degrees)", lambda x: True, optional=True)
]
_OptSeconds = Annotated[
    float | None, _real("must be a number of seconds >= 0", lambda x: x >= 0, optional=True)
]
_OptFrame = Annotated[
    int | None, _integer("must be a frame number (an integer >= 0)", lambda n: n >= 0, optional=True)
]

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _RuleViolation(ValueError):
    """Cross-field problems of one section, already formatted with their dotted keys."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


# --------------------------------------------------------------------------------------
# Cross-field rules (shared by the model validators and by load_config's error report)
# --------------------------------------------------------------------------------------


def _psf_rules(values: Mapping[str, Any], invalid: frozenset[str] | set[str]) -> list[str]:
    """Problems of the [psf] section as a whole; keys in ``invalid`` are known to be bad."""
    kind = values.get("kind")
    if "kind" in invalid or kind not in _REQUIRED_BY_KIND:
        return []
    problems = []
    keyframes = () if "keyframes" in invalid else (values.get("keyframes") or ())
    for key in _REQUIRED_BY_KIND[kind]:
        # A parameter every keyframe gives needs no section value to fall back on.
        given_by_keyframes = bool(keyframes) and all(_keyframe_value(k, key) is not None for k in keyframes)
        if key not in invalid and values.get(key) is None and not given_by_keyframes:
            problems.append(f'psf.{key}: required when psf.kind = "{kind}"')
    problems.extend(_keyframe_rules(kind, values, invalid))
    path = values.get("path")
    if kind == "file" and "path" not in invalid and isinstance(path, str):
        full = os.path.expanduser(path)
        if not os.path.exists(full):
            problems.append(f"psf.path: file not found: {_quote(path, None)}")
        elif not os.path.isfile(full):
            problems.append(f"psf.path: not a file: {_quote(path, None)}")
    return problems


def _keyframe_value(keyframe: object, key: str) -> object:
    """A keyframe's value: a validated Keyframe, or a raw table when reporting other errors."""
    if isinstance(keyframe, Mapping):
        return keyframe.get(key)
    return getattr(keyframe, key, None)


def _keyframe_rules(kind: str, values: Mapping[str, Any], invalid: frozenset[str] | set[str]) -> list[str]:
    """Problems of ``psf.keyframes`` given the kind and the section's own parameters."""
    keyframes = values.get("keyframes") or ()
    if "keyframes" in invalid or not keyframes:
        return []
    if kind not in KEYFRAME_PARAMETERS:
        allowed = ", ".join(f'"{k}"' for k in KEYFRAME_PARAMETERS)
        return [f'psf.keyframes: only for psf.kind = {allowed}, not "{kind}"']
    problems = []
    allowed_keys = KEYFRAME_PARAMETERS[kind]
    units = set()
    positions = []
    for n, keyframe in enumerate(keyframes):
        where = f"psf.keyframes.{n}"
        if not isinstance(keyframe, (Mapping, BaseModel)):
            problems.append(f"{where}: must be a table like {{frame = 0, radius = 2.0}}, got {_show(keyframe)}")
            continue
        frame, time_s = _keyframe_value(keyframe, "frame"), _keyframe_value(keyframe, "time_s")
        if (frame is None) == (time_s is None):
            problems.append(f"{where}: needs exactly one of frame or time_s")
        else:
            units.add("frame" if frame is not None else "time_s")
            positions.append(frame if frame is not None else time_s)
        for key in ("radius", "length", "angle", "sigma"):
            if _keyframe_value(keyframe, key) is not None and key not in allowed_keys:
                problems.append(f'{where}.{key}: does not apply to psf.kind = "{kind}"')
        for key in allowed_keys:
            if _keyframe_value(keyframe, key) is None and values.get(key) is None and key not in invalid:
                problems.append(f"{where}.{key}: required (psf.{key} is not set to fall back on)")
    if len(units) > 1:
        problems.append("psf.keyframes: use frame numbers or times (time_s) for every keyframe, not both")
    elif len(positions) == len(keyframes) and any(
        _is_number(a) and _is_number(b) and b <= a for a, b in zip(positions, positions[1:])
    ):
        problems.append("psf.keyframes: must be in increasing order of frame or time, without repeats")
    return problems


def _trim_rules(values: Mapping[str, Any], invalid: frozenset[str] | set[str]) -> list[str]:
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
            problems.append(
                f"trim.{end}: must be after trim.{start} ({_show(first)}{unit}), got {_show(last)}"
            )
    return problems


# --------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------


class Keyframe(BaseModel):
    """One entry of ``[[psf.keyframes]]``: the PSF parameters at one frame or time.

    Attributes
    ----------
    frame : int or None
        Frame number (from 0). Exactly one of ``frame`` and ``time_s``.
    time_s : float or None
        Time in seconds from the start of the video.
    radius, length, angle, sigma : float or None
        The parameters of ``psf.kind`` at this point; one not given keeps the section's value.
    """

    model_config = _MODEL_CONFIG

    frame: _OptFrame = None
    time_s: _OptSeconds = None
    radius: _OptPixels = None
    length: _OptLength = None
    angle: _OptDegrees = None
    sigma: _OptPixels = None


class PsfSection(BaseModel):
    """``[psf]``: the blur to undo, described by its point spread function.

    Attributes
    ----------
    kind : {"defocus", "motion", "gaussian", "file", "auto", "auto-motion", "auto-defocus"}
        The blur model. Default ``"defocus"``. The ``auto`` kinds estimate the blur in every
        frame (``"auto"``: motion, defocus or none; the others: that family only, or none)
        and smooth the estimates over time.
    radius : float
        Defocus disk radius in pixels, > 0 (sub-pixel values allowed). Default 3.0, so a
        bare config restores a mild defocus.
    length : float or None
        Motion blur length in pixels, >= 1. Required when ``kind = "motion"``.
    angle : float or None
        Motion direction in degrees counter-clockwise from +x, any finite value.
        Required when ``kind = "motion"``.
    sigma : float or None
        Gaussian blur standard deviation in pixels, > 0. Required when ``kind = "gaussian"``.
    path : str or None
        A measured PSF image (.png/.tif/.tiff) or NumPy array (.npy). Required, and must
        exist, when ``kind = "file"``. Stored as an absolute path; in a config file a
        relative path is relative to the config file's folder, in an override to the
        current directory.
    keyframes : tuple of Keyframe
        ``[[psf.keyframes]]``: parameters at given frames or times, linearly interpolated in
        between and held before the first and after the last (a known focus pull or a pan
        that speeds up). For the defocus, motion and gaussian kinds.
    smoothing_frames : int
        For the ``auto`` kinds: each frame's blur is smoothed with the estimates of up to
        this many frames before and after it in the same shot (0: no smoothing). Default 8.
    """

    model_config = _MODEL_CONFIG

    kind: Annotated[PsfKind, _choice(PSF_KINDS)] = "defocus"
    radius: _Pixels = 3.0
    length: _OptLength = None
    angle: _OptDegrees = None
    sigma: _OptPixels = None
    path: Annotated[str | None, PlainValidator(_validate_psf_path)] = None
    keyframes: tuple[Keyframe, ...] = ()
    smoothing_frames: Annotated[
        int, _integer(f"must be an integer from 0 to {MAX_SMOOTHING_FRAMES}", lambda n: 0 <= n <= MAX_SMOOTHING_FRAMES)
    ] = 8

    @model_validator(mode="after")
    def _check_kind(self) -> PsfSection:
        problems = _psf_rules(self.__dict__, frozenset())
        if problems:
            raise _RuleViolation(problems)
        return self


class DeconvolutionSection(BaseModel):
    """``[deconvolution]``: how the blur is undone.

    Attributes
    ----------
    method : {"wiener", "tikhonov", "tv"}
        Wiener filter, Tikhonov-regularised inverse filter, or total variation (sharper edges
        and less noise, about 15 times slower). Default ``"wiener"``.
    nsr : "auto" or float
        Noise-to-signal power ratio (> 0); for Tikhonov it is the regularisation weight
        lambda, for tv the weight of the total variation. ``"auto"`` estimates it from each
        frame. Default ``"auto"``.
    edgetaper : bool
        Taper the frame borders before deconvolving to avoid ringing. Default true.
    planes : {"luma", "all"}
        Restore only the brightness plane (fast, usually enough) or every plane.
    """

    model_config = _MODEL_CONFIG

    method: Annotated[Method, _choice(METHODS)] = "wiener"
    nsr: Annotated[Literal["auto"] | float, PlainValidator(_validate_nsr)] = "auto"
    edgetaper: Annotated[bool, PlainValidator(_validate_bool)] = True
    planes: Annotated[Planes, _choice(PLANES)] = "luma"


class OutputSection(BaseModel):
    """``[output]``: how the restored video is encoded.

    Attributes
    ----------
    codec : {"libx264", "libx265", "prores_ks", "ffv1"}
        FFmpeg encoder. Default ``"libx264"``.
    crf : int
        Constant rate factor 0..51 (lower is better quality); ignored by prores_ks and ffv1.
    preset : str
        x264/x265 speed preset, one of :data:`PRESETS`. Default ``"medium"``.
    pix_fmt : str
        ``""`` keeps the input's pixel format; otherwise an FFmpeg pixel format name.
    """

    model_config = _MODEL_CONFIG

    codec: Annotated[Codec, _choice(CODECS)] = "libx264"
    crf: Annotated[int, _integer("must be an integer from 0 to 51", lambda n: 0 <= n <= 51)] = 18
    preset: Annotated[Preset, _choice(PRESETS)] = "medium"
    pix_fmt: Annotated[str, PlainValidator(_validate_pix_fmt)] = ""


class PipelineSection(BaseModel):
    """``[pipeline]``: parallelism and how damaged input is handled.

    Attributes
    ----------
    workers : int
        Worker processes; 0 means one per CPU core, otherwise 1..256.
    frames_in_flight : int
        Frames decoded but not yet written; 0 means ``2 * workers + 2``, otherwise 1..1024.
    tolerate_decode_errors : bool
        false (default): a packet that fails to decode stops the run (exit 3, the message
        names the frame). true: such packets are skipped, the run completes and the number
        of decode errors and the frame numbers where they happened are reported.
    max_frame_pixels : int
        Largest frame (width x height, >= 1) that is opened; a larger declared size is
        refused before anything is decoded. Default 8192 x 8192 = 67108864.
    """

    model_config = _MODEL_CONFIG

    workers: Annotated[
        int,
        _integer(
            f"must be 0 (one per CPU core) or an integer from 1 to {MAX_WORKERS}",
            lambda n: 0 <= n <= MAX_WORKERS,
        ),
    ] = 0
    frames_in_flight: Annotated[
        int,
        _integer(
            f"must be 0 (automatic) or an integer from 1 to {MAX_FRAMES_IN_FLIGHT}",
            lambda n: 0 <= n <= MAX_FRAMES_IN_FLIGHT,
        ),
    ] = 0
    tolerate_decode_errors: Annotated[bool, PlainValidator(_validate_bool)] = False
    max_frame_pixels: Annotated[
        int, _integer("must be an integer >= 1 (width x height in pixels)", lambda n: n >= 1)
    ] = DEFAULT_MAX_FRAME_PIXELS


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

    model_config = _MODEL_CONFIG

    start_s: _OptSeconds = None
    end_s: _OptSeconds = None
    start_frame: _OptFrame = None
    end_frame: _OptFrame = None

    @model_validator(mode="after")
    def _check_range(self) -> TrimSection:
        problems = _trim_rules(self.__dict__, frozenset())
        if problems:
            raise _RuleViolation(problems)
        return self


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

    model_config = _MODEL_CONFIG

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
        """Return the number of worker processes to start.

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


_SECTIONS: dict[str, type[BaseModel]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Config.model_fields.items()
}
_SECTION_RULES: dict[str, Callable[[Mapping[str, Any], set[str]], list[str]]] = {
    "psf": _psf_rules,
    "trim": _trim_rules,
}


# --------------------------------------------------------------------------------------
# Turning pydantic's errors into one line per problem
# --------------------------------------------------------------------------------------


def _unknown_key(loc: tuple[Any, ...], value: object) -> str:
    name = str(loc[-1])
    suggestion: str | None = None
    if len(loc) == 1:
        what = "unknown section" if isinstance(value, Mapping) else "unknown key"
        owners = [f"{s}.{name}" for s, model in _SECTIONS.items() if name in model.model_fields]
        if owners:  # e.g. `radius = 4` written above any [section]
            suggestion = owners[0]
        else:
            suggestion = _closest(name, list(_SECTIONS))
    else:
        what = "unknown key"
        section = str(loc[0])
        model = _SECTIONS.get(section)
        if loc[:2] == ("psf", "keyframes") and len(loc) == 4:
            close = _closest(name, list(Keyframe.model_fields))
            suggestion = _dotted(loc[:3] + (close,)) if close is not None else None
        elif model is not None and len(loc) == 2:
            close = _closest(name, list(model.model_fields))
            if close is not None:
                suggestion = f"{section}.{close}"
            else:  # the right key in the wrong section?
                everywhere = [f"{s}.{k}" for s, m in _SECTIONS.items() for k in m.model_fields]
                by_key = {d.split(".", 1)[1]: d for d in everywhere}
                close = _closest(name, list(by_key))
                suggestion = by_key[close] if close is not None else None
    problem = f"{_dotted(loc)}: {what}"
    if suggestion is not None:
        problem += f" (did you mean '{suggestion}'?)"
    return problem


def _validation_problems(exc: ValidationError, data: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    bad_keys: dict[str, set[str]] = {}
    rules_ran: set[str] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if len(loc) >= 2 and isinstance(loc[0], str):
            bad_keys.setdefault(loc[0], set()).add(str(loc[1]))
        if kind == "config":
            problems.append(f"{_dotted(loc)}: {ctx['problem']}")
        elif kind == "value_error" and isinstance(ctx.get("error"), _RuleViolation):
            problems.extend(ctx["error"].problems)
            rules_ran.add(str(loc[0]) if loc else "")
        elif kind == "extra_forbidden":
            problems.append(_unknown_key(loc, err.get("input")))
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            problems.append(f"{_dotted(loc)}: must be a table (a [section]), got {_show(err.get('input'))}")
        else:  # not expected, but never lose a problem
            problems.append(f"{_dotted(loc)}: {err['msg']}")
    # A section with a bad key never reaches its cross-field validator; run its rules on
    # the keys that are fine so that e.g. a missing required key is reported as well.
    for section, rules in _SECTION_RULES.items():
        raw = data.get(section)
        if section in rules_ran or section not in bad_keys or not isinstance(raw, Mapping):
            continue
        model = _SECTIONS[section]
        invalid = bad_keys[section]
        values = {name: field.default for name, field in model.model_fields.items()}
        values.update({k: v for k, v in raw.items() if k in values and k not in invalid})
        problems.extend(rules(values, invalid))
    return problems


# --------------------------------------------------------------------------------------
# Reading files and overrides
# --------------------------------------------------------------------------------------


def _read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and parse a TOML config file; every failure is a ConfigError."""
    try:
        name = os.fspath(path)
    except TypeError:
        raise ConfigError([f"config file: expected a path, got {_show(path)}"]) from None
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    where = f"config file {_quote(name, None)}"
    try:
        info = os.stat(name)
    except FileNotFoundError:
        raise ConfigError([f"{where}: not found"]) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError([f"{where}: cannot be read ({reason})"]) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError([f"{where}: is a directory, not a file"])
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError([f"{where}: is not a regular file"])
    too_large = f"{where}: too large (the limit is {MAX_CONFIG_BYTES} bytes, 1 MiB)"
    if info.st_size > MAX_CONFIG_BYTES:
        raise ConfigError([too_large])
    try:
        with open(name, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{where}: cannot be read ({exc.strerror or exc})"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([too_large])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{where}: not UTF-8 text (bad byte at offset {exc.start})"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: TOML syntax error: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{where}: TOML syntax error: nested too deeply"]) from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise ConfigError([f"{where}: TOML syntax error: {exc}"]) from None
    # A PSF file named in a config file is relative to that file, not to the cwd.
    psf = data.get("psf")
    if isinstance(psf, dict) and isinstance(psf.get("path"), str) and psf["path"].strip():
        target = os.path.expanduser(psf["path"])
        if not os.path.isabs(target):
            folder = os.path.dirname(os.path.abspath(name))
            psf["path"] = os.path.join(folder, target)
    return data


def _split_override(text: object) -> tuple[tuple[str, ...] | None, object, str | None]:
    """Parse one override: ``(keys, value, None)`` or ``(keys or None, None, problem)``."""
    if not isinstance(text, str):
        return None, None, f"override {_show(text)}: expected a SECTION.KEY=VALUE string"
    shown = _quote(text)
    if "=" not in text:
        return None, None, f"override {shown}: expected SECTION.KEY=VALUE, e.g. psf.radius=4.5"
    raw_key, _, raw_value = text.partition("=")
    key = raw_key.strip()
    if not key:
        return None, None, f"override {shown}: empty key before '='; expected SECTION.KEY=VALUE"
    parts = tuple(part.strip() for part in key.split("."))
    if len(parts) != 2 or not all(_BARE_KEY.fullmatch(part) for part in parts):
        return None, None, (
            f"override {shown}: malformed key {_quote(key)}; expected SECTION.KEY such as psf.radius"
        )
    dotted = ".".join(parts)
    value = raw_value.strip()
    if "\n" in value or "\r" in value:
        return parts, None, f"{dotted}: the value of an override must be on one line"
    if value == "":
        return parts, "", None
    try:
        document = tomllib.loads("v = " + value)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
        if value[0] not in "\"'[{":
            return parts, value, None  # a bare word: psf.kind=motion
        reason = _TOML_POSITION.sub("", str(exc)) if isinstance(exc, ValueError) else "nested too deeply"
        return parts, None, f"{dotted}: cannot read {_quote(value)} as a TOML value ({reason})"
    if set(document) != {"v"}:
        return parts, None, f"{dotted}: cannot read {_quote(value)} as one TOML value"
    return parts, document["v"], None


def parse_override(text: str) -> tuple[tuple[str, ...], object]:
    """Parse one ``--set SECTION.KEY=VALUE`` override.

    The value is read as a TOML value (``4.5``, ``true``, ``"text"``, ``[1, 2]``); a value
    that is not valid TOML and does not start with a quote or bracket is taken as a plain
    string (``psf.kind=motion``, ``psf.path=kernels/k.png``). An empty value is the empty
    string. Whitespace around the key and the value is ignored.

    Parameters
    ----------
    text : str
        The override, e.g. ``"psf.radius=4.5"``.

    Returns
    -------
    tuple
        ``(keys, value)``, e.g. ``(("psf", "radius"), 4.5)``. The value is not validated
        here; :func:`load_config` does that.

    Raises
    ------
    ConfigError
        With one problem when there is no ``=``, the key is empty or not ``SECTION.KEY``,
        or a quoted string / array / inline table is malformed.

    Examples
    --------
    >>> parse_override("psf.radius=4.5")
    (('psf', 'radius'), 4.5)
    >>> parse_override("psf.kind=motion")
    (('psf', 'kind'), 'motion')
    """
    keys, value, problem = _split_override(text)
    if problem is not None or keys is None:
        raise ConfigError([problem or f"override {_show(text)}: malformed"])
    return keys, value


def _dedupe(problems: list[str]) -> list[str]:
    return list(dict.fromkeys(problems))


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: Sequence[str] = ()
) -> Config:
    """Build the effective configuration: defaults < config file < overrides.

    Parameters
    ----------
    path : str or os.PathLike or None
        A TOML config file (UTF-8, at most 1 MiB), or None for the defaults alone. A
        relative ``psf.path`` in it is taken relative to the file's folder.
    overrides : sequence of str
        ``SECTION.KEY=VALUE`` strings (see :func:`parse_override`), applied in order, so a
        later one wins over an earlier one and over the file.

    Returns
    -------
    Config
        The validated, immutable configuration.

    Raises
    ------
    ConfigError
        Listing every problem found in the file and the overrides, one line each,
        prefixed by its dotted key (or by the file for unreadable files and syntax
        errors). When the file itself cannot be read or parsed, only that and the
        overrides' syntax are reported, since the values cannot be checked.
    """
    problems: list[str] = []
    data: dict[str, Any] = {}
    file_ok = True
    if path is not None:
        try:
            data = _read_config_file(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            file_ok = False

    if isinstance(overrides, (str, bytes)):  # a lone string is one override, not characters
        overrides = [overrides]  # type: ignore[list-item]
    failed_keys: set[str] = set()
    for text in overrides:
        keys, value, problem = _split_override(text)
        if problem is not None:
            problems.append(problem)
            if keys is not None:
                failed_keys.add(".".join(keys))
            continue
        assert keys is not None
        section, key = keys
        table = data.setdefault(section, {})
        if isinstance(table, dict):
            table[key] = value
        # else the section is not a table: that is reported below, the override cannot apply

    config: Config | None = None
    if file_ok:
        try:
            config = Config.model_validate(data)
        except ValidationError as exc:
            for problem in _validation_problems(exc, data):
                # an override that could not be parsed was not applied: don't also call it missing
                key, _, text = problem.partition(": ")
                if not (key in failed_keys and text.startswith("required when")):
                    problems.append(problem)
    if problems or config is None:
        raise ConfigError(_dedupe(problems) or ["config: invalid"])
    return config


def config_to_toml(config: Config) -> str:
    """Write the effective configuration as TOML.

    Keys whose value is None (not set), and sections left empty by that, are omitted;
    every other key is written, so the output documents exactly what a run used and
    :func:`load_config` reads it back into an equal :class:`Config`.

    Parameters
    ----------
    config : Config
        The configuration to write.

    Returns
    -------
    str
        A TOML document.
    """
    dumped = config.model_dump(mode="python", exclude_none=True)
    data = {section: values for section, values in dumped.items() if values}  # no empty [trim]
    header = "# videodeblur effective configuration\n\n"
    return header + tomli_w.dumps(data)
