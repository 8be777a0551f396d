"""End to end: ``videodeblur estimate`` (CSV and plot), and runs and previews with ``psf.kind = auto``.

The clips are made here with PyAV: a 384x256 window moving over scikit-image's 'camera'
photograph (textured, genuinely sharp, with a little noise), once as is and once blurred by a
3.5 px defocus disk, written losslessly (FFV1 in Matroska, 4:2:0, flat chroma) so the decoded
planes are exactly the arrays made here. Everything read back is decoded independently with
PyAV (tests/media.py).
"""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from imaging import blurred_frames, luma_psnr, moving_window, sharpness, write_luma_clip
from media import decode_frames
from videodeblur import deblur_file
from videodeblur.cli import main as cli_main
from videodeblur.config import load_config
from videodeblur.core import psf
from videodeblur.pipeline.kernels import KernelSpec
from videodeblur.preview import Previewer

WIDTH, HEIGHT, FRAMES, FPS = 384, 256, 12, 25
RADIUS_PX = 3.5
REQUIRED_COLUMNS = ("frame", "time", "kind", "confidence", "length_raw", "length_smoothed", "angle_raw",
                    "angle_smoothed", "radius_raw", "radius_smoothed")
AUTO = ["--set", "psf.kind=auto"]


def sharp_frames(camera) -> list[np.ndarray]:
    """Luma of each frame: the window moves 5 px right and 3 px down per frame, plus 1 level of noise."""
    return moving_window(camera, FRAMES, WIDTH, HEIGHT)


def defocused(frames: list[np.ndarray]) -> list[np.ndarray]:
    return blurred_frames(frames, psf.disk(RADIUS_PX))


def write_clip(path, lumas: list[np.ndarray], codec: str = "ffv1", options: dict | None = None):
    return write_luma_clip(path, lumas, FPS, codec, options)


@pytest.fixture(scope="module")
def clips(camera, tmp_path_factory):
    folder = tmp_path_factory.mktemp("estimate-clips")
    sharp = sharp_frames(camera)
    blurred = defocused(sharp)
    sharp_path = write_clip(folder / "sharp.mkv", sharp)
    blurred_path = write_clip(folder / "blurred.mkv", blurred)
    # The lossless clips decode to exactly the arrays written (so comparisons below are exact).
    for path, lumas in ((sharp_path, sharp), (blurred_path, blurred)):
        decoded = decode_frames(path)
        assert len(decoded) == FRAMES
        assert all(np.array_equal(d.planes[0], luma) for d, luma in zip(decoded, lumas))
    return {"sharp": sharp_path, "blurred": blurred_path, "sharp_luma": sharp, "blurred_luma": blurred}


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


# --------------------------------------------------------------------------------------
# videodeblur estimate
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimate_every", [None, 1, 3])
def test_estimate_writes_one_row_per_frame_with_the_radius(clips, tmp_path, estimate_every):
    track = tmp_path / "track.csv"
    every = [] if estimate_every is None else ["--set", f"psf.estimate_every={estimate_every}"]
    assert cli_main(["estimate", str(clips["blurred"]), "-o", str(track), *AUTO, *every]) == 0
    columns, rows = read_csv(track)
    assert set(REQUIRED_COLUMNS) <= set(columns), columns
    frames = len(decode_frames(clips["blurred"]))
    assert len(rows) == frames == FRAMES
    assert [int(r["frame"]) for r in rows] == list(range(frames))
    assert [float(r["time"]) for r in rows] == pytest.approx([i / FPS for i in range(frames)], abs=1e-3)
    stride = estimate_every or 2  # the default estimates every other frame
    for r in rows:
        # Every frame gets the smoothed kernel; only the estimated frames have raw values.
        assert r["kind"] == "defocus", r
        assert abs(float(r["radius_smoothed"]) - RADIUS_PX) <= 0.5, r
        if int(r["frame"]) % stride == 0:
            assert 0.0 <= float(r["confidence"]) <= 1.0
            assert r["kind_raw"] == "defocus", r
            assert abs(float(r["radius_raw"]) - RADIUS_PX) <= 0.5, r
        else:
            assert r["confidence"] == r["kind_raw"] == r["radius_raw"] == "", r
        for column in ("length_raw", "length_smoothed", "angle_raw", "angle_smoothed"):
            assert r[column] == "", (column, r)


def test_estimate_of_a_sharp_clip_is_none(clips, tmp_path):
    track = tmp_path / "track.csv"
    assert cli_main(["estimate", str(clips["sharp"]), "-o", str(track), *AUTO]) == 0
    _, rows = read_csv(track)
    assert len(rows) == FRAMES
    assert {r["kind"] for r in rows} == {"none"}
    assert all(r["radius_smoothed"] == "" and r["length_smoothed"] == "" for r in rows)


