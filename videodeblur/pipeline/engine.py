"""The frame engine: frames in order -> analysed -> scheduled -> restored -> a sink, in order.

``run``, ``estimate``, ``preview`` and a cluster segment all drive this one engine, with
different sinks (an encoder, a track, one frame) and executors (a thread pool, the calling
thread):

* each frame is analysed in the executor when its schedule needs it (blur estimation), and the
  analyses are handed to the schedule in frame order; a frame's kernel (its :class:`TrackRow`)
  is known at once for a fixed or keyframed blur, and ``lookahead_frames`` frames later for an
  estimated one (:mod:`videodeblur.pipeline.schedules`);
* frames with a kernel are restored in the executor and handed to the sink in input order,
  with the packets of copied streams (audio, subtitles, ...) in their demux position;
* at most ``frames_in_flight`` frames (plus the schedule's look-ahead) are between input and
  sink, so memory does not grow with the length of the video.

Frames outside the rendered range (:func:`render_range`'s warm-up margin) are analysed and
scheduled like any other, so the frames of the range get exactly the kernels a whole run gives
them, but they are neither restored nor given to the sink.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from typing import Protocol

from videodeblur.errors import ProcessingError, VideoDeblurError
from videodeblur.io import FrameItem
from videodeblur.pipeline.runtime import signals_at_safe_points, stop_point
from videodeblur.pipeline.schedules import TrackRow

#: Items (frames or packets) a decode thread may get ahead of the engine.
HANDOVER_QUEUE_SIZE = 2


@dataclass(frozen=True)
class RenderedFrame:
    """A frame of the rendered range: as decoded, as restored, and the kernel it was restored with."""

    original: FrameItem
    restored: FrameItem
    row: TrackRow


class Sink(Protocol):
    """Where the engine delivers, in input order."""

    def frame(self, rendered: RenderedFrame) -> None:
        """A frame of the rendered range."""

    def packet(self, packet) -> None:
        """A packet of a copied stream."""


@dataclass
class _Slot:
    """One input event on its way to the sink: a frame (with its futures) or a packet."""

    entry: object
    rendered: bool = True
    analysis: Future | None = None
    restore: Future | None = None
    row: TrackRow | None = None
    scheduled: bool = False  # the schedule has had the frame


class InlineExecutor(Executor):
    """Runs each submitted call at once in the calling thread (a preview of one frame)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - delivered through the future, like a pool's
            future.set_exception(error)
        return future


