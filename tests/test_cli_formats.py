"""Reliability across formats: every row runs the real command line end to end and checks "nothing lost".

Each input is generated (tests/media.py, or the bundled ffmpeg binary for what PyAV cannot
write: ASS subtitles, Matroska attachments, a QuickTime timecode track). After a successful
run the output must have:

* the same number of video frames, at the same times (pts x time base, exact fractions);
* every audio packet byte-identical (and subtitle / data packets where the row has them);
* the same A/V start offset (first audio packet time minus first video frame time) within 1 ms;
* the same pixel format, rotation, interlacing where the row is about one of them.

Where the output container cannot hold a stream, the run must stop before processing with
exit code 4, one line naming the stream and a container that would work, and no file left.
"""

from __future__ import annotations

import hashlib
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest

from media import decode_frames, make_clip, packet_hashes
from videodeblur.cli import main as cli_main
from videodeblur.io import probe

FAST = ["--quiet", "--set", "output.preset=ultrafast", "--set", "pipeline.workers=2"]


def _ffmpeg(*args) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True,
                   capture_output=True, timeout=60)


def _run(src: Path, out: Path, *sets: str) -> int:
    """Run ``videodeblur run`` in-process with fast settings plus ``--set`` overrides; the exit code."""
    args = ["run", str(src), "-o", str(out), *FAST]
    for item in sets:
        args += ["--set", item]
    return cli_main(args)


def _video_times(path) -> list[Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [frame.pts * Fraction(frame.time_base) for frame in container.decode(stream)]


def _first_audio_time(path) -> Fraction | None:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        times = [p.pts * Fraction(p.time_base) for p in container.demux(stream) if p.size and p.pts is not None]
    return min(times) if times else None


def _first_frame(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        return frame, stream.codec_context.field_order


def _payload_hashes(path, kind: str) -> list[str]:
    """Hashes of non-empty packets of one stream kind, skipping the MP4 muxer's empty mov_text gap samples."""
    out = []
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        if not streams:
            return out
        rank = {s.index: n for n, s in enumerate(streams)}
        groups: dict[int, list[str]] = {n: [] for n in rank.values()}
        for packet in container.demux(*streams):
            data = bytes(packet)
            if not data or data == b"\x00\x00":
                continue
            n = rank[packet.stream.index]
            groups[n].append(f"{n}:{hashlib.sha256(data).hexdigest()}")
    return [h for n in sorted(groups) for h in groups[n]]


def _assert_nothing_lost(src: Path, out: Path, *, kinds=("audio",)) -> None:
    src_times, out_times = _video_times(src), _video_times(out)
    assert len(out_times) == len(src_times) > 0
    assert out_times == src_times
    assert packet_hashes(out, "audio") == packet_hashes(src, "audio")
    for kind in kinds:
        assert _payload_hashes(out, kind) == _payload_hashes(src, kind), kind
    src_audio, out_audio = _first_audio_time(src), _first_audio_time(out)
    assert (src_audio is None) == (out_audio is None)
    if src_audio is not None:
        offset_src = src_audio - min(src_times)
        offset_out = out_audio - min(out_times)
        assert abs(float(offset_out - offset_src)) <= 1e-3, (float(offset_src), float(offset_out))


def _assert_refused(capsys, tmp_path: Path, code: int, *words: str) -> None:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 4, err
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], lines[0]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("out")]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


# -- 1. video formats -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "codec", "pix_fmt", "size", "sets"),
    [
        (".mp4", "libx264", "yuv420p", (64, 48), []),
        (".mp4", "libx264", "yuv444p", (65, 49), []),
        (".mkv", "ffv1", "yuv420p", (65, 49), ["output.codec=ffv1"]),
        (".mkv", "ffv1", "yuv444p", (65, 49), ["output.codec=ffv1"]),
        (".mp4", "libx264", "yuv422p", (64, 48), []),
        (".mp4", "libx264", "yuv444p", (64, 48), []),
        (".mp4", "libx264", "yuv420p10le", (64, 48), []),
        (".mkv", "libx264", "yuv422p10le", (64, 48), []),
    ],
    ids=["420-x264", "odd-444-x264", "odd-420-ffv1", "odd-444-ffv1", "422", "444", "420p10", "422p10-mkv"],
)
def test_pixel_formats_and_odd_sizes(tmp_path, capsys, ext, codec, pix_fmt, size, sets):
    src = make_clip(tmp_path / f"in{ext}", width=size[0], height=size[1], pix_fmt=pix_fmt, codec=codec, frames=8)
    out = tmp_path / f"out{ext}"
    assert _run(src, out, *sets) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out)
    frame, _ = _first_frame(out)
    assert (frame.format.name, frame.width, frame.height) == (pix_fmt, *size)
    if "10" in pix_fmt:  # real 10-bit values, not 8-bit ones shifted
        assert decode_frames(out)[0].planes[0].max() > 255


