"""Frame-exact preview: `videodeblur preview`, `Previewer`, `preview_frame` and the frame-index cache.

The clips are generated (tests/media.py) with the frame number burned into the top-left corner,
so every check of "which frame came back" reads the picture itself, never the library's own
timestamps. Expected times and frame numbers are computed independently with PyAV and exact
fractions.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from media import decode_frames, frame_pts, make_clip, read_burned_index
from videodeblur import deblur_file, preview_frame
from videodeblur.cli import main as cli_main
from videodeblur.config import load_config
from videodeblur.errors import InvalidParameterError
from videodeblur.io import VideoReader
from videodeblur.io import frame_index as frame_index_module
from videodeblur.io.frame_index import frame_index
from videodeblur.pipeline.restorer import FrameRestorer
from videodeblur.preview import Previewer, preview_decoder_threads

SIGMA_PX = 1.5
CONFIG_ARGS = ["psf.kind=gaussian", f"psf.sigma={SIGMA_PX}", "deconvolution.planes=all"]
CLI_CONFIG = [part for key in CONFIG_ARGS for part in ("--set", key)]


def _config(*extra):
    return load_config(None, [*CONFIG_ARGS, *extra])


def _pngs(folder):
    """Every PNG in ``folder``, hidden temporaries included."""
    return sorted(p.name for p in folder.iterdir() if p.name.lower().endswith(".png"))


def _read_png(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _gop_indexes(frames):
    """Frame numbers of the key frames, from the index."""
    return [int(np.flatnonzero(frames.pts == pts)[0]) for pts in frames.keyframe_pts]


def _has_reordering(path):
    """True when some video packet's dts differs from its pts (B-frames, decode order != display order)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return any(p.dts is not None and p.pts != p.dts for p in container.demux(stream) if p.size)


# ---------------------------------------------------------------------------------------------
# Shared clips (module scope: made once, read only)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("preview-clips")
    return {
        # 8-bit H.264 with B-frames (libx264 default), key frame every 12 frames.
        "h264": make_clip(folder / "gop12.mp4", width=96, height=64, frames=30, gop=12, audio=True),
        # 10-bit, lossless ffv1 with the same GOP.
        "ten_bit": make_clip(folder / "ten.mkv", width=96, height=64, frames=16, gop=12, pix_fmt="yuv420p10le",
                             codec="ffv1", audio=False),
        "vfr": make_clip(folder / "vfr.mkv", width=64, height=48, frames=30, gop=12, vfr=True, audio=False, seed=3),
        "vfr_mp4": make_clip(folder / "vfr.mp4", width=64, height=48, frames=30, gop=12, vfr=True, audio=False,
                             seed=4),
        "start_mp4": make_clip(folder / "start.mp4", width=64, height=48, frames=30, gop=12, start_pts=20000,
                               audio=False),
        "start_mkv": make_clip(folder / "start.mkv", width=64, height=48, frames=30, gop=12, start_pts=20000,
                               audio=False),
    }


@pytest.fixture(scope="module")
def blurred_clip(tmp_path_factory):
    """A 96x64 clip whose planes are all blurred with a Gaussian of SIGMA_PX (lossless ffv1)."""
    folder = tmp_path_factory.mktemp("blurred")
    sharp = make_clip(folder / "sharp.mkv", width=96, height=64, frames=8, codec="ffv1", audio=False)

    class GaussianBlurrer:
        def __init__(self, config, info):
            self.max_value = float((1 << info.bit_depth) - 1)

        def restore(self, item):
            planes = [np.clip(np.rint(cv2.GaussianBlur(p.astype(np.float32), (0, 0), SIGMA_PX,
                                                        borderType=cv2.BORDER_REFLECT)), 0, self.max_value)
                      .astype(p.dtype) for p in item.planes]
            return replace(item, planes=planes)

    blurred = folder / "blurred.mkv"
    deblur_file(sharp, blurred, load_config(None, ["output.codec=ffv1"]), restorer_factory=GaussianBlurrer)
    return blurred


# ---------------------------------------------------------------------------------------------
# 1. Preview planes == what a full run encodes


