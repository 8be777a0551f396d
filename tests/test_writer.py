"""Tests of the writer (videodeblur.io.writer): encode + stream copy, decoded back and checked.

Every test generates its own small media in ``tmp_path`` (tests/media.py) and checks a
round trip through the reader and the writer by decoding the output back independently.
What a whole run keeps (times, audio, rotation, pixel formats) is tested through the command
line in tests/test_cli_formats.py.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media import (
    decode_frames,
    frame_pts,
    make_clip,
    make_cover_art,
    packet_hashes,
    read_burned_index,
)
from videodeblur.errors import InvalidParameterError, OutputError
from videodeblur.io import (
    FrameItem,
    VideoReader,
    VideoWriter,
    atomic_output,
    check_paths,
    probe,
)


# BT.2020 non-constant luminance, PQ transfer, limited range (FFmpeg enum values).
HDR_TAGS = {"color_primaries": 9, "color_trc": 16, "colorspace": 9, "color_range": 1}


def transcode(src, dst, *, events: dict | None = None, transform=None, **writer_kw) -> int:
    """Read ``src`` and write ``dst`` frame by frame; return the number of frames written."""
    n = 0
    with VideoReader(src) as reader:
        with VideoWriter(dst, reader.info, reader.copy_streams, **writer_kw) as writer:
            for event in reader.events(**(events or {})):
                if isinstance(event, FrameItem):
                    if transform is not None:
                        event = transform(event)
                    writer.write_frame(event)
                    n += 1
                else:
                    writer.mux_packet(event)
    return n


def stream_kinds(path) -> list[str]:
    with av.open(str(path)) as c:
        return [s.type for s in c.streams]


def text_payloads(path) -> list[bytes]:
    """Non-empty subtitle payloads (the MP4 muxer adds its own empty gap samples)."""
    with av.open(str(path)) as c:
        subs = c.streams.subtitles
        out = [bytes(p) for p in c.demux(*subs) if p.size]
    return [p for p in out if p.strip(b"\x00")]


def test_cfr_round_trip_keeps_frames_pts_and_audio(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=20)
    out = tmp_path / "out.mp4"
    assert transcode(src, out) == 20
    assert frame_pts(out) == frame_pts(src)
    assert packet_hashes(out) == packet_hashes(src)
    assert [read_burned_index(f.planes[0]) for f in decode_frames(out)] == list(range(20))
    info = probe(out)
    assert (info.width, info.height, info.pix_fmt, info.codec_name) == (64, 48, "yuv420p", "h264")
    assert info.time_base == probe(src).time_base
    assert info.average_rate == 25


def x264_settings(path) -> dict[str, str]:
    """The settings libx264 wrote into the first video packet (its SEI "options: ..." string)."""
    with av.open(str(path)) as c:
        first = next(bytes(p) for p in c.demux(video=0) if p.size)
    options = first.split(b"options: ", 1)[1].split(b"\x00", 1)[0].decode("ascii", "replace")
    return dict(item.split("=", 1) for item in options.split() if "=" in item)


def test_x264_encodes_with_frame_threads(tmp_path):
    # PyAV opens encoders with slice threading, which puts x264 in its sliced-threads mode
    # (lower efficiency); the writer asks for FFmpeg's default threading instead. Two threads
    # asked for explicitly, so that the check does not depend on this machine's cores.
    src = make_clip(tmp_path / "in.mp4", width=320, height=240, frames=4, audio=False)
    out = tmp_path / "out.mp4"
    transcode(src, out, codec_options={"threads": "2"})
    settings = x264_settings(out)
    assert (settings["threads"], settings["sliced_threads"]) == ("2", "0")
    assert [read_burned_index(f.planes[0]) for f in decode_frames(out)] == list(range(4))


def _audio_times(path) -> list[Fraction]:
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        return [p.pts * p.time_base for p in c.demux(a) if p.size]


def test_vfr_mp4_into_mkv_keeps_times_to_the_millisecond(tmp_path):
    # Matroska stores milliseconds, and libavformat (like the ffmpeg CLI) shifts the
    # whole file when a copied stream starts below zero (AAC priming in MP4 is at
    # -1024 samples). Frame times must therefore match up to 1 ms rounding and one
    # offset that is the same for audio and video (A/V sync kept).
    src = make_clip(tmp_path / "in.mp4", frames=12, vfr=True, seed=5)
    out = tmp_path / "out.mkv"
    transcode(src, out)
    a = [p * probe(src).time_base for p in frame_pts(src)]
    b = [p * probe(out).time_base for p in frame_pts(out)]
    assert len(a) == len(b) == 12
    offset = b[0] - a[0]
    assert max(abs(float(y - x - offset)) for x, y in zip(a, b)) <= 0.001
    audio_offset = _audio_times(out)[0] - _audio_times(src)[0]
    assert abs(float(audio_offset - offset)) <= 0.001


def test_vfr_mkv_into_mp4_keeps_exact_times(tmp_path):
    # Millisecond pts; the MP4 muxer raises the 1/1000 timescale (to 1/16000), which
    # represents every millisecond exactly.
    src = make_clip(tmp_path / "in.mkv", frames=12, vfr=True, seed=7, audio=False)
    out = tmp_path / "out.mp4"
    transcode(src, out)
    a = [p * probe(src).time_base for p in frame_pts(src)]
    b = [p * probe(out).time_base for p in frame_pts(out)]
    assert a == b


def test_video_that_is_not_stream_0_loses_no_frame(tmp_path):
    # The decoder holds B-frames back until flushed: the flush must reach it even when
    # the video stream is not the first one.
    src = make_clip(tmp_path / "in.mkv", frames=14, audio_first=True, extra_audio_tracks=1)
    assert stream_kinds(src) == ["audio", "audio", "video"]
    assert probe(src).stream_index == 2
    out = tmp_path / "out.mkv"
    assert transcode(src, out) == 14
    assert frame_pts(out) == frame_pts(src)
    assert packet_hashes(out) == packet_hashes(src)


@pytest.mark.parametrize("extra", [0, 1])
def test_audio_packets_are_byte_identical(tmp_path, extra):
    src = make_clip(tmp_path / "in.mkv", frames=15, extra_audio_tracks=extra)
    out = tmp_path / "out.mkv"
    transcode(src, out)
    assert stream_kinds(out).count("audio") == 1 + extra
    hashes = packet_hashes(src)
    assert len({h.split(":")[0] for h in hashes}) == 1 + extra
    assert packet_hashes(out) == hashes
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert [s.metadata.get("title") for s in a.streams.audio] == [s.metadata.get("title") for s in b.streams.audio]
        assert [s.layout.name for s in a.streams.audio] == [s.layout.name for s in b.streams.audio]


def test_subtitles_are_copied(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=15, subtitles=True)
    out = tmp_path / "out.mkv"
    transcode(src, out)
    assert packet_hashes(out, "subtitle") == packet_hashes(src, "subtitle")
    assert len(packet_hashes(src, "subtitle")) >= 2
    # MP4 timed text: the muxer re-creates its own empty gap samples, so compare texts.
    src4 = make_clip(tmp_path / "in.mp4", frames=15, subtitles=True)
    out4 = tmp_path / "out.mp4"
    transcode(src4, out4)
    assert text_payloads(out4) == text_payloads(src4) != []


def test_cover_art_is_copied(tmp_path):
    src = make_cover_art(tmp_path / "in.mp4", with_video=True)
    with VideoReader(src) as reader:
        kinds = [(s.type, bool(int(s.disposition) & 1024)) for s in reader.copy_streams]
    assert kinds == [("audio", False), ("video", True)]
    out = tmp_path / "out.mp4"
    transcode(src, out)
    assert packet_hashes(out, "video")[-1] == packet_hashes(src, "video")[-1]
    with av.open(str(out)) as c:
        assert int(c.streams.video[1].disposition) & 1024


def test_colour_tags_are_carried(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=5, pix_fmt="yuv420p10le", color_tags=HDR_TAGS, audio=False)
    info = probe(src)
    assert {k: getattr(info, k) for k in HDR_TAGS} == HDR_TAGS
    out = tmp_path / "out.mp4"
    transcode(src, out)
    out_info = probe(out)
    assert {k: getattr(out_info, k) for k in HDR_TAGS} == HDR_TAGS
    f = decode_frames(out)[0]
    assert (f.color_primaries, f.color_trc, f.colorspace, f.color_range) == (9, 16, 9, 1)
    # Untagged input stays untagged (no invented BT.709).
    plain = make_clip(tmp_path / "plain.mp4", frames=3, audio=False)
    transcode(plain, tmp_path / "plain_out.mp4")
    p = probe(tmp_path / "plain_out.mp4")
    assert (p.color_primaries, p.color_trc, p.colorspace) == (None, None, None)


def test_rotation_is_visible_to_the_ffmpeg_cli(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    src = make_clip(tmp_path / "in.mp4", frames=3, rotation=90, audio=False)
    out = tmp_path / "out.mp4"
    transcode(src, out)
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True
    )
    assert "Display Matrix: rotation of 90.00 degrees" in result.stderr


def test_no_rotation_means_no_display_matrix(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    out = tmp_path / "out.mp4"
    transcode(src, out)
    assert probe(out).rotation_deg == 0
    assert probe(out).display_matrix is None


@pytest.mark.parametrize(
    ("pix_fmt", "size"),
    [("yuv420p", (64, 48)), ("yuv422p10le", (64, 48)), ("yuv420p", (67, 45)), ("yuv444p", (33, 27))],
)
def test_identity_ffv1_is_bit_exact(tmp_path, pix_fmt, size):
    w, h = size
    src = make_clip(tmp_path / "in.mkv", frames=6, pix_fmt=pix_fmt, codec="ffv1", width=w, height=h)
    out = tmp_path / "out.mkv"
    transcode(src, out, codec="ffv1")
    a, b = decode_frames(src), decode_frames(out)
    assert len(a) == len(b) == 6
    assert b[0].pix_fmt == pix_fmt
    for fa, fb in zip(a, b):
        assert fa.pts == fb.pts
        assert len(fa.planes) == len(fb.planes)
        for pa, pb in zip(fa.planes, fb.planes):
            assert pa.shape == pb.shape
            assert np.array_equal(pa, pb)
    assert packet_hashes(out) == packet_hashes(src)


def test_libx265_10bit(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=6, pix_fmt="yuv420p10le", audio=False)
    out = tmp_path / "out.mkv"
    transcode(src, out, codec="libx265", preset="ultrafast", crf=20)
    info = probe(out)
    assert (info.codec_name, info.pix_fmt) == ("hevc", "yuv420p10le")
    assert [read_burned_index(f.planes[0], 10) for f in decode_frames(out)] == list(range(6))


def test_prores_picks_a_lossless_pixel_format(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=4)
    out = tmp_path / "out.mov"
    transcode(src, out, codec="prores_ks")
    info = probe(out)
    assert (info.codec_name, info.pix_fmt) == ("prores", "yuv422p10le")
    assert [read_burned_index(f.planes[0], 10) for f in decode_frames(out)] == list(range(4))
    assert packet_hashes(out) == packet_hashes(src)


def test_explicit_unsupported_pix_fmt_is_refused(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    with VideoReader(src) as reader:
        with pytest.raises(OutputError, match="prores_ks cannot encode yuv420p"):
            VideoWriter(tmp_path / "o.mov", reader.info, [], codec="prores_ks", pix_fmt="yuv420p")


def test_8bit_frames_into_10bit_output(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    out = tmp_path / "out.mp4"
    transcode(src, out, pix_fmt="yuv420p10le")
    assert probe(out).pix_fmt == "yuv420p10le"
    assert [read_burned_index(f.planes[0], 10) for f in decode_frames(out)] == list(range(4))


def test_modified_planes_are_written(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=3, codec="ffv1", audio=False)

    def invert(item):
        item.planes[0] = (255 - item.planes[0]).astype(np.uint8)
        return item

    out = tmp_path / "out.mkv"
    transcode(src, out, codec="ffv1", transform=invert)
    a, b = decode_frames(src), decode_frames(out)
    assert np.array_equal(255 - a[1].planes[0], b[1].planes[0])
    assert np.array_equal(a[1].planes[1], b[1].planes[1])


def test_write_frame_checks_planes(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    with VideoReader(src) as reader, VideoWriter(tmp_path / "o.mkv", reader.info, [], codec="ffv1") as writer:
        item = next(e for e in reader.events() if isinstance(e, FrameItem))
        bad_shape = FrameItem(0, item.pts, item.time_base, [item.planes[0][:-2], *item.planes[1:]], "yuv420p", True)
        with pytest.raises(InvalidParameterError, match="shape"):
            writer.write_frame(bad_shape)
        bad_dtype = FrameItem(0, item.pts, item.time_base, [p.astype(np.float32) for p in item.planes], "yuv420p", True)
        with pytest.raises(InvalidParameterError, match="dtype"):
            writer.write_frame(bad_dtype)
        writer.write_frame(item)


def test_container_that_cannot_hold_a_stream_fails_before_writing(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=4, subtitles=True)
    target = tmp_path / "out.mp4"
    with pytest.raises(OutputError, match=r"\.mp4 container.*subtitle stream #\d.*\.mkv") as exc:
        with atomic_output(target) as temp:
            with VideoReader(src) as reader:
                VideoWriter(temp, reader.info, reader.copy_streams)
    assert exc.value.exit_code == 4
    assert list(tmp_path.iterdir()) == [src]


def test_codec_the_container_cannot_hold(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    with VideoReader(src) as reader:
        with pytest.raises(OutputError, match=r"cannot hold prores_ks video"):
            VideoWriter(tmp_path / "o.mp4", reader.info, [], codec="prores_ks")
        with pytest.raises(OutputError, match="unknown container"):
            VideoWriter(tmp_path / "o.notaformat", reader.info, [])
        with pytest.raises(InvalidParameterError, match="unknown video encoder"):
            VideoWriter(tmp_path / "o.mkv", reader.info, [], codec="no_such_codec")
    assert not (tmp_path / "o.mp4").exists()


def test_full_pipeline_through_atomic_output(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=10, vfr=True, extra_audio_tracks=1)
    target = tmp_path / "restored.mp4"
    check_paths(src, target, overwrite=False)
    with atomic_output(target) as temp:
        transcode(src, temp)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "restored.mp4"]
    assert frame_pts(target) == frame_pts(src)
    assert packet_hashes(target) == packet_hashes(src)
    assert Path(target).stat().st_size > 0