def test_odd_size_420_into_x264_is_refused_before_processing(tmp_path, capsys):
    src = make_clip(tmp_path / "in.mkv", width=65, height=49, codec="ffv1", frames=4)
    code = _run(src, tmp_path / "out.mp4")
    _assert_refused(capsys, tmp_path, code, "65x49", "divisible", "ffv1")


@pytest.mark.parametrize(("ext", "x264_params"), [(".mp4", None), (".mkv", None), (".mov", "bff=1")])
def test_interlaced_flag_and_field_order_are_kept(tmp_path, capsys, ext, x264_params):
    options = {"flags": "+ildct+ilme"}
    if x264_params:
        options["x264-params"] = x264_params
    src = make_clip(tmp_path / f"in{ext}", frames=6, codec_options=options)
    src_frame, src_order = _first_frame(src)
    assert src_frame.interlaced_frame and src_order not in (0, 1)
    out = tmp_path / f"out{ext}"
    assert _run(src, out) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out)
    frame, order = _first_frame(out)
    assert frame.interlaced_frame
    assert order == src_order


@pytest.mark.parametrize(("ext", "rotation"), [(".mp4", 90), (".mp4", 270), (".mov", 180), (".mkv", 90)])
def test_rotation_is_kept(tmp_path, capsys, ext, rotation):
    src = make_clip(tmp_path / f"in{ext}", rotation=rotation, frames=6)
    out = tmp_path / f"out{ext}"
    assert _run(src, out) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out)
    frame, _ = _first_frame(out)
    # Decoded frames report FFmpeg's (-180, 180] convention.
    assert frame.rotation % 360 == _first_frame(src)[0].rotation % 360 == rotation
    info = probe(out)
    assert info.rotation_deg == rotation and info.display_matrix == probe(src).display_matrix
    # Planes are stored unrotated: the size is the coded one, rotation is metadata.
    assert (info.width, info.height) == (64, 48)


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_variable_frame_rate(tmp_path, capsys, ext):
    src = make_clip(tmp_path / f"in{ext}", vfr=True, frames=12, seed=3)
    out = tmp_path / f"out{ext}"
    assert _run(src, out) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out)


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_nonzero_start_time(tmp_path, capsys, ext):
    # 1.5 s at 25 fps in make_clip's 1/10000 time base.
    src = make_clip(tmp_path / f"in{ext}", start_pts=15000, frames=8)
    out = tmp_path / f"out{ext}"
    assert _run(src, out) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out)
    assert _video_times(out)[0] == _video_times(src)[0] > 1
    assert probe(out).start_time_s == pytest.approx(probe(src).start_time_s)


@pytest.mark.parametrize("frames", [1, 2])
@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_one_and_two_frame_clips(tmp_path, capsys, ext, frames):
    src = make_clip(tmp_path / f"in{ext}", frames=frames)
    out = tmp_path / f"out{ext}"
    assert _run(src, out) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out)


# -- 2. other streams -------------------------------------------------------------------


def _audio_titles(path) -> list[str | None]:
    # MP4/MOV store a track title as the 'name' user data atom.
    with av.open(str(path)) as container:
        return [s.metadata.get("title", s.metadata.get("name")) for s in container.streams.audio]


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_several_audio_tracks(tmp_path, capsys, ext):
    src = make_clip(tmp_path / f"in{ext}", extra_audio_tracks=2, frames=8)
    out = tmp_path / f"out{ext}"
    assert _run(src, out) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out)
    assert _audio_titles(out) == _audio_titles(src) == ["tone 0", "tone 1", "tone 2"]


@pytest.mark.parametrize("ext", [".mkv", ".mp4", ".mov"])
def test_text_subtitles_are_copied(tmp_path, capsys, ext):
    src = make_clip(tmp_path / f"in{ext}", subtitles=True, frames=12)
    out = tmp_path / f"out{ext}"
    assert _run(src, out) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out, kinds=("subtitle",))
    assert _payload_hashes(out, "subtitle")


_ASS = """[Script Info]
ScriptType: v4.00+
PlayResX: 64
PlayResY: 48

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,12,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,2,2,2,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.00,0:00:00.15,Default,,0,0,0,,first
Dialogue: 0,0:00:00.20,0:00:00.35,Default,,0,0,0,,second
"""