class FrameEngine:
    """One pass of frames through a schedule and a restorer into a sink.

    Parameters
    ----------
    schedule
        A fresh schedule (:func:`videodeblur.pipeline.schedules.schedule_for`).
    restore : callable or None
        ``restore(item, spec) -> item``; None delivers frames as decoded (``estimate``).
    executor : concurrent.futures.Executor
        Where analyses and restorations run.
    frames_in_flight : int
        Frames between input and sink, besides the schedule's look-ahead.
    in_range : callable or None
        ``in_range(index)``: whether a frame is rendered (None: every frame).
    """

    def __init__(self, schedule, restore: Callable | None, executor: Executor, frames_in_flight: int,
                 in_range: Callable[[int], bool] | None = None):
        self.schedule = schedule
        self.restore = restore
        self.executor = executor
        self.in_range = in_range
        self.max_pending = frames_in_flight + schedule.lookahead_frames
        self.pending: deque[_Slot] = deque()  # every event, in input order
        self.to_schedule: deque[_Slot] = deque()  # analysed frames the schedule has not had yet
        self.waiting: dict[int, _Slot] = {}  # frames without a row yet, by index
        self.frames_pending = 0
        self.frames_delivered = 0
        self.packets_delivered = 0

    # -- the whole pass -------------------------------------------------------------

    def run(self, events: Iterable, sink: Sink) -> tuple[int, int]:
        """Take every event, deliver everything to ``sink``; returns (frames, packets) delivered.

        On any exception (Ctrl-C included) the queued work is cancelled before it propagates;
        the executor is the caller's to shut down.
        """
        with signals_at_safe_points():
            try:
                for entry in events:
                    self.accept(entry, sink)
                self.finish(sink)
            finally:
                self.cancel()
        return self.frames_delivered, self.packets_delivered

    def accept(self, entry, sink: Sink) -> None:
        """Take the next event in input order, then deliver what is ready without waiting."""
        stop_point()  # each event, for executors that never wait (a preview's inline one)
        slot = _Slot(entry)
        self.pending.append(slot)
        if isinstance(entry, FrameItem):
            slot.rendered = self.in_range is None or self.in_range(entry.index)
            self.frames_pending += 1
            self.waiting[entry.index] = slot
            if self.schedule.needs_analysis:
                slot.analysis = self.executor.submit(self.schedule.analyse, entry)
                self.to_schedule.append(slot)
            else:
                self._schedule(slot, None)
        self._schedule_analysed(block=False)
        self._deliver(sink, block=False)
        self._make_room(sink, self.max_pending - 1)

    def finish(self, sink: Sink) -> None:
        """The input has ended: schedule and deliver everything still pending."""
        while self.to_schedule:
            self._schedule_analysed(block=True)
        self._rows(self.schedule.finish())
        self._make_room(sink, 0)
        self._deliver(sink, block=True)

    def cancel(self) -> None:
        """Cancel the work that has not started."""
        for slot in self.pending:
            for future in (slot.analysis, slot.restore):
                if future is not None:
                    future.cancel()

    # -- steps ----------------------------------------------------------------------

    def _schedule(self, slot: _Slot, analysis) -> None:
        self._rows(self.schedule.push(slot.entry, analysis) if analysis is not None
                   else self.schedule.push(slot.entry))
        slot.scheduled = True
        if not slot.rendered:  # a warm-up frame: only its analysis was needed
            slot.entry = replace(slot.entry, planes=[])

    def _rows(self, rows) -> None:
        for row in rows:
            slot = self.waiting.pop(row.index)
            slot.row = row
            if slot.rendered and self.restore is not None:
                slot.restore = self.executor.submit(self.restore, slot.entry, row.spec)

    def _schedule_analysed(self, block: bool) -> None:
        """Hand finished analyses to the schedule in frame order; optionally wait for the first."""
        while self.to_schedule and (block or self.to_schedule[0].analysis.done()):
            slot = self.to_schedule.popleft()
            block = False
            self._schedule(slot, result_of(slot.analysis, f"estimating the blur of frame {slot.entry.index}"))

    def _ready(self, slot: _Slot, block: bool) -> bool:
        if not slot.rendered:
            return slot.scheduled
        if slot.row is None:
            return False  # its kernel is not decided yet
        return slot.restore is None or block or slot.restore.done()

    def _deliver(self, sink: Sink, block: bool) -> None:
        """Deliver finished events from the head of ``pending``; optionally wait for the first frame."""
        while self.pending:
            slot = self.pending[0]
            if not isinstance(slot.entry, FrameItem):
                sink.packet(slot.entry)
                self.packets_delivered += 1
            else:
                if not self._ready(slot, block):
                    return
                block = False
                if slot.rendered:
                    restored = (slot.entry if slot.restore is None
                                else result_of(slot.restore, f"restoring frame {slot.entry.index}"))
                    sink.frame(RenderedFrame(slot.entry, restored, slot.row))
                    self.frames_delivered += 1
                self.frames_pending -= 1
            self.pending.popleft()

    def _make_room(self, sink: Sink, limit: int) -> None:
        """Block until at most ``limit`` frames are pending."""
        while self.frames_pending > limit:
            head = self.pending[0]
            if isinstance(head.entry, FrameItem) and not self._ready(head, block=True):
                if not self.to_schedule:  # cannot happen: at most lookahead_frames frames await later ones
                    raise ProcessingError(f"frame {head.entry.index}: no kernel decided (internal error)")
                self._schedule_analysed(block=True)
                continue
            self._deliver(sink, block=True)


def result_of(future: Future, what: str):
    """The future's result; a failure other than the project's own becomes a ProcessingError
    saying ``what`` failed (e.g. "restoring frame 12")."""
    try:
        while True:
            try:
                return future.result(timeout=0.2)  # the timeout lets a held Ctrl-C be taken
            except TimeoutError:
                stop_point()
    except VideoDeblurError:
        raise
    except Exception as error:  # noqa: BLE001 - reported with what was being done
        raise ProcessingError(f"{what} failed: {type(error).__name__}: {error}") from error


