"""The one table of what exists: PSF kinds, restoration methods and output codecs.

Everything else derives from these entries: the config's choices, required keys, bounds and
keyframe parameters (:mod:`videodeblur.config`), the kernels a schedule builds
(:mod:`videodeblur.pipeline.kernels`), which kinds ``auto`` estimates, the restoration method a
deconvolver runs (:mod:`videodeblur.restoration`), the encoder options and constraints of the
writer (:mod:`videodeblur.io.writer`), the CLI's help and the tuning page's controls.

Adding a kind, a method or a codec is one entry here plus its implementation; see the README's
developer section. :func:`register_psf_kind`, :func:`register_method` and
:func:`register_codec` add entries at run time (a plug-in, a test).

Units: lengths, radii and sigmas in pixels of the input frame, angles in degrees
counter-clockwise from +x as the picture is stored.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from videodeblur.core import psf as psf_models
from videodeblur.errors import InvalidParameterError

__all__ = [
    "Codec", "Method", "Parameter", "PsfKind", "CODECS", "METHODS", "PSF_KINDS",
    "codec", "estimated_kinds", "estimator_families", "method", "psf_kind", "psf_kind_names",
    "register_codec", "register_method", "register_psf_kind", "resolve",
]

UNIT_NAMES = {"px": "pixels", "deg": "degrees", "": ""}


@dataclass(frozen=True)
class Parameter:
    """One parameter of a PSF kind: its config key under ``[psf]`` (and in keyframes).

    Attributes
    ----------
    name : str
        The key, e.g. ``"radius"``; kernel specs, keyframes and CSV columns use the same name.
    unit : {"px", "deg", ""}
        Unit of the value.
    description : str
        One line for the docs, ``--help`` and the tuning page.
    minimum, maximum : float or None
        Bounds of a valid value (None: unbounded); ``minimum`` is exclusive when
        ``exclusive_minimum``.
    step : float
        Estimated and interpolated values are rounded to it (so a steady blur reuses one
        kernel and its cached filters); the tuning page's slider step.
    default : float or None
        The value when the key is not given; None makes it required for this kind.
    typical : tuple of float
        ``(low, high)`` a slider covers.
    period : float or None
        For angles: values are equal modulo this (a motion streak at 10 and 190 degrees).
    is_path : bool
        A file path (a string), not a number.
    suffixes : tuple of str
        For paths: the accepted file types, compared case-insensitively.
    """

    name: str
    unit: str
    description: str
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    step: float = 0.05
    default: float | None = None
    typical: tuple[float, float] = (0.0, 1.0)
    period: float | None = None
    is_path: bool = False
    suffixes: tuple[str, ...] = ()

    def accepts(self, value: float) -> bool:
        """Whether a finite number is within the bounds."""
        if self.minimum is not None and (value <= self.minimum if self.exclusive_minimum else value < self.minimum):
            return False
        return self.maximum is None or value <= self.maximum

    def requirement(self, value: object = None) -> str:
        """What a valid value is, for one-line messages: ``"a number > 0 (pixels)"``, or, for a
        number that is too large, ``"at most 512 (pixels)"``."""
        if self.is_path:
            kinds = ", ".join(self.suffixes[:-1]) + f" or {self.suffixes[-1]}"
            return f"the path of a {kinds} file"
        unit = UNIT_NAMES.get(self.unit, self.unit)
        too_large = (isinstance(value, (int, float)) and not isinstance(value, bool) and self.maximum is not None
                     and value > self.maximum)
        if too_large:
            text = f"at most {self.maximum:g}"
        elif self.minimum is not None:
            text = f"a number {'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
        else:
            text = "a finite number"
        return f"{text} ({unit})" if unit else text

    def quantise(self, value: float) -> float:
        """``value`` rounded to :attr:`step`, wrapped into ``[0, period)``, kept in bounds."""
        rounded = round(round(value / self.step) * self.step, 6)
        if self.period is not None:
            rounded = round(rounded % self.period, 6) % self.period
        if self.minimum is not None and not self.accepts(rounded):
            rounded = self.minimum + (self.step if self.exclusive_minimum else 0.0)
        if self.maximum is not None:
            rounded = min(rounded, self.maximum)
        return rounded


def _identity_coordinates(values: Mapping[str, float]) -> tuple[float, ...]:
    return tuple(values.values())


@dataclass(frozen=True)
class PsfKind:
    """A blur model: its parameters, how to build its kernel, how it is found.

    Attributes
    ----------
    name : str
        The value of ``psf.kind``.
    description : str
        One line for the docs and ``--help``.
    parameters : tuple of Parameter
    build : callable or str
        ``build(**values) -> kernel`` (float32, sums to 1), or ``"module:function"`` imported on
        first use.
    keyframeable : bool
        ``[[psf.keyframes]]`` may interpolate its numeric parameters.
    estimator : str or None
        The blind-estimation family that finds it (:mod:`videodeblur.core.estimation`); gives
        the kind ``"auto-<estimator>"`` and makes ``"auto"`` search it.
    to_coordinates, from_coordinates : callable
        The coordinates estimates are smoothed over time in, and back: the identity for most,
        ``(L cos 2a, L sin 2a)`` for motion, whose angle is defined modulo 180 degrees.
    """

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    build: Callable[..., Any] | str
    keyframeable: bool = True
    estimator: str | None = None
    to_coordinates: Callable[[Mapping[str, float]], tuple[float, ...]] = _identity_coordinates
    from_coordinates: Callable[[tuple[float, ...]], dict[str, float]] | None = None

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise InvalidParameterError(f'psf.kind "{self.name}" has no parameter {name!r}')

    @property
    def numeric_parameters(self) -> tuple[Parameter, ...]:
        """The parameters that are numbers (keyframes interpolate these)."""
        return tuple(p for p in self.parameters if not p.is_path)

    def kernel(self, values: Mapping[str, Any]):
        """The luma-resolution kernel for these parameter values."""
        return resolve(self.build)(**{p.name: values[p.name] for p in self.parameters})

    def rescaled(self, values: Mapping[str, Any], scale: float) -> dict[str, Any] | None:
        """The values of the same blur ``scale`` times as large (every parameter in pixels
        times ``scale``), or None where the kind has no such parameters (a file) or a scaled
        value leaves its bounds."""
        sizes = [p for p in self.parameters if p.unit == "px"]
        if not sizes or any(p.is_path for p in self.parameters):
            return None
        scaled = {**values, **{p.name: float(values[p.name]) * scale for p in sizes}}
        return scaled if all(p.accepts(scaled[p.name]) for p in sizes) else None

    def coordinates_to_values(self, coordinates: tuple[float, ...]) -> dict[str, float]:
        """Inverse of :attr:`to_coordinates`."""
        if self.from_coordinates is not None:
            return self.from_coordinates(coordinates)
        return {p.name: float(c) for p, c in zip(self.numeric_parameters, coordinates)}

    def describe(self, values: Mapping[str, Any]) -> str:
        """e.g. ``"defocus radius 3.2 px"``, ``"motion length 12 px, angle 30 deg"``, ``"file k.png"``."""
        import os

        parts = []
        for p in self.parameters:
            value = values.get(p.name)
            if p.is_path:
                parts.append(os.path.basename(str(value)))
            else:
                parts.append(f"{p.name} {value:g}{' ' + p.unit if p.unit else ''}")
        return f"{self.name} " + ", ".join(parts)


@dataclass(frozen=True)
class Method:
    """A restoration method (``deconvolution.method``).

    Attributes
    ----------
    name : str
    description : str
    implementation : type or str
        A class implementing :class:`videodeblur.restoration.methods.RestorationMethod`, or
        ``"module:Class"`` imported on first use.
    regularisation : str
        What ``deconvolution.nsr`` means for it.
    linear : bool
        The result is a linear filter of the frame (strength and scales fold into it).
    """

    name: str
    description: str
    implementation: type | str
    regularisation: str
    linear: bool = True


@dataclass(frozen=True)
class Codec:
    """An output video encoder (``output.codec``).

    Attributes
    ----------
    name : str
        FFmpeg's encoder name.
    description : str
    containers : tuple of str
        Output file extensions it is meant for (the first is suggested in messages).
    crf : tuple of int or None
        ``(lowest, highest)`` constant rate factor; None: the encoder has none (ignored).
    presets : tuple of str
        Speed presets, fastest first; empty: none (``output.preset`` ignored).
    even_chroma_size : bool
        Frame sizes must be divisible by the chroma subsampling.
    lossless : bool
        Every plane is reproduced exactly.
    options : callable or None
        ``options(info) -> dict`` of extra encoder options for a stream (interlacing, logging).
    profiles : tuple of (str, str)
        ``(profile, pixel format)`` pairs for encoders whose profile fixes the format
        (``output.profile``); the first whose format the source needs is the default.
    default_preset : str or None
        The preset used when ``output.preset`` is left at its default ("medium") and the
        codec has no such preset.
    environment : dict
        Environment variables the encoder library reads (set unless already set).
    """

    name: str
    description: str
    containers: tuple[str, ...]
    crf: tuple[int, int] | None = None
    presets: tuple[str, ...] = ()
    even_chroma_size: bool = False
    lossless: bool = False
    options: Callable[[Any], dict[str, str]] | None = None
    profiles: tuple[tuple[str, str], ...] = ()
    default_preset: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)

    def profile_pix_fmt(self, profile: str) -> str:
        """The pixel format a profile encodes."""
        return dict(self.profiles)[profile]


def resolve(target):
    """A callable or class itself, or the one named ``"module:attribute"`` (imported now)."""
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


# --------------------------------------------------------------------------------------
# PSF kinds
# --------------------------------------------------------------------------------------

_EXTENT = psf_models.MAX_KERNEL_EXTENT_PX


def _motion_to_vector(values: Mapping[str, float]) -> tuple[float, float]:
    import math

    doubled = math.radians(2.0 * values["angle"])
    return values["length"] * math.cos(doubled), values["length"] * math.sin(doubled)


def _motion_from_vector(coordinates: tuple[float, ...]) -> dict[str, float]:
    import math

    x, y = coordinates
    return {"length": math.hypot(x, y), "angle": (math.degrees(math.atan2(y, x)) / 2.0) % 180.0}


PSF_KINDS: dict[str, PsfKind] = {}


def register_psf_kind(kind: PsfKind) -> PsfKind:
    """Add (or replace) a PSF kind; returns it."""
    PSF_KINDS[kind.name] = kind
    return kind


register_psf_kind(PsfKind(
    "defocus", "out of focus: a disk (pillbox) of the given radius",
    (Parameter("radius", "px", "defocus disk radius (exact pixel/circle overlap, sub-pixel allowed)",
               minimum=0.0, exclusive_minimum=True, maximum=_EXTENT, step=0.05, default=3.0, typical=(0.5, 20.0)),),
    build=psf_models.disk, estimator="defocus",
))
register_psf_kind(PsfKind(
    "motion", "linear motion (camera shake, a pan): a straight streak",
    (Parameter("length", "px", "motion streak length", minimum=1.0, maximum=_EXTENT, step=0.1,
               typical=(1.0, 64.0)),
     Parameter("angle", "deg", "motion direction, counter-clockwise from +x", step=0.5, typical=(0.0, 180.0),
               period=180.0)),
    build=psf_models.motion, estimator="motion",
    to_coordinates=_motion_to_vector, from_coordinates=_motion_from_vector,
))
register_psf_kind(PsfKind(
    "gaussian", "a soft blur (lens aberrations, scaling): a Gaussian of the given sigma",
    (Parameter("sigma", "px", "Gaussian standard deviation", minimum=0.0, exclusive_minimum=True,
               maximum=_EXTENT / 4.0, step=0.05, typical=(0.3, 10.0)),),
    build=psf_models.gaussian, estimator="gaussian",
))
register_psf_kind(PsfKind(
    "file", "a measured PSF image or array",
    (Parameter("path", "", "PSF image or NumPy array", is_path=True,
               suffixes=(".png", ".tif", ".tiff", ".bmp", ".pgm", ".npy")),),
    build="videodeblur.psf:from_file", keyframeable=False,
))

#: ``psf.kind = "auto"`` searches every family; ``"auto-<family>"`` that one only.
AUTO = "auto"


def estimator_families() -> tuple[str, ...]:
    """The estimation families of the registered kinds, in the estimator's search order."""
    from videodeblur.core.estimation import FAMILIES

    wanted = {k.estimator for k in PSF_KINDS.values() if k.estimator}
    return tuple(family for family in FAMILIES if family in wanted)