def test_ass_subtitles_in_mkv_are_copied(tmp_path, capsys):
    base = make_clip(tmp_path / "base.mkv", frames=12)
    subs = tmp_path / "subs.ass"
    subs.write_text(_ASS)
    src = tmp_path / "in.mkv"
    _ffmpeg("-i", base, "-i", subs, "-map", "0", "-map", "1", "-c", "copy", src)
    out = tmp_path / "out.mkv"
    assert _run(src, out) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out, kinds=("subtitle",))
    with av.open(str(out)) as container:
        sub = container.streams.subtitles[0]
        assert sub.codec_context.name in ("ass", "ssa")
        assert b"[Script Info]" in bytes(sub.codec_context.extradata or b"")


def _attachments(path) -> list[tuple]:
    with av.open(str(path)) as container:
        return [
            (s.name, s.mimetype, hashlib.sha256(bytes(s.data)).hexdigest())
            for s in container.streams if s.type == "attachment"
        ]


def test_mkv_attachment_is_copied(tmp_path, capsys):
    base = make_clip(tmp_path / "base.mkv", frames=6)
    font = tmp_path / "font.ttf"
    font.write_bytes(b"\x00\x01\x00\x00" + bytes(range(256)) * 4)
    src = tmp_path / "in.mkv"
    _ffmpeg("-i", base, "-attach", font, "-metadata:s:t", "mimetype=application/x-truetype-font",
            "-map", "0", "-c", "copy", src)
    assert _attachments(src)
    out = tmp_path / "out.mkv"
    assert _run(src, out) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out)
    assert _attachments(out) == _attachments(src)


def _with_timecode(tmp_path) -> Path:
    base = make_clip(tmp_path / "base.mov", frames=8)
    src = tmp_path / "in.mov"
    _ffmpeg("-i", base, "-map", "0", "-c", "copy", "-timecode", "01:00:00:00", src)
    return src


def _timecodes(path) -> list[str | None]:
    """The timecode of each data stream (a QuickTime 'tmcd' track reads back as one)."""
    with av.open(str(path)) as container:
        return [s.metadata.get("timecode") for s in container.streams if s.type == "data"]


@pytest.mark.parametrize("ext", [".mov", ".mp4"])
def test_timecode_track_is_copied(tmp_path, capsys, ext):
    src = _with_timecode(tmp_path)
    assert _timecodes(src) == ["01:00:00:00"]
    out = tmp_path / f"out{ext}"
    assert _run(src, out) == 0, capsys.readouterr().err
    _assert_nothing_lost(src, out, kinds=("data",))
    assert _timecodes(out) == ["01:00:00:00"]


@pytest.mark.parametrize(
    ("ext", "make", "target", "words"),
    [
        (".mp4", "subtitles", ".mkv", ("subtitle stream", "mov_text", ".mov")),
        (".mkv", "subtitles", ".mp4", ("subtitle stream", ".mkv")),
        (".mov", "timecode", ".mkv", ("data stream", "tmcd", ".mov")),
    ],
    ids=["mov_text-into-mkv", "subrip-into-mp4", "tmcd-into-mkv"],
)
def test_stream_the_output_cannot_hold_is_refused_before_processing(tmp_path, capsys, ext, make, target, words):
    if make == "timecode":
        src = _with_timecode(tmp_path)
        for p in tmp_path.glob("base*"):
            p.unlink()
    else:
        src = make_clip(tmp_path / f"in{ext}", subtitles=True, frames=4)
    code = _run(src, tmp_path / f"out{target}")
    _assert_refused(capsys, tmp_path, code, *words)


# -- editing and delivery codecs, audio choices, track flags ----------------------------------------


def _video_codec(path) -> tuple[str, str | None, str]:
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        return context.codec.name, context.profile, context.pix_fmt


@pytest.mark.parametrize("source_pix_fmt, ext, profile, expected", [
    ("yuv420p", ".mov", None, ("DNXHR HQ", "yuv422p")),
    ("yuv420p10le", ".mov", None, ("DNXHR HQX", "yuv422p10le")),
    ("yuv420p", ".mov", "dnxhr_lb", ("DNXHR LB", "yuv422p")),
])
def test_dnxhr_for_editors_keeps_every_frame_and_the_audio(tmp_path, source_pix_fmt, ext, profile, expected):
    src = make_clip(tmp_path / "in.mkv", width=256, height=144, frames=10, pix_fmt=source_pix_fmt,
                    codec="ffv1", audio=True)
    out = tmp_path / f"out{ext}"
    sets = ["output.codec=dnxhd"] + ([f"output.profile={profile}"] if profile else [])
    assert _run(src, out, *sets) == 0
    name, found_profile, pix_fmt = _video_codec(out)
    assert (name, found_profile, pix_fmt) == ("dnxhd", *expected)
    _assert_nothing_lost(src, out)