class _Failure:
    """Carries an exception from the decode thread to the engine's thread."""

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


@contextlib.contextmanager
def decoded_in_background(events: Iterable, queue_size: int = HANDOVER_QUEUE_SIZE) -> Iterator[Iterator]:
    """Iterate ``events`` in a decode thread, through a short bounded queue (backpressure).

    Yields an iterator of the events; an exception in the decode thread is re-raised by it.
    On leaving, whatever happened, the decode thread reads nothing more from ``events`` and has
    ended (or never started), so the caller may close the input. Stop signals are taken at safe
    points meanwhile (:func:`~videodeblur.pipeline.runtime.signals_at_safe_points`).
    """
    items: queue.Queue = queue.Queue(maxsize=queue_size)
    stop = threading.Event()
    # Held while the decode thread takes the next event (demux and decode). Once the caller
    # has held it after setting ``stop``, nothing more is read from ``events``, even by a thread
    # whose start was interrupted by an exception and so cannot be joined: closing a container
    # that another thread is demuxing crashes the process.
    reading = threading.Lock()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            pending = iter(events)
            while True:
                with reading:
                    if stop.is_set():
                        return
                    event = next(pending, _END)
                if event is _END or not put(event):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the engine's thread, which re-raises it
            put(_Failure(error))
        finally:
            put(_END)

    def received() -> Iterator:
        while True:
            try:
                entry = items.get(timeout=0.2)  # the timeout lets a held Ctrl-C be taken
            except queue.Empty:
                stop_point()  # (each event's is the engine's, in accept)
                continue
            if entry is _END:
                return
            if isinstance(entry, _Failure):
                raise entry.error
            yield entry

    with signals_at_safe_points():
        decoder = threading.Thread(target=decode, name="videodeblur-decode", daemon=True)
        try:
            decoder.start()
            yield received()
        finally:
            stop.set()
            with reading:
                pass
            # Unblock the decode thread if it waits on a full queue, then let it end. (A thread
            # whose start was interrupted may not count as alive yet; it reads nothing more.)
            while decoder.is_alive():
                try:
                    items.get(timeout=0.05)
                except queue.Empty:
                    pass


def render_range(reader, frames, schedule, restore: Callable | None, first: int, last: int, sink: Sink, *,
                 executor: Executor, frames_in_flight: int, context: tuple[int, int] | None = None) -> int:
    """Render frames ``first .. last`` (inclusive) exactly as a whole pass over ``context`` would.

    The frames a schedule looks at around the range (its ``lookbehind_frames`` before and
    ``lookahead_frames`` after, within ``context``) are decoded, analysed and scheduled too, so
    estimated and keyframed kernels at the range's edges are those of a whole pass; only the
    range is restored and given to the sink. This is a preview of one frame, and the segment a
    cluster renders.

    Parameters
    ----------
    reader : VideoReader
        The open input (it is seeked).
    frames : FrameIndex
        Its frame index (:func:`videodeblur.io.frame_index.frame_index`).
    schedule
        A fresh schedule for the pass.
    restore : callable or None
        As for :class:`FrameEngine`.
    first, last : int
        The range, frame numbers.
    sink : Sink
        Receives the range's frames (no packets: a range is frames only).
    executor : concurrent.futures.Executor
    frames_in_flight : int
    context : tuple of int, optional
        ``(start, end)`` (end exclusive): the frames the whole pass covers (a run's [trim]);
        the whole clip by default.

    Returns
    -------
    int
        Frames delivered.
    """
    lo, hi = context if context is not None else (0, frames.frame_count)
    if not lo <= first <= last < hi:
        raise ProcessingError(f"frames {first}..{last} are not inside the pass {lo}..{hi - 1}")
    start = max(lo, first - schedule.lookbehind_frames)
    stop = min(hi - 1, last + schedule.lookahead_frames)
    engine = FrameEngine(schedule, restore, executor, frames_in_flight, in_range=lambda i: first <= i <= last)
    delivered, _ = engine.run(reader.frames_between(start, stop, frames), sink)
    return delivered
