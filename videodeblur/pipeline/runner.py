"""Restore a video file end to end: decode -> bounded queue -> worker pool -> reorder -> encode.

Threads
-------
* a decode thread runs ``VideoReader.events()`` and feeds a short bounded queue (backpressure:
  it blocks while the main thread is busy), ending with an end marker put in ``finally``;
* the calling thread takes items in order and asks the restorer's *schedule* for each frame's
  kernel (:mod:`videodeblur.pipeline.blur_track`): a fixed or keyframed kernel is known at
  once; an estimated one needs the frame analysed (submitted to the pool) and then, in frame
  order, the ``smoothing_frames`` frames after it;
* frames with a kernel are restored in a thread pool (OpenCV and NumPy release the GIL) whose
  threads run at the lowest priority (:func:`run_as_background_worker`), and are
  written in input order: frames as they complete, packets of copied streams (audio,
  subtitles, ...) in their demux position, so nothing is reordered;
* at most ``frames_in_flight`` frames (plus the schedule's look-ahead) are being analysed,
  restored or waiting to be written, plus the few in the hand-over queue, so memory does not
  grow with the length of the video.

A worker's exception, a decode error or Ctrl-C stops the decode thread, cancels queued work,
joins every thread and removes the temporary output before the error propagates.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import queue
import sys
import threading
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from videodeblur.config import Config, load_config
from videodeblur.errors import InputError, Interrupted, ProcessingError, VideoDeblurError
from videodeblur.io import FrameItem, VideoReader, VideoWriter, atomic_output, check_paths
from videodeblur.io.reader import VideoInfo
from videodeblur.pipeline.blur_track import FixedSchedule, TrackRow, schedule_for
from videodeblur.pipeline.kernels import KernelSpec, kernel_for_plane
from videodeblur.restoration import FrameDeconvolver

_END = object()
#: Items (frames or packets) the decode thread may get ahead of the main thread.
HANDOVER_QUEUE_SIZE = 2
#: Nice value of the restoration workers' threads (Linux): the lowest priority. See
#: :func:`run_as_background_worker`.
WORKER_NICE = 19
#: Kernels whose deconvolvers a FrameRestorer keeps (estimated and keyframed blurs change).
DECONVOLVER_CACHE_SIZE = 4


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
    """

    output: Path
    frames: int
    packets_copied: int
    frames_declared: int | None = None
    decode_errors: tuple[tuple[int, str], ...] = ()

    @property
    def frames_lost(self) -> int:
        """Declared frames that were not restored (0 when the container declares no count)."""
        return max(0, self.frames_declared - self.frames) if self.frames_declared is not None else 0


class _Failure:
    """Carries an exception from the decode thread to the main thread."""

    def __init__(self, error: BaseException):
        self.error = error


