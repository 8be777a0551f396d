"""Streaming video input: the main video stream's frames as YUV planes, in order.

Frames are handed out as the decoder produced them, plane by plane (Y, U, V[, A]), never
through an 8-bit RGB conversion (:mod:`videodeblur.io.planes`), so bit depth, chroma
subsampling and colour tags survive. Each frame carries its own pts and time base; the writer
passes them through, which is what keeps variable-frame-rate timing intact.

Packets of every stream that is copied to the output (audio, subtitles, data, cover art) are
yielded in demux order alongside the decoded frames, so the whole file is read once, front to
back, with memory bounded by the decoder's own delay. What the stream is
(:mod:`videodeblur.io.probe`), which part of it is selected (:mod:`videodeblur.io.ranges`) and
frame-exact seeking (:mod:`videodeblur.io.seeking`) live in modules of their own.

``container.demux()`` ends with one empty packet per stream; decoding the video one flushes
the decoder (a second flush raises ``EOFError``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from videodeblur.errors import InputError, InvalidParameterError
from videodeblur.io import seeking
from videodeblur.io.paths import check_input
from videodeblur.io.planes import frame_to_planes, planar_or_none
from videodeblur.io.probe import (
    VideoInfo,
    av_message,
    check_frame_size,
    describe_stream,
    is_attached_pic,
    open_input,
    select_video_stream,
)
from videodeblur.io.ranges import RangeSelection, select_range
from videodeblur.limits import DEFAULT_MAX_FRAME_PIXELS

__all__ = ["FrameItem", "VideoReader", "probe"]

_THREAD_TYPES = ("AUTO", "FRAME", "SLICE", "NONE")


def _check_positive_int_or_none(name: str, value) -> None:
    """Refuse anything but None or an integer >= 1 (bools included) with the project's error."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidParameterError(f"{name} must be an integer >= 1 or None, got {value!r}")


@dataclass
class FrameItem:
    """One decoded video frame as planes.

    Attributes
    ----------
    index : int
        0-based index of the frame in presentation (decoder output) order.
    pts : int or None
        Presentation timestamp in ``time_base`` units, exactly as decoded.
    time_base : fractions.Fraction
        Time base of ``pts``.
    planes : list of numpy.ndarray
        One 2-D C-contiguous array per plane (Y, U, V[, A]), padding cropped;
        ``uint8`` for 8-bit formats, ``uint16`` holding native values (0..1023 for
        10-bit) otherwise.
    pix_fmt : str
        Pixel format of ``planes``.
    key_frame : bool
        Whether the decoder flagged the frame as a key frame.
    """

    index: int
    pts: int | None
    time_base: Fraction
    planes: list[np.ndarray]
    pix_fmt: str
    key_frame: bool

    @property
    def time_s(self) -> float | None:
        """Presentation time in seconds (``pts * time_base``), None without pts."""
        return None if self.pts is None else float(self.pts * self.time_base)