def estimated_kinds() -> dict[str, str]:
    """``psf.kind`` values that estimate the blur, each with what it searches (``"auto"``: all)."""
    return {AUTO: AUTO, **{f"auto-{family}": family for family in estimator_families()}}


def psf_kind_names() -> tuple[str, ...]:
    """Every valid ``psf.kind``: the models, then the estimated kinds."""
    return (*PSF_KINDS, *estimated_kinds())


def psf_kind(name: str) -> PsfKind:
    """The registered kind called ``name``."""
    try:
        return PSF_KINDS[name]
    except KeyError:
        raise InvalidParameterError(f"unknown PSF kind {name!r} (known: {', '.join(PSF_KINDS)})") from None


def kind_for_family(family: str) -> PsfKind:
    """The kind an estimation family finds."""
    for kind in PSF_KINDS.values():
        if kind.estimator == family:
            return kind
    raise InvalidParameterError(f"no PSF kind is found by the estimation family {family!r}")


def all_parameters() -> dict[str, Parameter]:
    """Every parameter of every kind, by name (a name means the same thing in every kind)."""
    found: dict[str, Parameter] = {}
    for kind in PSF_KINDS.values():
        for parameter in kind.parameters:
            found.setdefault(parameter.name, parameter)
    return found


# --------------------------------------------------------------------------------------
# Restoration methods
# --------------------------------------------------------------------------------------

