"""Tests of videodeblur.config: defaults, files, overrides and the error report."""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from videodeblur.config import (
    MAX_CONFIG_BYTES,
    PRESETS,
    Config,
    PsfSection,
    TrimSection,
    config_to_toml,
    load_config,
    parse_override,
)
from videodeblur.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "videodeblur" / "configs"


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(*args, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    assert info.value.exit_code == 2
    return info.value.problems


# ---------------------------------------------------------------------------- defaults


def test_defaults():
    config = Config.default()
    assert config == Config() == load_config() == load_config(None, [])
    assert config.psf.kind == "defocus" and config.psf.radius == 3.0
    assert (config.psf.length, config.psf.angle, config.psf.sigma, config.psf.path) == (None,) * 4
    assert config.deconvolution.method == "wiener"
    assert config.deconvolution.nsr == "auto"
    assert config.deconvolution.edgetaper is True
    assert config.deconvolution.planes == "luma"
    assert (config.output.codec, config.output.crf, config.output.preset) == ("libx264", 18, "medium")
    assert config.output.pix_fmt == ""
    assert (config.pipeline.workers, config.pipeline.frames_in_flight) == (0, 0)
    assert config.trim == TrimSection()
    assert PRESETS[0] == "ultrafast" and PRESETS[9] == "placebo"  # libx264's, then SVT-AV1's 13 .. 0
    assert "8" in PRESETS and (config.output.profile, config.output.audio) == ("", "copy")


def test_frozen():
    config = Config.default()
    with pytest.raises(ValidationError):
        config.psf.radius = 5.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.psf = PsfSection()  # type: ignore[misc]


def test_resolved_workers_and_frames_in_flight():
    auto = Config.default()
    assert 1 <= auto.resolved_workers() <= 256
    assert auto.resolved_frames_in_flight() == 2 * auto.resolved_workers() + 2
    fixed = load_config(overrides=["pipeline.workers=3"])
    assert fixed.resolved_workers() == 3
    assert fixed.resolved_frames_in_flight() == 8
    both = load_config(overrides=["pipeline.workers=3", "pipeline.frames_in_flight=5"])
    assert both.resolved_frames_in_flight() == 5


# ----------------------------------------------------------------------- shipped configs


@pytest.mark.parametrize("name, kind", [("defocus", "defocus"), ("motion", "motion"), ("gaussian", "gaussian"),
                                        ("auto", "auto"), ("focus_pull", "defocus")])
def test_shipped_configs_load(name, kind):
    path = CONFIGS / f"{name}.toml"
    config = load_config(path)
    assert config.psf.kind == kind
    if name == "focus_pull":
        assert [k.frame for k in config.psf.keyframes] == [0, 48, 96]
    # every line of a shipped config is explained: keys are preceded by comments
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith(("#", "[")):
            assert lines[i - 1].startswith("#"), f"{path.name}:{i + 1} has no comment"
    # and round-trips
    assert load_config(write_roundtrip(config)) == config


def write_roundtrip(config: Config) -> Path:
    folder = Path(tempfile.mkdtemp())
    return write(folder, config_to_toml(config))


def test_shipped_motion_config_with_overrides():
    config = load_config(CONFIGS / "motion.toml", ["psf.length=12", "psf.angle=-30.5"])
    assert (config.psf.length, config.psf.angle) == (12.0, -30.5)


# ------------------------------------------------------------------ precedence and files


def test_file_then_overrides_precedence(tmp_path):
    path = write(
        tmp_path,
        """
        [psf]
        radius = 5
        [output]
        crf = 20
        codec = "libx265"
        """,
    )
    config = load_config(path)
    assert config.psf.radius == 5.0 and isinstance(config.psf.radius, float)
    assert (config.output.crf, config.output.codec) == (20, "libx265")
    assert config.output.preset == "medium"  # default kept

    config = load_config(path, ["output.crf=10", "psf.radius=2.5", "output.crf=12"])
    assert config.output.crf == 12  # later override wins
    assert config.psf.radius == 2.5
    assert config.output.codec == "libx265"  # file wins over default


def test_overrides_create_sections(tmp_path):
    path = write(tmp_path, "[psf]\nradius = 4.0\n")
    config = load_config(path, ["trim.start_s=1.5", "deconvolution.nsr=0.01"])
    assert config.trim.start_s == 1.5 and config.deconvolution.nsr == 0.01


def test_kind_switch_keeps_other_fields(tmp_path):
    path = write(tmp_path, '[psf]\nkind = "defocus"\nradius = 4.0\nsigma = 2.0\n')
    config = load_config(path, ["psf.kind=gaussian"])
    assert (config.psf.kind, config.psf.sigma, config.psf.radius) == ("gaussian", 2.0, 4.0)


def test_empty_file_is_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == Config.default()
    assert load_config(write(tmp_path, "# only a comment\n")) == Config.default()


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[psf]\nradius = 2.0\n")
    assert load_config(path).psf.radius == 2.0


# ------------------------------------------------------------------- parse_override


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("psf.radius=4.5", (("psf", "radius"), 4.5)),
        ("output.crf=20", (("output", "crf"), 20)),
        ("psf.angle=-15", (("psf", "angle"), -15)),
        ("psf.radius=1e1", (("psf", "radius"), 10.0)),
        ("deconvolution.edgetaper=false", (("deconvolution", "edgetaper"), False)),
        ("deconvolution.edgetaper=true", (("deconvolution", "edgetaper"), True)),
        ("deconvolution.point_lights=false", (("deconvolution", "point_lights"), False)),
        ('output.pix_fmt="yuv420p"', (("output", "pix_fmt"), "yuv420p")),
        ("output.pix_fmt='yuv420p'", (("output", "pix_fmt"), "yuv420p")),
        ('output.pix_fmt=""', (("output", "pix_fmt"), "")),
        ("output.pix_fmt=", (("output", "pix_fmt"), "")),
        ("psf.kind=motion", (("psf", "kind"), "motion")),
        ("deconvolution.nsr=auto", (("deconvolution", "nsr"), "auto")),
        ("psf.path=kernels/my kernel.png", (("psf", "path"), "kernels/my kernel.png")),
        ("  psf.radius  =  4.5  ", (("psf", "radius"), 4.5)),
        ("psf.radius=[1, 2]", (("psf", "radius"), [1, 2])),
        ("psf.radius=4 # comment", (("psf", "radius"), 4)),
    ],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_parse_override_special_floats():
    keys, value = parse_override("psf.radius=nan")
    assert keys == ("psf", "radius") and math.isnan(value)
    assert parse_override("psf.radius=inf")[1] == math.inf


