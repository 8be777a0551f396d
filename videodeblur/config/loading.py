"""Reading config files and ``--set`` overrides, reporting every problem at once, writing TOML."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

import tomli_w
from pydantic import ValidationError

from videodeblur import registry
from videodeblur.config import messages as m
from videodeblur.config.messages import RuleViolation
from videodeblur.config.models import SECTION_RULES, SECTIONS, Config, section_keys
from videodeblur.errors import ConfigError

#: A config file larger than this (1 MiB) is refused unread.
MAX_CONFIG_BYTES = 1 << 20

_TOML_POSITION = re.compile(r"\s*\((?:at line \d+, column \d+|at end of document)\)\s*$")


# --------------------------------------------------------------------------------------
# Turning pydantic's errors into one line per problem
# --------------------------------------------------------------------------------------


def _keyframe_keys() -> list[str]:
    return ["frame", "time_s", *(p.name for k in registry.PSF_KINDS.values() if k.keyframeable
                                 for p in k.numeric_parameters)]


def _unknown_key(loc: tuple[Any, ...], value: object) -> str:
    name = str(loc[-1])
    suggestion: str | None = None
    if len(loc) == 1:
        what = "unknown section" if isinstance(value, Mapping) else "unknown key"
        owners = [f"{s}.{name}" for s in SECTIONS if name in section_keys(s)]
        # e.g. `radius = 4` written above any [section]
        suggestion = owners[0] if owners else m.closest(name, list(SECTIONS))
    else:
        what = "unknown key"
        section = str(loc[0])
        if loc[:2] == ("psf", "keyframes") and len(loc) == 4:
            close = m.closest(name, _keyframe_keys())
            suggestion = m.dotted(loc[:3] + (close,)) if close is not None else None
        elif section in SECTIONS and len(loc) == 2:
            close = m.closest(name, section_keys(section))
            if close is not None:
                suggestion = f"{section}.{close}"
            else:  # the right key in the wrong section?
                by_key = {k: f"{s}.{k}" for s in SECTIONS for k in section_keys(s)}
                close = m.closest(name, list(by_key))
                suggestion = by_key[close] if close is not None else None
    problem = f"{m.dotted(loc)}: {what}"
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
            problems.append(f"{m.dotted(loc)}: {ctx['problem']}")
        elif kind == "value_error" and isinstance(ctx.get("error"), RuleViolation):
            problems.extend(ctx["error"].problems)
            rules_ran.add(str(loc[0]) if loc else "")
        elif kind == "extra_forbidden":
            problems.append(_unknown_key(loc, err.get("input")))
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            problems.append(f"{m.dotted(loc)}: must be a table (a [section]), got {m.show(err.get('input'))}")
        else:  # not expected, but never lose a problem
            problems.append(f"{m.dotted(loc)}: {err['msg']}")
    # A section with a bad key never reaches its cross-field validator; run its rules on
    # the keys that are fine so that e.g. a conflict is reported as well.
    for section, rules in SECTION_RULES.items():
        raw = data.get(section)
        if section in rules_ran or section not in bad_keys or not isinstance(raw, Mapping):
            continue
        model = SECTIONS[section]
        invalid = bad_keys[section]
        values = {name: field.default for name, field in model.model_fields.items()}
        values.update({k: v for k, v in raw.items() if k in values and k not in invalid})
        problems.extend(rules(values, invalid))
    return problems


# --------------------------------------------------------------------------------------
# Reading files and overrides
# --------------------------------------------------------------------------------------


def _shipped_files() -> dict:
    """The shipped config files (package data), by name, sorted."""
    from importlib import resources

    folder = resources.files("videodeblur").joinpath("configs")
    return {entry.name[: -len(".toml")]: entry for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")}


def shipped_configs() -> dict[str, str]:
    """The starting configs shipped with videodeblur, by name, each with what it is for.

    Their names (``"defocus"``, ``"auto"``, ...) are accepted wherever a config file is.
    """
    found = {}
    for name, entry in _shipped_files().items():
        lines = []
        for line in entry.read_text(encoding="utf-8").splitlines():  # the first comment paragraph
            text = line.lstrip("#").strip()
            if not line.startswith("#") or not text:
                break
            lines.append(text)
        found[name] = " ".join(lines).removeprefix("videodeblur — ")
    return found


def shipped_config_text(name: str) -> str:
    """The text of the shipped config called ``name`` (see :func:`shipped_configs`)."""
    files = _shipped_files()
    if name not in files:
        raise ConfigError([f"no shipped config called {m.quote(name, None)} (shipped: {', '.join(files)})"])
    return files[name].read_text(encoding="utf-8")


def resolve_config_path(path: str | os.PathLike[str]):
    """``path`` itself, or, for the bare name of a shipped config that is not a file here, that config."""
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if isinstance(text, str) and text and os.sep not in text and "." not in text and not os.path.exists(text):
        return _shipped_files().get(text, path)
    return path


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and parse a TOML config file; every failure is a ConfigError."""
    path = resolve_config_path(path)
    try:
        name = os.fspath(path)
    except TypeError:
        raise ConfigError([f"config file: expected a path, got {m.show(path)}"]) from None
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    where = f"config file {m.quote(name, None)}"
    try:
        info = os.stat(name)
    except FileNotFoundError:
        hint = (f" (or the name of a shipped config: {', '.join(_shipped_files())})"
                if os.sep not in name and not name.endswith(".toml") else "")
        raise ConfigError([f"{where}: not found{hint}"]) from None
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
    if isinstance(psf, dict):
        for parameter in registry.all_parameters().values():
            value = psf.get(parameter.name)
            if parameter.is_path and isinstance(value, str) and value.strip():
                target = os.path.expanduser(value)
                if not os.path.isabs(target):
                    psf[parameter.name] = os.path.join(os.path.dirname(os.path.abspath(name)), target)
    return data