class VideoReader:
    """Open a media file once and stream its main video stream as :class:`FrameItem`.

    Parameters
    ----------
    path : str or os.PathLike
        Input media file.
    threads : {"AUTO", "FRAME", "SLICE", "NONE"}
        Decoder threading (``stream.thread_type``).
    thread_count : int or None
        Decoder threads; None lets FFmpeg choose (one more than the CPU cores).
    tolerate_decode_errors : bool
        Skip packets that fail to decode (each is recorded in :attr:`decode_errors`)
        instead of raising :class:`InputError`.
    max_frame_pixels : int or None
        Refuse a video stream whose declared (or first decoded) frame has more pixels
        than this, before any frame is decoded; None: no limit.

    Attributes
    ----------
    info : VideoInfo
        Facts about the main video stream (the first decoded frame is inspected).
    container : av.container.InputContainer
        The open input; the writer uses its streams as templates.
    copy_streams : list of av.stream.Stream
        Streams to copy to the output packet by packet: every non-video stream
        (audio, subtitle, data, attachment) and extra video streams that are attached
        pictures (cover art). Further real video streams are not copied.
    decode_errors : list of tuple of (int, str)
        ``(frame index reached, message)`` for every packet that failed to decode.

    Raises
    ------
    InputError
        Missing, empty or non-media file; no video stream; undecodable first frame;
        frame larger than ``max_frame_pixels``.
    InvalidParameterError
        Unknown ``threads`` value, bad ``max_frame_pixels``.
    """

    def __init__(self, path, *, threads: str = "AUTO", thread_count: int | None = None,
                 tolerate_decode_errors: bool = False,
                 max_frame_pixels: int | None = DEFAULT_MAX_FRAME_PIXELS):
        self.path = Path(path)
        threads = str(threads).upper()
        if threads not in _THREAD_TYPES:
            raise InvalidParameterError(f"threads must be one of {', '.join(_THREAD_TYPES)}, got {threads!r}")
        for name, value in (("thread_count", thread_count), ("max_frame_pixels", max_frame_pixels)):
            _check_positive_int_or_none(name, value)
        self.tolerate_decode_errors = bool(tolerate_decode_errors)
        self.max_frame_pixels = max_frame_pixels
        self.decode_errors: list[tuple[int, str]] = []
        self.container = None
        check_input(self.path)
        self.container = open_input(self.path)
        try:
            self.video_stream = video = select_video_stream(self.container, self.path)
            # The declared size, before anything is decoded (0 when the header has none).
            check_frame_size(self.path, video.codec_context.width or 0, video.codec_context.height or 0,
                             max_frame_pixels)
            self.copy_streams = [
                s for s in self.container.streams
                if s is not video and (s.type != "video" or is_attached_pic(s))
            ]
            video.thread_type = threads
            if thread_count is not None:
                video.thread_count = thread_count
            self._started = False
            self.restart_decoding()
            first = self._prime()
            check_frame_size(self.path, first.width, first.height, max_frame_pixels)
            self.info = describe_stream(self.container, video, first, self.path)
            self._start = (
                video.start_time * Fraction(self.info.time_base) if video.start_time is not None else Fraction(0)
            )
        except BaseException:
            self.close()
            raise

    def restart_decoding(self) -> None:
        """Forget the sequential pass's state (after a seek, or to start over)."""
        self._raw = self._iter_raw()
        self._primed: list = []
        self._decoded = 0

    def after_seek(self) -> None:
        """The sequential pass is lost (the container was seeked): a later :meth:`events` starts over."""
        self.restart_decoding()
        self._started = True

    def _prime(self) -> av.VideoFrame:
        # Demux and decode until the first frame appears, keeping everything that was
        # read so events() replays it: the file is opened and read only once, and the
        # first frame gives what the stream parameters cannot (display matrix, the
        # decoder's real pixel format and size).
        for item in self._raw:
            self._primed.append(item)
            if isinstance(item, av.VideoFrame):
                return item
        raise InputError(f"input '{self.path}': the video stream has no decodable frame")

    # -- reading ----------------------------------------------------------------

    def _iter_raw(self) -> Iterator:
        """Yield decoded ``av.VideoFrame`` and copy-stream ``av.Packet`` in demux order."""
        video = self.video_stream
        demux = self.container.demux(video, *self.copy_streams)
        flushed = False
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except (av.error.FFmpegError, OSError) as exc:
                raise InputError(
                    f"input '{self.path}': read error after frame {self._decoded}: {av_message(exc)}"
                ) from None
            # packet.stream, not packet.stream_index: the empty flush packets demux()
            # ends with have the right stream but a stream_index of 0 (PyAV 18).
            if packet.stream.index == video.index:
                if packet.size == 0:
                    # Flushes the decoder; a second flush would raise EOFError.
                    if flushed:
                        continue
                    flushed = True
                elif packet.is_corrupt:
                    # The demuxer could not read the whole packet (a file cut short, a damaged
                    # sector): decoding it yields a broken frame at best, and with frame
                    # threading the error also swallows intact frames still in the decoder.
                    self._damaged_packet()
                    continue
                yield from self._decode(video, packet)
            elif packet.size:
                yield packet
        if not flushed:
            # Should demux() ever end without its flush packet, the frames still held
            # by the decoder (B-frame and thread delay) must not be lost.
            yield from self._decode(video, None)

    def _damaged_packet(self) -> None:
        """A video packet flagged corrupt by the demuxer: recorded, and skipped or raised like a decode error."""
        msg = "damaged or truncated packet"
        self.decode_errors.append((self._decoded, msg))
        if not self.tolerate_decode_errors:
            raise InputError(
                f"input '{self.path}': {msg} at frame {self._decoded} ("
                "--set pipeline.tolerate_decode_errors=true skips such packets)"
            )

    def _decode(self, video, packet) -> Iterator:
        """Decode one packet (``None`` flushes), counting frames; a decode error is recorded
        in :attr:`decode_errors` and raised as :class:`InputError` naming the frame reached
        (with ``tolerate_decode_errors`` the packet is skipped instead)."""
        try:
            frames = video.decode(packet)
        except (av.error.FFmpegError, OSError) as exc:
            if packet is None and isinstance(exc, EOFError):
                return  # the decoder was already flushed: nothing is held back
            msg = av_message(exc)
            self.decode_errors.append((self._decoded, msg))
            if self.tolerate_decode_errors:
                return
            raise InputError(
                f"input '{self.path}': decode error at frame {self._decoded}: {msg} "
                "(--set pipeline.tolerate_decode_errors=true skips such packets)"
            ) from None
        for frame in frames:
            self._decoded += 1
            yield frame


    # -- seeking ----------------------------------------------------------------

    def frame_at(self, index: int, frames) -> FrameItem:
        """Decode frame ``index`` exactly (see :func:`videodeblur.io.seeking.frame_at`)."""
        return seeking.frame_at(self, index, frames)

    def frames_between(self, first: int, last: int, frames) -> Iterator[FrameItem]:
        """Decode frames ``first`` to ``last`` (inclusive) exactly, in order (see
        :func:`videodeblur.io.seeking.frames_between`)."""
        return seeking.frames_between(self, first, last, frames)

    def _rewind(self) -> None:
        # A second pass: back to the very start, decoder flushed, counters reset.
        try:
            self.container.seek(0, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"input '{self.path}': cannot seek back to the start ({av_message(exc)})") from None
        self.video_stream.codec_context.flush_buffers()
        self.restart_decoding()
        self.decode_errors = []

    def _items(self) -> Iterator:
        primed, self._primed = self._primed, []
        yield from primed
        yield from self._raw

    def to_item(self, frame: av.VideoFrame, index: int) -> FrameItem:
        fmt = frame.format.name
        if (frame.width, frame.height) != (self.info.width, self.info.height):
            # The writer's stream has one size; resizing would silently degrade frames.
            raise InputError(
                f"input '{self.path}': frame size changes at frame {index} "
                f"({self.info.width}x{self.info.height} -> {frame.width}x{frame.height}); not supported"
            )
        if fmt != self.info.pix_fmt and planar_or_none(fmt) != self.info.pix_fmt:
            raise InputError(
                f"input '{self.path}': pixel format changes at frame {index} "
                f"({self.info.pix_fmt} -> {fmt}); not supported"
            )
        if fmt != self.info.pix_fmt:
            # Packed/semi-planar decoder output (nv12, p010, rgb24 ...): a lossless
            # rearrangement to the planar format announced in info.pix_fmt.
            frame = frame.reformat(format=self.info.pix_fmt)
        return FrameItem(
            index=index,
            pts=frame.pts,
            time_base=frame.time_base or self.info.time_base,
            planes=frame_to_planes(frame),
            pix_fmt=self.info.pix_fmt,
            key_frame=bool(frame.key_frame),
        )

    # Range decisions use exact fractions: pts * time_base - start is a rational number,
    # and a float round-off would move a frame lying exactly on a bound out of it.

    def _frame_time(self, frame: av.VideoFrame, index: int) -> Fraction:
        if frame.pts is not None:
            tb = frame.time_base or self.info.time_base
            return frame.pts * Fraction(tb) - self._start
        rate = self.info.average_rate or Fraction(25)
        return index / Fraction(rate)

    def packet_time(self, packet: av.Packet) -> Fraction | None:
        """A packet's time (pts, else dts) in exact seconds from the video stream's start; None if it has none."""
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or not packet.time_base:
            return None
        return ts * Fraction(packet.time_base) - self._start

    def events(
        self,
        *,
        start_frame: int = 0,
        end_frame: int | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
    ) -> Iterator[FrameItem | av.Packet]:
        """Stream the input: decoded frames and copy-stream packets, in demux order.

        Give either a frame range (``start_frame``/``end_frame``) or a time range
        (``start_s``/``end_s``), not both. Times are seconds from the start of the
        video stream (``pts * time_base - info.start_time_s``). Calling ``events``
        again starts over from the beginning of the file.

        Parameters
        ----------
        start_frame : int
            First frame (presentation index) to yield.
        end_frame : int, optional
            Frame index to stop before (exclusive).
        start_s : float, optional
            Yield frames whose time is >= ``start_s``.
        end_s : float, optional
            Yield frames whose time is < ``end_s``.

        Yields
        ------
        FrameItem or av.Packet
            A decoded frame of the main video stream in the range, or a packet of one
            of :attr:`copy_streams` whose time lies in the time span of the selected
            frames (every packet when no range is given; attached pictures always).
            Empty (flush) packets are skipped.

        Raises
        ------
        InputError
            A packet fails to decode or the file cannot be read.
        InvalidParameterError
            Bad or mixed range bounds.
        """
        by_frames = start_frame != 0 or end_frame is not None
        by_time = start_s is not None or end_s is not None
        if by_frames and by_time:
            raise InvalidParameterError("give either a frame range or a time range, not both")
        if not isinstance(start_frame, int) or start_frame < 0:
            raise InvalidParameterError(f"start_frame must be an integer >= 0, got {start_frame!r}")
        if end_frame is not None and (not isinstance(end_frame, int) or end_frame <= start_frame):
            raise InvalidParameterError(f"end_frame must be an integer > start_frame, got {end_frame!r}")
        for name, value in (("start_s", start_s), ("end_s", end_s)):
            if value is not None and not math.isfinite(value):
                raise InvalidParameterError(f"{name} must be a finite number, got {value!r}")
        if start_s is not None and end_s is not None and end_s <= start_s:
            raise InvalidParameterError(f"end_s ({end_s}) must be greater than start_s ({start_s})")
        if self.container is None:
            raise InputError(f"input '{self.path}': reader is closed")

        if self._started:
            self._rewind()
        self._started = True

        if not by_frames and not by_time:
            return self._events_all()
        selection = RangeSelection(start_frame=start_frame if by_frames else None, end_frame=end_frame,
                                   start_s=start_s, end_s=end_s, copy_streams=self.copy_streams)
        return select_range(self._items(), selection, self._frame_time, self.packet_time, self.to_item)

    def _events_all(self) -> Iterator[FrameItem | av.Packet]:
        index = 0
        for item in self._items():
            if isinstance(item, av.VideoFrame):
                yield self.to_item(item, index)
                index += 1
            else:
                yield item

    def close(self) -> None:
        """Close the input container (idempotent)."""
        container, self.container = self.container, None
        if container is not None:
            try:
                container.close()
            except (av.error.FFmpegError, OSError):
                pass

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoReader({str(self.path)!r})"


def probe(path, *, max_frame_pixels: int | None = DEFAULT_MAX_FRAME_PIXELS) -> VideoInfo:
    """Describe the main video stream of a media file.

    Parameters
    ----------
    path : str or os.PathLike
        Input media file.
    max_frame_pixels : int or None
        Refuse larger frames (see :class:`VideoReader`); None: no limit.

    Returns
    -------
    VideoInfo
        Size, pixel format, timing, colour tags and rotation of the video stream.

    Raises
    ------
    InputError
        Missing file, directory, empty file, not a media file, no video stream (e.g.
        audio only), only an attached picture (cover art), or the first frame cannot be
        decoded, or the frame is larger than ``max_frame_pixels``.
    """
    with VideoReader(path, threads="AUTO", max_frame_pixels=max_frame_pixels) as reader:
        return reader.info
