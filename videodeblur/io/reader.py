"""Streaming video input: probe a file, decode its main video stream as YUV planes.

Frames are handed out as the decoder produced them, plane by plane (Y, U, V[, A]),
never through an 8-bit RGB conversion, so bit depth, chroma subsampling and colour
tags survive. Each frame carries its own pts and time base; the writer passes them
through, which is what keeps variable-frame-rate timing intact.

Packets of every stream that is copied to the output (audio, subtitles, data, cover
art) are yielded in demux order alongside the decoded frames, so the whole file is
read once, front to back, with memory bounded by the decoder's own delay.

PyAV facts this module relies on (checked against PyAV 18.1 / FFmpeg 8):

* the display matrix (rotation/flip) of a stream is not readable from the stream, only
  from decoded frames: FFmpeg copies the stream's coded side data onto every frame
  (``VideoFrame.side_data`` / ``VideoFrame.rotation``), so :func:`probe` decodes the
  first frame; the writer re-applies it with ``VideoStream.set_display_matrix``.
* ``container.demux()`` ends with one empty packet per stream; decoding the video one
  flushes the decoder (a second flush raises ``EOFError``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
from av.sidedata.sidedata import Type as _SideDataType

from videodeblur.errors import InputError, InvalidParameterError
from videodeblur.io.paths import check_input

__all__ = ["DEFAULT_MAX_FRAME_PIXELS", "FrameItem", "VideoInfo", "VideoReader", "planar_format", "probe"]

#: Largest frame (width x height) opened by default: 8192 x 8192. A damaged or hostile
#: header can declare any size; refusing it up front keeps memory bounded.
DEFAULT_MAX_FRAME_PIXELS = 8192 * 8192

# FFmpeg's "unspecified" value of each colour tag; reported as None.
_UNSPECIFIED = {"color_primaries": 2, "color_trc": 2, "colorspace": 2, "color_range": 0}
_COLOR_TAGS = tuple(_UNSPECIFIED)

_THREAD_TYPES = ("AUTO", "FRAME", "SLICE", "NONE")

# Chroma subsampling (log2 w, log2 h) -> the planar YUV family name.
_SUBSAMPLING = {(1, 1): "420", (1, 0): "422", (0, 0): "444", (2, 0): "411", (2, 2): "410", (0, 1): "440"}

# How far past the end of the selected range copy-stream packets are still looked for:
# muxers interleave streams within a second or so; this bounds the extra demuxing when
# one stream (sparse subtitles) has no packet after the range.
_TAIL_SLACK_S = 10.0


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about the input's main video stream.

    Attributes
    ----------
    path : pathlib.Path
        The input file.
    width, height : int
        Decoded frame size in pixels.
    pix_fmt : str
        Pixel format of the planes handed out, e.g. ``"yuv420p"``, ``"yuv420p10le"``.
        This is the decoder's format, except for packed or semi-planar formats
        (``nv12``, ``p010le``, ``rgb24`` ...) which are losslessly unpacked to their
        planar equivalent (see :func:`planar_format`).
    bit_depth : int
        Bits per sample (8, 10, 12 ...).
    time_base : fractions.Fraction
        Time base of the video stream; frame pts are in it.
    average_rate : fractions.Fraction or None
        Average frame rate as the container reports it.
    frame_count : int or None
        The container's frame count estimate, None when unknown.
    duration_s : float or None
        Stream (or container) duration in seconds.
    start_time_s : float
        Start time of the video stream in seconds (may be non-zero, e.g. MPEG-TS).
    codec_name : str
        Decoder name, e.g. ``"h264"``.
    color_primaries, color_trc, colorspace, color_range : int or None
        FFmpeg colour tag values; None when unspecified.
    rotation_deg : float
        Display-matrix rotation, counter-clockwise, in [0, 360); 0 when none.
    stream_index : int
        Index of the video stream in the container.
    display_matrix : tuple of int or None
        The raw 3x3 display matrix (FFmpeg layout, 9 int32) when the input has one;
        it also holds flips, which ``rotation_deg`` cannot express. The writer copies
        it verbatim.
    sample_aspect_ratio : fractions.Fraction or None
        Sample (pixel) aspect ratio, None when unknown or square-by-default.
    interlaced : bool
        The first frame is flagged interlaced, or the stream declares an interlaced
        field order.
    field_order : int or None
        FFmpeg ``AVFieldOrder`` of an interlaced stream (2 TT, 3 BB, 4 TB, 5 BT); None
        when progressive or unknown. The writer tags the output with it.
    """

    path: Path
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    time_base: Fraction
    average_rate: Fraction | None
    frame_count: int | None
    duration_s: float | None
    start_time_s: float
    codec_name: str
    color_primaries: int | None
    color_trc: int | None
    colorspace: int | None
    color_range: int | None
    rotation_deg: float
    stream_index: int
    display_matrix: tuple[int, ...] | None = None
    sample_aspect_ratio: Fraction | None = None
    interlaced: bool = False
    field_order: int | None = None


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