METHODS: dict[str, Method] = {}


def register_method(entry: Method) -> Method:
    """Add (or replace) a restoration method; returns it."""
    METHODS[entry.name] = entry
    return entry


def method(name: str) -> Method:
    """The registered method called ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise InvalidParameterError(f"method must be one of {', '.join(METHODS)}, got {name!r}") from None


register_method(Method(
    "wiener", "Wiener filter with a power-law image spectrum (the default)",
    "videodeblur.restoration.methods:Wiener", "noise-to-signal power ratio (constant over frequency)",
))
register_method(Method(
    "tikhonov", "Tikhonov-regularised inverse filter with a gradient regulariser",
    "videodeblur.restoration.methods:Tikhonov", "lambda, the weight of the gradient regulariser",
))
register_method(Method(
    "tv", "total variation (sharper edges, cleaner flat areas, about 15 times slower)",
    "videodeblur.restoration.methods:TotalVariation", "the weight of the total variation", linear=False,
))


# --------------------------------------------------------------------------------------
# Output codecs
# --------------------------------------------------------------------------------------

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


def _x264_options(info) -> dict[str, str]:
    options = {}
    if getattr(info, "interlaced", False):
        # Keep interlaced coding: progressive coding of interleaved fields is lossier and drops
        # the decoder's interlaced flag. PyAV 18 cannot flag frames as interlaced, so x264's
        # field order comes from its parameters (default top first).
        options["flags"] = "+ildct+ilme"
        if getattr(info, "field_order", None) in (3, 5):
            options["x264-params"] = "bff=1"
    return options


def _x265_options(info) -> dict[str, str]:
    # x265 logs its settings to stderr itself, bypassing FFmpeg's log level.
    return {"x265-params": "log-level=error"}


CODECS: dict[str, Codec] = {}


def register_codec(entry: Codec) -> Codec:
    """Add (or replace) an output codec; returns it."""
    CODECS[entry.name] = entry
    return entry


def codec(name: str) -> Codec | None:
    """The registered codec called ``name``, or None (the writer also takes other FFmpeg encoders)."""
    return CODECS.get(name)


register_codec(Codec("libx264", "H.264 (x264)", (".mp4", ".mov", ".mkv"), crf=(0, 51), presets=X264_PRESETS,
                     even_chroma_size=True, options=_x264_options))
register_codec(Codec("libx265", "H.265/HEVC (x265)", (".mp4", ".mov", ".mkv"), crf=(0, 51), presets=X264_PRESETS,
                     even_chroma_size=True, options=_x265_options))
register_codec(Codec("prores_ks", "Apple ProRes (for editing)", (".mov",), even_chroma_size=True))
register_codec(Codec("ffv1", "FFV1 (lossless)", (".mkv",), lossless=True))
register_codec(Codec(
    "dnxhd", "Avid DNxHR (for editing in Avid, Resolve, Premiere)", (".mov", ".mxf"), even_chroma_size=True,
    # In the order a profile is chosen by the source's format: HQ for 8-bit 4:2:x, HQX for
    # deeper, 444 for 4:4:4; SQ and LB (smaller files) only when asked for.
    profiles=(("dnxhr_hq", "yuv422p"), ("dnxhr_hqx", "yuv422p10le"), ("dnxhr_444", "yuv444p10le"),
              ("dnxhr_sq", "yuv422p"), ("dnxhr_lb", "yuv422p")),
))
register_codec(Codec(
    "libsvtav1", "AV1 (SVT-AV1): small files for delivery", (".mkv", ".mp4", ".webm"), crf=(0, 63),
    presets=tuple(str(n) for n in range(13, -1, -1)), default_preset="8", even_chroma_size=True,
    environment={"SVT_LOG": "1"},  # errors only: SVT-AV1 logs its settings and warnings itself
))
register_codec(Codec(
    "libvpx-vp9", "VP9 (libvpx): for the web", (".webm", ".mkv", ".mp4"), crf=(0, 63), even_chroma_size=True,
    # Constant quality (b = 0 with a crf) and row threading, at libvpx's good-quality speed 4.
    options=lambda info: {"b": "0", "row-mt": "1", "cpu-used": "4"},
))


def profiles() -> tuple[str, ...]:
    """Every profile some registered codec has."""
    return tuple(name for entry in CODECS.values() for name, _ in entry.profiles)


def max_crf() -> int:
    """The largest constant rate factor any registered codec takes."""
    return max((entry.crf[1] for entry in CODECS.values() if entry.crf), default=51)

#: What happens to the input's audio streams (``output.audio``).
AUDIO_MODES: dict[str, str | None] = {
    "copy": None,       # copied packet for packet (the default)
    "none": None,       # left out
    "aac": "aac",       # re-encoded (e.g. for a container that cannot hold the source's codec)
    "opus": "libopus",
}


def presets() -> tuple[str, ...]:
    """Every preset name some registered codec has, in first-seen order."""
    seen: dict[str, None] = {}
    for entry in CODECS.values():
        seen.update(dict.fromkeys(entry.presets))
    return tuple(seen)


#: How ``preview`` composes a frame before and after restoration.
PREVIEW_MODES: dict[str, str] = {
    "split": "left half original, right half restored (default)",
    "side": "original and restored next to each other",
    "diff": "the difference, amplified, around mid grey",
    "restored": "the restored frame alone",
}


@dataclass(frozen=True)
class _Snapshot:
    """The registry's tables at one moment (see :func:`snapshot`)."""

    tables: tuple = field(default_factory=tuple)


def snapshot() -> _Snapshot:
    """The current tables, to put back with :func:`restore` (a test that registers entries)."""
    return _Snapshot((dict(PSF_KINDS), dict(METHODS), dict(CODECS)))


def restore(state: _Snapshot) -> None:
    """Put back the tables of a :func:`snapshot`."""
    for table, saved in zip((PSF_KINDS, METHODS, CODECS), state.tables):
        table.clear()
        table.update(saved)
