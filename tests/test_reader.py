"""Tests of the reader (videodeblur.io.reader, probe, ranges): frames and packets in, ranges, errors.

Every test generates its own small media in ``tmp_path`` (tests/media.py).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from media import (
    corrupt_video_packet,
    make_audio_only,
    make_clip,
    make_cover_art,
    read_burned_index,
)
from videodeblur.errors import InputError, InvalidParameterError
from videodeblur.io import (
    FrameItem,
    VideoInfo,
    VideoReader,
    probe,
)


def test_reader_gives_native_10bit_planes(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=3, pix_fmt="yuv420p10le", codec="ffv1", audio=False)
    with VideoReader(src) as reader:
        items = [e for e in reader.events() if isinstance(e, FrameItem)]
    assert len(items) == 3
    y, u, v = items[0].planes
    assert y.dtype == u.dtype == np.uint16
    assert y.shape == (48, 64) and u.shape == v.shape == (24, 32)
    assert y.flags.c_contiguous and u.flags.c_contiguous
    assert 255 < y.max() <= 1023


def _collect(reader, **kw):
    frames, packets = [], []
    for e in reader.events(**kw):
        (frames if isinstance(e, FrameItem) else packets).append(e)
    return frames, packets


def test_events_frame_range_and_audio_span(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=30)
    with VideoReader(src) as reader:
        frames, packets = _collect(reader, start_frame=5, end_frame=15)
        tb = reader.info.time_base
    assert [f.index for f in frames] == list(range(5, 15))
    assert [read_burned_index(f.planes[0]) for f in frames] == list(range(5, 15))
    t0, t1 = frames[0].pts * tb, (frames[-1].pts + 400) * tb
    times = [p.pts * p.time_base for p in packets]
    assert packets and all(t0 <= t < t1 for t in times)
    # The whole span is covered: the gap to the bounds is under one AAC packet.
    assert min(times) - t0 < Fraction(1024, 48000)
    assert t1 - max(times) <= Fraction(2 * 1024, 48000)


def test_events_time_range(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=30, start_pts=5000)
    with VideoReader(src) as reader:
        frames, packets = _collect(reader, start_s=0.2, end_s=0.6)
    # Relative to the stream start (0.5 s): frames at 0.70 .. 1.06 s, i.e. 5 .. 14.
    assert [f.index for f in frames] == list(range(5, 15))
    assert all(Fraction(7, 10) <= p.pts * p.time_base < Fraction(11, 10) for p in packets)


def test_events_second_call_starts_over(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=12)
    with VideoReader(src) as reader:
        f1, p1 = _collect(reader)
        f2, p2 = _collect(reader)
        f3, _ = _collect(reader, end_frame=2)
    assert [f.pts for f in f1] == [f.pts for f in f2]
    assert [bytes(p) for p in p1] == [bytes(p) for p in p2]
    assert np.array_equal(f1[7].planes[0], f2[7].planes[0])
    assert [f.index for f in f3] == [0, 1]


def test_events_rejects_bad_ranges(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    with VideoReader(src) as reader:
        with pytest.raises(InvalidParameterError):
            reader.events(start_frame=1, end_s=2.0)
        with pytest.raises(InvalidParameterError):
            reader.events(start_frame=3, end_frame=2)
        with pytest.raises(InvalidParameterError):
            reader.events(start_s=1.0, end_s=0.5)
        with pytest.raises(InvalidParameterError):
            reader.events(start_frame=-1)


def test_decode_error_names_the_frame(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=20, audio=False)
    bad = corrupt_video_packet(src, tmp_path / "bad.mp4", packet_index=5)
    with VideoReader(bad) as reader:
        with pytest.raises(InputError, match=r"bad\.mp4'?: decode error at frame \d+") as exc:
            for _ in reader.events():
                pass
        assert len(reader.decode_errors) == 1
    assert "\n" not in str(exc.value)


def test_probe_reports_stream_facts(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=10, fps=Fraction(30000, 1001), subtitles=True, extra_audio_tracks=1)
    info = probe(src)
    assert isinstance(info, VideoInfo)
    assert info.path == src
    assert info.average_rate == Fraction(30000, 1001)
    assert info.time_base == Fraction(1, 1000)
    assert info.stream_index == 0
    # Matroska has no per-stream duration: this is the file's, audio included.
    assert 10 * 1001 / 30000 <= info.duration_s < 0.4
    assert info.frame_count in (None, 10)
    with VideoReader(src) as reader:
        assert [s.type for s in reader.copy_streams] == ["audio", "audio", "subtitle"]


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "text", "audio_only", "cover_art_only"])
def test_probe_errors(tmp_path, case):
    if case == "missing":
        path, pattern = tmp_path / "nope.mp4", "no such file"
    elif case == "directory":
        path, pattern = tmp_path, "is a directory"
    elif case == "empty":
        path, pattern = tmp_path / "empty.mp4", "empty file"
        path.write_bytes(b"")
    elif case == "text":
        path, pattern = tmp_path / "notes.mp4", "not a media file"
        path.write_text("this is not a video\n" * 50)
    elif case == "audio_only":
        path, pattern = make_audio_only(tmp_path / "song.m4a"), r"no video stream \(streams: audio\)"
    else:
        path, pattern = make_cover_art(tmp_path / "cover.mp4"), "only an attached picture"
    with pytest.raises(InputError, match=pattern) as exc:
        probe(path)
    message = str(exc.value)
    assert f"'{path}'" in message and "\n" not in message
    assert exc.value.exit_code == 3