def _av_message(exc: BaseException) -> str:
    # FFmpeg errors render as "[Errno N] text: 'path'"; keep only the text so messages
    # stay one readable line.
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _bit_depth(fmt: av.VideoFormat) -> int:
    return max(c.bits for c in fmt.components)


def _is_usable_planar(fmt: av.VideoFormat) -> bool:
    comps = fmt.components
    if not comps or fmt.has_palette or fmt.is_bit_stream or fmt.is_bayer:
        return False
    if len(comps) > 1 and not fmt.is_planar:
        return False
    # One component per plane, all in 8..16-bit integer samples. Float formats report
    # 16/32 bits per component; their names carry an "f".
    planes = [c.plane for c in comps]
    if len(set(planes)) != len(planes):
        return False
    if "f16" in fmt.name or "f32" in fmt.name:
        return False
    return all(1 <= c.bits <= 16 for c in comps)


def planar_format(pix_fmt: str) -> str:
    """The planar pixel format frames of ``pix_fmt`` are handed out in.

    Planar formats with one component per plane (``yuv420p``, ``yuv422p10le``,
    ``gbrp``, ``gray`` ...) are returned unchanged; packed and semi-planar ones are
    mapped to the planar format of the same subsampling and depth (``nv12`` ->
    ``yuv420p``, ``p010le`` -> ``yuv420p10le``, ``rgb24`` -> ``gbrp``), a lossless
    rearrangement.

    Parameters
    ----------
    pix_fmt : str
        A decoder output format.

    Returns
    -------
    str
        The planar format name.

    Raises
    ------
    InputError
        No lossless planar equivalent exists (palette-free float or bitstream formats).
    """
    fmt = av.VideoFormat(pix_fmt)
    if _is_usable_planar(fmt):
        return fmt.name
    if "f16" in fmt.name or "f32" in fmt.name or fmt.is_bit_stream or fmt.is_bayer:
        raise InputError(f"unsupported pixel format '{pix_fmt}'")
    depth = 8 if fmt.has_palette else _bit_depth(fmt)
    alpha = fmt.has_palette or any(c.is_alpha for c in fmt.components)
    colour = [c for c in fmt.components if not c.is_alpha]
    if fmt.is_rgb or fmt.has_palette:
        base = "gbrap" if alpha else "gbrp"
    elif len(colour) == 1:
        base = "yuva444p" if alpha else "gray"
    else:
        # Subsampling from a format instance with a known size.
        key = (
            int(math.log2(64 // max(1, fmt.chroma_width(64)))),
            int(math.log2(64 // max(1, fmt.chroma_height(64)))),
        )
        base = ("yuva" if alpha else "yuv") + _SUBSAMPLING.get(key, "444") + "p"
    candidates = [base] if depth == 8 else [f"{base}{depth}le", f"{base}16le"]
    if base == "gray" and depth > 8:
        candidates = [f"gray{depth}le", "gray16le"]
    for name in candidates:
        try:
            cand = av.VideoFormat(name)
        except (ValueError, av.error.FFmpegError):
            continue
        if _is_usable_planar(cand):
            return cand.name
    raise InputError(f"unsupported pixel format '{pix_fmt}'")


def _planar_or_none(pix_fmt: str) -> str | None:
    try:
        return planar_format(pix_fmt)
    except InputError:
        return None


def _plane_dtype(fmt: av.VideoFormat) -> np.dtype:
    if _bit_depth(fmt) <= 8:
        return np.dtype(np.uint8)
    return np.dtype(">u2" if fmt.is_big_endian else "<u2")


def frame_to_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Copy the planes of a planar video frame into C-contiguous numpy arrays.

    Parameters
    ----------
    frame : av.VideoFrame
        A frame in a format accepted by :func:`planar_format` unchanged.

    Returns
    -------
    list of numpy.ndarray
        One ``(height, width)`` array per plane; line padding cropped; ``uint8`` or
        native-endian ``uint16``.
    """
    dtype = _plane_dtype(frame.format)
    native = np.uint8 if dtype.itemsize == 1 else np.uint16
    planes = []
    for plane in frame.planes:
        # Lines are padded to FFmpeg's alignment: view the buffer with its real line
        # size, then crop. The copy is needed anyway: the decoder reuses its buffers.
        row_items = abs(plane.line_size) // dtype.itemsize
        flat = np.frombuffer(plane, dtype=dtype)[: plane.height * row_items]
        view = flat.reshape(plane.height, row_items)[:, : plane.width]
        planes.append(np.ascontiguousarray(view, dtype=native))
    return planes


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    for sd in frame.side_data:
        if sd.type == _SideDataType.DISPLAYMATRIX:
            raw = bytes(sd)
            if len(raw) >= 36:
                return struct.unpack("=9i", raw[:36])
    return None


def _looks_like_iso_media(path: Path) -> bool:
    """Whether the file starts with an ISO base media (MP4/MOV) 'ftyp' box."""
    try:
        with open(path, "rb") as handle:
            return handle.read(8)[4:8] == b"ftyp"
    except OSError:
        return False


def _is_attached_pic(stream) -> bool:
    return bool(int(stream.disposition) & int(av.stream.Disposition.attached_pic))


def _fraction_or_none(value) -> Fraction | None:
    if value is None:
        return None
    value = Fraction(value)
    return value if value > 0 else None


def _check_positive_int_or_none(name: str, value) -> None:
    """Refuse anything but None or an integer >= 1 (bools included) with the project's error."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidParameterError(f"{name} must be an integer >= 1 or None, got {value!r}")


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
        _check_positive_int_or_none("thread_count", thread_count)
        _check_positive_int_or_none("max_frame_pixels", max_frame_pixels)
        self.tolerate_decode_errors = bool(tolerate_decode_errors)
        self.max_frame_pixels = max_frame_pixels
        self.decode_errors: list[tuple[int, str]] = []
        self.container = None
        check_input(self.path)
        try:
            self.container = av.open(str(self.path), "r")
        except av.error.InvalidDataError as exc:
            if _looks_like_iso_media(self.path):
                # An MP4/MOV whose index ('moov', written last unless +faststart) is
                # missing: typically a recording or a copy that was cut short.
                raise InputError(
                    f"input '{self.path}': truncated or damaged MP4/MOV file, its index cannot be read "
                    f"({_av_message(exc)})"
                ) from None
            raise InputError(f"input '{self.path}': not a media file ({_av_message(exc)})") from None
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"input '{self.path}': cannot open ({_av_message(exc)})") from None
        try:
            self._video = self._select_video_stream()
            cc = self._video.codec_context
            # The declared size, before anything is decoded (0 when the header has none).
            self._check_frame_size(cc.width or 0, cc.height or 0)
            self.copy_streams = [
                s
                for s in self.container.streams
                if s is not self._video and (s.type != "video" or _is_attached_pic(s))
            ]
            self._video.thread_type = threads
            if thread_count is not None:
                self._video.thread_count = thread_count
            self._threads = threads
            self._started = False
            self._reset_state()
            first = self._prime()
            self._check_frame_size(first.width, first.height)
            self.info = self._make_info(first)
            v = self._video
            self._start = (
                v.start_time * Fraction(self.info.time_base) if v.start_time is not None else Fraction(0)
            )
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------

    def _select_video_stream(self):
        streams = list(self.container.streams)
        videos = [s for s in streams if s.type == "video"]
        main = [s for s in videos if not _is_attached_pic(s)]
        if not main:
            if videos:
                raise InputError(f"input '{self.path}': only an attached picture (cover art), no video stream")
            kinds = ", ".join(s.type for s in streams) or "none"
            raise InputError(f"input '{self.path}': no video stream (streams: {kinds})")
        stream = main[0]
        if stream.codec_context is None:
            raise InputError(f"input '{self.path}': no decoder for the video stream #{stream.index}")
        demuxer = self.container.format.name
        if demuxer == "image2" or demuxer.endswith("_pipe"):
            # FFmpeg reads a PNG/JPEG/TIFF as a one-frame "video"; writing it out as a movie
            # is not what anyone running this on a still means.
            raise InputError(
                f"input '{self.path}': a still image ({demuxer}), not a video; restore stills with "
                "videodeblur.deconvolve() in Python"
            )
        return stream

    def _check_frame_size(self, width: int, height: int) -> None:
        limit = self.max_frame_pixels
        if limit is not None and width * height > limit:
            raise InputError(
                f"input '{self.path}': frame size {width}x{height} ({width * height} pixels) exceeds the limit of "
                f"{limit} pixels; raise it with --set pipeline.max_frame_pixels={width * height} if the file is genuine"
            )

    def _reset_state(self) -> None:
        self._raw = self._iter_raw()
        self._primed: list = []
        self._decoded = 0

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

    def _make_info(self, first: av.VideoFrame) -> VideoInfo:
        v = self._video
        cc = v.codec_context
        tb = v.time_base or Fraction(1, 90000)
        try:
            pix_fmt = planar_format(first.format.name)
        except InputError as exc:
            raise InputError(f"input '{self.path}': {exc}") from None
        tags = {}
        for key in _COLOR_TAGS:
            # Stream parameters first (what the container/bitstream declares), the
            # frame as fallback (some decoders only set them on frames).
            value = int(getattr(cc, key, _UNSPECIFIED[key]) or _UNSPECIFIED[key])
            if value == _UNSPECIFIED[key]:
                value = int(getattr(first, key))
            tags[key] = None if value == _UNSPECIFIED[key] else value
        if tags["color_range"] is None and first.format.name.startswith("yuvj"):
            # The deprecated yuvj* formats mean full range; say so explicitly, so an
            # encoder that only takes yuv* formats still tags the output as full range.
            tags["color_range"] = 2
        matrix = _display_matrix(first)
        rotation = float(first.rotation) % 360.0 if matrix is not None else 0.0
        if v.duration is not None:
            duration = float(v.duration * tb)
        elif self.container.duration is not None:
            duration = self.container.duration / av.time_base
        else:
            duration = None
        try:
            sar = _fraction_or_none(v.sample_aspect_ratio)
        except (ZeroDivisionError, AttributeError, ValueError):
            sar = None
        # AVFieldOrder: 0 unknown, 1 progressive, 2..5 the interlaced orders. PyAV 18 has
        # no per-frame field order (only VideoFrame.interlaced_frame), so the stream's is used.
        field_order = int(getattr(cc, "field_order", 0) or 0)
        field_order = field_order if 2 <= field_order <= 5 else None
        interlaced = bool(getattr(first, "interlaced_frame", False)) or field_order is not None
        return VideoInfo(
            path=self.path,
            width=first.width,
            height=first.height,
            pix_fmt=pix_fmt,
            bit_depth=_bit_depth(av.VideoFormat(pix_fmt)),
            time_base=Fraction(tb),
            average_rate=_fraction_or_none(v.average_rate),
            frame_count=v.frames or None,
            duration_s=duration,
            start_time_s=float(v.start_time * tb) if v.start_time is not None else 0.0,
            codec_name=cc.name,
            color_primaries=tags["color_primaries"],
            color_trc=tags["color_trc"],
            colorspace=tags["colorspace"],
            color_range=tags["color_range"],
            rotation_deg=rotation,
            stream_index=v.index,
            display_matrix=matrix,
            sample_aspect_ratio=sar,
            interlaced=interlaced,
            field_order=field_order,
        )

    # -- reading ----------------------------------------------------------------

    def _iter_raw(self) -> Iterator:
        """Yield decoded ``av.VideoFrame`` and copy-stream ``av.Packet`` in demux order."""
        video = self._video
        demux = self.container.demux(video, *self.copy_streams)
        flushed = False
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except (av.error.FFmpegError, OSError) as exc:
                raise InputError(
                    f"input '{self.path}': read error after frame {self._decoded}: {_av_message(exc)}"
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
            msg = _av_message(exc)
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

    def frame_at(self, index: int, frames) -> FrameItem:
        """Decode frame ``index`` exactly: seek to the key frame before it and decode forward.

        Parameters
        ----------
        index : int
            Frame number (presentation order, from 0).
        frames : FrameIndex
            This file's frame index (:func:`videodeblur.io.frame_index.frame_index`).

        Returns
        -------
        FrameItem
            The frame, as :meth:`events` would have yielded it.

        Raises
        ------
        InvalidParameterError
            ``index`` is not a frame of the clip.
        InputError
            The frame cannot be reached or decoded.
        """
        index = frames.check(index)
        for item in self.frames_between(index, index, frames):
            return item
        raise InputError(f"input '{self.path}': frame {index} (pts {int(frames.pts[index])}) could not be decoded")

    def frames_between(self, first: int, last: int, frames) -> Iterator[FrameItem]:
        """Decode frames ``first`` to ``last`` (inclusive) exactly, in order.

        Seeks to the key frame before ``first`` and decodes forward; on the way to ``first``,
        frames no other frame refers to are skipped undecoded.

        Parameters
        ----------
        first, last : int
            Frame numbers, ``first <= last``.
        frames : FrameIndex
            This file's frame index.

        Yields
        ------
        FrameItem
            Frames ``first .. last``, as :meth:`events` would have yielded them.

        Raises
        ------
        InvalidParameterError
            A frame number outside the clip.
        InputError
            The frames cannot be reached or decoded (a frame missing on the way).
        """
        first, last = frames.check(first), frames.check(last)
        if last < first:
            raise InvalidParameterError(f"frame range {first}..{last} is empty")
        wanted = {int(frames.pts[n]): n for n in range(first, last + 1)}
        first_pts = int(frames.pts[first])
        video = self._video
        try:
            self.container.seek(frames.keyframe_before(first), stream=video, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"input '{self.path}': cannot seek to frame {first} ({_av_message(exc)})") from None
        video.codec_context.flush_buffers()
        self._reset_state()
        self._started = True  # a later events() must rewind
        context = video.codec_context
        expected = first
        try:
            for packet in self.container.demux(video):
                # Before the first wanted frame, frames that no other frame refers to need not
                # be decoded (a quarter of the time with x264's B-frames); wanted ones always are.
                skip = packet.size and packet.pts not in wanted and (packet.pts is None or packet.pts < first_pts)
                context.skip_frame = "NONREF" if skip else "DEFAULT"
                # The empty packet demux() ends with flushes the decoder's last frames.
                for frame in video.decode(packet if packet.size else None):
                    index = wanted.get(frame.pts)
                    if index is None:
                        continue
                    if index != expected:
                        raise InputError(f"input '{self.path}': frame {expected} could not be decoded")
                    yield self._to_item(frame, index)
                    if index == last:
                        return
                    expected += 1
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"input '{self.path}': decode error seeking frame {expected}: {_av_message(exc)}") from None
        finally:
            context.skip_frame = "DEFAULT"
        raise InputError(f"input '{self.path}': frame {expected} (pts {int(frames.pts[expected])}) could not be decoded")

    def _rewind(self) -> None:
        # A second pass: back to the very start, decoder flushed, counters reset.
        try:
            self.container.seek(0, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"input '{self.path}': cannot seek back to the start ({_av_message(exc)})") from None
        self._video.codec_context.flush_buffers()
        self._reset_state()
        self.decode_errors = []

    def _items(self) -> Iterator:
        primed, self._primed = self._primed, []
        yield from primed
        yield from self._raw

    def _to_item(self, frame: av.VideoFrame, index: int) -> FrameItem:
        fmt = frame.format.name
        if (frame.width, frame.height) != (self.info.width, self.info.height):
            # The writer's stream has one size; resizing would silently degrade frames.
            raise InputError(
                f"input '{self.path}': frame size changes at frame {index} "
                f"({self.info.width}x{self.info.height} -> {frame.width}x{frame.height}); not supported"
            )
        if fmt != self.info.pix_fmt and _planar_or_none(fmt) != self.info.pix_fmt:
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

    def _packet_time(self, packet: av.Packet) -> Fraction | None:
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
        return self._events_range(start_frame, end_frame, start_s, end_s, by_frames)

    def _events_all(self) -> Iterator[FrameItem | av.Packet]:
        index = 0
        for item in self._items():
            if isinstance(item, av.VideoFrame):
                yield self._to_item(item, index)
                index += 1
            else:
                yield item

    def _events_range(self, start_frame, end_frame, start_s, end_s, by_frames) -> Iterator[FrameItem | av.Packet]:
        # Copy-stream packets are kept iff their time t is in [lo, hi), the time span
        # of the selected frames. With a frame range those bounds are only known once
        # the frames are decoded, and decoded frames lag the demuxer, so packets are
        # held back (a short, bounded queue) until the decision can be made.
        inf = math.inf
        if by_frames:
            lo = -inf if start_frame == 0 else None  # None: not known yet
            hi, hi_final = inf, False
        else:
            # Through the decimal text, so 0.2 means 1/5 and not the binary float's
            # 0.2000000000000000111.
            lo = -inf if start_s is None else Fraction(repr(float(start_s)))
            hi, hi_final = (inf if end_s is None else Fraction(repr(float(end_s)))), True
        last_t = None  # time of the latest decoded frame
        pending: list[tuple[Fraction | None, av.Packet]] = []
        video_done = False
        # Copy streams whose packets have not yet passed the end of the range.
        open_streams = {s.index for s in self.copy_streams if not _is_attached_pic(s)}
        max_seen = -inf

        def decide(t):
            """True: yield, False: drop, None: not decidable yet."""
            if t is None:
                t = last_t if last_t is not None else -inf
            if lo is None:
                return False if (last_t is not None and t < last_t) else None
            if t < lo:
                return False
            if hi_final:
                return t < hi
            if last_t is not None and t <= last_t:
                return True
            return None

        def release():
            nonlocal pending
            keep = []
            for t, pkt in pending:
                verdict = decide(t)
                if verdict is None:
                    keep.append((t, pkt))
                elif verdict:
                    yield pkt
            pending = keep

        index = 0
        for item in self._items():
            if isinstance(item, av.VideoFrame):
                i, index = index, index + 1
                if video_done:
                    continue
                tf = self._frame_time(item, i)
                if by_frames:
                    if i < start_frame:
                        last_t = tf
                        yield from release()
                        continue
                    if i == start_frame and lo is None:
                        lo = tf
                    if end_frame is not None and i >= end_frame:
                        hi, hi_final, video_done = tf, True, True
                        yield from release()
                        if not open_streams:
                            return
                        continue
                else:
                    if tf < lo:
                        last_t = tf
                        continue
                    if tf >= hi:
                        video_done = True
                        yield from release()
                        if not open_streams:
                            return
                        continue
                yield self._to_item(item, i)
                last_t = tf
                yield from release()
                continue

            packet = item
            if _is_attached_pic(packet.stream):
                yield packet
                continue
            t = self._packet_time(packet)
            if t is not None:
                max_seen = max(max_seen, t)
                if video_done and t >= hi:
                    open_streams.discard(packet.stream_index)
            verdict = decide(t)
            if verdict is None:
                pending.append((t, packet))
            elif verdict:
                yield packet
            if video_done and (not open_streams or max_seen >= hi + _TAIL_SLACK_S):
                return
        # End of file: the range ends here if no end frame was reached.
        if lo is None:
            return  # start_frame is beyond the last frame: nothing was selected.
        hi_final = True
        yield from release()

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

