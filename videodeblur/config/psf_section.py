"""The ``[psf]`` section and its keyframes, whose keys include the registry's parameters.

Every registered kind's parameters (:mod:`videodeblur.registry`) are keys of ``[psf]`` and of
each ``[[psf.keyframes]]`` entry, with the bounds, units and defaults the registry gives, read
when a config is validated (so a kind registered at run time is accepted).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from videodeblur import registry
from videodeblur.config import messages as m
from videodeblur.config.messages import OptionalFrame, OptionalSeconds, RuleViolation

#: Largest ``psf.smoothing_frames``.
MAX_SMOOTHING_FRAMES = 100
#: Largest ``psf.estimate_every``: a window of ``2 * MAX_SMOOTHING_FRAMES + 1`` frames then
#: holds three estimates, as many as must agree on a kernel.
MAX_ESTIMATE_EVERY = (2 * MAX_SMOOTHING_FRAMES + 1) // 3

#: The [psf] section and keyframes also hold the registry's parameters (validated here).
_FROZEN_WITH_PARAMETERS = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)


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

    frame: OptionalFrame = None
    time_s: OptionalSeconds = None

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
        as at most ``(2 * smoothing_frames + 1) // 3``, so that every frame's window holds the
        three estimates that must agree on a kernel (with ``smoothing_frames`` below 3, every
        frame is estimated).
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
