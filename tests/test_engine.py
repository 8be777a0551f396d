"""The frame engine renders any frame range exactly as a whole run renders those frames.

A run writes FFV1 (lossless), so its decoded planes are exactly what the engine produced; a
range rendered on its own (with the warm-up margin its schedule needs) must give every plane
of those frames bit for bit, and the same kernels, for fixed, keyframed and estimated blurs,
at the start, in the middle and at the end of the clip, and inside a trimmed run.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from imaging import blurred_frames, moving_window, write_luma_clip
from media import decode_frames
from videodeblur import deblur_file, estimate_track, psf
from videodeblur.config import load_config
from videodeblur.io import VideoReader
from videodeblur.io.frame_index import frame_index
from videodeblur.pipeline.engine import InlineExecutor, render_range
from videodeblur.pipeline.restorer import FrameRestorer

FRAMES, WIDTH, HEIGHT = 30, 256, 192
RADII = np.linspace(2.5, 4.5, FRAMES)  # a focus pull: the kernel changes over the clip

CONFIGS = {
    "fixed": ["psf.kind=defocus", "psf.radius=3.5"],
    "keyframed": ["psf.kind=defocus", "psf.keyframes=[{frame = 0, radius = 2.5}, {frame = 29, radius = 4.5}]"],
    "estimated": ["psf.kind=auto-defocus", "psf.smoothing_frames=4"],
    "estimated-auto": ["psf.kind=auto", "psf.smoothing_frames=3"],
}


@pytest.fixture(scope="module")
def focus_pull(camera, tmp_path_factory):
    sharp = moving_window(camera[60:, 60:], FRAMES, WIDTH, HEIGHT, step=(3, 2))
    blurred = blurred_frames(sharp, [psf.disk(r) for r in RADII])
    return write_luma_clip(tmp_path_factory.mktemp("engine") / "pull.mkv", blurred)


class Collect:
    def __init__(self):
        self.frames = []

    def frame(self, rendered):
        self.frames.append(rendered)

    def packet(self, packet):
        raise AssertionError("a range has no packets")


def render(clip, config, first, last, context=None, executor=None):
    sink = Collect()
    with VideoReader(clip) as reader:
        frames = frame_index(reader.path, reader.info.stream_index)
        restorer = FrameRestorer(config, reader.info)
        render_range(reader, frames, restorer.schedule(), restorer.restore, first, last, sink,
                     executor=executor or InlineExecutor(), frames_in_flight=3, context=context)
    return sink.frames


@pytest.fixture(scope="module")
def whole_runs(focus_pull, tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    runs = {}
    for name, overrides in CONFIGS.items():
        config = load_config(None, [*overrides, "output.codec=ffv1"])
        out = folder / f"{name}.mkv"
        deblur_file(focus_pull, out, config, progress=False)
        runs[name] = (config, decode_frames(out), estimate_track(focus_pull, config))
    return runs


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("first, last", [(0, 4), (12, 19), (25, 29), (17, 17)])
def test_a_range_equals_those_frames_of_a_whole_run(focus_pull, whole_runs, name, first, last):
    config, decoded, rows = whole_runs[name]
    with ThreadPoolExecutor(2) as pool:
        rendered = render(focus_pull, config, first, last, executor=pool)
    assert [r.original.index for r in rendered] == list(range(first, last + 1))
    for frame in rendered:
        whole = decoded[frame.original.index]
        assert frame.row.spec == rows[frame.original.index].spec
        for mine, theirs in zip(frame.restored.planes, whole.planes):
            np.testing.assert_array_equal(mine, theirs)


def test_the_estimated_kernels_change_over_the_clip(whole_runs):
    """So that the seams above are a real test: the kernel near a range's edge depends on
    frames outside the range."""
    _, _, rows = whole_runs["estimated"]
    radii = [row.spec.get("radius") for row in rows if row.spec.kind == "defocus"]
    assert len(radii) >= FRAMES - 2 and max(radii) - min(radii) > 1.0


def test_a_range_inside_a_trimmed_run_smooths_over_the_trimmed_frames_only(focus_pull, tmp_path):
    config = load_config(None, [*CONFIGS["estimated"], "trim.start_frame=8", "trim.end_frame=24",
                                "output.codec=ffv1"])
    out = tmp_path / "trimmed.mkv"
    deblur_file(focus_pull, out, config, progress=False)
    decoded = decode_frames(out)  # frames 8..23
    rendered = render(focus_pull, config, 8, 11, context=(8, 24))
    for frame in rendered:
        for mine, theirs in zip(frame.restored.planes, decoded[frame.original.index - 8].planes):
            np.testing.assert_array_equal(mine, theirs)


def test_a_range_outside_its_pass_is_refused(focus_pull):
    from videodeblur.errors import ProcessingError

    with pytest.raises(ProcessingError, match="not inside the pass"):
        render(focus_pull, load_config(), 5, 9, context=(6, 20))


def test_a_ctrl_c_while_the_decode_thread_starts_stops_all_reading(monkeypatch):
    """Once decoded_in_background is left, nothing more is read from the events, even when
    Ctrl-C lands inside Thread.start() (after the thread began, before it was joined): the
    caller then closes the input, and demuxing a closed container crashes the process."""
    import threading
    import time

    from videodeblur.pipeline import engine

    left = threading.Event()
    read_after_leaving = []

    def events():
        time.sleep(0.2)  # the decode thread is still taking its first event when Ctrl-C lands
        for index in range(100):
            if left.is_set():
                read_after_leaving.append(index)
            yield index

    class InterruptedStart(threading.Thread):
        def start(self):
            super().start()
            raise KeyboardInterrupt

    monkeypatch.setattr(engine.threading, "Thread", InterruptedStart)
    with pytest.raises(KeyboardInterrupt):
        with engine.decoded_in_background(events(), queue_size=2):
            pass
    left.set()
    time.sleep(0.5)
    assert read_after_leaving == []


def test_a_stop_signal_is_held_until_a_stop_point():
    """Inside signals_at_safe_points Ctrl-C raises only at stop_point (never inside a lock the
    main thread holds), once, and the handlers are as they were afterwards."""
    import signal

    from videodeblur.pipeline.runtime import signals_at_safe_points, stop_point

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with signals_at_safe_points():
            with signals_at_safe_points():  # nested, as the engine's pass inside the decode thread's
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)
            reached = True  # nothing was raised where the signal came in
            stop_point()
    assert reached
    assert signal.getsignal(signal.SIGINT) is before

    with pytest.raises(KeyboardInterrupt):  # pending at the end: delivered on leaving
        with signals_at_safe_points():
            signal.raise_signal(signal.SIGINT)
            reached_end = True
    assert reached_end

    with signals_at_safe_points():  # a second signal while cleaning up is not raised again
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            stop_point()
        signal.raise_signal(signal.SIGINT)
        stop_point()
    assert signal.getsignal(signal.SIGINT) is before
