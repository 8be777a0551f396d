"""Restore a video file end to end: decode -> frame engine (worker pool) -> encode.

Threads
-------
* a decode thread runs ``VideoReader.events()`` and feeds a short bounded queue (backpressure),
  ending with an end marker put in ``finally`` (:func:`~videodeblur.pipeline.engine.decoded_in_background`);
* the calling thread drives the :class:`~videodeblur.pipeline.engine.FrameEngine`: kernels are
  decided in frame order, frames analysed and restored in a thread pool whose threads run at
  the lowest priority (:func:`~videodeblur.pipeline.runtime.run_as_background_worker`), and
  written in input order with the packets of copied streams in their demux position;
* memory is bounded by ``frames_in_flight`` (plus the schedule's look-ahead), not by the
  length of the video.

A worker's exception, a decode error or Ctrl-C stops the decode thread, cancels queued work,
joins every thread and removes the temporary output before the error propagates.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from videodeblur.config import Config, load_config
from videodeblur.errors import InputError, Interrupted
from videodeblur.io.paths import check_video_output
from videodeblur.io import VideoInfo, VideoReader, VideoWriter, atomic_output, check_paths
from videodeblur.pipeline.engine import FrameEngine, RenderedFrame, decoded_in_background
from videodeblur.pipeline.restorer import FrameRestorer
from videodeblur.pipeline.runtime import (
    blas_controller,
    run_as_background_worker,
    run_settings,
)
from videodeblur.pipeline.schedules import TrackRow


@dataclass(frozen=True)
class RunReport:
    """What a run did.

    Attributes
    ----------
    output : pathlib.Path
        The file written.
    frames : int
        Video frames restored and written.
    packets_copied : int
        Packets of other streams (audio, subtitles, data) copied unchanged.
    frames_declared : int or None
        The frame count the input's container declares, when it declares one and the
        whole file was processed (no trim); more than ``frames`` means frames were lost
        (a truncated or damaged file).
    decode_errors : tuple of (int, str)
        ``(frame number reached, message)`` of each packet skipped because it failed to
        decode (only with ``pipeline.tolerate_decode_errors``).
    light : str
        Where the frames were restored, e.g. ``"linear light (bt709, limited range)"``.
    notes : tuple of str
        What the run assumed or decided that a user should know (said once each).
    point_lights : int
        Point lights taken back to points, over all frames.
    held_back : int
        Frames the guard restored with a smaller kernel than the one given, because the frame
        showed less blur than it (:mod:`videodeblur.restoration.guard`).
    grown : int
        Frames the guard restored with a larger kernel than the one given, because the frame
        showed more blur than it.
    clipped_frames : int
        Frames with clipped areas whose lacking light was estimated
        (:mod:`videodeblur.restoration.highlights`).
    segments : int
        Segments the run was rendered in (0: in one piece, the threads backend).
    segments_reused : int
        Of those, segments an earlier, interrupted run of the same job had finished.
    """

    output: Path
    frames: int
    packets_copied: int
    frames_declared: int | None = None
    decode_errors: tuple[tuple[int, str], ...] = ()
    light: str = ""
    notes: tuple[str, ...] = ()
    point_lights: int = 0
    held_back: int = 0
    grown: int = 0
    clipped_frames: int = 0
    segments: int = 0
    segments_reused: int = 0

    @property
    def frames_lost(self) -> int:
        """Declared frames that were not restored (0 when the container declares no count)."""
        return max(0, self.frames_declared - self.frames) if self.frames_declared is not None else 0


def resolve_config(config) -> Config:
    """A Config as given, the defaults for None, or the TOML file named."""
    if config is None:
        return Config.default()
    if isinstance(config, Config):
        return config
    return load_config(config)


def trim_arguments(trim) -> dict:
    """The ``[trim]`` section as keyword arguments of :meth:`VideoReader.events` (unset ones left out)."""
    return {
        key: value for key, value in (
            ("start_frame", trim.start_frame), ("end_frame", trim.end_frame),
            ("start_s", trim.start_s), ("end_s", trim.end_s),
        ) if value is not None
    }


def expected_frames(info: VideoInfo, trim) -> int | None:
    """How many frames a run over ``trim`` will write, from the container's count or duration."""
    total = info.frame_count
    if total is None and info.duration_s and info.average_rate:
        total = round(info.duration_s * float(info.average_rate))
    if total is None:
        return None
    if trim.end_frame is not None:
        total = min(total, trim.end_frame)
    if trim.start_frame is not None:
        total -= trim.start_frame
    if info.average_rate and (trim.start_s is not None or trim.end_s is not None):
        end = trim.end_s if trim.end_s is not None else total / float(info.average_rate)
        total = round((end - (trim.start_s or 0.0)) * float(info.average_rate))
    return max(total, 0)


