"""End-to-end: `videodeblur run` and `deblur_file` on generated clips, decoded back and checked."""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import replace

import cv2
import numpy as np
import pytest

from imaging import to_codes, to_linear_light
from media import decode_frames, frame_pts, make_clip, packet_hashes
from videodeblur import deblur_file, psf
from videodeblur.cli import main as cli_main
from videodeblur.config import load_config
from videodeblur.errors import InputError, Interrupted, OutputError, ProcessingError
from videodeblur.pipeline.kernels import kernel_for_plane

BLUR_RADIUS_PX = 2.0


class Blurrer:
    """A restorer that blurs every plane with a known disk (linear convolution), to make test input."""

    def __init__(self, config, info):
        self.max_value = float((1 << info.bit_depth) - 1)
        self.kernel = psf.disk(BLUR_RADIUS_PX)

    def restore(self, item):
        # In linear light, as a lens blurs (the clips are untagged, limited-range BT.709).
        light = to_linear_light(item.planes[0], int(self.max_value))
        blurred = cv2.filter2D(light.astype(np.float32), -1, self.kernel, borderType=cv2.BORDER_REFLECT)
        luma = np.clip(np.rint(to_codes(blurred, int(self.max_value))), 0, self.max_value).astype(item.planes[0].dtype)
        return replace(item, planes=[luma, *item.planes[1:]])


@pytest.fixture(scope="module")
def sharp_and_blurred(tmp_path_factory):
    """A sharp clip with audio and the same clip with luma blurred by a known disk (lossless ffv1)."""
    folder = tmp_path_factory.mktemp("clips")
    sharp = make_clip(folder / "sharp.mkv", width=96, height=64, frames=10, codec="ffv1", audio=True)
    blurred = folder / "blurred.mkv"
    deblur_file(sharp, blurred, load_config(None, ["output.codec=ffv1"]), restorer_factory=Blurrer)
    return sharp, blurred


def _luma_psnr(a, b, border=6):
    a = a[border:-border, border:-border].astype(np.float64)
    b = b[border:-border, border:-border].astype(np.float64)
    return 10 * np.log10(255.0**2 / np.mean((a - b) ** 2))


def test_run_restores_sharpness_and_keeps_frames_pts_and_audio(sharp_and_blurred, tmp_path):
    sharp, blurred = sharp_and_blurred
    restored = tmp_path / "restored.mkv"
    code = cli_main(["run", str(blurred), "-o", str(restored), "--set", "psf.radius=2.0",
                     "--set", "output.codec=ffv1", "--quiet"])
    assert code == 0
    source, before, after = decode_frames(sharp), decode_frames(blurred), decode_frames(restored)
    assert len(after) == len(before) == len(source) == 10
    assert [f.pts for f in after] == [f.pts for f in before]
    assert packet_hashes(restored) == packet_hashes(blurred)
    assert after[0].pix_fmt == before[0].pix_fmt
    gains = [_luma_psnr(a.planes[0], s.planes[0]) - _luma_psnr(b.planes[0], s.planes[0])
             for s, b, a in zip(source, before, after)]
    assert min(gains) > 1.0, gains
    # planes = "luma": chroma is passed through bit for bit (lossless codec).
    for b, a in zip(before, after):
        assert np.array_equal(a.planes[1], b.planes[1]) and np.array_equal(a.planes[2], b.planes[2])


def test_planes_all_restores_chroma_too(sharp_and_blurred, tmp_path):
    _, blurred = sharp_and_blurred
    restored = tmp_path / "restored.mkv"
    deblur_file(blurred, restored, load_config(None, ["psf.radius=2.0", "output.codec=ffv1",
                                                      "deconvolution.planes=all"]))
    before, after = decode_frames(blurred), decode_frames(restored)
    assert not np.array_equal(after[0].planes[1], before[0].planes[1])
    assert after[0].planes[1].shape == before[0].planes[1].shape


def test_trim_by_frames(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=12, codec="ffv1", audio=False)
    out = tmp_path / "trim.mkv"
    report = deblur_file(clip, out, load_config(None, ["trim.start_frame=3", "trim.end_frame=8",
                                                       "output.codec=ffv1"]))
    assert report.frames == 5
    assert frame_pts(out) == frame_pts(clip)[3:8]


class FailingRestorer:
    """Raises while restoring frame ``FAIL_AT``."""

    FAIL_AT = 4

    def __init__(self, config, info):
        pass

    def restore(self, item):
        if item.index == self.FAIL_AT:
            raise RuntimeError("simulated failure")
        return item