@pytest.mark.parametrize(
    "text",
    ["psfradius", "", "=4", " =4", "psf.=4", ".radius=4", "psf..radius=4", "psf=4",
     "psf.radius.x=4", "psf radius=4", 'psf.radius="unterminated', "psf.radius=[1, 2",
     "psf.radius={a=", "psf.radius=1\nx=2"],
)
def test_parse_override_rejects(text):
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert len(info.value.problems) == 1
    assert "\n" not in info.value.problems[0]


def test_override_values_are_validated():
    problems = problems_of(
        overrides=[
            "psf.radius=[1, 2]",       # array where a number is wanted
            'psf.sigma="2"',           # quoted string where a number is wanted
            "output.crf=20.0",         # float where an int is wanted
            "deconvolution.edgetaper=yes",  # bare word where a bool is wanted
            "pipeline.workers=true",   # bool is not a number
            "output.preset=medum",
        ]
    )
    assert problems == [
        "psf.radius: must be a number > 0 (pixels), got an array",
        'psf.sigma: must be a number > 0 (pixels), got "2"',
        "deconvolution.edgetaper: must be true or false, got \"yes\"",
        "output.crf: must be an integer from 0 to 63, got 20.0",
        'output.preset: must be one of "ultrafast", "superfast", "veryfast", "faster", "fast", '
        '"medium", "slow", "slower", "veryslow", "placebo", "13", "12", "11", "10", "9", "8", "7", "6", "5", '
        '"4", "3", "2", "1", "0", got "medum" (did you mean "medium"?)',
        "pipeline.workers: must be 0 (one per CPU core) or an integer from 1 to 256, got true",
    ]


def test_int_accepted_for_float_but_bool_is_not():
    assert load_config(overrides=["psf.radius=4"]).psf.radius == 4.0
    assert load_config(overrides=["deconvolution.nsr=1"]).deconvolution.nsr == 1.0
    assert problems_of(overrides=["psf.radius=true"]) == [
        "psf.radius: must be a number > 0 (pixels), got true"
    ]