class FrameRestorer:
    """Restores the planes of :class:`FrameItem` objects; shared by worker threads.

    Parameters
    ----------
    config : Config
        Uses ``psf``, ``deconvolution.method/nsr/edgetaper/planes``.
    info : VideoInfo
        Frame size, pixel format and bit depth of the stream.

    Notes
    -----
    Deconvolvers (each with its OTF, taper weights and cached filters) are kept per
    :class:`KernelSpec`, the most recently used :data:`DECONVOLVER_CACHE_SIZE` of them, so a
    steady estimated or keyframed blur builds its filters once.
    """

    def __init__(self, config: Config, info: VideoInfo):
        self.config = config
        self.info = info
        self.max_value = float((1 << info.bit_depth) - 1)
        self.scale = 1.0 / self.max_value
        settings = config.deconvolution
        shapes = plane_shapes(info.pix_fmt, info.width, info.height)
        # Y only, or Y, U and V; an alpha plane is never touched.
        restored_planes = 1 if settings.planes == "luma" else min(3, len(shapes))
        self._plane_shapes = shapes[:restored_planes]
        self._deconvolvers: OrderedDict[KernelSpec, dict[int, FrameDeconvolver]] = OrderedDict()
        self._lock = threading.Lock()
        # The schedule decides which kind of kernel this config has (and refuses, here and
        # before any output exists, a video too small to estimate on).
        schedule = self.schedule()
        self.fixed_spec = schedule.spec if isinstance(schedule, FixedSchedule) else None
        if self.fixed_spec is not None:
            self.deconvolvers_for(self.fixed_spec)  # a bad kernel fails here, before any frame is decoded

    def schedule(self):
        """A fresh schedule deciding each frame's kernel for one pass over the video."""
        return schedule_for(self.config.psf, self.info, self.max_value)

    def deconvolvers_for(self, spec: KernelSpec) -> dict[int, FrameDeconvolver]:
        """The per-plane deconvolvers of one kernel (built once, then cached)."""
        with self._lock:
            found = self._deconvolvers.get(spec)
            if found is not None:
                self._deconvolvers.move_to_end(spec)
                return found
            kernel = spec.kernel()
            settings = self.config.deconvolution
            deconvolvers = {}
            for plane, (rows, columns) in enumerate(self._plane_shapes):
                plane_kernel = kernel_for_plane(kernel, columns / self.info.width, rows / self.info.height)
                deconvolvers[plane] = FrameDeconvolver(
                    plane_kernel, (rows, columns), method=settings.method, nsr=settings.nsr,
                    edgetaper=settings.edgetaper,
                )
            self._deconvolvers[spec] = deconvolvers
            while len(self._deconvolvers) > DECONVOLVER_CACHE_SIZE:
                self._deconvolvers.popitem(last=False)
            return deconvolvers

    def restore_plane(self, deconvolver: FrameDeconvolver, plane: np.ndarray) -> np.ndarray:
        """Restore one integer plane and return it in the same dtype, rounded and clipped."""
        # Back to integers, rounding half up: the restoration comes back already scaled to the
        # integer range and 0.5 higher (folded into the filter: no extra pass), so clipping
        # to [0.5, max + 0.5] and truncating gives the nearest legal value, in the one pass
        # that reads the FFT buffer.
        restored = np.empty(plane.shape, dtype=plane.dtype)
        return deconvolver.restore(plane, out=restored, input_scale=self.scale, output_scale=self.max_value,
                                   output_offset=0.5, clip=(0.5, self.max_value + 0.5))

    def restore(self, item: FrameItem, spec: KernelSpec | None = None) -> FrameItem:
        """A new FrameItem with the configured planes restored; timing fields unchanged.

        ``spec`` is the frame's kernel (from the schedule); None means the fixed ``[psf]``
        kernel. A spec of kind ``"none"`` returns the frame unchanged.
        """
        spec = spec if spec is not None else self.fixed_spec
        if spec is None:
            raise ProcessingError(f"frame {item.index}: no kernel decided (psf.kind = {self.config.psf.kind!r})")
        if spec.kind == "none":
            return item
        planes = list(item.planes)
        for plane_index, deconvolver in self.deconvolvers_for(spec).items():
            planes[plane_index] = self.restore_plane(deconvolver, planes[plane_index])
        return replace(item, planes=planes)