def _split_override(text: object) -> tuple[tuple[str, ...] | None, object, str | None]:
    """Parse one override: ``(keys, value, None)`` or ``(keys or None, None, problem)``."""
    if not isinstance(text, str):
        return None, None, f"override {m.show(text)}: expected a SECTION.KEY=VALUE string"
    shown = m.quote(text)
    if "=" not in text:
        return None, None, f"override {shown}: expected SECTION.KEY=VALUE, e.g. psf.radius=4.5"
    raw_key, _, raw_value = text.partition("=")
    key = raw_key.strip()
    if not key:
        return None, None, f"override {shown}: empty key before '='; expected SECTION.KEY=VALUE"
    parts = tuple(part.strip() for part in key.split("."))
    if len(parts) != 2 or not all(m.BARE_KEY.fullmatch(part) for part in parts):
        return None, None, f"override {shown}: malformed key {m.quote(key)}; expected SECTION.KEY such as psf.radius"
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
        return parts, None, f"{dotted}: cannot read {m.quote(value)} as a TOML value ({reason})"
    if set(document) != {"v"}:
        return parts, None, f"{dotted}: cannot read {m.quote(value)} as one TOML value"
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
        raise ConfigError([problem or f"override {m.show(text)}: malformed"])
    return keys, value


def load_config(path: str | os.PathLike[str] | None = None, overrides: Sequence[str] = ()) -> Config:
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
            data = read_config_file(path)
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
        raise ConfigError(list(dict.fromkeys(problems)) or ["config: invalid"])
    return config


def config_to_toml(config: Config) -> str:
    """Write the effective configuration as TOML.

    Keys whose value is None (not set), and sections left empty by that, are omitted;
    every other key is written, in the order the sections declare them (a [psf] section's
    parameters after its kind), so the output documents exactly what a run used and
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
    data = {}
    for section, values in dumped.items():
        order = {key: n for n, key in enumerate(section_keys(section))}
        if values:  # no empty [trim]
            data[section] = dict(sorted(values.items(), key=lambda item: order.get(item[0], len(order))))
    keyframes = data.get("psf", {}).get("keyframes")
    if keyframes:
        data["psf"]["keyframes"] = [{k: v for k, v in frame.items() if v is not None} for frame in keyframes]
    header = "# videodeblur effective configuration\n\n"
    return header + tomli_w.dumps(data)