@pytest.mark.parametrize("name, output_codec, method", [
    ("h264", "libx264", "wiener"), ("ten_bit", "ffv1", "wiener"), ("h264", "libx264", "tv"),
])
def test_preview_planes_equal_full_run(clips, tmp_path, name, output_codec, method):
    clip = clips[name]
    if name == "h264":
        assert _has_reordering(clip), "the clip should have B-frames"
    config = _config(f"output.codec={output_codec}", f"deconvolution.method={method}")
    seen = {}

    def recording_factory(config, info):
        inner = FrameRestorer(config, info)

        class Recording:
            def restore(self, item):
                restored = inner.restore(item)
                seen[item.index] = ([p.copy() for p in item.planes], [p.copy() for p in restored.planes])
                return restored

        return Recording()

    report = deblur_file(clip, tmp_path / f"out{clip.suffix}", config, restorer_factory=recording_factory)
    with Previewer(clip, config) as previewer:
        count = previewer.frame_count
        assert report.frames == count == len(seen)
        keyframes = _gop_indexes(previewer.frames)
        assert len(keyframes) >= 2
        wanted = sorted({0, count - 1, keyframes[1], keyframes[1] - 1, keyframes[1] + 1, count // 2})
        for index in [wanted[-1], *wanted]:  # the last frame first: a backward seek follows
            original, restored = previewer.planes(index)
            source_planes, run_planes = seen[index]
            assert original.index == restored.index == index
            assert len(restored.planes) == len(run_planes) == 3
            for plane, reference in zip(original.planes, source_planes):
                assert plane.dtype == reference.dtype and np.array_equal(plane, reference), f"frame {index} input"
            for plane, reference in zip(restored.planes, run_planes):
                assert plane.dtype == reference.dtype and np.array_equal(plane, reference), f"frame {index} output"
            # and restoration really changed every plane (the comparison is not vacuous)
            assert all(not np.array_equal(a, b) for a, b in zip(original.planes, restored.planes))
            if name == "ten_bit":
                assert restored.planes[0].dtype == np.uint16 and restored.planes[0].max() > 255


# ---------------------------------------------------------------------------------------------
# 2. Frame-exact seeking


def _exact_times(path):
    """(start, time base, decoded pts) from PyAV, independent of the library's index."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        time_base = stream.time_base
    return start, time_base, frame_pts(path)


@pytest.mark.parametrize("thread_count", [None, preview_decoder_threads()])
@pytest.mark.parametrize("name", ["h264", "vfr", "vfr_mp4", "start_mp4", "start_mkv"])
def test_frame_at_is_frame_exact_in_any_order(clips, name, thread_count):
    # Both FFmpeg's default decoder threads (a run) and the preview's larger count.
    clip = clips[name]
    sequential = decode_frames(clip)
    with VideoReader(clip, thread_count=thread_count) as reader:
        frames = frame_index(reader.path, reader.info.stream_index)
        start, _, decoded = _exact_times(clip)
        assert frames.pts.tolist() == decoded and frames.start_pts == start
        count = frames.frame_count
        keyframes = _gop_indexes(frames)
        # the index's key frames are those the decoder flags; gop=12 (x264 may place one a little early)
        assert keyframes == [f.index for f in decode_frames(clip) if f.key_frame]
        assert keyframes[0] == 0 and len(keyframes) >= 2 and max(np.diff(keyframes)) <= 12, keyframes
        if name.startswith("start"):
            assert frames.pts[0] > 0
        wanted = {0, count - 1}
        for key in keyframes[1:]:
            wanted |= {key - 1, key, key + 1, min(key + 6, count - 1)}
        order = sorted(wanted) * 2
        random.Random(7).shuffle(order)
        assert any(b < a for a, b in zip(order, order[1:])) and any(b > a for a, b in zip(order, order[1:]))
        for index in order:
            item = reader.frame_at(index, frames)
            assert item.index == index and item.pts == decoded[index]
            assert read_burned_index(item.planes[0], reader.info.bit_depth) == index, f"asked for frame {index}"
            # Pixel for pixel what decoding the whole file in order gives.
            for plane, expected in zip(item.planes, sequential[index].planes):
                np.testing.assert_array_equal(plane, expected)


def test_previewer_planes_are_frame_exact(clips):
    with Previewer(clips["vfr"], _config()) as previewer:
        order = list(range(previewer.frame_count))
        random.Random(11).shuffle(order)
        for index in order[:12]:
            original, _ = previewer.planes(index)
            assert read_burned_index(original.planes[0]) == index


@pytest.mark.parametrize("name", ["h264", "vfr", "vfr_mp4", "start_mp4", "start_mkv"])
def test_index_at_time_is_the_frame_on_screen(clips, name):
    clip = clips[name]
    start, time_base, decoded = _exact_times(clip)
    times = [(pts - start) * time_base for pts in decoded]  # exact Fractions
    assert times[0] == 0
    tick = Fraction(time_base)
    probes = {Fraction(0), times[-1], times[-1] + Fraction(1, 100)}
    for k in range(len(times) - 1):
        probes |= {times[k], (times[k] + times[k + 1]) / 2, times[k + 1] - tick / 2}
    with Previewer(clip, _config()) as previewer:
        for t in sorted(probes):
            value = float(t)
            # the last frame whose time <= T (decimal times are meant exactly: use the rational T)
            expected = max(k for k, frame_time in enumerate(times) if frame_time <= t)
            assert previewer.index_at_time(value) == expected, (value, expected)
        # and what it returns is that picture
        middle = (times[9] + times[10]) / 2
        original, _ = previewer.planes(previewer.index_at_time(float(middle)))
        assert read_burned_index(original.planes[0]) == 9


@pytest.mark.parametrize("name", ["vfr", "start_mp4"])
def test_cli_time_renders_the_frame_on_screen(clips, tmp_path, name):
    clip = clips[name]
    start, time_base, decoded = _exact_times(clip)
    times = [(pts - start) * time_base for pts in decoded]
    config = _config()
    with Previewer(clip, config) as previewer:
        for k, t in ((0, Fraction(0)), (7, (times[7] + times[8]) / 2), (13, times[13])):
            out = tmp_path / f"t{k}.png"
            assert cli_main(["preview", str(clip), "--time", repr(float(t)), "-o", str(out), *CLI_CONFIG]) == 0
            assert np.array_equal(_read_png(out), previewer.render(k, "split")), f"time {float(t)} is frame {k}"


# ---------------------------------------------------------------------------------------------
# 3. Out of range / bad values


def test_api_rejects_frames_out_of_range_and_bad_times(clips):
    clip = clips["h264"]
    with Previewer(clip, _config()) as previewer:
        count = previewer.frame_count
        for index in (-1, count, count + 1, 10**12, 2.0, True):
            with pytest.raises(InvalidParameterError):
                previewer.planes(index)
            with pytest.raises(InvalidParameterError):
                previewer.render(index)
            with pytest.raises(InvalidParameterError):
                previewer.reader.frame_at(index, previewer.frames)
        for time_s in (-0.001, -5.0, float("nan"), float("inf"), float("-inf")):
            with pytest.raises(InvalidParameterError):
                previewer.index_at_time(time_s)
        with pytest.raises(InvalidParameterError):
            previewer.render(0, mode="sideways")
        # after all the refusals it still works
        assert read_burned_index(previewer.planes(count - 1)[0].planes[0]) == count - 1
    with pytest.raises(InvalidParameterError):
        preview_frame(clip, count, _config())


def test_api_rejects_time_far_past_the_end(clips):
    with Previewer(clips["h264"], _config()) as previewer:
        duration = previewer.frames.time_s(previewer.frame_count - 1)
        with pytest.raises(InvalidParameterError):
            previewer.index_at_time(duration + 3600.0)


def _bad_cli_cases(count):
    return [
        ["--frame", "-1"], ["--frame", str(count)], ["--frame", str(10**12)],
        ["--time", "-1"], ["--time", "nan"], ["--time", "inf"],
        ["--frames", f"0:{count + 1}"], ["--frames", "5:2"], ["--frames", "0:4:0"], ["--frames", "a:b"],
        ["--sheet", "0"],
        ["--frame", "0", "--crop", "1,2,3"], ["--frame", "0", "--crop", "0,0,0,10"],
        ["--frame", "0", "--crop", "60,0,40,10"], ["--frame", "0", "--crop=-1,0,10,10"],
        ["--frame", "0", "--crop", "0,0,97,64"],
    ]


def test_cli_bad_values_exit_2_one_line_no_png(clips, tmp_path, capsys):
    clip = clips["h264"]
    count = len(frame_pts(clip))
    for arguments in _bad_cli_cases(count):
        code = cli_main(["preview", str(clip), *arguments, "-o", str(tmp_path / "out.png"), *CLI_CONFIG])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (arguments, err)
        assert len(err) == 1 and err[0].startswith("videodeblur: error:"), (arguments, err)
        assert _pngs(tmp_path) == [], arguments


def test_cli_refuses_non_png_output(clips, tmp_path, capsys):
    clip = clips["h264"]
    for arguments in (["--frame", "3"], ["--frames", "0:3"], ["--sheet", "2"]):
        for name in ("out.jpg", "out", "out.png.tif"):
            code = cli_main(["preview", str(clip), *arguments, "-o", str(tmp_path / name), *CLI_CONFIG])
            err = capsys.readouterr().err.strip().splitlines()
            assert code == 2 and len(err) == 1 and ".png" in err[0], (arguments, name, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# 4. PNG output


def _check_png_modes(clip, folder, index, dtype):
    """Every mode via the CLI: size, depth, and the split / side / restored pixels against the API's RGB."""
    height, width = 64, 96
    expected_shape = {"split": (height, width, 3), "diff": (height, width, 3), "restored": (height, width, 3),
                      "side": (height, 2 * width, 3)}
    for mode, shape in expected_shape.items():
        out = folder / f"{mode}.png"
        code = cli_main(["preview", str(clip), "--frame", str(index), "--mode", mode, "-o", str(out), *CLI_CONFIG])
        assert code == 0, mode
        image = _read_png(out)
        assert image.shape == shape and image.dtype == dtype, (mode, image.shape, image.dtype)
    with Previewer(clip, _config()) as previewer:
        original, restored = previewer.planes(index)
        before, after = previewer.to_rgb(original), previewer.to_rgb(restored)
    assert before.dtype == after.dtype == dtype and before.shape == (height, width, 3)
    split = _read_png(folder / "split.png")
    middle = width // 2
    rows = slice(height // 2, height)  # below the label band (about 20 rows at this size)
    assert np.array_equal(split[rows, : middle - 1], before[rows, : middle - 1])
    assert np.array_equal(split[rows, middle + 1 :], after[rows, middle + 1 :])
    assert not np.array_equal(before[rows, middle + 1 :], after[rows, middle + 1 :])
    assert (split[rows, middle - 1 : middle + 1] == np.iinfo(dtype).max).all()  # the divider
    side = _read_png(folder / "side.png")
    assert np.array_equal(side[rows, :width], before[rows]) and np.array_equal(side[rows, width:], after[rows])
    alone = _read_png(folder / "restored.png")
    assert np.array_equal(alone[rows], after[rows])
    return before


def test_png_8bit_size_depth_and_split_halves(clips, tmp_path):
    _check_png_modes(clips["h264"], tmp_path, 13, np.uint8)


def test_rgb_of_10bit_source_is_16bit(clips):
    with Previewer(clips["ten_bit"], _config()) as previewer:
        original, restored = previewer.planes(5)
        before, after = previewer.to_rgb(original), previewer.to_rgb(restored)
    assert before.dtype == after.dtype == np.uint16 and before.shape == (64, 96, 3)
    assert before.max() > 255  # real 16-bit values, not 8-bit ones in a 16-bit array
    assert not np.array_equal(before, after)


@pytest.mark.parametrize("what", ["frame", "sheet"])
def test_png_16bit_for_10bit_source(clips, tmp_path, what):
    clip = clips["ten_bit"]
    if what == "sheet":
        assert cli_main(["preview", str(clip), "--sheet", "3", "-o", str(tmp_path / "s.png"), *CLI_CONFIG]) == 0
        assert _read_png(tmp_path / "s.png").dtype == np.uint16
    else:
        before = _check_png_modes(clip, tmp_path, 5, np.uint16)
        assert before.max() > 255


def test_png_crop(clips, tmp_path):
    clip = clips["h264"]
    x, y, w, h = 10, 6, 60, 52
    for mode, shape in (("split", (h, w, 3)), ("restored", (h, w, 3)), ("diff", (h, w, 3)), ("side", (h, 2 * w, 3))):
        out = tmp_path / f"crop_{mode}.png"
        code = cli_main(["preview", str(clip), "--frame", "4", "--mode", mode, "--crop", f"{x},{y},{w},{h}",
                         "-o", str(out), *CLI_CONFIG])
        assert code == 0 and _read_png(out).shape == shape, mode
    with Previewer(clip, _config()) as previewer:
        full = previewer.to_rgb(previewer.planes(4)[1])
    cropped = _read_png(tmp_path / "crop_restored.png")
    assert np.array_equal(cropped[h // 2 :], full[y + h // 2 : y + h, x : x + w])  # below the label band


def test_frames_range_writes_exactly_those_files(clips, tmp_path):
    clip = clips["h264"]
    out = tmp_path / "out.png"
    assert cli_main(["preview", str(clip), "--frames", "3:14:4", "-o", str(out), "--mode", "restored",
                     *CLI_CONFIG]) == 0
    assert _pngs(tmp_path) == ["out_000003.png", "out_000007.png", "out_000011.png"]
    with Previewer(clip, _config()) as previewer:
        assert np.array_equal(_read_png(tmp_path / "out_000007.png"), previewer.render(7, "restored"))
    other = tmp_path / "range"
    other.mkdir()
    assert cli_main(["preview", str(clip), "--frames", "28:30", "-o", str(other / "r.png"), *CLI_CONFIG]) == 0
    assert _pngs(other) == ["r_000028.png", "r_000029.png"]


def test_sheet_writes_one_png(clips, tmp_path):
    clip = clips["h264"]
    out = tmp_path / "sheet.png"
    assert cli_main(["preview", str(clip), "--sheet", "4", "-o", str(out), *CLI_CONFIG]) == 0
    assert _pngs(tmp_path) == ["sheet.png"]
    image = _read_png(out)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0


# ---------------------------------------------------------------------------------------------
# 5. Frame-index cache


@pytest.fixture
def counted_builds(monkeypatch, tmp_path):
    """A fresh cache directory, and a list that grows by one path per real index build."""
    monkeypatch.setenv("VIDEODEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    original = frame_index_module.build_frame_index

    def counting(path, stream_index):
        calls.append(str(path))
        return original(path, stream_index)

    monkeypatch.setattr(frame_index_module, "build_frame_index", counting)
    return calls


def test_frame_index_is_cached_and_invalidated(tmp_path, counted_builds):
    clip = make_clip(tmp_path / "clip.mp4", frames=14, gop=6, audio=False)
    config = _config()
    with Previewer(clip, config) as previewer:
        first = previewer.frames
    assert len(counted_builds) == 1
    assert list((tmp_path / "cache" / "frame-index").glob("*.npz"))
    with Previewer(clip, config) as previewer:
        assert len(counted_builds) == 1  # from the cache
        assert np.array_equal(previewer.frames.pts, first.pts)
        assert np.array_equal(previewer.frames.keyframe_pts, first.keyframe_pts)
        assert previewer.frames.time_base == first.time_base and previewer.frames.start_pts == first.start_pts
        assert read_burned_index(previewer.planes(9)[0].planes[0]) == 9
    # touching the file (new mtime) invalidates
    status = clip.stat()
    os.utime(clip, ns=(status.st_atime_ns, status.st_mtime_ns + 2_000_000_000))
    with Previewer(clip, config):
        pass
    assert len(counted_builds) == 2
    # rewriting it with other content: rebuilt, and the new frames are seen (not a stale index)
    make_clip(clip, frames=20, gop=5, audio=False, seed=1)
    os.utime(clip, ns=(status.st_atime_ns, status.st_mtime_ns + 4_000_000_000))
    with Previewer(clip, config) as previewer:
        assert len(counted_builds) == 3
        assert previewer.frame_count == 20
        assert read_burned_index(previewer.planes(19)[0].planes[0]) == 19
    with Previewer(clip, config):
        pass
    assert len(counted_builds) == 3


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_damaged_cache_file_is_rebuilt(tmp_path, counted_builds, damage):
    clip = make_clip(tmp_path / "clip.mp4", frames=8, audio=False)
    with Previewer(clip, _config()):
        pass
    (cache,) = (tmp_path / "cache" / "frame-index").glob("*.npz")
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    with Previewer(clip, _config()) as previewer:
        assert previewer.frame_count == 8
    assert len(counted_builds) == 2


# ---------------------------------------------------------------------------------------------
# 6. preview_frame


@pytest.mark.parametrize("source, dtype", [("blurred", np.uint8), ("ten_bit", np.uint16)])
def test_preview_frame_returns_rgb_pair(clips, blurred_clip, source, dtype):
    clip = blurred_clip if source == "blurred" else clips[source]
    original, restored = preview_frame(clip, 3, _config())
    assert original.shape == restored.shape == (64, 96, 3)
    assert original.dtype == restored.dtype == dtype
    assert not np.array_equal(original, restored)
    if source == "blurred":
        # restoration sharpened the picture: more high-frequency energy (Laplacian) in the restored luma
        def sharpness(rgb):
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)[8:-8, 8:-8]
            return float(np.abs(cv2.Laplacian(gray, cv2.CV_64F)).mean())

        assert sharpness(restored) > 1.3 * sharpness(original)
    else:
        assert original.max() > 255


def test_previews_decode_with_more_threads_than_a_run(clips):
    # A preview's latency is its decoding: it uses at least 8 decoder threads (measured 25 %
    # faster than FFmpeg's default of cores + 1 on 2 cores).
    assert preview_decoder_threads() >= max(8, (os.cpu_count() or 1) + 1)
    with Previewer(clips["h264"], _config()) as previewer:
        assert previewer.reader.video_stream.thread_count == preview_decoder_threads()


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_reader_refuses_a_bad_thread_count(clips, bad):
    with pytest.raises(InvalidParameterError, match="thread_count"):
        VideoReader(clips["h264"], thread_count=bad)


# ---------------------------------------------------------------------------------------------
# Previews that help decide: sweep, labels, restored alone, sheet tiles, upright, -y


@pytest.fixture(scope="module")
def wide_clip(tmp_path_factory):
    """640x272 (a scope aspect ratio), 8 frames."""
    return make_clip(tmp_path_factory.mktemp("wide") / "wide.mp4", width=640, height=272, frames=8, audio=False)


def test_an_existing_png_needs_y(clips, tmp_path, capsys):
    out = tmp_path / "f.png"
    out.write_bytes(b"keep me")
    assert cli_main(["preview", str(clips["h264"]), "--frame", "3", "-o", str(out), *CLI_CONFIG]) == 4
    assert "exists; pass -y to replace it" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert cli_main(["preview", str(clips["h264"]), "--frame", "3", "-o", str(out), "-y", *CLI_CONFIG]) == 0
    assert _read_png(out).shape == (64, 96, 3)


def test_restored_mode_is_the_frame_alone_and_no_label_leaves_the_image_clean(clips, tmp_path):
    with Previewer(clips["h264"], _config()) as previewer:
        original, restored = previewer.planes(5)
        before, after = previewer.to_rgb(original), previewer.to_rgb(restored)
    assert cli_main(["preview", str(clips["h264"]), "--frame", "5", "--mode", "restored", "-o",
                     str(tmp_path / "r.png"), *CLI_CONFIG]) == 0
    assert np.array_equal(_read_png(tmp_path / "r.png"), after)  # every pixel: no label
    assert cli_main(["preview", str(clips["h264"]), "--frame", "5", "--mode", "side", "--no-label", "-o",
                     str(tmp_path / "s.png"), *CLI_CONFIG]) == 0
    assert np.array_equal(_read_png(tmp_path / "s.png"), np.concatenate([before, after], axis=1))


def test_the_label_fits_a_small_wide_frame(wide_clip, tmp_path):
    assert cli_main(["preview", str(wide_clip), "--frame", "2", "-o", str(tmp_path / "l.png"), *CLI_CONFIG]) == 0
    assert cli_main(["preview", str(wide_clip), "--frame", "2", "--no-label", "-o", str(tmp_path / "n.png"),
                     *CLI_CONFIG]) == 0
    changed = np.any(_read_png(tmp_path / "l.png") != _read_png(tmp_path / "n.png"), axis=2)
    rows, columns = np.nonzero(changed)
    assert rows.max() < 0.4 * 272 and columns.max() < 0.6 * 640 + 8  # wrapped, not across the frame


def test_a_sweep_draws_each_value_side_by_side(wide_clip, tmp_path):
    out = tmp_path / "sweep.png"
    assert cli_main(["preview", str(wide_clip), "--frame", "4", "--sweep", "psf.sigma=1:2:0.5", "--crop",
                     "100,50,200,120", "--no-label", "-o", str(out), *CLI_CONFIG]) == 0
    image = _read_png(out)
    assert image.shape == (120, 4 * 200 + 3 * 4, 3)  # the original and three variants, 4 px apart
    for n, sigma in enumerate((None, 1.0, 1.5, 2.0)):
        with Previewer(wide_clip, _config(*([f"psf.sigma={sigma}"] if sigma else []))) as previewer:
            original, restored = previewer.planes(4)
            expected = previewer.to_rgb(original if sigma is None else restored)[50:170, 100:300]
        assert np.array_equal(image[:, n * 204 : n * 204 + 200], expected), sigma
    for bad in ("psf.sigma=2:1:0.5", "psf.sigma", "psf.sigma=1:30:1"):
        assert cli_main(["preview", str(wide_clip), "--frame", "4", "--sweep", bad, "-o", str(tmp_path / "x.png"),
                         *CLI_CONFIG]) == 2
    assert not (tmp_path / "x.png").exists()


def test_sheet_tiles_are_the_frames_own_size_with_their_kernel(clips, tmp_path):
    out = tmp_path / "sheet.png"
    assert cli_main(["preview", str(clips["h264"]), "--sheet", "3", "-o", str(out), *CLI_CONFIG]) == 0
    # Pairs of 96x64 frames, two per row, at their own size: 2 rows of 2 x 192 px.
    assert _read_png(out).shape == (128, 384, 3)
    with Previewer(clips["h264"], _config()) as previewer:
        original, restored = previewer.planes(29)
        pair = np.concatenate([previewer.to_rgb(original), previewer.to_rgb(restored)], axis=1)
    assert np.array_equal(_read_png(out)[64 + 40 :, : 192][:, 100:], pair[40:, 100:])  # frame 29, below its label


def test_upright_turns_the_picture_as_ffmpeg_shows_it(tmp_path):
    import subprocess

    import imageio_ffmpeg

    clip = make_clip(tmp_path / "rotated.mp4", width=96, height=64, frames=4, rotation=90, audio=False)
    shown = tmp_path / "ffmpeg.png"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(clip), "-frames:v", "1", str(shown)],
                   check=True)  # the ffmpeg program turns the picture by the tag
    out = tmp_path / "upright.png"
    assert cli_main(["preview", str(clip), "--frame", "0", "--mode", "restored", "--upright", "-o", str(out),
                     "--set", "deconvolution.strength=0"]) == 0
    upright, expected = _read_png(out).astype(int), _read_png(shown).astype(int)
    assert upright.shape == expected.shape == (96, 64, 3)
    assert np.abs(upright - expected).mean() < 3  # the same picture (two RGB conversions)
