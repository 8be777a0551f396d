"""Runs in segments (processes, a Dask cluster) equal a single run, resume, and fail cleanly.

Every cluster here is started by the test on 127.0.0.1 and stopped by it: a
``distributed.LocalCluster`` with two worker processes, and a real ``dask scheduler`` with two
``dask worker`` processes. FFV1 output is compared plane by plane with a single run; x264
output by frame count, timestamps, audio packets and a clean decode by the ffmpeg program.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from imaging import blurred_frames, moving_window, write_luma_clip
from media import corrupt_video_packet, decode_frames, frame_pts, make_clip, packet_hashes
from videodeblur import deblur_file, psf
from videodeblur.config import load_config
from videodeblur.errors import ProcessingError
from videodeblur.io import VideoReader
from videodeblur.io.frame_index import frame_index
from videodeblur.pipeline import segments as seg

distributed = pytest.importorskip("distributed")

def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def decode_warnings(path: Path) -> str:
    """What the ffmpeg program says decoding the whole file (empty: no error, no warning)."""
    result = subprocess.run([ffmpeg(), "-v", "warning", "-i", str(path), "-f", "null", "-"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return re.sub(r" @ 0x[0-9a-f]+", "", result.stderr.strip())  # object addresses differ per run


def planes_equal(a: Path, b: Path) -> bool:
    first, second = decode_frames(a), decode_frames(b)
    return len(first) == len(second) and all(
        x.pts == y.pts and all(np.array_equal(p, q) for p, q in zip(x.planes, y.planes))
        for x, y in zip(first, second))


@pytest.fixture(scope="module")
def focus_pull(camera, tmp_path_factory):
    """A focus pull (disk 2.5 -> 4.5 px) over 36 frames of a moving photograph, lossless."""
    frames = 36
    sharp = moving_window(camera[60:, 60:], frames, 192, 144, step=(3, 2))
    blurred = blurred_frames(sharp, [psf.disk(r) for r in np.linspace(2.5, 4.5, frames)])
    return write_luma_clip(tmp_path_factory.mktemp("segments") / "pull.mkv", blurred)


@pytest.fixture(scope="module")
def with_audio(tmp_path_factory):
    """x264 with B-frames, an open GOP and audio."""
    return make_clip(tmp_path_factory.mktemp("segments") / "open_gop.mp4", width=96, height=64, frames=60, gop=12,
                     codec_options={"bf": "3", "x264-params": "open-gop=1"})


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local.scheduler_address


def single(clip, out, overrides):
    return deblur_file(clip, out, load_config(None, overrides), progress=False)


# -- planning -------------------------------------------------------------------------------


def test_segments_cover_the_range_evenly():
    plan = seg.plan_segments((5, 105), 30)
    assert [(s.first, s.last) for s in plan] == [(5, 29), (30, 54), (55, 79), (80, 104)]
    assert seg.plan_segments((0, 7), 250) == [seg.Segment(0, 6)]  # shorter than one segment
    assert seg.plan_segments((3, 3), 10) == []


def test_default_segment_is_about_ten_seconds(with_audio):
    with VideoReader(with_audio) as reader:
        frames = frame_index(with_audio, reader.info.stream_index)
    assert seg.segment_length(load_config(None, []), frames) == 250  # 25 fps
    assert seg.segment_length(load_config(None, ["pipeline.segment_frames=7"]), frames) == 7


def test_trim_gives_the_pass_of_a_single_run(with_audio):
    with VideoReader(with_audio) as reader:
        frames = frame_index(with_audio, reader.info.stream_index)
    assert seg.pass_context(frames, load_config(None, ["trim.start_frame=5", "trim.end_frame=20"]).trim) == (5, 20)
    assert seg.pass_context(frames, load_config(None, ["trim.start_s=0.4", "trim.end_s=1.0"]).trim) == (10, 25)


def test_the_threads_backend_imports_neither_joblib_nor_dask(with_audio, tmp_path):
    code = ("import sys; from videodeblur import deblur_file; "
            f"deblur_file({str(with_audio)!r}, {str(tmp_path / 'o.mp4')!r}, progress=False); "
            "print(sorted(m for m in ('distributed', 'dask', 'joblib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- identity with a single run -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["auto-defocus", "keyframed"])
def test_processes_equal_a_single_run_plane_for_plane(focus_pull, tmp_path, kind):
    psf_settings = (["psf.kind=auto-defocus", "psf.smoothing_frames=4"] if kind == "auto-defocus" else
                    ["psf.kind=defocus", "psf.keyframes=[{frame = 0, radius = 2.5}, {frame = 35, radius = 4.5}]"])
    base = [*psf_settings, "output.codec=ffv1"]
    single(focus_pull, tmp_path / "single.mkv", base)
    report = single(focus_pull, tmp_path / "parts.mkv",
                    [*base, "pipeline.backend=processes", "pipeline.workers=2", "pipeline.segment_frames=7"])
    assert (report.frames, report.segments, report.segments_reused) == (36, 6, 0)
    assert planes_equal(tmp_path / "single.mkv", tmp_path / "parts.mkv")  # seams at 6, 12, 18, 24, 30
    assert not seg.segment_folder(tmp_path / "parts.mkv").exists()


def test_a_clip_shorter_than_one_segment_is_one_segment(focus_pull, tmp_path):
    base = ["psf.kind=auto-defocus", "psf.smoothing_frames=4", "output.codec=ffv1"]
    single(focus_pull, tmp_path / "single.mkv", base)
    report = single(focus_pull, tmp_path / "parts.mkv",
                    [*base, "pipeline.backend=processes", "pipeline.segment_frames=500"])
    assert (report.frames, report.segments) == (36, 1)
    assert planes_equal(tmp_path / "single.mkv", tmp_path / "parts.mkv")


def test_a_local_dask_cluster_equals_a_single_run(focus_pull, cluster, tmp_path):
    base = ["psf.kind=auto-defocus", "psf.smoothing_frames=4", "output.codec=ffv1"]
    single(focus_pull, tmp_path / "single.mkv", base)
    report = single(focus_pull, tmp_path / "dask.mkv",
                    [*base, "pipeline.backend=dask", f"pipeline.scheduler={cluster}", "pipeline.segment_frames=9"])
    assert report.segments == 4
    assert planes_equal(tmp_path / "single.mkv", tmp_path / "dask.mkv")


def test_x264_segments_join_into_one_stream_with_the_audio(with_audio, cluster, tmp_path):
    single(with_audio, tmp_path / "single.mp4", [])
    single(with_audio, tmp_path / "dask.mp4",
           ["pipeline.backend=dask", f"pipeline.scheduler={cluster}", "pipeline.segment_frames=13"])
    assert frame_pts(tmp_path / "dask.mp4") == frame_pts(tmp_path / "single.mp4") == frame_pts(with_audio)
    assert packet_hashes(tmp_path / "dask.mp4") == packet_hashes(tmp_path / "single.mp4") == packet_hashes(with_audio)
    # The same messages as for a single run (the bundled ffmpeg notes the MP4 track names
    # PyAV writes); no decode error, no timestamp warning.
    said = decode_warnings(tmp_path / "dask.mp4")
    assert said == decode_warnings(tmp_path / "single.mp4")
    assert not any(word in said.lower() for word in ("error", "dts", "pts", "timestamp", "invalid"))
    joined, alone = decode_frames(tmp_path / "dask.mp4"), decode_frames(tmp_path / "single.mp4")
    starts = [s.first for s in seg.plan_segments((0, 60), 13)]
    assert starts == [0, 12, 24, 36, 48]
    assert all(joined[n].key_frame for n in starts)  # every segment starts with a key frame
    assert (joined[0].color_primaries, joined[0].pix_fmt) == (alone[0].color_primaries, alone[0].pix_fmt)


@pytest.mark.parametrize("trim", [["trim.start_frame=7", "trim.end_frame=41"], ["trim.start_s=0.5", "trim.end_s=1.7"]])
def test_a_trimmed_run_in_segments_equals_a_single_trimmed_run(with_audio, tmp_path, trim):
    single(with_audio, tmp_path / "single.mp4", [*trim, "output.codec=ffv1", "output.pix_fmt=yuv420p"])
    single(with_audio, tmp_path / "parts.mkv", [*trim, "output.codec=ffv1", "output.pix_fmt=yuv420p",
                                               "pipeline.backend=processes", "pipeline.segment_frames=10"])
    # ffv1 in .mp4 is not possible; compare planes and timestamps via the same container
    single(with_audio, tmp_path / "single.mkv", [*trim, "output.codec=ffv1"])
    assert planes_equal(tmp_path / "single.mkv", tmp_path / "parts.mkv")
    assert packet_hashes(tmp_path / "parts.mkv") == packet_hashes(tmp_path / "single.mkv")


def test_variable_frame_rate_keeps_every_timestamp(tmp_path):
    clip = make_clip(tmp_path / "vfr.mkv", frames=40, vfr=True, codec="ffv1")
    single(clip, tmp_path / "single.mkv", ["output.codec=ffv1"])
    single(clip, tmp_path / "parts.mkv", ["output.codec=ffv1", "pipeline.backend=processes",
                                          "pipeline.segment_frames=11"])
    assert frame_pts(tmp_path / "parts.mkv") == frame_pts(tmp_path / "single.mkv")
    assert planes_equal(tmp_path / "single.mkv", tmp_path / "parts.mkv")
    assert packet_hashes(tmp_path / "parts.mkv") == packet_hashes(tmp_path / "single.mkv")


# -- failures, resume, a killed worker ------------------------------------------------------


def test_a_failed_segment_exits_5_naming_its_frames_and_keeps_the_others(with_audio, tmp_path):
    damaged = corrupt_video_packet(with_audio, tmp_path / "damaged.mp4", packet_index=20)
    out = tmp_path / "out.mp4"
    result = subprocess.run([sys.executable, "-m", "videodeblur", "run", str(damaged), "-o", str(out), "-q",
                             "--set", "pipeline.backend=processes", "--set", "pipeline.segment_frames=15"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 5, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "segment frames 15..29 failed" in line and "decode error" in line
    assert not out.exists()
    folder = seg.segment_folder(out)
    finished = sorted(p.name for p in folder.glob("frames_*.json"))
    assert finished == ["frames_0000000-0000014.json", "frames_0000030-0000044.json", "frames_0000045-0000059.json"]


def _run_cli(clip, out, *sets, timeout=180):
    command = [sys.executable, "-m", "videodeblur", "run", str(clip), "-o", str(out), "-q"]
    for item in sets:
        command += ["--set", item]
    return command


@pytest.fixture(scope="module")
def slow_clip(camera, tmp_path_factory):
    """Frames big enough that total variation takes a noticeable time per segment."""
    sharp = moving_window(camera, 48, 448, 320, step=(1, 1))
    blurred = blurred_frames(sharp, [psf.disk(3.0)] * 48)
    return write_luma_clip(tmp_path_factory.mktemp("segments") / "slow.mkv", blurred)


def test_ctrl_c_keeps_finished_segments_and_the_same_command_resumes(slow_clip, tmp_path):
    out = tmp_path / "out.mkv"
    sets = ["pipeline.backend=processes", "pipeline.workers=2", "pipeline.segment_frames=6",
            "deconvolution.method=tv", "output.codec=ffv1"]
    first = subprocess.Popen(_run_cli(slow_clip, out, *sets), stderr=subprocess.PIPE, text=True)
    folder = seg.segment_folder(out)
    deadline = time.monotonic() + 120
    while not list(folder.glob("frames_*.json")) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stderr
    assert "the same command resumes" in stderr and not out.exists()
    kept = {p.name: p.stat().st_mtime_ns for p in folder.glob("frames_*.mkv")}
    assert 1 <= len(kept) < 8
    second = subprocess.run(_run_cli(slow_clip, out, *sets), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"({len(kept)} finished by an earlier run)" in second.stderr
    single(slow_clip, tmp_path / "single.mkv", ["deconvolution.method=tv", "output.codec=ffv1"])
    assert planes_equal(tmp_path / "single.mkv", out)


def test_a_changed_config_renders_every_segment_again(focus_pull, tmp_path):
    out = tmp_path / "out.mkv"
    base = ["output.codec=ffv1", "pipeline.backend=processes", "pipeline.segment_frames=12"]
    config = load_config(None, [*base, "psf.radius=3"])
    with VideoReader(focus_pull) as reader:
        frames = frame_index(focus_pull, reader.info.stream_index)
    plan = seg.plan_segments((0, frames.frame_count), 12)
    folder = seg.segment_folder(out)
    key = seg.run_key(focus_pull, config, plan)
    seg.prepare_folder(folder, key, plan, ".mkv")
    job = seg.SegmentJob(str(focus_pull), str(folder), ".mkv", plan[0], (0, frames.frame_count), config, key)
    assert not seg.render_segment(job).error
    # The same job finds its segment; another radius does not, and clears the folder.
    assert list(seg.prepare_folder(folder, key, plan, ".mkv")) == [plan[0]]
    other = seg.run_key(focus_pull, load_config(None, [*base, "psf.radius=3.5"]), plan)
    assert other != key and seg.run_key(focus_pull, load_config(None, [*base, "psf.radius=3", "pipeline.workers=1"]),
                                        plan) == key  # where it runs does not matter
    report = single(focus_pull, out, [*base, "psf.radius=3.5"])
    assert report.segments_reused == 0
    reused = tmp_path / "again.mkv"
    seg.prepare_folder(seg.segment_folder(reused), seg.run_key(focus_pull, config, plan), plan, ".mkv")
    assert json.loads((seg.segment_folder(reused) / "manifest.json").read_text())["key"] == key


def _start(command, env):
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)


def test_a_worker_killed_mid_segment_is_retried_and_the_run_completes(slow_clip, tmp_path):
    env = dict(os.environ)
    scheduler_file = tmp_path / "scheduler.json"
    processes = [_start(["dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                         "--scheduler-file", str(scheduler_file)], env)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            processes.append(_start(["dask", "worker", address, "--nthreads", "1", "--nworkers", "1",
                                     "--host", "127.0.0.1", "--no-dashboard"], env))
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        out = tmp_path / "out.mkv"
        folder = seg.segment_folder(out)
        sets = ["pipeline.backend=dask", f"pipeline.scheduler={address}", "pipeline.segment_frames=8",
                "deconvolution.method=tv", "output.codec=ffv1"]
        run = subprocess.Popen(_run_cli(slow_clip, out, *sets), stderr=subprocess.PIPE, text=True)
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and run.poll() is None:
            partial = [p for p in folder.glob(".frames_*.partial.mkv")] if folder.exists() else []
            if partial:  # ".frames_A-B.PID.partial.mkv": the worker process rendering it
                killed = int(partial[0].name.split(".")[2])
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        _, stderr = run.communicate(timeout=300)
        assert killed is not None, "no segment was seen in progress"
        assert run.returncode == 0, stderr
        single(slow_clip, tmp_path / "single.mkv", ["deconvolution.method=tv", "output.codec=ffv1"])
        assert planes_equal(tmp_path / "single.mkv", out)
    finally:
        for process in reversed(processes):
            with_group = os.getpgid(process.pid) if process.poll() is None else None
            if with_group is not None:
                os.killpg(with_group, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def test_a_scheduler_that_does_not_answer_is_a_clear_error(focus_pull, tmp_path, monkeypatch):
    from videodeblur.pipeline import backends

    monkeypatch.setattr(backends, "CONNECT_TIMEOUT_S", 2)
    config = load_config(None, ["pipeline.backend=dask", "pipeline.scheduler=tcp://127.0.0.1:9"])
    with pytest.raises(Exception) as caught:
        deblur_file(focus_pull, tmp_path / "o.mkv", config, progress=False)
    assert "no Dask scheduler answers at tcp://127.0.0.1:9" in str(caught.value)
    assert not isinstance(caught.value, ProcessingError)
