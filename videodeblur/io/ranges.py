"""Selecting a frame or time range of a stream, with the copy-stream packets of its time span.

A copy-stream packet (audio, subtitles, data) is kept iff its time ``t`` lies in ``[lo, hi)``,
the time span of the selected frames. With a frame range those bounds are only known once the
frames are decoded, and decoded frames lag the demuxer, so packets are held back (a short,
bounded list) until the decision can be made. Range decisions use exact fractions:
``pts * time_base - start`` is a rational number, and a float round-off would move a frame
lying exactly on a bound out of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction

import av

from videodeblur.io.probe import is_attached_pic

#: How far past the end of the selected range copy-stream packets are still looked for:
#: muxers interleave streams within a second or so; this bounds the extra demuxing when one
#: stream (sparse subtitles) has no packet after the range.
TAIL_SLACK_S = 10.0

_INF = math.inf


class RangeSelection:
    """The state of one pass that selects a range: bounds, the held-back packets, what is done.

    Parameters
    ----------
    start_frame, end_frame : int or None
        A frame range (end exclusive), or None for a time range.
    start_s, end_s : float or None
        A time range in seconds from the start of the stream.
    copy_streams : iterable of av.stream.Stream
        The streams whose packets are selected alongside the frames.
    """

    def __init__(self, *, start_frame: int | None, end_frame: int | None, start_s: float | None,
                 end_s: float | None, copy_streams: Iterable):
        self.by_frames = start_frame is not None
        self.start_frame, self.end_frame = start_frame, end_frame
        if self.by_frames:
            self.lo = -_INF if start_frame == 0 else None  # None: not known yet
            self.hi, self.hi_final = _INF, False
        else:
            # Through the decimal text, so 0.2 means 1/5 and not the binary float's
            # 0.2000000000000000111.
            self.lo = -_INF if start_s is None else Fraction(repr(float(start_s)))
            self.hi = _INF if end_s is None else Fraction(repr(float(end_s)))
            self.hi_final = True
        self.last_t = None  # time of the latest decoded frame
        self.pending: list[tuple[Fraction | None, av.Packet]] = []
        self.video_done = False
        # Copy streams whose packets have not yet passed the end of the range.
        self.open_streams = {s.index for s in copy_streams if not is_attached_pic(s)}
        self.max_seen = -_INF

    def decide(self, t) -> bool | None:
        """For a packet at time ``t``: True to yield, False to drop, None when not decidable yet."""
        if t is None:
            t = self.last_t if self.last_t is not None else -_INF
        if self.lo is None:
            return False if (self.last_t is not None and t < self.last_t) else None
        if t < self.lo:
            return False
        if self.hi_final:
            return t < self.hi
        if self.last_t is not None and t <= self.last_t:
            return True
        return None

    def release(self) -> Iterator[av.Packet]:
        """The held-back packets that can now be decided to be kept."""
        keep = []
        for t, packet in self.pending:
            verdict = self.decide(t)
            if verdict is None:
                keep.append((t, packet))
            elif verdict:
                yield packet
        self.pending = keep

    def frame_verdict(self, index: int, t: Fraction) -> bool:
        """Whether frame ``index`` at time ``t`` is in the range (updating the bounds)."""
        if self.by_frames:
            if index < self.start_frame:
                self.last_t = t
                return False
            if index == self.start_frame and self.lo is None:
                self.lo = t
            if self.end_frame is not None and index >= self.end_frame:
                self.hi, self.hi_final, self.video_done = t, True, True
                return False
            return True
        if t < self.lo:
            self.last_t = t
            return False
        if t >= self.hi:
            self.video_done = True
            return False
        return True

    def packet_seen(self, packet: av.Packet, t) -> None:
        """Note a copy-stream packet's time (a stream past the range's end is closed)."""
        if t is not None:
            self.max_seen = max(self.max_seen, t)
            if self.video_done and t >= self.hi:
                self.open_streams.discard(packet.stream_index)

    @property
    def finished(self) -> bool:
        """The range is over and no copy stream can still have a packet in it."""
        return self.video_done and (not self.open_streams or self.max_seen >= self.hi + TAIL_SLACK_S)


def select_range(items: Iterable, selection: RangeSelection, frame_time: Callable, packet_time: Callable,
                 to_item: Callable) -> Iterator:
    """Frames (converted by ``to_item(frame, index)``) and packets of ``items`` inside the range.

    ``items`` are decoded ``av.VideoFrame`` and copy-stream ``av.Packet`` in demux order;
    ``frame_time(frame, index)`` and ``packet_time(packet)`` give their exact times.
    """
    index = 0
    for item in items:
        if isinstance(item, av.VideoFrame):
            i, index = index, index + 1
            if selection.video_done:
                continue
            t = frame_time(item, i)
            if not selection.frame_verdict(i, t):
                yield from selection.release()
                if selection.video_done and not selection.open_streams:
                    return
                continue
            yield to_item(item, i)
            selection.last_t = t
            yield from selection.release()
            continue
        if is_attached_pic(item.stream):
            yield item
            continue
        t = packet_time(item)
        selection.packet_seen(item, t)
        verdict = selection.decide(t)
        if verdict is None:
            selection.pending.append((t, item))
        elif verdict:
            yield item
        if selection.finished:
            return
    # End of file: the range ends here if no end frame was reached.
    if selection.lo is None:
        return  # start_frame is beyond the last frame: nothing was selected.
    selection.hi_final = True
    yield from selection.release()
