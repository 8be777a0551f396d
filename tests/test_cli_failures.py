"""Reliability: damaged, truncated and hostile input, a full disk, odd worker counts, unsafe outputs.

Every test makes its own small input (tests/media.py, or a few bytes written by hand), runs
the command line (in-process, or as a subprocess where a time limit or a resource limit is
needed) and checks the exit code, the one-line message and that no partial or temporary
output is left. Every run that succeeds is checked for "nothing lost": same frame count,
same pts, audio packets byte-identical to what the input holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from media import frame_pts, make_clip, packet_hashes
from videodeblur.cli import main as cli_main
from videodeblur.io import VideoReader

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 60


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _error_lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip()]


def _cli_subprocess(args, *, prelude: str = "") -> subprocess.CompletedProcess:
    """Run ``videodeblur`` in a fresh interpreter, with a wall-clock limit (a hang fails the test)."""
    code = prelude + "\nimport sys\nfrom videodeblur.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, env=env)


def _assert_nothing_lost(source: Path, output: Path, frames: int | None = None) -> None:
    pts = frame_pts(output)
    assert pts == frame_pts(source)
    if frames is not None:
        assert len(pts) == frames
    assert packet_hashes(output) == packet_hashes(source)


def _remux(src: Path, dst: Path, *, options: dict | None = None, garble_video_packet: int | None = None) -> Path:
    """Copy every stream of ``src`` into ``dst`` (muxer ``options``), optionally garbling one video packet."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options or {}) as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        n = 0
        for packet in inp.demux():
            if packet.size == 0:
                continue
            index = packet.stream.index
            if packet.stream.type == "video":
                if n == garble_video_packet:
                    bad = av.Packet(b"\xff" * packet.size)
                    bad.pts, bad.dts, bad.time_base = packet.pts, packet.dts, packet.time_base
                    bad.is_keyframe = packet.is_keyframe
                    packet = bad
                n += 1
            packet.stream = mapping[index]
            out.mux(packet)
    return dst


# -- 1. truncated files ------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips_for_truncation(tmp_path_factory):
    folder = tmp_path_factory.mktemp("truncation")
    plain = make_clip(folder / "plain.mp4", width=64, height=48, frames=24, audio=True)
    faststart = _remux(plain, folder / "faststart.mp4", options={"movflags": "faststart"})
    with av.open(str(faststart)) as container:
        assert container.streams.video[0].frames == 24
    return {"plain": plain.read_bytes(), "faststart": faststart.read_bytes()}


def _decodable_pts(path: Path) -> list[int]:
    """Reference: pts of every frame a plain single-threaded decoder gets out of a damaged file."""
    pts = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        for packet in container.demux(stream):
            if packet.is_corrupt:
                continue
            try:
                pts += [frame.pts for frame in stream.decode(packet if packet.size else None)]
            except av.error.FFmpegError:
                continue
    return sorted(pts)


@pytest.mark.parametrize("tolerate", [False, True])
@pytest.mark.parametrize("layout", ["plain", "faststart"])
@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_truncated_mp4_restores_what_is_there_or_refuses(tmp_path, clips_for_truncation, layout, fraction,
                                                         tolerate):
    data = clips_for_truncation[layout]
    if layout == "faststart":
        assert data[:64].find(b"moov") > 0  # the index really is in front of the media data
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * fraction)])
    original = cut.read_bytes()
    out = tmp_path / "out.mp4"
    result = _cli_subprocess(["run", cut, "-o", out, "--quiet", "--set", "pipeline.workers=2",
                              "--set", f"pipeline.tolerate_decode_errors={str(tolerate).lower()}"])
    assert "Traceback" not in result.stderr
    assert cut.read_bytes() == original
    if result.returncode == 0:
        # Every frame that can be decoded, with its pts; every audio packet there is.
        assert frame_pts(out) == _decodable_pts(cut)
        assert packet_hashes(out) == packet_hashes(cut)
        restored = len(frame_pts(out))
        assert 0 < restored < 24
        lost = [line for line in _error_lines(result.stderr) if "warning" in line]
        assert len(lost) == 1, result.stderr
        assert f"{restored} of 24 declared frames restored, {24 - restored} lost" in lost[0]
        assert _files(tmp_path) == ["cut.mp4", "out.mp4"]
    else:
        assert result.returncode == 3, result.stderr
        lines = _error_lines(result.stderr)
        assert len(lines) == 1 and "cut.mp4" in lines[0], result.stderr
        assert "truncated" in lines[0]
        assert _files(tmp_path) == ["cut.mp4"]
    if layout == "plain":
        assert result.returncode == 3  # no index ('moov' is written last): nothing can be located
    elif tolerate:
        assert result.returncode == 0  # the index is in front: the frames before the cut are there