def plane_shapes(pix_fmt: str, width: int, height: int) -> list[tuple[int, int]]:
    """(rows, columns) of each plane of a frame: e.g. chroma of 4:2:0 is half size, rounded up."""
    import av

    shapes: dict[int, tuple[int, int]] = {}
    for component in av.VideoFormat(pix_fmt, width, height).components:
        shapes.setdefault(component.plane, (component.height, component.width))
    return [shapes[plane] for plane in sorted(shapes)]


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block with BLAS (OpenBLAS under NumPy) limited to one thread.

    The pipeline's parallelism is its own worker threads. OpenBLAS would start threads of its
    own inside each worker for the estimators' small matrix products, and they spin while they
    wait: a run with blur estimation took 60 % longer. One thread also makes the products'
    rounding independent of the machine, so a preview reproduces a run exactly.
    """
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def run_as_background_worker() -> None:
    """Lower the calling thread's priority to :data:`WORKER_NICE` (Linux; elsewhere a nice
    value belongs to the whole process, and nothing is changed).

    The encoder is a run's critical path: it must take frames in order, and its threads wait
    on each other, so on its own it leaves part of the machine idle (a 1080p libx264
    transcode keeps 1.9 of 2 cores busy). Restoring is the work that can wait: at the lowest
    priority it runs in the encoder's gaps instead of preempting it, and when the encoder
    runs out of restored frames it blocks and the workers get the cores. On 2 cores this
    took a 1080p run 4-7 % less time (with x264's sliced threads, which left more idle); with
    frame threads nice 19 is still the fastest (8.68 s, against 8.84 s at nice 10 and 8.86 s
    at nice 0). Threads inherit the value, and the pool's threads end with the run.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
    except OSError:
        pass  # (a sandbox that forbids it only costs speed)


@contextlib.contextmanager
def no_numpy_hugepages():
    """Run the block with NumPy's ``madvise(MADV_HUGEPAGE)`` on large arrays switched off.

    With transparent huge pages in ``madvise`` mode (the common default), a page fault in an
    advised region may compact memory first; on a busy machine, building a deconvolver for a
    changed blur estimate (a few arrays of 4-16 MB) took 50-100 ms of CPU in a run instead of
    12 ms, and a run with ``psf.kind = "auto"`` was 5 % slower. The pipeline reuses its large
    buffers, so it gains nothing from huge pages. The previous setting is restored after.
    """
    setter = _madvise_hugepage_setter()
    previous = setter(False) if setter is not None else None
    try:
        yield
    finally:
        if setter is not None:
            setter(previous)


def _madvise_hugepage_setter():
    """NumPy's switch for madvise hugepage (``_set_madvise_hugepage``; private, so looked up
    defensively: without it nothing changes)."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            setter = getattr(importlib.import_module(module), "_set_madvise_hugepage", None)
        except ImportError:
            continue
        if setter is not None:
            return setter
    return None


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, found once per process.

    Finding them walks the loaded libraries with a ctypes callback, and a Ctrl-C that lands in
    a ctypes callback is printed and swallowed; so it is done once, before any output exists
    (:func:`deblur_file` calls this first), not at the start of every run.
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _resolve_config(config) -> Config:
    if config is None:
        return Config.default()
    if isinstance(config, Config):
        return config
    return load_config(config)


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
    config = _resolve_config(config)
    input_path, output_path = Path(input_path), Path(output_path)
    check_paths(input_path, output_path, overwrite=overwrite)
    _blas_controller()
    pipeline = config.pipeline
    with VideoReader(input_path, tolerate_decode_errors=pipeline.tolerate_decode_errors,
                     max_frame_pixels=pipeline.max_frame_pixels) as reader:
        restorer = restorer_factory(config, reader.info)
        trim = config.trim
        range_arguments = trim_arguments(trim)
        total = _expected_frames(reader.info, trim)
        output = config.output
        with atomic_output(output_path) as temporary_path:
            with VideoWriter(
                temporary_path, reader.info, reader.copy_streams, codec=output.codec, crf=output.crf,
                preset=output.preset, pix_fmt=output.pix_fmt or None,
            ) as writer:
                with single_threaded_blas(), no_numpy_hugepages():
                    frames, packets = _run_pipeline(
                        reader.events(**range_arguments), restorer, writer,
                        workers=config.resolved_workers(), frames_in_flight=config.resolved_frames_in_flight(),
                        progress=_progress_bar(progress, total, input_path.name),
                    )
            if frames == 0:
                raise InputError(f"input '{input_path}': no video frame decoded in the selected range")
        whole_file = not range_arguments
        declared = reader.info.frame_count if whole_file else None
        decode_errors = tuple(reader.decode_errors)
    return RunReport(output_path, frames, packets, declared, decode_errors)


def trim_arguments(trim) -> dict:
    """The ``[trim]`` section as keyword arguments of :meth:`VideoReader.events` (unset ones left out)."""
    return {
        key: value for key, value in (
            ("start_frame", trim.start_frame), ("end_frame", trim.end_frame),
            ("start_s", trim.start_s), ("end_s", trim.end_s),
        ) if value is not None
    }


def _expected_frames(info: VideoInfo, trim) -> int | None:
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


def _progress_bar(enabled: bool | None, total: int | None, name: str):
    from tqdm import tqdm

    # disable=None: tqdm shows the bar only when stderr is a terminal (quiet in logs and CI).
    return tqdm(total=total, unit="frame", desc=name, disable=None if enabled is None else not enabled,
                file=sys.stderr, dynamic_ncols=True, leave=True)


def _decode_into(events, items: queue.Queue, stop: threading.Event) -> None:
    """Decode thread: move events into the bounded queue until done or told to stop."""

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for event in events:
            if not put(event):
                return
    except BaseException as error:  # noqa: BLE001 - handed to the main thread, which re-raises it
        put(_Failure(error))
    finally:
        put(_END)


class _LegacySchedule:
    """For restorers without a ``schedule()`` (test doubles): restore(item) with no kernel."""

    needs_analysis = False
    lookahead_frames = 0

    def push(self, item, analysis=None):
        return [TrackRow(item.index, item.time_s, None)]

    def finish(self):
        return []


@dataclass
class _Slot:
    """One input event on its way to the writer: a frame (with its futures) or a packet."""

    entry: object
    analysis: Future | None = None
    restore: Future | None = None


def _run_pipeline(events, restorer, writer, *, workers: int, frames_in_flight: int, progress) -> tuple[int, int]:
    # A short hand-over queue: frames wait in ``pending`` (bounded by frames_in_flight plus the
    # schedule's look-ahead), so memory does not grow with the length of the video.
    schedule = restorer.schedule() if hasattr(restorer, "schedule") else _LegacySchedule()
    max_pending = frames_in_flight + schedule.lookahead_frames
    items: queue.Queue = queue.Queue(maxsize=HANDOVER_QUEUE_SIZE)
    stop = threading.Event()
    decoder = threading.Thread(target=_decode_into, args=(events, items, stop), name="videodeblur-decode", daemon=True)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="videodeblur-worker",
                              initializer=run_as_background_worker)
    pending: deque[_Slot] = deque()  # every event, in input order
    to_push: deque[_Slot] = deque()  # frames whose analysis the schedule has not had yet, in order
    waiting: dict[int, _Slot] = {}  # frames without a kernel yet, by index
    frames_pending = 0
    frames_written = packets_copied = 0

    def submit_rows(rows) -> None:
        for row in rows:
            slot = waiting.pop(row.index)
            if row.spec is None:
                slot.restore = pool.submit(restorer.restore, slot.entry)
            else:
                slot.restore = pool.submit(restorer.restore, slot.entry, row.spec)

    def push_analysed(block: bool) -> None:
        """Hand finished analyses to the schedule in frame order; optionally wait for the first."""
        while to_push and (block or to_push[0].analysis.done()):
            slot = to_push.popleft()
            block = False
            analysis = result_of(slot.analysis, f"estimating the blur of frame {slot.entry.index}")
            submit_rows(schedule.push(slot.entry, analysis))

    def write_ready(block: bool) -> None:
        """Write finished events from the head of ``pending``; optionally wait for the first frame."""
        nonlocal frames_pending, frames_written, packets_copied
        while pending:
            slot = pending[0]
            if not isinstance(slot.entry, FrameItem):
                writer.mux_packet(slot.entry)
                packets_copied += 1
            else:
                if slot.restore is None:
                    return  # its kernel is not decided yet
                if not slot.restore.done() and not block:
                    return
                block = False
                writer.write_frame(result_of(slot.restore, f"restoring frame {slot.entry.index}"))
                frames_written += 1
                frames_pending -= 1
                progress.update(1)
            pending.popleft()

    def make_room(limit: int) -> None:
        """Block until at most ``limit`` frames are pending."""
        while frames_pending > limit:
            head = pending[0]
            if head.restore is None and isinstance(head.entry, FrameItem):
                if not to_push:  # cannot happen: at most lookahead_frames frames await later ones
                    raise ProcessingError(f"frame {head.entry.index}: no kernel decided (internal error)")
                push_analysed(block=True)
            write_ready(block=True)

    decoder.start()
    try:
        while True:
            entry = _get(items)
            if entry is _END:
                break
            if isinstance(entry, _Failure):
                raise entry.error
            slot = _Slot(entry)
            pending.append(slot)
            if isinstance(entry, FrameItem):
                frames_pending += 1
                waiting[entry.index] = slot
                if schedule.needs_analysis:
                    slot.analysis = pool.submit(schedule.analyse, entry)
                    to_push.append(slot)
                else:
                    submit_rows(schedule.push(entry))
            push_analysed(block=False)
            write_ready(block=False)
            make_room(max_pending - 1)
        while to_push:
            push_analysed(block=True)
        submit_rows(schedule.finish())
        make_room(0)
        write_ready(block=True)
    except KeyboardInterrupt:
        raise Interrupted("interrupted: stopped before the end; no output written") from None
    finally:
        stop.set()
        for slot in pending:
            for future in (slot.analysis, slot.restore):
                if future is not None:
                    future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        # Unblock the decode thread if it waits on a full queue, then wait for it.
        while decoder.is_alive():
            try:
                items.get(timeout=0.05)
            except queue.Empty:
                pass
        decoder.join()
        progress.close()
    return frames_written, packets_copied


def _get(items: queue.Queue):
    # A timeout keeps the main thread responsive to Ctrl-C while it waits.
    while True:
        try:
            return items.get(timeout=0.2)
        except queue.Empty:
            continue


def result_of(future: Future, what: str):
    """The future's result; a failure other than the project's own becomes a ProcessingError
    saying ``what`` failed (e.g. "restoring frame 12")."""
    try:
        return _wait(future)
    except VideoDeblurError:
        raise
    except Exception as error:  # noqa: BLE001 - reported with what was being done
        raise ProcessingError(f"{what} failed: {type(error).__name__}: {error}") from error


def _wait(future: Future):
    while True:
        try:
            return future.result(timeout=0.2)
        except TimeoutError:
            continue