def test_malformed_overrides_are_all_reported_with_the_file_problems(tmp_path):
    path = write(tmp_path, "[psf]\nradius = -2\n")
    problems = problems_of(path, ["nonsense", "output.crf=51", "=1", "psf.radius=[1,"])
    assert len(problems) == 4
    assert problems[0].startswith('override "nonsense": expected SECTION.KEY=VALUE')
    assert problems[1].startswith('override "=1": empty key')
    assert problems[2].startswith('psf.radius: cannot read "[1," as a TOML value')
    assert problems[3] == "psf.radius: must be a number > 0 (pixels), got -2"


# ----------------------------------------------------------------- many problems at once


def test_every_problem_reported_at_once(tmp_path):
    path = write(
        tmp_path,
        """
        [psf]
        kind = "motion"
        radiuss = 4.0
        angle = nan
        [deconvolution]
        nsr = -1
        edgetaper = "yes"
        [output]
        crf = "18"
        [pipeline]
        workers = -3
        [pfs]
        radius = 1
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    expected = [
        "psf.angle: must be a finite number (degrees), got nan",
        "psf.radiuss: unknown key (did you mean 'psf.radius'?)",
        'deconvolution.nsr: must be "auto" or a positive number, got -1',
        'deconvolution.edgetaper: must be true or false, got "yes"',
        'output.crf: must be an integer from 0 to 63, got "18"',
        "pipeline.workers: must be 0 (one per CPU core) or an integer from 1 to 256, got -3",
        "pfs: unknown section (did you mean 'psf'?)",
        'psf.length: required when psf.kind = "motion"',
    ]
    assert sorted(problems) == sorted(expected)
    assert len(problems) == len(set(problems))
    message = str(info.value)
    assert message.startswith("invalid config: ")
    for problem in expected:
        assert problem in message


def test_missing_required_keys_per_kind():
    assert problems_of(overrides=["psf.kind=motion"]) == [
        'psf.length: required when psf.kind = "motion"',
        'psf.angle: required when psf.kind = "motion"',
    ]
    assert problems_of(overrides=["psf.kind=gaussian"]) == [
        'psf.sigma: required when psf.kind = "gaussian"'
    ]
    assert problems_of(overrides=["psf.kind=file"]) == ['psf.path: required when psf.kind = "file"']
    # motion with angle 0 is fine (0 is a valid angle)
    assert load_config(overrides=["psf.kind=motion", "psf.length=1", "psf.angle=0"]).psf.angle == 0.0


def test_unknown_key_suggestions():
    problems = problems_of(
        overrides=["psf.nsr=0.1", "deconvolution.metod=wiener", "output.zzzzzz=1", "PSF.radius=2"]
    )
    assert problems == [
        "psf.nsr: unknown key (did you mean 'deconvolution.nsr'?)",
        "deconvolution.metod: unknown key (did you mean 'deconvolution.method'?)",
        "output.zzzzzz: unknown key",
        "PSF: unknown section (did you mean 'psf'?)",
    ]


def test_top_level_key_outside_a_section(tmp_path):
    path = write(tmp_path, "radius = 4\n[psf]\nkind = 3\n")
    assert problems_of(path) == [
        'psf.kind: must be one of "defocus", "motion", "gaussian", "file", "auto", "auto-motion", "auto-defocus", "auto-gaussian", got 3',
        "radius: unknown key (did you mean 'psf.radius'?)",
    ]


def test_section_that_is_not_a_table(tmp_path):
    assert problems_of(write(tmp_path, "psf = 3\n")) == ["psf: must be a table (a [section]), got 3"]


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("psf.radius=0", "psf.radius: must be a number > 0 (pixels), got 0"),
        ("psf.radius=-inf", "psf.radius: must be a number > 0 (pixels), got -inf"),
        ("psf.length=0.5", "psf.length: must be a number >= 1 (pixels), got 0.5"),
        ("psf.angle=inf", "psf.angle: must be a finite number (degrees), got inf"),
        ("psf.sigma=0", "psf.sigma: must be a number > 0 (pixels), got 0"),
        ("psf.path=kernel.jpg", "psf.path: must be the path of a .png, .tif, .tiff, .bmp, .pgm or .npy file, "
                                'got "kernel.jpg"'),
        ("deconvolution.nsr=0", 'deconvolution.nsr: must be "auto" or a positive number, got 0'),
        ("deconvolution.nsr=nan", 'deconvolution.nsr: must be "auto" or a positive number, got nan'),
        ("deconvolution.nsr=AUTO", 'deconvolution.nsr: must be "auto" or a positive number, '
                                   'got "AUTO" (did you mean "auto"?)'),
        ("deconvolution.method=wein", 'deconvolution.method: must be one of "wiener", "tikhonov", "tv", '
                                      'got "wein" (did you mean "wiener"?)'),
        ("deconvolution.planes=rgb", 'deconvolution.planes: must be one of "luma", "all", got "rgb"'),
        ("output.crf=52", "output.crf: libx264 takes 0 to 51, got 52"),
        ("output.pix_fmt=YUV420P", 'output.pix_fmt: must be "" (same as the input) or an FFmpeg '
                                   'pixel format name such as "yuv420p", got "YUV420P"'),
        ("pipeline.workers=257", "pipeline.workers: must be 0 (one per CPU core) or an integer "
                                 "from 1 to 256, got 257"),
        ("pipeline.frames_in_flight=1025", "pipeline.frames_in_flight: must be 0 (automatic) or "
                                           "an integer from 1 to 1024, got 1025"),
        ("trim.start_s=-1", "trim.start_s: must be a number of seconds >= 0, got -1"),
        ("trim.end_frame=1.5", "trim.end_frame: must be a frame number (an integer >= 0), got 1.5"),
        ("psf.angle=1979-05-27", "psf.angle: must be a finite number (degrees), got 1979-05-27"),
    ],
)
def test_single_value_problems(override, problem):
    assert problems_of(overrides=[override]) == [problem]


def test_valid_edge_values():
    config = load_config(
        overrides=[
            "psf.radius=0.25", "psf.length=1", "psf.angle=-720", "output.crf=0",
            "output.crf=51", "pipeline.workers=256", "pipeline.frames_in_flight=1024",
            "output.pix_fmt=yuv422p10le", "output.codec=prores_ks", "output.preset=placebo",
            "deconvolution.method=tikhonov", "deconvolution.nsr=1e-4", "deconvolution.planes=all",
        ]
    )
    assert config.psf.radius == 0.25 and config.psf.angle == -720.0
    assert config.output.crf == 51 and config.deconvolution.nsr == 1e-4


# ------------------------------------------------------------------------- psf.path


def test_psf_file_path_relative_to_config_file(tmp_path):
    (tmp_path / "kernels").mkdir()
    kernel = tmp_path / "kernels" / "k.npy"
    kernel.write_bytes(b"not really numpy, existence is what is checked")
    path = write(tmp_path, '[psf]\nkind = "file"\npath = "kernels/k.npy"\n')
    config = load_config(path)
    assert config.psf.path == str(kernel)
    assert load_config(write_roundtrip(config)) == config


def test_psf_file_path_missing_or_directory(tmp_path):
    path = write(tmp_path, '[psf]\nkind = "file"\npath = "missing.png"\n')
    (problem,) = problems_of(path)
    assert problem.startswith("psf.path: file not found: ")
    (tmp_path / "dir.tif").mkdir()
    (problem,) = problems_of(path, ["psf.path=" + str(tmp_path / "dir.tif")])
    assert problem.startswith("psf.path: not a file: ")


def test_psf_path_not_checked_for_other_kinds(tmp_path):
    config = load_config(overrides=["psf.path=" + str(tmp_path / "absent.TIFF")])
    assert config.psf.kind == "defocus" and config.psf.path == str(tmp_path / "absent.TIFF")


# ---------------------------------------------------------------------------- trim


def test_trim_valid():
    config = load_config(overrides=["trim.start_s=1", "trim.end_frame=100"])
    assert (config.trim.start_s, config.trim.end_frame) == (1.0, 100)
    config = load_config(overrides=["trim.start_frame=0", "trim.end_frame=1"])
    assert (config.trim.start_frame, config.trim.end_frame) == (0, 1)


def test_trim_conflicts(tmp_path):
    path = write(tmp_path, "[trim]\nstart_s = 2.0\nstart_frame = 10\nend_s = 1.0\nend_frame = 5\n")
    assert problems_of(path) == [
        "trim.start_frame: conflicts with trim.start_s; set only one of them",
        "trim.end_frame: conflicts with trim.end_s; set only one of them",
        "trim.end_s: must be after trim.start_s (2.0 s), got 1.0",
        "trim.end_frame: must be after trim.start_frame (10), got 5",
    ]
    assert problems_of(overrides=["trim.start_frame=7", "trim.end_frame=7"]) == [
        "trim.end_frame: must be after trim.start_frame (7), got 7"
    ]


def test_trim_conflict_reported_next_to_a_bad_value():
    problems = problems_of(overrides=["trim.start_s=1", "trim.start_frame=2", "trim.end_s=-1"])
    assert problems == [
        "trim.end_s: must be a number of seconds >= 0, got -1",
        "trim.start_frame: conflicts with trim.start_s; set only one of them",
    ]


def test_trim_model_directly():
    with pytest.raises(ValidationError):
        TrimSection(start_s=3.0, end_s=1.0)
    assert TrimSection(start_s=3, end_frame=2).start_s == 3.0  # mixed units: fps unknown here


# ------------------------------------------------------------------- file problems


def test_toml_syntax_error_has_line_and_column(tmp_path):
    path = write(tmp_path, "[psf]\nradius = 3.0\nkind = motion\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f'config file "{path}": TOML syntax error: ')
    assert "line 3, column" in problem


def test_syntax_error_and_override_problems_together(tmp_path):
    path = write(tmp_path, "[psf\n")
    problems = problems_of(path, ["broken"])
    assert len(problems) == 2 and "TOML syntax error" in problems[0]


def test_missing_file(tmp_path):
    (problem,) = problems_of(tmp_path / "absent.toml")
    assert problem == f'config file "{tmp_path / "absent.toml"}": not found'


def test_directory_is_not_a_config(tmp_path):
    (problem,) = problems_of(tmp_path)
    assert problem.endswith("is a directory, not a file")


def test_too_large_file(tmp_path):
    path = tmp_path / "big.toml"
    path.write_bytes(b"# " + b"x" * MAX_CONFIG_BYTES + b"\n")
    (problem,) = problems_of(str(path))
    assert "too large" in problem
    exactly = tmp_path / "limit.toml"
    exactly.write_bytes(b"#" * (MAX_CONFIG_BYTES - 1) + b"\n")
    assert load_config(exactly) == Config.default()


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[psf]\n# caméra\n'.encode("latin-1"))
    (problem,) = problems_of(path)
    assert "not UTF-8" in problem


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX, non-root")
def test_unreadable_file(tmp_path):
    path = write(tmp_path, "")
    path.chmod(0)
    try:
        (problem,) = problems_of(path)
        assert "cannot be read" in problem
    finally:
        path.chmod(0o600)


def test_deeply_nested_toml(tmp_path):
    path = write(tmp_path, "x = " + "[" * 5000 + "]" * 5000 + "\n")
    (problem,) = problems_of(path)
    assert "TOML syntax error" in problem


# -------------------------------------------------------------------------- round trip


def test_round_trip_default_omits_none(tmp_path):
    text = config_to_toml(Config.default())
    assert "length" not in text and "[trim]" not in text
    assert load_config(write(tmp_path, text)) == Config.default()


def test_round_trip_everything_set(tmp_path):
    kernel = tmp_path / "psf.png"
    kernel.write_bytes(b"\x89PNG")
    config = load_config(
        overrides=[
            "psf.kind=file", f"psf.path={kernel}", "psf.radius=2.75", "psf.length=7",
            "psf.angle=123.456789012345", "psf.sigma=0.1", "deconvolution.method=tikhonov",
            "deconvolution.nsr=0.0123", "deconvolution.edgetaper=false", "deconvolution.planes=all",
            "output.codec=ffv1", "output.crf=0", "output.preset=veryslow", "output.pix_fmt=gbrp",
            "pipeline.workers=4", "pipeline.frames_in_flight=9", "trim.start_frame=3",
            "trim.end_s=1e-3",
        ]
    )
    again = load_config(write(tmp_path, config_to_toml(config)))
    assert again == config
    assert again.psf.path == str(kernel)


# ------------------------------------------------------------------- property tests

_NAMES = st.sampled_from(
    ["psf", "deconvolution", "output", "pipeline", "trim", "kind", "radius", "length", "angle",
     "sigma", "path", "method", "nsr", "edgetaper", "planes", "codec", "crf", "preset",
     "pix_fmt", "workers", "frames_in_flight", "start_s", "end_s", "start_frame", "end_frame",
     "radiuss", "PSF"]
) | st.text(max_size=6)
_SCALARS = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["defocus", "motion", "gaussian", "file", "auto", "wiener", "libx264",
                       "k.png", "yuv420p", ""])
    | st.dates()
    | st.times()
    | st.datetimes(timezones=st.none() | st.just(dt.timezone.utc))
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_NAMES, children, max_size=3),
    max_leaves=8,
)
_RANDOM_DOCUMENTS = st.dictionaries(
    _NAMES, st.dictionaries(_NAMES, _VALUES, max_size=5) | _VALUES, max_size=5
)
# Documents made of real keys and mostly plausible values, so that valid configs come up too.
_FIELDS = {name: list(model.model_fields) for name, model in
           ((n, f.annotation) for n, f in Config.model_fields.items())}
_PLAUSIBLE = st.sampled_from(
    [0, 1, 2, 3.5, 18, 0.01, 100, "auto", "defocus", "gaussian", "tikhonov", "all", "libx265",
     "slow", "yuv420p", "", True, False]
)
_PLAUSIBLE_DOCUMENTS = st.sampled_from(sorted(_FIELDS)).flatmap(
    lambda section: st.fixed_dictionaries(
        {section: st.dictionaries(st.sampled_from(_FIELDS[section]), _PLAUSIBLE, max_size=3)}
    )
)
_DOCUMENTS = _RANDOM_DOCUMENTS | _PLAUSIBLE_DOCUMENTS
_OVERRIDES = st.lists(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["psf.radius", "psf.kind", "trim.end_s",
                                                        "x.y", "psf", ""]), st.text(max_size=10))
    | st.text(max_size=15),
    max_size=3,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_DOCUMENTS, overrides=_OVERRIDES)
def test_arbitrary_documents_give_config_or_config_error(document, overrides):
    try:
        text = tomli_w.dumps(document)
    except (TypeError, ValueError):
        return  # not representable as TOML
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.toml"
        path.write_text(text, encoding="utf-8")
        try:
            config = load_config(path, overrides)
        except ConfigError as exc:
            assert exc.problems
            assert all(isinstance(p, str) and p and "\n" not in p for p in exc.problems)
        else:
            assert isinstance(config, Config)
            assert load_config(write(Path(folder), config_to_toml(config), "rt.toml")) == config


@settings(max_examples=100, deadline=None)
@given(content=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_give_config_or_config_error(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.toml"
        path.write_bytes(content)
        try:
            assert isinstance(load_config(path), Config)
        except ConfigError as exc:
            assert exc.problems


def test_unparsable_override_of_a_required_key_is_not_also_missing():
    problems = problems_of(overrides=["psf.kind=gaussian", 'psf.sigma="2'])
    assert len(problems) == 1 and problems[0].startswith("psf.sigma: cannot read")


def test_psf_path_with_dot_dot_is_resolved_and_must_exist(tmp_path):
    """Decision: '..' is an ordinary relative path (a PSF in a sibling folder); what matters is
    that the file exists. A path that climbs to nowhere is a listed problem, nothing runs."""
    kernels = tmp_path / "kernels"
    configs = tmp_path / "configs"
    kernels.mkdir()
    configs.mkdir()
    (kernels / "k.npy").write_bytes(b"")  # existence is what the config checks
    good = configs / "good.toml"
    good.write_text('[psf]\nkind = "file"\npath = "../kernels/k.npy"\n')
    assert Path(load_config(good).psf.path) == (kernels / "k.npy").resolve()
    bad = configs / "bad.toml"
    bad.write_text('[psf]\nkind = "file"\npath = "../../../../../../../../nowhere/k.npy"\n[output]\ncrf = -3\n')
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    problems = " ".join(caught.value.problems)
    assert "psf.path" in problems and "output.crf" in problems


# ----------------------------------------------------------------------- shipped configs by name


def test_shipped_configs_are_listed_written_and_named(tmp_path, capsys):
    from videodeblur.cli import main

    assert main(["config", "list"]) == 0
    listed = capsys.readouterr().out
    for name in ("auto", "defocus", "focus_pull", "gaussian", "motion"):
        assert f"\n{name} " in f"\n{listed}"
    target = tmp_path / "my.toml"
    assert main(["config", "init", "motion", "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == (CONFIGS / "motion.toml").read_text(encoding="utf-8")
    assert main(["config", "init", "motion", "-o", str(target)]) == 4  # exists: needs -y
    assert "pass -y" in capsys.readouterr().err
    assert main(["config", "init", "motion", "-o", str(target), "-y"]) == 0
    assert main(["config", "init", "nosuch", "-o", str(tmp_path / "x.toml")]) == 2
    assert "shipped: auto, defocus" in capsys.readouterr().err
    assert not (tmp_path / "x.toml").exists()
    # A name is accepted wherever a config file is.
    assert load_config("motion") == load_config(CONFIGS / "motion.toml")
    with pytest.raises(ConfigError, match="not found .or the name of a shipped config"):
        load_config("nosuch")
