"""The registry is the one table of kinds, methods and codecs: a new entry works everywhere.

Each test registers a throwaway entry (put back afterwards) and uses it end to end through the
command line, as a user would: the config accepts it (with its bounds and "did you mean"), a
run restores with it, the preview labels it, the CSV and ``config show`` know it.
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging import blurred_frames, luma_psnr, moving_window, write_luma_clip
from media import decode_frames
from videodeblur import registry
from videodeblur.cli import main as cli_main
from videodeblur.config import load_config
from videodeblur.errors import ConfigError
from videodeblur.restoration.methods import Regularisation

FRAMES, WIDTH, HEIGHT = 6, 160, 128


def box(width: float) -> np.ndarray:
    """A square box kernel of odd side nearest ``width`` px (the throwaway kind's model)."""
    side = 2 * int(round((width - 1.0) / 2.0)) + 1
    return np.full((side, side), 1.0 / side**2, dtype=np.float32)


class PassThrough:
    """A throwaway restoration method: the (scaled) frame, untouched."""

    def __init__(self, otf, padded_shape, nsr, strength):
        self.padded_shape = padded_shape

    def restore(self, pair, frame_shape, coding, weighting):
        rows, columns = frame_shape
        scaling = coding.scaling()
        frame = pair.frame[:rows, :columns]
        frame *= np.float32(scaling.input_scale * scaling.output_scale)
        frame += np.float32(scaling.output_offset)
        return frame, Regularisation(0.0, 0.0)


@pytest.fixture
def throwaway_entries():
    saved = registry.snapshot()
    registry.register_psf_kind(registry.PsfKind(
        "box", "a square box (test)", (registry.Parameter("width", "px", "box side", minimum=1.0, maximum=63.0,
                                                          step=1.0, typical=(1.0, 15.0)),),
        build=box))
    registry.register_method(registry.Method("passthrough", "the frame as it is (test)", PassThrough, "unused"))
    registry.register_codec(registry.Codec("mpeg4", "MPEG-4 part 2 (test)", (".mkv",)))
    yield
    registry.restore(saved)


@pytest.fixture
def box_clip(camera, tmp_path):
    sharp = moving_window(camera[150:, 180:], FRAMES, WIDTH, HEIGHT)  # the cameraman: textured
    blurred = blurred_frames(sharp, box(5.0))
    return write_luma_clip(tmp_path / "box.mkv", blurred), sharp, blurred


def test_a_registered_kind_restores_end_to_end(throwaway_entries, box_clip, tmp_path, capsys):
    clip, sharp, blurred = box_clip
    out = tmp_path / "out.mkv"
    assert cli_main(["run", str(clip), "-o", str(out), "--set", "psf.kind=box", "--set", "psf.width=5",
                     "--set", "output.codec=ffv1", "-q"]) == 0
    restored = [frame.planes[0] for frame in decode_frames(out)]
    assert len(restored) == FRAMES
    for before, after, truth in zip(blurred, restored, sharp):
        assert luma_psnr(after, truth, 12) > luma_psnr(before, truth, 12) + 2.0
    # Keyframes interpolate its parameter; the preview names it; the CSV has its column.
    keyframed = load_config(None, ["psf.kind=box", "psf.width=3"])
    assert keyframed.psf.parameters == {"width": 3.0}
    png = tmp_path / "p.png"
    assert cli_main(["preview", str(clip), "--frame", "2", "-o", str(png), "--set", "psf.kind=box",
                     "--set", "psf.width=5"]) == 0
    assert cli_main(["config", "show", "--set", "psf.kind=box", "--set", "psf.width=5"]) == 0
    assert "width = 5.0" in capsys.readouterr().out


def test_a_registered_kind_has_its_bounds_and_suggestions(throwaway_entries):
    with pytest.raises(ConfigError) as problems:
        load_config(None, ["psf.kind=box"])
    assert problems.value.problems == ['psf.width: required when psf.kind = "box"']
    with pytest.raises(ConfigError) as problems:
        load_config(None, ["psf.kind=box", "psf.width=0.5", "psf.widht=4"])
    assert problems.value.problems[:2] == [
        "psf.width: must be a number >= 1 (pixels), got 0.5",
        "psf.widht: unknown key (did you mean 'psf.width'?)",
    ]
    with pytest.raises(ConfigError) as problems:
        load_config(None, ["psf.kind=bx"])
    assert '(did you mean "box"?)' in problems.value.problems[0]


def test_a_registered_kind_keyframes_and_describes(throwaway_entries):
    from videodeblur.pipeline.kernels import quantised_spec
    from videodeblur.pipeline.schedules import KeyframeSchedule, schedule_for

    config = load_config(None, ["psf.kind=box", "psf.width=3",
                                "psf.keyframes=[{frame = 0, width = 3}, {frame = 10, width = 9}]"])
    schedule = schedule_for(config.psf)
    assert isinstance(schedule, KeyframeSchedule)
    assert schedule.parameters_at(5, None) == {"width": 6.0}
    assert quantised_spec("box", {"width": 6.4}).describe() == "box width 6 px"


def test_a_registered_method_is_what_a_run_uses(throwaway_entries, box_clip, tmp_path):
    clip, _, blurred = box_clip
    out = tmp_path / "same.mkv"
    assert cli_main(["run", str(clip), "-o", str(out), "--set", "psf.kind=box", "--set", "psf.width=5",
                     "--set", "deconvolution.method=passthrough", "--set", "deconvolution.edgetaper=false",
                     "--set", "deconvolution.light=encoded",
                     "--set", "output.codec=ffv1", "-q"]) == 0
    assert all(np.array_equal(frame.planes[0], luma) for frame, luma in zip(decode_frames(out), blurred))


def test_a_registered_codec_encodes(throwaway_entries, box_clip, tmp_path):
    import av

    clip, _, _ = box_clip
    out = tmp_path / "mpeg4.mkv"
    assert cli_main(["run", str(clip), "-o", str(out), "--set", "psf.kind=box", "--set", "psf.width=5",
                     "--set", "output.codec=mpeg4", "-q"]) == 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    assert len(decode_frames(out)) == FRAMES


def test_auto_kinds_follow_the_estimator_families():
    assert registry.estimated_kinds() == {"auto": "auto", "auto-motion": "motion", "auto-defocus": "defocus",
                                          "auto-gaussian": "gaussian"}
    assert registry.psf_kind_names()[:4] == ("defocus", "motion", "gaussian", "file")
