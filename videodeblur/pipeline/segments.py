"""A run in segments: frame ranges rendered independently, then joined by packet copy.

A segment is a range of frames rendered by the frame engine exactly as a whole run renders
them (:func:`~videodeblur.pipeline.engine.render_range` decodes the schedule's warm-up margin
around it, so estimated and keyframed kernels at a seam are a whole run's) and encoded on its
own, from an IDR frame, into a file of the output's container. Nothing but a small job
description travels to the worker that renders it: the worker reads the input itself and
writes its file into the segment folder beside the output, so every worker must see both
paths (shared storage).

The join copies the segments' video packets, with their timestamps, into the output and
muxes the input's other streams (audio, subtitles, ...) once, from the source, selected as a
single run selects them. The encoders of all segments use the same settings, so the joined
stream has one set of headers.

A manifest in the segment folder (``manifest.json``, and one record per finished segment)
holds a hash of the input's identity and of every setting that changes the output; a run
with the same command reuses the segments it finds finished under the same hash and renders
only the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from videodeblur import __version__
from videodeblur.config import Config, config_to_toml
from videodeblur.errors import InputError, OutputError, ProcessingError, VideoDeblurError
from videodeblur.io import VideoReader, VideoWriter
from videodeblur.io.frame_index import FrameIndex, frame_index
from videodeblur.io.probe import is_attached_pic
from videodeblur.io.ranges import TAIL_SLACK_S
from videodeblur.pipeline.engine import render_range
from videodeblur.pipeline.restorer import FrameRestorer
from videodeblur.pipeline.runtime import run_as_background_worker, run_settings

#: Seconds of video per segment when ``pipeline.segment_frames`` is 0.
DEFAULT_SEGMENT_SECONDS = 10.0
MANIFEST_NAME = "manifest.json"
#: Settings that decide where and how fast a run goes, not what it writes.
_PLACEMENT_KEYS = ("workers", "frames_in_flight", "backend", "scheduler")


@dataclass(frozen=True)
class Segment:
    """Frames ``first`` to ``last`` (inclusive) of the input."""

    first: int
    last: int

    @property
    def frames(self) -> int:
        return self.last - self.first + 1

    @property
    def name(self) -> str:
        return f"frames_{self.first:07d}-{self.last:07d}"

    def describe(self) -> str:
        return f"frames {self.first}..{self.last}"


@dataclass(frozen=True)
class SegmentJob:
    """What a worker needs to render one segment (small and picklable)."""

    input_path: str
    folder: str
    suffix: str
    segment: Segment
    context: tuple[int, int]
    config: Config
    key: str

    @property
    def file(self) -> Path:
        return Path(self.folder) / f"{self.segment.name}{self.suffix}"

    @property
    def record_file(self) -> Path:
        return Path(self.folder) / f"{self.segment.name}.json"


@dataclass(frozen=True)
class SegmentRecord:
    """A finished segment, or one that failed (``error`` set)."""

    first: int
    last: int
    frames: int = 0
    size_bytes: int = 0
    seconds: float = 0.0
    point_lights: int = 0
    light: str = ""
    note: str = ""
    error: str = ""
    held_back: int = 0
    grown: int = 0
    clipped_frames: int = 0

    @property
    def segment(self) -> Segment:
        return Segment(self.first, self.last)


# -- planning ----------------------------------------------------------------------------


def pass_context(frames: FrameIndex, trim) -> tuple[int, int]:
    """``(start, end)`` (end exclusive): the frames a run over ``trim`` covers."""
    start, end = 0, frames.frame_count
    if trim.start_frame is not None:
        start = trim.start_frame
    if trim.end_frame is not None:
        end = min(end, trim.end_frame)
    if trim.start_s is not None:
        start = frames.first_at_or_after(trim.start_s)
    if trim.end_s is not None:
        end = min(end, frames.first_at_or_after(trim.end_s))
    return start, end


def segment_length(config: Config, frames: FrameIndex) -> int:
    """Frames per segment: ``pipeline.segment_frames``, or about 10 s of video."""
    if config.pipeline.segment_frames:
        return config.pipeline.segment_frames
    if frames.frame_count < 2:
        return 1
    seconds_per_frame = (frames.time_s(frames.frame_count - 1) - frames.time_s(0)) / (frames.frame_count - 1)
    return max(1, round(DEFAULT_SEGMENT_SECONDS / seconds_per_frame)) if seconds_per_frame > 0 else 250


def plan_segments(context: tuple[int, int], length: int) -> list[Segment]:
    """Split ``context`` into ranges of about ``length`` frames (equal to within one frame)."""
    start, end = context
    count = end - start
    if count <= 0:
        return []
    pieces = max(1, math.ceil(count / length))
    bounds = [start + (count * k) // pieces for k in range(pieces + 1)]
    return [Segment(a, b - 1) for a, b in zip(bounds[:-1], bounds[1:])]


def run_key(input_path: Path, config: Config, plan: list[Segment]) -> str:
    """A hash of what the output depends on: the input file, the settings that change the
    output (all but where and how fast it runs), the segment plan and the version."""
    status = input_path.stat()
    settings = config.model_copy(update={"pipeline": config.pipeline.model_copy(
        update={key: type(config.pipeline)().__dict__[key] for key in _PLACEMENT_KEYS})})
    digest = hashlib.sha256()
    for part in (str(input_path.resolve()), str(status.st_size), str(status.st_mtime_ns), __version__,
                 config_to_toml(settings), ",".join(f"{s.first}-{s.last}" for s in plan)):
        digest.update(part.encode() + b"\0")
    if config.psf.path:
        with contextlib.suppress(OSError):
            digest.update(Path(config.psf.path).read_bytes())
    return digest.hexdigest()


def segment_folder(output_path: Path) -> Path:
    """Where a run's segments live: a hidden folder beside the output."""
    return output_path.parent / f".{output_path.name}.segments"