#: Without a terminal, a progress line every this many seconds.
PROGRESS_LINE_INTERVAL_S = 5.0


class LineProgress:
    """Progress as plain lines, one every :data:`PROGRESS_LINE_INTERVAL_S` seconds, for a pipe,
    a log file or a terminal without a size (where a bar cannot redraw itself).

    The same interface as the part of tqdm the pipeline uses (``update``, ``n``, ``total``,
    ``set_postfix_str``, ``close``).
    """

    def __init__(self, total: int | None, name: str, file=None, clock=time.monotonic,
                 interval_s: float = PROGRESS_LINE_INTERVAL_S):
        self.total, self.name, self.file, self.clock = total, name, file or sys.stderr, clock
        self.interval_s = interval_s
        self.n = 0
        self.postfix = ""
        self.start = self.last = clock()

    def update(self, count: int = 1) -> None:
        self.n += count
        now = self.clock()
        if now - self.last >= self.interval_s:
            self.last = now
            self.file.write(self.line(now) + "\n")
            self.file.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.n / elapsed
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        text = f"{self.name}: {done} frames, {rate:.1f} frames/s"
        if self.total and rate > 0:
            left = max(0.0, (self.total - self.n) / rate)
            text += f", ETA {int(left // 3600):02d}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}"
        return text + (f", {self.postfix}" if self.postfix else "")

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        pass


def progress_bar(enabled: bool | None, total: int | None, name: str):
    """Progress on standard error (frames, fps, ETA): a tqdm bar on a terminal, plain lines every
    few seconds elsewhere; ``enabled`` None chooses by standard error, False shows nothing."""
    from tqdm import tqdm

    if enabled is None:
        columns = 0
        if sys.stderr.isatty():
            try:
                columns = os.get_terminal_size(sys.stderr.fileno()).columns
            except OSError:
                columns = 0
        if not columns:
            return LineProgress(total, name)
    return tqdm(total=total, unit="frame", desc=name, disable=enabled is False,
                file=sys.stderr, dynamic_ncols=True, leave=True)


class LegacySchedule:
    """For restorers without a ``schedule()`` (test doubles): restore(item) with no kernel."""

    needs_analysis = False
    lookahead_frames = 0
    lookbehind_frames = 0

    def push(self, item, analysis=None):
        return [TrackRow(item.index, item.time_s, None)]

    def finish(self):
        return []


def restore_call(restorer):
    """``restore(item, spec)`` for the engine, for restorers with and without kernels."""
    return lambda item, spec: restorer.restore(item) if spec is None else restorer.restore(item, spec)


class WriterSink:
    """The engine's sink for a run: frames to the encoder, packets to the muxer, a progress bar."""

    def __init__(self, writer: VideoWriter, progress):
        self.writer = writer
        self.progress = progress

    def frame(self, rendered: RenderedFrame) -> None:
        self.writer.write_frame(rendered.restored)
        self.show_encoded()

    def show_encoded(self) -> None:
        """Count the frames the encoder has finished, not those handed to it: its look-ahead
        and frame threads hold many, and its tail is part of the run's time."""
        done = self.writer.frames_encoded - self.progress.n
        if done > 0:
            self.progress.update(done)

    def packet(self, packet) -> None:
        self.writer.mux_packet(packet)


