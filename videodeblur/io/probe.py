"""What a video stream is: its size, format, timing, colour tags and rotation.

Opening a file and choosing its main video stream, refusing what cannot be a video (a still
image, cover art alone, audio only) and frames too large to allocate, and describing the
stream as a :class:`VideoInfo` from its parameters and its first decoded frame.

PyAV facts this module relies on (checked against PyAV 18.1 / FFmpeg 8):

* the display matrix (rotation/flip) of a stream is not readable from the stream, only
  from decoded frames: FFmpeg copies the stream's coded side data onto every frame
  (``VideoFrame.side_data`` / ``VideoFrame.rotation``), so the first frame is decoded; the
  writer re-applies it with ``VideoStream.set_display_matrix``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
from av.sidedata.sidedata import Type as _SideDataType

from videodeblur.errors import InputError
from videodeblur.io.planes import bit_depth, planar_format

__all__ = ["COLOUR_TAGS", "VideoInfo", "av_message", "describe_stream",
           "is_attached_pic", "open_input", "select_video_stream", "check_frame_size"]

#: FFmpeg's "unspecified" value of each colour tag; reported as None.
_UNSPECIFIED = {"color_primaries": 2, "color_trc": 2, "colorspace": 2, "color_range": 0}
#: The colour tags a stream and each of its frames carry.
COLOUR_TAGS = tuple(_UNSPECIFIED)


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
    disposition: int = 0

    def colour_tags(self) -> dict[str, int]:
        """The colour tags that are set (FFmpeg values), by name: what the writer copies."""
        return {key: getattr(self, key) for key in COLOUR_TAGS if getattr(self, key) is not None}


def av_message(exc: BaseException) -> str:
    """An FFmpeg error as one readable line (FFmpeg renders "[Errno N] text: 'path'")."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def is_attached_pic(stream) -> bool:
    """Whether a stream is an attached picture (cover art)."""
    return bool(int(stream.disposition) & int(av.stream.Disposition.attached_pic))


def _looks_like_iso_media(path: Path) -> bool:
    """Whether the file starts with an ISO base media (MP4/MOV) 'ftyp' box."""
    try:
        with open(path, "rb") as handle:
            return handle.read(8)[4:8] == b"ftyp"
    except OSError:
        return False


def _fraction_or_none(value) -> Fraction | None:
    if value is None:
        return None
    value = Fraction(value)
    return value if value > 0 else None


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    # Side data is a mapping by type: PyAV 18.1.0 iterated its values, 18.1.1 its keys; both look up.
    matrix = frame.side_data.get(_SideDataType.DISPLAYMATRIX)
    if matrix is None:
        return None
    raw = bytes(matrix)
    return struct.unpack("=9i", raw[:36]) if len(raw) >= 36 else None


def open_input(path: Path):
    """Open a media file for reading; every failure is an :class:`InputError` naming it."""
    try:
        return av.open(str(path), "r")
    except av.error.InvalidDataError as exc:
        if _looks_like_iso_media(path):
            # An MP4/MOV whose index ('moov', written last unless +faststart) is
            # missing: typically a recording or a copy that was cut short.
            raise InputError(
                f"input '{path}': truncated or damaged MP4/MOV file, its index cannot be read "
                f"({av_message(exc)})"
            ) from None
        raise InputError(f"input '{path}': not a media file ({av_message(exc)})") from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"input '{path}': cannot open ({av_message(exc)})") from None


def select_video_stream(container, path: Path):
    """The main video stream: the first video stream that is not cover art."""
    streams = list(container.streams)
    videos = [s for s in streams if s.type == "video"]
    main = [s for s in videos if not is_attached_pic(s)]
    if not main:
        if videos:
            raise InputError(f"input '{path}': only an attached picture (cover art), no video stream")
        kinds = ", ".join(s.type for s in streams) or "none"
        raise InputError(f"input '{path}': no video stream (streams: {kinds})")
    stream = main[0]
    if stream.codec_context is None:
        raise InputError(f"input '{path}': no decoder for the video stream #{stream.index}")
    demuxer = container.format.name
    if demuxer == "image2" or demuxer.endswith("_pipe"):
        # FFmpeg reads a PNG/JPEG/TIFF as a one-frame "video"; writing it out as a movie
        # is not what anyone running this on a still means.
        raise InputError(
            f"input '{path}': a still image ({demuxer}), not a video; restore stills with "
            "videodeblur.deconvolve() in Python"
        )
    return stream


def check_frame_size(path: Path, width: int, height: int, limit: int | None) -> None:
    """Refuse a frame of more than ``limit`` pixels (None: no limit) before it is allocated."""
    if limit is not None and width * height > limit:
        raise InputError(
            f"input '{path}': frame size {width}x{height} ({width * height} pixels) exceeds the limit of "
            f"{limit} pixels; raise it with --set pipeline.max_frame_pixels={width * height} if the file is genuine"
        )


def describe_stream(container, video, first: av.VideoFrame, path: Path) -> VideoInfo:
    """The :class:`VideoInfo` of ``video`` from its parameters and its first decoded frame."""
    v = video
    cc = v.codec_context
    tb = v.time_base or Fraction(1, 90000)
    try:
        pix_fmt = planar_format(first.format.name)
    except InputError as exc:
        raise InputError(f"input '{path}': {exc}") from None
    tags = {}
    for key in COLOUR_TAGS:
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
    elif container.duration is not None:
        duration = container.duration / av.time_base
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
        path=path,
        width=first.width,
        height=first.height,
        pix_fmt=pix_fmt,
        bit_depth=bit_depth(av.VideoFormat(pix_fmt)),
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
        disposition=int(v.disposition),
    )