# -- the manifest ------------------------------------------------------------------------


def prepare_folder(folder: Path, key: str, plan: list[Segment], suffix: str) -> dict[Segment, SegmentRecord]:
    """Make ``folder`` hold only segments of this run (``key``); returns those already finished.

    A manifest with another key (the input or a setting changed) is cleared, with every
    segment file in the folder.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        manifest = folder / MANIFEST_NAME
        try:
            reusable = json.loads(manifest.read_text()).get("key") == key
        except (OSError, ValueError, AttributeError):
            reusable = False
        finished: dict[Segment, SegmentRecord] = {}
        planned = {s.name: s for s in plan}
        for path in folder.iterdir():
            segment = planned.get(path.name.split(".")[0]) if reusable else None
            if path.name == MANIFEST_NAME or (segment is not None and path.suffix in (".json", suffix)):
                continue
            path.unlink()  # another run's segment, a record of one, or a temporary file
        if reusable:
            for segment in plan:
                record = _read_record(folder, segment, key, suffix)
                if record is not None:
                    finished[segment] = record
        _write_json(manifest, {"key": key, "segments": [s.name for s in plan], "videodeblur": __version__})
    except OSError as error:
        raise OutputError(f"segment folder '{folder}': {error.strerror or error}") from None
    return finished


def _read_record(folder: Path, segment: Segment, key: str, suffix: str) -> SegmentRecord | None:
    """The record of a finished segment whose file is there and complete, else None."""
    try:
        data = json.loads((folder / f"{segment.name}.json").read_text())
        record = SegmentRecord(**data["record"])
        size = (folder / f"{segment.name}{suffix}").stat().st_size
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if data.get("key") != key or record.error or record.frames != segment.frames or size != record.size_bytes:
        return None
    return record


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)


# -- rendering one segment (in a worker) -------------------------------------------------


class _SegmentSink:
    def __init__(self, writer: VideoWriter):
        self.writer = writer
        self.frames = 0

    def frame(self, rendered) -> None:
        self.writer.write_frame(rendered.restored)
        self.frames += 1

    def packet(self, packet) -> None:  # a range has no packets
        pass


def render_segment(job: SegmentJob, threads: int = 1) -> SegmentRecord:
    """Render one segment into its file and record it; runs in a worker.

    Never raises for a failure of the segment itself: the returned record's ``error`` says
    what went wrong, so the other segments of the run still finish and are kept.
    """
    segment, started = job.segment, time.perf_counter()
    temporary = job.file.with_name(f".{job.file.stem}.{os.getpid()}.partial{job.suffix}")
    try:
        record = _render(job, temporary, threads, started)
        os.replace(temporary, job.file)
        _write_json(job.record_file, {"key": job.key, "record": asdict(record)})
        return record
    except (VideoDeblurError, OSError, av.error.FFmpegError, MemoryError, ValueError, RuntimeError) as error:
        message = str(error) if isinstance(error, VideoDeblurError) else f"{type(error).__name__}: {error}"
        return SegmentRecord(segment.first, segment.last, error=message)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _render(job: SegmentJob, temporary: Path, threads: int, started: float) -> SegmentRecord:
    config, segment = job.config, job.segment
    pipeline, output = config.pipeline, config.output
    with VideoReader(job.input_path, tolerate_decode_errors=pipeline.tolerate_decode_errors,
                     max_frame_pixels=pipeline.max_frame_pixels) as reader:
        frames = frame_index(job.input_path, reader.info.stream_index)
        restorer = FrameRestorer(config, reader.info)
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="videodeblur-worker",
                                  initializer=run_as_background_worker)
        try:
            with VideoWriter(temporary, reader.info, [], codec=output.codec, crf=output.crf, preset=output.preset,
                             pix_fmt=output.pix_fmt or None, profile=output.profile or None) as writer, \
                    run_settings():
                sink = _SegmentSink(writer)
                render_range(reader, frames, restorer.schedule(), restorer.restore, segment.first, segment.last,
                             sink, executor=pool, frames_in_flight=2 * threads + 2, context=job.context)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    if sink.frames != segment.frames:
        raise ProcessingError(f"{segment.describe()}: {sink.frames} of {segment.frames} frames decoded")
    light = restorer.light
    return SegmentRecord(segment.first, segment.last, sink.frames, temporary.stat().st_size,
                         time.perf_counter() - started, restorer.point_lights, light.description, light.note or "",
                         held_back=restorer.held_back, grown=restorer.grown,
                         clipped_frames=restorer.clipped_frames)


# -- joining -----------------------------------------------------------------------------


def copy_span(frames: FrameIndex, context: tuple[int, int], trim, time_base: Fraction) -> tuple:
    """The time span ``[lo, hi)`` (exact seconds from the stream's start) whose copy-stream
    packets a single run over ``context`` keeps (see :mod:`videodeblur.io.ranges`)."""
    def frame_time(index: int) -> Fraction:
        return (int(frames.pts[index]) - frames.start_pts) * Fraction(time_base)

    if trim.start_s is not None or trim.end_s is not None:
        lo = -math.inf if trim.start_s is None else Fraction(repr(float(trim.start_s)))
        hi = math.inf if trim.end_s is None else Fraction(repr(float(trim.end_s)))
        return lo, hi
    start, end = context
    lo = -math.inf if start == 0 else frame_time(start)
    hi = math.inf if end >= frames.frame_count else frame_time(end)
    return lo, hi


def _copy_packets(reader: VideoReader, span: tuple) -> Iterator[tuple[float, bool, av.Packet]]:
    """The copy streams' packets inside ``span``, in demux order: ``(seconds, False, packet)``.

    Read from a second opening of the input, from its very first byte: a seek to the start
    can land after packets that come before the first video frame (an audio priming packet
    at a negative time).
    """
    lo, hi = span
    if not reader.copy_streams:
        return
    wanted = [s.index for s in reader.copy_streams]
    try:
        with av.open(str(reader.path)) as source:
            last = -math.inf
            for packet in source.demux(*(source.streams[i] for i in wanted)):
                if not packet.size:
                    continue
                if is_attached_pic(packet.stream):
                    yield -math.inf, False, packet
                    continue
                t = reader.packet_time(packet)
                t = last if t is None else t
                last = t
                if lo <= t < hi:
                    yield float(t), False, packet
                elif t >= hi + TAIL_SLACK_S:
                    return
    except (av.error.FFmpegError, OSError) as error:
        raise InputError(f"input '{reader.path}': read error copying its other streams ({error})") from None


def _video_packets(paths: list[Path]) -> Iterator[tuple[float, bool, av.Packet]]:
    """The segments' video packets in order: ``(decode time in seconds, True, packet)``."""
    for path in paths:
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    if packet.size:
                        ts = packet.dts if packet.dts is not None else packet.pts
                        yield float(ts * packet.time_base), True, packet
        except (av.error.FFmpegError, OSError) as error:
            raise OutputError(f"segment '{path}': cannot be read back ({error})") from None


def join_segments(input_path: Path, paths: list[Path], output_path: Path, span: tuple,
                  config: Config) -> tuple[int, int]:
    """Write ``output_path`` from the segment files (video, copied) and the input's other
    streams (copied from the source); returns (video packets, other packets) written."""
    pipeline = config.pipeline
    with VideoReader(input_path, max_frame_pixels=pipeline.max_frame_pixels) as reader:
        try:
            with av.open(str(paths[0])) as first:
                writer = VideoWriter(output_path, reader.info, reader.copy_streams,
                                     video_template=first.streams.video[0], audio=config.output.audio)
        except (av.error.FFmpegError, OSError) as error:
            raise OutputError(f"segment '{paths[0]}': cannot be read back ({error})") from None
        video = copied = 0
        with writer:
            # One pass over both sources in time order, so the muxer's interleaving buffer
            # stays small whatever the length of the film.
            merged = heapq.merge(_video_packets(paths), _copy_packets(reader, span), key=lambda entry: entry[0])
            for _, is_video, packet in merged:
                if is_video:
                    writer.copy_video_packet(packet)
                    video += 1
                else:
                    writer.mux_packet(packet)
            copied = writer.packets_copied
    return video, copied


def remove_folder(folder: Path) -> None:
    """Remove a run's segment folder once the output is complete."""
    shutil.rmtree(folder, ignore_errors=True)


def check_complete(records: dict[Segment, SegmentRecord], plan: list[Segment]) -> None:
    """Raise ProcessingError naming the first segment that did not finish."""
    for segment in plan:
        record = records.get(segment)
        if record is None or record.error:
            reason = record.error if record is not None else "not rendered"
            raise ProcessingError(f"segment {segment.describe()} failed: {reason}")


def missing(plan: list[Segment], finished: dict[Segment, SegmentRecord]) -> list[Segment]:
    return [s for s in plan if s not in finished]


def expect_frames(plan: list[Segment], records: dict[Segment, SegmentRecord]) -> int:
    total = sum(records[s].frames for s in plan)
    if total != sum(s.frames for s in plan):
        raise InputError(f"the segments hold {total} frames, the plan {sum(s.frames for s in plan)}")
    return total