def test_estimate_with_a_fixed_defocus_kind_searches_defocus(clips, tmp_path, capsys):
    # A fixed kind the user named: estimate searches that family.
    track = tmp_path / "track.csv"
    assert cli_main(["estimate", str(clips["blurred"]), "-o", str(track), "--set", "psf.kind=defocus"]) == 0
    assert "estimating with 'auto-defocus'" in capsys.readouterr().err
    _, rows = read_csv(track)
    assert len(rows) == FRAMES
    assert all(abs(float(r["radius_smoothed"]) - RADIUS_PX) <= 0.5 for r in rows)


def test_estimate_with_no_kind_given_searches_every_family(camera, clips, tmp_path, capsys):
    # No config: the default kind is only a default, so a motion blur is found too.
    from imaging import blurred_frames

    motion = write_clip(tmp_path / "motion.mkv", blurred_frames(sharp_frames(camera), [psf.motion(11.0, 30.0)] * FRAMES))
    track = tmp_path / "track.csv"
    assert cli_main(["estimate", str(motion), "-o", str(track)]) == 0
    assert "estimating with 'auto'" in capsys.readouterr().err
    _, rows = read_csv(track)
    found = [r for r in rows if r["kind"] == "motion"]
    assert len(found) >= 0.8 * FRAMES
    assert all(abs(float(r["length_smoothed"]) - 11.0) <= 1.5 for r in found)
    # The shipped defocus config names its kind: that family only.
    assert cli_main(["estimate", str(clips["blurred"]), "-o", str(track), "-y", "--config", "defocus"]) == 0
    assert "estimating with 'auto-defocus'" in capsys.readouterr().err


def test_estimate_finds_a_gaussian_blur_and_writes_its_sigma(camera, tmp_path):
    # A soft (Gaussian) blur in linear light: auto reports the Gaussian family, steadily, with
    # sigma in its own columns, and no other family's values.
    sigma = 2.5
    soft = write_clip(tmp_path / "soft.mkv", blurred_frames(sharp_frames(camera), psf.gaussian(sigma)))
    track = tmp_path / "track.csv"
    assert cli_main(["estimate", str(soft), "-o", str(track), *AUTO]) == 0
    columns, rows = read_csv(track)
    assert {"sigma_raw", "sigma_smoothed"} <= set(columns)
    assert len(rows) == FRAMES
    assert {r["kind"] for r in rows} == {"gaussian"}, [r["kind"] for r in rows]
    assert all(abs(float(r["sigma_smoothed"]) - sigma) <= 0.5 for r in rows), [r["sigma_smoothed"] for r in rows]
    assert all(r["radius_smoothed"] == "" and r["length_smoothed"] == "" for r in rows)


def test_estimate_csv_matches_the_kernels_a_preview_uses(clips, tmp_path):
    track = tmp_path / "track.csv"
    assert cli_main(["estimate", str(clips["blurred"]), "-o", str(track), *AUTO,
                     "--set", "psf.smoothing_frames=3"]) == 0
    _, rows = read_csv(track)
    config = load_config(None, ["psf.kind=auto", "psf.smoothing_frames=3"])
    with Previewer(clips["blurred"], config) as previewer:
        for i in (0, 5, FRAMES - 1):
            row = previewer.frame_and_row(i)[1]
            assert row.spec.kind == rows[i]["kind"]
            assert row.spec.get("radius") == pytest.approx(float(rows[i]["radius_smoothed"]), abs=1e-3)
            # Frame 5 has no estimate of its own (every other frame is estimated); its kernel
            # was still estimated, and the label says so.
            assert previewer.describe_psf(row).startswith("defocus radius")
            assert "(estimated)" in previewer.describe_psf(row)


def test_estimate_plot_writes_a_png(clips, tmp_path):
    track, plot = tmp_path / "track.csv", tmp_path / "track.png"
    assert cli_main(["estimate", str(clips["blurred"]), "-o", str(track), "--plot", str(plot), *AUTO]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(plot), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[0] >= 200 and image.shape[1] >= 500
    assert image.std() > 5  # something was drawn
    assert len(read_csv(track)[1]) == FRAMES


def test_estimate_refuses_existing_output_without_overwrite(clips, tmp_path):
    track = tmp_path / "track.csv"
    track.write_text("keep me\n")
    assert cli_main(["estimate", str(clips["blurred"]), "-o", str(track), *AUTO]) == 4
    assert track.read_text() == "keep me\n"
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"old")
    assert cli_main(["estimate", str(clips["blurred"]), "-o", str(tmp_path / "new.csv"), "--plot", str(plot),
                     *AUTO]) == 4
    assert plot.read_bytes() == b"old"
    assert cli_main(["estimate", str(clips["blurred"]), "-o", str(track), "-y", *AUTO]) == 0
    assert len(read_csv(track)[1]) == FRAMES