def test_complete_file_reports_no_loss(tmp_path, capsys):
    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=6, audio=True)
    out = tmp_path / "out.mp4"
    assert cli_main(["run", str(clip), "-o", str(out), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err
    _assert_nothing_lost(clip, out, frames=6)


# -- 2. corrupt bytes in the middle -------------------------------------------------------


@pytest.fixture(scope="module")
def corrupt_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corrupt")
    clip = make_clip(folder / "clip.mp4", width=64, height=48, frames=20, audio=True)
    bad = _remux(clip, folder / "bad.mp4", garble_video_packet=5)
    with av.open(str(bad)) as container:
        video = container.streams.video[0]
        packets = [p for p in container.demux(video) if p.size]
    garbled_pts = packets[5].pts
    return bad, clip, garbled_pts


def test_corrupt_packet_fails_by_default_naming_the_frame(tmp_path, corrupt_clip, capsys):
    bad, _, _ = corrupt_clip
    out = tmp_path / "out.mp4"
    assert cli_main(["run", str(bad), "-o", str(out), "--quiet"]) == 3
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert "bad.mp4" in lines[0] and "decode error at frame" in lines[0]
    assert _files(tmp_path) == []


@pytest.mark.parametrize("workers", [1, 4])
def test_tolerate_decode_errors_completes_and_reports(tmp_path, corrupt_clip, capsys, workers):
    bad, clip, garbled_pts = corrupt_clip
    out = tmp_path / "out.mp4"
    code = cli_main(["run", str(bad), "-o", str(out), "--quiet", "--set", "pipeline.tolerate_decode_errors=true",
                     "--set", f"pipeline.workers={workers}"])
    err = capsys.readouterr().err
    assert code == 0, err
    warnings = [line for line in _error_lines(err) if "warning" in line]
    assert len(warnings) == 1, err
    assert "1 decode error(s) skipped, at frame(s) " in warnings[0] and "bad.mp4" in warnings[0]
    # Nothing but the garbled frame is lost: every other frame with its pts, and every audio packet.
    expected = [pts for pts in frame_pts(clip) if pts != garbled_pts]
    assert frame_pts(out) == expected
    assert "19 of 20 declared frames restored, 1 lost" in warnings[0]
    assert packet_hashes(out) == packet_hashes(bad) == packet_hashes(clip)
    assert _files(tmp_path) == ["out.mp4"]


def test_tolerate_decode_errors_is_validated(capsys):
    assert cli_main(["config", "show", "--set", "pipeline.tolerate_decode_errors=yes"]) == 2
    assert "pipeline.tolerate_decode_errors: must be true or false" in capsys.readouterr().err
    assert cli_main(["config", "show"]) == 0
    shown = capsys.readouterr().out
    assert "tolerate_decode_errors = false" in shown and "max_frame_pixels = 67108864" in shown


# -- 3. enormous declared frame size ------------------------------------------------------


def _huge_y4m(path: Path, width: int, height: int) -> Path:
    # A plain-text header declaring the size, then a frame with only a few bytes of data.
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\n".encode() + b"FRAME\n" + b"\x80" * 64)
    return path


def test_enormous_frame_size_is_refused_before_decoding(tmp_path, capsys, monkeypatch):
    big = _huge_y4m(tmp_path / "big.y4m", 8000, 9000)  # 72,000,000 pixels: FFmpeg itself accepts it

    def no_decoding(self):
        raise AssertionError("a frame was decoded before the size was checked")

    monkeypatch.setattr(VideoReader, "_prime", no_decoding)
    out = tmp_path / "out.mkv"
    assert cli_main(["run", str(big), "-o", str(out), "--quiet"]) == 3
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    for fragment in ("big.y4m", "8000x9000", "72000000", "67108864", "--set pipeline.max_frame_pixels="):
        assert fragment in lines[0]
    assert _files(tmp_path) == ["big.y4m"]


def test_max_frame_pixels_limit_is_configurable(tmp_path, capsys):
    clip = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=3, codec="ffv1", audio=True)
    out = tmp_path / "out.mkv"
    args = ["run", str(clip), "-o", str(out), "--quiet", "--set", "output.codec=ffv1"]
    assert cli_main([*args, "--set", "pipeline.max_frame_pixels=3071"]) == 3
    assert "64x48 (3072 pixels) exceeds the limit of 3071 pixels" in capsys.readouterr().err
    assert _files(tmp_path) == ["in.mkv"]
    assert cli_main([*args, "--set", "pipeline.max_frame_pixels=3072"]) == 0
    _assert_nothing_lost(clip, out, frames=3)
    assert cli_main(["config", "show", "--set", "pipeline.max_frame_pixels=0"]) == 2
    assert "pipeline.max_frame_pixels: must be an integer >= 1" in capsys.readouterr().err


def test_raised_limit_lets_a_huge_header_through_to_a_clean_input_error(tmp_path, capsys):
    big = _huge_y4m(tmp_path / "big.y4m", 8000, 9000)
    out = tmp_path / "out.mkv"
    code = cli_main(["run", str(big), "-o", str(out), "--quiet", "--set", "pipeline.max_frame_pixels=80000000"])
    assert code == 3
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "big.y4m" in lines[0]
    assert _files(tmp_path) == ["big.y4m"]


# -- 4. disk full while writing -----------------------------------------------------------

FILE_SIZE_LIMIT = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
"""


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_disk_full_is_exit_4_and_leaves_nothing(tmp_path, ext):
    clip = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=30, audio=True)
    assert clip.stat().st_size > 40_000  # the restored copy is bigger than the 20 kB limit
    out = tmp_path / f"out{ext}"
    result = _cli_subprocess(["run", clip, "-o", out, "--quiet", "--set", "output.preset=ultrafast"],
                             prelude=FILE_SIZE_LIMIT)
    assert result.returncode == 4, result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert f"'{out}'" in lines[0] and "no space left" in lines[0] and "partial" not in lines[0]
    assert _files(tmp_path) == ["in.mp4"]


# -- 5. more and fewer frames than workers --------------------------------------------------


@pytest.mark.parametrize(("workers", "frames"), [(1, 1), (1, 2), (4, 1), (4, 2), (4, 13)])
def test_frames_versus_workers(tmp_path, capsys, workers, frames):
    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=frames, audio=True)
    out = tmp_path / "out.mp4"
    code = cli_main(["run", str(clip), "-o", str(out), "--quiet", "--set", f"pipeline.workers={workers}",
                     "--set", "output.preset=ultrafast"])
    assert code == 0, capsys.readouterr().err
    _assert_nothing_lost(clip, out, frames=frames)
    assert _files(tmp_path) == ["in.mp4", "out.mp4"]


# -- 6. unusable output paths ----------------------------------------------------------------


@pytest.fixture
def small_clip(tmp_path):
    return make_clip(tmp_path / "in.mp4", width=64, height=48, frames=3, audio=True)


def test_output_directory_missing(tmp_path, small_clip, capsys):
    original = small_clip.read_bytes()
    assert cli_main(["run", str(small_clip), "-o", str(tmp_path / "missing" / "out.mp4"), "--quiet"]) == 4
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "does not exist" in lines[0]
    assert small_clip.read_bytes() == original
    assert _files(tmp_path) == ["in.mp4"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_output_directory_read_only(tmp_path, small_clip, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert cli_main(["run", str(small_clip), "-o", str(folder / "out.mp4"), "--quiet"]) == 4
        lines = _error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and "not writable" in lines[0]
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_through_a_symlink_to_the_input(tmp_path, small_clip, capsys, overwrite):
    original = small_clip.read_bytes()
    link = tmp_path / "link.mp4"
    link.symlink_to(small_clip)
    linked_folder = tmp_path / "alias"
    linked_folder.symlink_to(tmp_path, target_is_directory=True)
    for target in (link, linked_folder / "in.mp4"):
        args = ["run", str(small_clip), "-o", str(target), "--quiet"] + (["-y"] if overwrite else [])
        assert cli_main(args) == 4
        lines = _error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and "same file as the input" in lines[0], lines
    assert small_clip.read_bytes() == original
    assert link.is_symlink() and os.readlink(link) == str(small_clip)
    assert _files(tmp_path) == ["alias", "in.mp4", "link.mp4"]


@pytest.mark.parametrize("suffix, writer", [(".png", "png"), (".jpg", "jpg"), (".tif", "tif")])
def test_still_image_input_is_refused_with_one_line(tmp_path, capsys, suffix, writer):
    import cv2

    image = tmp_path / f"still{suffix}"
    cv2.imwrite(str(image), (np.random.default_rng(0).random((48, 64)) * 255).astype(np.uint8))
    out = tmp_path / "out.mp4"
    assert cli_main(["run", str(image), "-o", str(out), "--quiet"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "still image" in err[0] and image.name in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [image.name]


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs, where no regular file can be created")
def test_output_directory_where_nothing_can_be_written_even_as_root(small_clip, capsys):
    before = small_clip.read_bytes()
    assert cli_main(["run", str(small_clip), "-o", "/sys/kernel/videodeblur_out.mp4", "--quiet"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write in directory" in err[0]
    assert small_clip.read_bytes() == before


KILLABLE_CLI = """
import sys, time
from videodeblur.cli import main
from videodeblur.pipeline.restorer import FrameRestorer
original = FrameRestorer.restore
def slow(self, item, *args):
    time.sleep(0.05)  # a long render, so that the kill lands mid-run
    return original(self, item, *args)
FrameRestorer.restore = slow
sys.exit(main(sys.argv[1:]))
"""


def test_killed_run_leaves_no_output_and_the_next_run_cleans_up(tmp_path):
    """SIGKILL cannot be caught: the output name must still never hold a partial file, and the
    hidden temporary file the killed run left is removed by the next run into that folder."""
    import signal
    import time

    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=120, audio=True)
    out = tmp_path / "out.mp4"
    process = subprocess.Popen([sys.executable, "-c", KILLABLE_CLI, "run", str(clip), "-o", str(out), "--quiet"],
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(tmp_path.glob(".out.partial-*.mp4")):
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert not out.exists()
    leftovers = list(tmp_path.glob(".out.partial-*.mp4"))
    assert len(leftovers) == 1  # hidden, and named as unfinished
    assert cli_main(["run", str(clip), "-o", str(out), "--quiet"]) == 0
    assert out.exists() and not list(tmp_path.glob(".out.partial-*"))
    assert frame_pts(out) == frame_pts(clip)


# -- messages that name what the user gave ------------------------------------------------------


@pytest.mark.parametrize("name, sets, message", [
    ("z", [], "output '{out}': no file extension to choose the container; use .mkv, .mp4 or .mov"),
    ("z.avi", [], "output '{out}': AVI cannot hold the stream's timestamps"),
    ("z.mov", ["--set", "output.codec=ffv1"], "cannot hold ffv1 video; use .mkv (Matroska holds almost any stream)\n"),
])
def test_output_messages_name_the_output_and_a_container_that_works(tmp_path, capsys, name, sets, message):
    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=4, audio=False)
    out = tmp_path / name
    assert cli_main(["run", str(clip), "-o", str(out), "-q", *sets]) == 4
    said = capsys.readouterr().err
    assert message.format(out=out) in said and "partial" not in said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_the_python_api_names_its_overwrite_argument(tmp_path, capsys):
    from videodeblur import deblur_file
    from videodeblur.errors import OutputError

    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=4, audio=False)
    (tmp_path / "out.mp4").write_bytes(b"x")
    with pytest.raises(OutputError, match="exists; pass overwrite=True to overwrite"):
        deblur_file(clip, tmp_path / "out.mp4")
    assert cli_main(["run", str(clip), "-o", str(tmp_path / "out.mp4"), "-q"]) == 4
    assert "exists; pass -y to overwrite" in capsys.readouterr().err