def test_dnxhr_in_mxf_needs_pcm_audio_or_none(tmp_path, capsys):
    src = make_clip(tmp_path / "in.mp4", width=256, height=144, frames=6, audio=True)
    code = _run(src, tmp_path / "out.mxf", "output.codec=dnxhd")
    _assert_refused(capsys, tmp_path, code, "holds only PCM audio", 'output.audio = "none"')
    assert _run(src, tmp_path / "out.mxf", "output.codec=dnxhd", "output.audio=none") == 0
    with av.open(str(tmp_path / "out.mxf")) as container:
        assert not container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) == 6


@pytest.mark.parametrize("codec, ext, decoded_as", [("libsvtav1", ".mp4", "av1"), ("libvpx-vp9", ".mp4", "vp9")])
def test_av1_and_vp9_for_delivery(tmp_path, capsys, codec, ext, decoded_as):
    src = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=10, audio=True)
    out = tmp_path / f"out{ext}"
    preset = ["output.preset=12"] if codec == "libsvtav1" else ["output.preset=medium"]  # AV1's presets are numbers
    assert _run(src, out, f"output.codec={codec}", "output.crf=40", *preset) == 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.codec.name in (decoded_as, "libdav1d", "libvpx-vp9")
    _assert_nothing_lost(src, out)
    assert "Svt[" not in capsys.readouterr().err  # the encoder library's own log stays quiet


def test_vp9_into_webm_reencodes_aac_audio_on_request(tmp_path, capsys):
    src = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=25, audio=True)
    code = _run(src, tmp_path / "out.webm", "output.codec=libvpx-vp9")
    _assert_refused(capsys, tmp_path, code, "cannot hold audio stream", 'output.audio = "opus"')
    out = tmp_path / "out.webm"
    assert _run(src, out, "output.codec=libvpx-vp9", "output.audio=opus") == 0
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "opus"
        decoded_s = sum(frame.samples for frame in container.decode(audio)) / audio.codec_context.sample_rate
    assert abs(decoded_s - 1.0) < 0.1  # the whole second of the tone
    assert _video_times(out) == _video_times(src)


def test_audio_can_be_left_out_or_reencoded(tmp_path, capsys):
    src = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=25, audio=True)
    assert _run(src, tmp_path / "none.mp4", "output.audio=none") == 0
    assert "0 packets copied" in capsys.readouterr().err
    with av.open(str(tmp_path / "none.mp4")) as container:
        assert not container.streams.audio
    assert _run(src, tmp_path / "aac.mkv", "output.audio=aac") == 0
    with av.open(str(tmp_path / "aac.mkv")) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    assert packet_hashes(tmp_path / "aac.mkv", "audio") != packet_hashes(src, "audio")  # re-encoded, as asked


def test_matroska_keeps_the_default_track_flag(tmp_path):
    src = tmp_path / "in.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=0.4", "-f", "lavfi", "-i", "sine=duration=0.4",
            "-c:v", "ffv1", "-c:a", "flac", "-disposition:v:0", "default", "-disposition:a:0", "default", src)
    out = tmp_path / "out.mkv"
    assert _run(src, out, "output.codec=ffv1") == 0
    with av.open(str(out)) as container:
        flags = [int(stream.disposition) & int(av.stream.Disposition.default) for stream in container.streams]
    assert all(flags) and len(flags) == 2


@pytest.mark.parametrize("sets, message", [
    (["output.crf=60"], "output.crf: libx264 takes 0 to 51, got 60"),
    (["output.codec=libsvtav1", "output.preset=slow"], "output.preset: libsvtav1's presets are 13, 12"),
    (["output.profile=dnxhr_hq"], "output.profile: libx264 has no profiles"),
    (["output.codec=dnxhd", "output.profile=dnxhr_hqx", "output.pix_fmt=yuv422p"],
     "output.pix_fmt: dnxhr_hqx encodes yuv422p10le"),
])
def test_codec_settings_are_checked_against_the_codec(tmp_path, capsys, sets, message):
    src = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=4, audio=False)
    assert _run(src, tmp_path / "out.mov", *sets) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.mov").exists()