def test_worker_error_names_frame_leaves_no_output_and_no_threads(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=12, audio=True)
    out = tmp_path / "out.mp4"
    threads_before = threading.active_count()
    with pytest.raises(ProcessingError, match="frame 4") as caught:
        deblur_file(clip, out, restorer_factory=FailingRestorer)
    assert caught.value.exit_code == 5
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # no temporary left either
    assert threading.active_count() == threads_before


def test_cli_refuses_existing_output_and_input_as_output(tmp_path, capsys):
    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=4, audio=False)
    original = clip.read_bytes()
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    assert cli_main(["run", str(clip), "-o", str(existing), "--quiet"]) == OutputError.exit_code
    assert existing.read_bytes() == b"keep me"
    assert cli_main(["run", str(clip), "-o", str(tmp_path / "." / "in.mp4"), "-y", "--quiet"]) == OutputError.exit_code
    assert clip.read_bytes() == original
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("videodeblur: error:") for line in err)


def test_cli_missing_input_is_one_line_exit_3(tmp_path, capsys):
    code = cli_main(["run", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "out.mp4")])
    assert code == InputError.exit_code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.mp4" in err[0]
    assert not (tmp_path / "out.mp4").exists()


def test_cli_config_errors_listed_together(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text('[psf]\nradiuss = 3\nkind = "motion"\n[deconvolution]\nnsr = -1\n')
    code = cli_main(["run", "in.mp4", "-o", str(tmp_path / "o.mp4"), "--config", str(config),
                     "--set", "output.crf=abc"])
    assert code == 2
    err = capsys.readouterr().err
    for fragment in ("psf.radiuss", "did you mean", "deconvolution.nsr", "psf.length", "output.crf"):
        assert fragment in err


def test_config_show_round_trips(tmp_path, capsys):
    assert cli_main(["config", "show", "--set", "psf.kind=gaussian", "--set", "psf.sigma=1.5"]) == 0
    shown = capsys.readouterr().out
    path = tmp_path / "shown.toml"
    path.write_text(shown)
    assert load_config(path) == load_config(None, ["psf.kind=gaussian", "psf.sigma=1.5"])


def test_kernel_for_chroma_plane_halves_the_blur():
    kernel = psf.disk(4.0)
    chroma = kernel_for_plane(kernel, 0.5, 0.5)
    assert chroma.shape[0] % 2 == 1 and chroma.shape[0] < kernel.shape[0]
    assert abs(chroma.sum() - 1) < 1e-6
    assert kernel_for_plane(kernel, 1.0, 1.0) is kernel
    wide = kernel_for_plane(kernel, 0.5, 1.0)  # 4:2:2: only the width halves
    assert wide.shape[0] == kernel.shape[0] and wide.shape[1] < kernel.shape[1]


SLOW_CLI = """
import sys, time
from videodeblur.cli import main
from videodeblur.pipeline.restorer import FrameRestorer
original = FrameRestorer.restore
def slow(self, item, *args):
    time.sleep(0.05)  # a long render, so that Ctrl-C lands mid-run
    return original(self, item, *args)
FrameRestorer.restore = slow
sys.exit(main(sys.argv[1:]))
"""


def start_slow_run(tmp_path):
    """``videodeblur run`` of 600 slow frames in a subprocess, once it has started writing."""
    import subprocess
    import time

    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=600, audio=True)
    process = subprocess.Popen([sys.executable, "-c", SLOW_CLI, "run", str(clip), "-o", str(tmp_path / "out.mp4"),
                                "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    # Wait until the run has really started writing (its temporary file exists).
    while time.monotonic() < deadline and not any(p.name.startswith(".out") for p in tmp_path.iterdir()):
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be stopped"
    return process


def test_ctrl_c_stops_quickly_with_exit_130_and_no_partial_file(tmp_path):
    import signal
    import time

    # 600 frames of 50 ms restores, one worker per core: on 2 cores a run that ignored Ctrl-C
    # would go on for about 15 s, so stopping within 8 s (generous: the shared machine
    # sometimes stalls for seconds; 5 s failed once) shows it stopped early.
    process = start_slow_run(tmp_path)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 8
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_job_schedulers_signal_stops_like_ctrl_c(tmp_path, name, code):
    import signal

    process = start_slow_run(tmp_path)
    process.send_signal(getattr(signal, name))
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    assert stderr.strip().splitlines() == [f"videodeblur: stopped by {name}: stopped before the end; no output written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # the partial file is gone


def test_a_stop_while_the_output_is_being_set_up_says_so_and_leaves_no_file(tmp_path):
    """A Ctrl-C (or the command line's SIGTERM) that lands after the temporary output exists but
    before the engine runs is reported like one inside the engine, and the file is removed."""
    clip = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=5, codec="ffv1")

    class StoppedBeforeTheEngine:
        def __init__(self, config, info):
            pass

        def schedule(self):  # asked for after the writer has created the temporary file
            assert any(p.name.startswith(".out") for p in tmp_path.iterdir())
            raise KeyboardInterrupt

        def restore(self, item):
            return item

    try:
        deblur_file(clip, tmp_path / "out.mkv", load_config(None, ["output.codec=ffv1"]),
                    restorer_factory=StoppedBeforeTheEngine)
        message = "the run went on"
    except Interrupted as error:
        message = str(error)
    except KeyboardInterrupt:  # (caught here: escaping, it would end the whole test session)
        message = "a bare KeyboardInterrupt"
    assert "stopped before the end; no output written" in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


@pytest.mark.parametrize("workers, frames_in_flight", [(1, 1), (2, 3), (4, 2)])
def test_frames_in_flight_bounds_the_frames_held(tmp_path, monkeypatch, workers, frames_in_flight):
    """Memory is bounded: decoded-but-unwritten frames never exceed frames_in_flight (+1 being handed over)."""
    from videodeblur.pipeline import engine, runner

    clip = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=30, codec="ffv1", audio=True)
    written = []
    held = []
    original_write = runner.VideoWriter.write_frame

    def counting_write(self, item):
        written.append(item.index)
        return original_write(self, item)

    class Recorder:
        def __init__(self, config, info):
            pass

        def restore(self, item):
            held.append(item.index + 1 - len(written))  # frames decoded up to this one, minus written
            return item

    monkeypatch.setattr(runner.VideoWriter, "write_frame", counting_write)
    config = load_config(None, [f"pipeline.workers={workers}", f"pipeline.frames_in_flight={frames_in_flight}",
                                "output.codec=ffv1"])
    report = deblur_file(clip, tmp_path / "out.mkv", config, restorer_factory=Recorder)
    assert report.frames == 30 and written == list(range(30))
    # pending holds at most frames_in_flight; the hand-over queue and the decoder's hand add 3.
    assert max(held) <= frames_in_flight + engine.HANDOVER_QUEUE_SIZE + 1


def test_planes_all_on_odd_size_and_444(tmp_path):
    for pix_fmt, size in (("yuv420p", (67, 45)), ("yuv444p", (64, 48))):
        clip = make_clip(tmp_path / f"{pix_fmt}.mkv", width=size[0], height=size[1], frames=3, pix_fmt=pix_fmt,
                         codec="ffv1", audio=False)
        out = tmp_path / f"{pix_fmt}_out.mkv"
        deblur_file(clip, out, load_config(None, ["output.codec=ffv1", "deconvolution.planes=all"]))
        before, after = decode_frames(clip), decode_frames(out)
        assert [p.shape for p in after[0].planes] == [p.shape for p in before[0].planes]
        assert after[0].pix_fmt == pix_fmt
        assert not np.array_equal(after[0].planes[2], before[0].planes[2])


def test_trim_by_seconds_keeps_the_frames_of_that_span(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=25, fps=25, codec="ffv1", audio=True)
    out = tmp_path / "trim_s.mkv"
    report = deblur_file(clip, out, load_config(None, ["trim.start_s=0.2", "trim.end_s=0.6", "output.codec=ffv1"]))
    assert report.frames == 10  # frames at 0.20, 0.24, ..., 0.56 s
    assert frame_pts(out) == frame_pts(clip)[5:15]
    assert report.packets_copied > 0  # the audio of that span came along


def test_numpy_hugepages_are_off_during_a_run_and_restored_after(sharp_and_blurred, tmp_path, monkeypatch):
    """A run switches NumPy's madvise(MADV_HUGEPAGE) off (page faults in advised regions may
    compact memory, which made deconvolver builds several times slower in a run) and puts the
    previous setting back afterwards, also when the run fails."""
    from videodeblur.pipeline import runtime

    setter = runtime.madvise_hugepage_setter()
    if setter is None:  # a NumPy without the switch: runs keep its default (slower, not wrong)
        pytest.skip("this NumPy has no _set_madvise_hugepage")
    seen = []

    class Probe:
        def __init__(self, config, info):
            pass

        def restore(self, item):
            previous = setter(False)  # reading the switch means setting it: put it back
            setter(previous)
            seen.append(previous)
            return item

    _, blurred = sharp_and_blurred
    before = setter(True)
    try:
        deblur_file(blurred, tmp_path / "out.mkv", None, progress=False, restorer_factory=Probe)
        assert seen and not any(seen)
        assert setter(True) is True  # restored
        with pytest.raises(RuntimeError):
            with runtime.no_numpy_hugepages():
                assert setter(False) is False
                raise RuntimeError("boom")
        assert setter(True) is True
    finally:
        setter(before)


def test_opencv_runs_without_its_own_threads_during_a_run_and_gets_them_back_after(sharp_and_blurred, tmp_path):
    """The workers are the run's parallelism: OpenCV's calls stay in the thread that makes them
    during a run, and its setting comes back afterwards, also when a run fails; blocks nested
    or overlapping in threads share the setting, and the last to leave puts it back."""
    from videodeblur.pipeline import runtime

    seen = []

    class Probe:
        def __init__(self, config, info):
            pass

        def restore(self, item):
            seen.append(cv2.getNumThreads())
            return item

    _, blurred = sharp_and_blurred
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        deblur_file(blurred, tmp_path / "out.mkv", None, progress=False, restorer_factory=Probe)
        assert seen and set(seen) == {1}
        assert cv2.getNumThreads() == 3
        with pytest.raises(RuntimeError):
            with runtime.single_threaded_opencv():
                raise RuntimeError("boom")
        assert cv2.getNumThreads() == 3
        inside, leave = threading.Event(), threading.Event()

        def other_block():
            with runtime.single_threaded_opencv():
                inside.set()
                leave.wait(5)

        thread = threading.Thread(target=other_block)
        with runtime.single_threaded_opencv():
            thread.start()
            assert inside.wait(5)
            with runtime.single_threaded_opencv():
                assert cv2.getNumThreads() == 1
        assert cv2.getNumThreads() == 1  # the other thread's block is still open
        leave.set()
        thread.join(5)
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_restoration_workers_run_at_the_lowest_priority_and_the_rest_does_not(sharp_and_blurred, tmp_path):
    """The encoder is the critical path: the workers fill its gaps at nice 19, while the
    calling thread (which feeds the encoder) keeps its priority, during and after the run."""
    import os

    from videodeblur.pipeline import runtime

    seen = []

    class Probe:
        def __init__(self, config, info):
            pass

        def restore(self, item):
            seen.append((threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
            return item

    _, blurred = sharp_and_blurred
    caller = threading.get_native_id()
    base = os.getpriority(os.PRIO_PROCESS, caller)
    deblur_file(blurred, tmp_path / "out.mkv", None, progress=False, restorer_factory=Probe)
    assert seen and {nice for _, nice in seen} == {runtime.WORKER_NICE}
    assert all(name.startswith("videodeblur-worker") for name, _ in seen)
    assert os.getpriority(os.PRIO_PROCESS, caller) == base


# -- progress that tells the truth ----------------------------------------------------------


def test_progress_counts_frames_the_encoder_finished_and_its_tail(tmp_path, monkeypatch):
    from videodeblur.pipeline import runner

    seen = []

    class Recording:
        def __init__(self, total, name):
            self.total, self.n = total, 0

        def update(self, count=1):
            self.n += count
            seen.append((self.n, writers[-1].frames_written))

        def close(self):
            pass

    writers = []
    original_init = runner.VideoWriter.__init__

    def keep(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        writers.append(self)

    monkeypatch.setattr(runner.VideoWriter, "__init__", keep)
    monkeypatch.setattr(runner, "progress_bar", lambda enabled, total, name: Recording(total, name))
    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=60, audio=False)
    deblur_file(clip, tmp_path / "out.mp4", load_config(None, ["psf.kind=gaussian", "psf.sigma=1"]))
    # x264 holds frames (look-ahead): while it runs, the bar is behind the frames handed to it,
    # and it reaches the total only with the encoder's tail.
    assert seen[-1][0] == 60
    assert any(done < handed for done, handed in seen)
    assert all(done <= handed for done, handed in seen)


def test_without_a_terminal_progress_is_a_line_every_few_seconds():
    import io

    from videodeblur.pipeline.runner import LineProgress

    now = [100.0]
    out = io.StringIO()
    progress = LineProgress(200, "shot.mov", file=out, clock=lambda: now[0], interval_s=5.0)
    for _ in range(50):
        now[0] += 0.2  # 5 frames/s
        progress.update(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # at 5 s and 10 s
    assert lines[-1] == "shot.mov: 50/200 frames, 5.0 frames/s, ETA 00:00:30"


def test_progress_on_a_pipe_prints_lines(tmp_path):
    import subprocess

    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=600, audio=False)
    result = subprocess.run([sys.executable, "-c", SLOW_CLI.replace("0.05", "0.03"), "run", str(clip), "-o",
                             str(tmp_path / "out.mp4")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("in.mp4: ")]
    assert lines and all(re.fullmatch(r"in\.mp4: \d+/600 frames, [\d.]+ frames/s, ETA \d\d:\d\d:\d\d", line)
                         for line in lines)
