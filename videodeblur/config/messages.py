"""One-line messages about config values, and the field validators that raise them.

Every bad value becomes a ``PydanticCustomError`` of type ``"config"`` whose text is the whole
problem ("must be a number > 0 (pixels), got -1"); :mod:`videodeblur.config.loading` prefixes
it with the dotted key.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated

from pydantic import PlainValidator
from pydantic_core import PydanticCustomError

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PIX_FMT = re.compile(r"[a-z0-9_]{1,32}")
_MAX_SHOWN = 60


def quote(text: str, limit: int | None = _MAX_SHOWN) -> str:
    """Double-quote ``text`` TOML-style, escaping anything that is not printable."""
    inner = json.dumps(text, ensure_ascii=False)[1:-1]
    inner = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in inner)
    if limit is not None and len(inner) > limit:
        inner = inner[: _MAX_SHOWN - 3] + "..."
    return f'"{inner}"'


def show(value: object) -> str:
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
        return quote(value)
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):  # TOML dates and times
        return str(isoformat())
    return f"a {type(value).__name__}"


def key_part(part: object) -> str:
    """One part of a dotted key, quoted when it is not a bare TOML key."""
    if isinstance(part, str):
        return part if BARE_KEY.fullmatch(part) else quote(part)
    return str(part)


def dotted(loc: Sequence[object]) -> str:
    """A location as a dotted key, e.g. ``psf.keyframes.0.radius``."""
    return ".".join(key_part(p) for p in loc) or "config"


def closest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to ``name`` (case-insensitive), or None if none is close."""
    lowered = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def reject(requirement: str, value: object, hint: str = "") -> PydanticCustomError:
    """The error for a bad value: ``"<requirement>, got <value><hint>"``."""
    problem = f"{requirement}, got {show(value)}{hint}"
    return PydanticCustomError("config", "{problem}", {"problem": problem})


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def real_value(value: object, requirement: str, ok: Callable[[float], bool]) -> float:
    """A finite float within ``ok`` (an int is accepted and converted; bool and str are not)."""
    if is_number(value):
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:
            raise reject(requirement, value) from None
        if math.isfinite(number) and ok(number):
            return number
    raise reject(requirement, value)


def real(requirement: str, ok: Callable[[float], bool], *, optional: bool) -> PlainValidator:
    """Validator of a finite float (see :func:`real_value`); None allowed when ``optional``."""

    def validate(value: object) -> float | None:
        if value is None and optional:
            return None
        return real_value(value, requirement, ok)

    return PlainValidator(validate)


def integer(requirement: str, ok: Callable[[int], bool], *, optional: bool = False) -> PlainValidator:
    """Validator of an int (not a bool, not a float even if integral)."""

    def validate(value: object) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and ok(value):
            return int(value)
        raise reject(requirement, value)

    return PlainValidator(validate)


def choice(options: Callable[[], Sequence[str]] | Sequence[str]) -> PlainValidator:
    """Validator of one of ``options`` (a sequence, or a callable read at validation time, so
    that entries registered later are accepted), with a "did you mean" for near misses."""

    def validate(value: object) -> str:
        allowed = options() if callable(options) else options
        if isinstance(value, str) and value in allowed:
            return value
        hint = ""
        if isinstance(value, str):
            close = closest(value, allowed)
            if close is not None:
                hint = f' (did you mean "{close}"?)'
        raise reject("must be one of " + ", ".join(f'"{o}"' for o in allowed), value, hint)

    return PlainValidator(validate)


def validate_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise reject("must be true or false", value)


NSR_REQUIREMENT = 'must be "auto" or a positive number'


def validate_nsr(value: object) -> str | float:
    """``"auto"`` or a positive finite number (the same rule as the Python API's)."""
    if value == "auto" and isinstance(value, str):
        return "auto"
    hint = ' (did you mean "auto"?)' if isinstance(value, str) and value.strip().lower() == "auto" else ""
    if not is_number(value):
        raise reject(NSR_REQUIREMENT, value, hint)
    return real_value(value, NSR_REQUIREMENT, lambda x: x > 0)


def validate_scheduler(value: object) -> str:
    """A Dask scheduler address, ``tcp://host:port`` (or ``tls://``, ``ws://`` ...), or empty."""
    if not isinstance(value, str):
        raise reject('must be a scheduler address such as "tcp://127.0.0.1:8786"', value)
    text = value.strip()
    scheme, separator, rest = text.partition("://")
    host, colon, port = rest.rpartition(":")
    if text and not (separator and scheme.isalpha() and host and colon and port.isdigit()):
        raise reject('must be a scheduler address such as "tcp://127.0.0.1:8786"', value)
    return text


def validate_pix_fmt(value: object) -> str:
    if isinstance(value, str) and (value == "" or _PIX_FMT.fullmatch(value)):
        return value
    raise reject('must be "" (same as the input) or an FFmpeg pixel format name such as "yuv420p"', value)


def path_value(value: object, suffixes: Sequence[str], requirement: str) -> str:
    """A file path with one of ``suffixes``; ``~`` expanded and made absolute (relative to the cwd)."""
    if isinstance(value, str) and value.strip() and "\0" not in value:
        if value.lower().endswith(tuple(suffixes)):
            return os.path.abspath(os.path.expanduser(value))
    raise reject(requirement, value)


#: An optional time in seconds (>= 0): ``trim.start_s``, a keyframe's ``time_s``.
OptionalSeconds = Annotated[float | None, real("must be a number of seconds >= 0", lambda x: x >= 0, optional=True)]
#: An optional frame number (>= 0): ``trim.start_frame``, a keyframe's ``frame``.
OptionalFrame = Annotated[
    int | None, integer("must be a frame number (an integer >= 0)", lambda n: n >= 0, optional=True)
]


class RuleViolation(ValueError):
    """Cross-field problems of one section, already formatted with their dotted keys."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))