@pytest.mark.parametrize("name", ["track.txt", "track", "track.png"])
def test_estimate_output_must_be_csv(clips, tmp_path, name):
    assert cli_main(["estimate", str(clips["blurred"]), "-o", str(tmp_path / name), *AUTO]) == 2
    assert not (tmp_path / name).exists()


def test_estimate_plot_must_be_png(clips, tmp_path):
    code = cli_main(["estimate", str(clips["blurred"]), "-o", str(tmp_path / "t.csv"),
                     "--plot", str(tmp_path / "t.jpg"), *AUTO])
    assert code == 2
    assert list(tmp_path.iterdir()) == []


def test_estimate_missing_input_is_exit_3(tmp_path, capsys):
    code = cli_main(["estimate", str(tmp_path / "absent.mkv"), "-o", str(tmp_path / "t.csv"), *AUTO])
    assert code == 3
    assert "absent.mkv" in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()


def test_estimate_bad_config_is_exit_2(clips, tmp_path):
    code = cli_main(["estimate", str(clips["blurred"]), "-o", str(tmp_path / "t.csv"),
                     "--set", "psf.smoothing_frames=-1"])
    assert code == 2
    assert not (tmp_path / "t.csv").exists()


# --------------------------------------------------------------------------------------
# Runs and previews with psf.kind = auto
# --------------------------------------------------------------------------------------


def test_auto_leaves_a_sharp_clip_unchanged(clips, tmp_path):
    out = tmp_path / "out.mkv"
    config = load_config(None, ["psf.kind=auto", "output.codec=ffv1"])
    report = deblur_file(clips["sharp"], out, config)
    assert report.frames == FRAMES
    original, restored = decode_frames(clips["sharp"]), decode_frames(out)
    assert len(restored) == len(original) == FRAMES
    for before, after in zip(original, restored):
        assert len(after.planes) == len(before.planes) == 3
        for p, q in zip(before.planes, after.planes):
            assert np.array_equal(p, q)


@pytest.fixture(scope="module")
def auto_run(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("auto-run") / "restored.mkv"
    config = load_config(None, ["psf.kind=auto", "output.codec=ffv1", "psf.smoothing_frames=3"])
    report = deblur_file(clips["blurred"], out, config)
    assert report.frames == FRAMES
    return config, decode_frames(out)


def test_auto_run_makes_frames_sharper_and_closer_to_the_source(clips, auto_run):
    _, restored = auto_run
    assert len(restored) == FRAMES
    for after, blurred, sharp in zip(restored, clips["blurred_luma"], clips["sharp_luma"]):
        luma = after.planes[0]
        assert sharpness(luma) > 1.5 * sharpness(blurred)
        assert luma_psnr(luma, sharp) > luma_psnr(blurred, sharp) + 3.0
        # Chroma is left alone (deconvolution.planes = luma by default).
        assert np.all(after.planes[1] == 128) and np.all(after.planes[2] == 128)


@pytest.mark.parametrize("index", [0, FRAMES // 2, FRAMES - 1])
def test_auto_preview_equals_the_run(clips, auto_run, index):
    config, restored = auto_run
    with Previewer(clips["blurred"], config) as previewer:
        original, preview = previewer.planes(index)
        assert np.array_equal(original.planes[0], clips["blurred_luma"][index])
        assert np.array_equal(preview.planes[0], restored[index].planes[0])
        spec = previewer.frame_and_row(index)[1].spec
    assert isinstance(spec, KernelSpec)
    assert spec.kind == "defocus"
    assert abs(spec.get("radius") - RADIUS_PX) <= 0.5


@pytest.mark.parametrize("command", ["run", "estimate", "preview"])
def test_auto_on_a_video_too_small_to_analyse_is_exit_2_and_leaves_nothing(tmp_path, capsys, command):
    from media import make_clip

    clip = make_clip(tmp_path / "tiny.mp4", width=64, height=48, frames=3, audio=False)
    output = tmp_path / {"run": "out.mp4", "estimate": "track.csv", "preview": "frame.png"}[command]
    where = ["--frame", "1"] if command == "preview" else []
    code = cli_main([command, str(clip), "-o", str(output), *where, "--set", "psf.kind=auto"])
    error = capsys.readouterr().err
    assert code == 2
    assert "too small to estimate the blur" in error and "64x48" in error and "Traceback" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.mp4"]