def run_engine(events, restorer, sink, *, workers: int, frames_in_flight: int) -> tuple[int, int]:
    """Drive one engine pass over ``events`` with a pool of ``workers`` low-priority threads."""
    schedule = restorer.schedule() if hasattr(restorer, "schedule") else LegacySchedule()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="videodeblur-worker",
                              initializer=run_as_background_worker)
    try:
        with decoded_in_background(events) as decoded:
            return FrameEngine(schedule, restore_call(restorer), pool, frames_in_flight).run(decoded, sink)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def deblur_file(input_path, output_path, config=None, *, overwrite: bool = False, progress: bool | None = None,
                restorer_factory=FrameRestorer) -> RunReport:
    """Restore a video file and write the result, copying every other stream untouched.

    Parameters
    ----------
    input_path : str or os.PathLike
        The blurred video. Never modified.
    output_path : str or os.PathLike
        Where to write. Written to a temporary file next to it and renamed when complete.
    config : Config, str, os.PathLike or None
        Settings (a Config, or a TOML file to load); default settings when None.
    overwrite : bool
        Replace an existing output file.
    progress : bool or None
        Show a progress bar (frames, fps, ETA); None shows it only on a terminal.
    restorer_factory : callable
        ``(config, info) -> object with .restore(FrameItem) -> FrameItem``; for tests and tools.

    Returns
    -------
    RunReport

    Raises
    ------
    VideoDeblurError
        ``InputError``, ``OutputError``, ``ConfigError``, ``InvalidParameterError``,
        ``ProcessingError`` (names the frame) or ``Interrupted``; no output file is left behind.
    """
    config = resolve_config(config)
    input_path, output_path = Path(input_path), Path(output_path)
    if config.pipeline.backend != "threads":
        from videodeblur.pipeline.backends import run_segmented  # joblib and dask only when asked for

        return run_segmented(input_path, output_path, config, overwrite=overwrite, progress=progress,
                             report_type=RunReport)
    check_paths(input_path, output_path, overwrite=overwrite)
    check_video_output(output_path)
    blas_controller()
    pipeline, output, trim = config.pipeline, config.output, config.trim
    with VideoReader(input_path, tolerate_decode_errors=pipeline.tolerate_decode_errors,
                     max_frame_pixels=pipeline.max_frame_pixels) as reader:
        restorer = restorer_factory(config, reader.info)
        range_arguments = trim_arguments(trim)
        with atomic_output(output_path) as temporary_path:
            bar = progress_bar(progress, expected_frames(reader.info, trim), input_path.name)
            try:
                with VideoWriter(temporary_path, reader.info, reader.copy_streams, codec=output.codec,
                                 crf=output.crf, preset=output.preset, pix_fmt=output.pix_fmt or None,
                                 profile=output.profile or None, audio=output.audio) as writer:
                    sink = WriterSink(writer, bar)
                    with run_settings():
                        frames, packets = run_engine(
                            reader.events(**range_arguments), restorer, sink,
                            workers=config.resolved_workers(), frames_in_flight=config.resolved_frames_in_flight())
                    packets = writer.packets_copied  # what the file holds (output.audio may drop some)
                    writer.close()  # the encoder's tail, on the bar
                    sink.show_encoded()
            except KeyboardInterrupt:
                # Wherever it lands once the output exists (the writer's set-up, the engine, the
                # encoder's tail), a stop says the same: the temporary file is removed.
                raise Interrupted("interrupted: stopped before the end; no output written") from None
            finally:
                bar.close()
            if frames == 0:
                raise InputError(f"input '{input_path}': no video frame decoded in the selected range")
        declared = reader.info.frame_count if not range_arguments else None
        decode_errors = tuple(reader.decode_errors)
    light = getattr(restorer, "light", None)
    return RunReport(output_path, frames, packets, declared, decode_errors,
                     light=light.description if light is not None else "",
                     notes=(light.note,) if light is not None and light.note else (),
                     point_lights=getattr(restorer, "point_lights", 0), held_back=getattr(restorer, "held_back", 0),
                     grown=getattr(restorer, "grown", 0),
                     clipped_frames=getattr(restorer, "clipped_frames", 0))
