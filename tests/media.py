"""Synthetic test media, generated with PyAV only.

Every test that needs a video file makes one here, in its ``tmp_path``, instead of
shipping binary fixtures. The clips are small (64x48 by default, a dozen frames) so a
whole test module stays fast on two cores.

The frames are textured (a smooth random field, moving edges and fine detail) rather
than flat, so that deblurring, encoding and bit-exactness tests exercise real data;
with ``burn_index`` each frame also carries its own index as a block binary code in the
top-left corner that survives lossy coding (see :func:`read_burned_index`), so a test
can tell which source frame an output frame came from, whatever the timestamps say.

This module deliberately does not import ``videodeblur.io``: the media that test the
I/O layer must not be produced by the code under test.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "BURN_BITS",
    "DecodedFrame",
    "burn_block_size",
    "decode_frames",
    "frame_pts",
    "corrupt_video_packet",
    "make_audio_only",
    "make_clip",
    "make_cover_art",
    "packet_hashes",
    "read_burned_index",
]

#: Number of bits of the burned-in frame index (2 rows of 6 blocks): frames 0..4095.
BURN_BITS = 12
_BURN_COLS = 6
_BURN_ROWS = 2

# Subtitle codec per container: each container family accepts only its own text format.
_SUBTITLE_CODEC = {".mp4": "mov_text", ".mov": "mov_text", ".m4v": "mov_text"}


@dataclass
class DecodedFrame:
    """One decoded video frame, as test assertions need it (a FrameItem look-alike).

    Attributes
    ----------
    index : int
        Position in presentation order, from 0.
    pts : int or None
        Presentation timestamp in ``time_base`` units.
    time_base : fractions.Fraction
        Time base of ``pts``.
    planes : list of numpy.ndarray
        One 2-D C-contiguous array per plane, padding cropped; ``uint8`` for 8-bit
        formats, native ``uint16`` values otherwise.
    pix_fmt : str
        Pixel format name as decoded.
    key_frame : bool
        Whether the decoder flagged the frame as a key frame.
    rotation : int
        Display-matrix rotation attached to the frame (degrees, counter-clockwise).
    color_primaries, color_trc, colorspace, color_range : int
        Colour tags of the decoded frame (FFmpeg enum values).
    """

    index: int
    pts: int | None
    time_base: Fraction
    planes: list[np.ndarray]
    pix_fmt: str
    key_frame: bool
    rotation: int
    color_primaries: int
    color_trc: int
    colorspace: int
    color_range: int


def _bit_depth(fmt: av.VideoFormat) -> int:
    return max(c.bits for c in fmt.components)


def _plane_dtype(fmt: av.VideoFormat) -> np.dtype:
    if _bit_depth(fmt) <= 8:
        return np.dtype(np.uint8)
    return np.dtype(">u2" if fmt.is_big_endian else "<u2")


def _plane_shapes(width: int, height: int, pix_fmt: str) -> list[tuple[int, int]]:
    # Ask FFmpeg for the plane sizes instead of re-deriving chroma subsampling (odd sizes
    # round up, and formats differ).
    frame = av.VideoFrame(width, height, pix_fmt)
    return [(p.height, p.width) for p in frame.planes]


def _frame_from_planes(planes: list[np.ndarray], width: int, height: int, pix_fmt: str) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, pix_fmt)
    dtype = _plane_dtype(frame.format)
    for arr, plane in zip(planes, frame.planes):
        # FFmpeg pads every line to its alignment: write row by row through a view
        # that has the plane's real line size, never as one flat copy.
        row_items = plane.line_size // dtype.itemsize
        dst = np.frombuffer(plane, dtype=dtype)[: plane.height * row_items]
        dst.reshape(plane.height, row_items)[:, : plane.width] = arr
    return frame


def _planes_from_frame(frame: av.VideoFrame) -> list[np.ndarray]:
    dtype = _plane_dtype(frame.format)
    out = []
    for plane in frame.planes:
        row_items = plane.line_size // dtype.itemsize
        src = np.frombuffer(plane, dtype=dtype)[: plane.height * row_items]
        arr = src.reshape(plane.height, row_items)[:, : plane.width]
        native = np.uint8 if dtype.itemsize == 1 else np.uint16
        out.append(np.ascontiguousarray(arr, dtype=native))
    return out


def _smooth_field(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """A smooth random field in [0, 1]: a coarse random grid, bilinearly upsampled."""
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.random((gh, gw))
    ys = np.linspace(0, gh - 1.001, h)
    xs = np.linspace(0, gw - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    g00 = grid[y0][:, x0]
    g01 = grid[y0][:, x0 + 1]
    g10 = grid[y0 + 1][:, x0]
    g11 = grid[y0 + 1][:, x0 + 1]
    return (g00 * (1 - fy) * (1 - fx) + g01 * (1 - fy) * fx + g10 * fy * (1 - fx) + g11 * fy * fx)


def burn_block_size(width: int, height: int) -> int:
    """Side, in luma pixels, of one block of the burned-in index code.

    Parameters
    ----------
    width, height : int
        Luma plane size.

    Returns
    -------
    int
        Block side: 8 for frames at least 48x32, smaller (down to 2) for tiny frames.
    """
    # The code takes at most a quarter of the height so enough texture remains.
    return max(2, min(8, width // _BURN_COLS, height // (2 * _BURN_ROWS)))


def _burn_index(y: np.ndarray, index: int, bit_depth: int) -> None:
    h, w = y.shape
    b = burn_block_size(w, h)
    scale = 1 << (bit_depth - 8)
    lo, hi = 16 * scale, 235 * scale
    for bit in range(BURN_BITS):
        r, c = divmod(bit, _BURN_COLS)
        y[r * b : (r + 1) * b, c * b : (c + 1) * b] = hi if (index >> bit) & 1 else lo


def read_burned_index(y_plane: np.ndarray, bit_depth: int | None = None) -> int:
    """Read back the frame index burned in by :func:`make_clip`.

    Parameters
    ----------
    y_plane : numpy.ndarray
        The decoded luma plane (2-D).
    bit_depth : int, optional
        Sample bit depth; by default 8 for ``uint8`` planes and 10 for ``uint16`` ones.

    Returns
    -------
    int
        The frame index, 0..4095.
    """
    h, w = y_plane.shape
    b = burn_block_size(w, h)
    if bit_depth is None:
        bit_depth = 8 if y_plane.dtype == np.uint8 else 10
    threshold = ((16 + 235) / 2) * (1 << (bit_depth - 8))
    # Only the block centres are read: block edges bleed into their neighbours after
    # lossy coding or deblurring.
    m = b // 4
    value = 0
    for bit in range(BURN_BITS):
        r, c = divmod(bit, _BURN_COLS)
        block = y_plane[r * b + m : (r + 1) * b - m, c * b + m : (c + 1) * b - m]
        if float(block.mean()) > threshold:
            value |= 1 << bit
    return value


def _video_time_base(fps: Fraction) -> tuple[Fraction, int]:
    # A time base of at least 1/10000 so the MP4 muxer keeps it as is (it multiplies
    # smaller timescales up), and an exact integer frame duration in it.
    m = max(1, math.ceil(10000 / fps.numerator))
    return Fraction(1, fps.numerator * m), fps.denominator * m


def _make_pts(frames: int, frame_dur: int, start_pts: int, vfr: bool, rng: np.random.Generator) -> list[int]:
    if not vfr:
        return [start_pts + i * frame_dur for i in range(frames)]
    # Irregular steps between 0.4 and 2.5 nominal frame durations, never a multiple
    # pattern a muxer could mistake for CFR.
    steps = rng.uniform(0.4, 2.5, size=frames)
    pts, t = [], start_pts
    for s in steps:
        pts.append(t)
        t += max(1, int(round(s * frame_dur)))
    return pts


def _frame_planes(
    i: int,
    shapes: list[tuple[int, int]],
    base: list[np.ndarray],
    bit_depth: int,
    burn: bool,
    has_alpha: bool,
) -> list[np.ndarray]:
    maxv = (1 << bit_depth) - 1
    scale = 1 << (bit_depth - 8)
    planes = []
    for k, (h, w) in enumerate(shapes):
        field = np.roll(base[k], shift=(i % h, (2 * i) % w), axis=(0, 1))
        if k == 0:
            yy, xx = np.mgrid[0:h, 0:w]
            # Moving hard edges (a bright bar and a dark diagonal) for the deblurring core.
            bar = ((xx - 3 * i) % max(w, 1) < max(2, w // 8)).astype(float)
            diag = (((xx + yy + 5 * i) // max(2, h // 6)) % 2).astype(float)
            v = 16 + 219 * (0.55 * field + 0.3 * bar + 0.15 * diag)
            v = v * scale
            # Fine detail below 8 bits so high bit-depth paths are really exercised.
            if scale > 1:
                v = v + ((xx * 7 + yy * 3 + i) % scale)
        elif has_alpha and k == len(shapes) - 1:
            v = np.full((h, w), 255.0 * scale)
        else:
            v = (16 + 224 * field) * scale
        arr = np.clip(np.rint(v), 0, maxv)
        arr = arr.astype(np.uint8 if bit_depth <= 8 else np.uint16)
        if k == 0 and burn:
            _burn_index(arr, i, bit_depth)
        planes.append(arr)
    return planes


def _add_audio(container: av.container.OutputContainer, codec: str, track: int):
    stream = container.add_stream(codec, rate=48000)
    stream.layout = "stereo" if track % 2 == 0 else "mono"
    # Distinct tones per track so their packets (and hashes) differ.
    stream.metadata["title"] = f"tone {track}"
    return stream


def _audio_frames(duration_s: float, track: int, layout: str):
    rate, chunk = 48000, 1024
    channels = 2 if layout == "stereo" else 1
    total = int(math.ceil(duration_s * rate))
    freq = 330.0 * (track + 1)
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float32)
        tone = 0.25 * np.sin(2 * np.pi * freq * t, dtype=np.float32)
        data = np.repeat(tone[None, :], channels, axis=0)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        yield frame


def make_clip(
    path,
    *,
    width: int = 64,
    height: int = 48,
    frames: int = 12,
    fps=25,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    audio: bool = True,
    audio_codec: str = "aac",
    vfr: bool = False,
    rotation: float | None = None,
    color_tags: dict | None = None,
    gop: int | None = None,
    start_pts: int = 0,
    burn_index: bool = True,
    extra_audio_tracks: int = 0,
    subtitles: bool = False,
    seed: int = 0,
    codec_options: dict | None = None,
    audio_first: bool = False,
) -> Path:
    """Write a small synthetic clip.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its extension picks the container (.mp4, .mkv, .mov, ...).
    width, height : int
        Frame size (odd sizes are allowed for 4:4:4 and lossless codecs; x264 needs
        even sizes for 4:2:0 and pads odd ones internally).
    frames : int
        Number of video frames.
    fps : int, float or fractions.Fraction
        Nominal frame rate.
    pix_fmt : str
        Pixel format of the encoded video, e.g. ``"yuv420p10le"``.
    codec : str
        Video encoder (``libx264``, ``libx265``, ``ffv1``, ``prores_ks`` ...).
    audio : bool
        Add one audio track (a sine tone) covering the video duration.
    audio_codec : str
        Audio encoder.
    vfr : bool
        Irregular frame timestamps (variable frame rate).
    rotation : float, optional
        Display-matrix rotation, degrees counter-clockwise.
    color_tags : dict, optional
        Any of ``color_primaries``, ``color_trc``, ``colorspace``, ``color_range``
        (FFmpeg enum values), written to the stream and every frame.
    gop : int, optional
        Key-frame interval.
    start_pts : int
        Timestamp of the first frame, in the video time base.
    burn_index : bool
        Burn the frame index into the top-left corner (see :func:`read_burned_index`).
    extra_audio_tracks : int
        Further audio tracks, each with a different tone.
    subtitles : bool
        Add a text subtitle track (``mov_text`` in MP4/MOV, ``subrip`` elsewhere).
    seed : int
        Seed of the random texture and of the VFR timestamps.
    codec_options : dict, optional
        Extra encoder options.
    audio_first : bool
        Put the audio tracks before the video stream (video is then not stream 0).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    fps = Fraction(fps).limit_denominator(1001 * 1000)
    rng = np.random.default_rng(seed)
    time_base, frame_dur = _video_time_base(fps)
    pts_list = _make_pts(frames, frame_dur, start_pts, vfr, rng)
    color_tags = dict(color_tags or {})

    with av.open(str(path), "w") as container:
        astreams = []
        n_audio = (1 + extra_audio_tracks) if audio else 0
        if audio_first:
            astreams = [_add_audio(container, audio_codec, track) for track in range(n_audio)]
        vstream = container.add_stream(codec, rate=fps, options=dict(codec_options or {}))
        vstream.width = width
        vstream.height = height
        vstream.pix_fmt = pix_fmt
        vstream.time_base = time_base
        vstream.codec_context.time_base = time_base
        if gop is not None:
            vstream.codec_context.gop_size = gop
        for key, value in color_tags.items():
            setattr(vstream.codec_context, key, value)
        if rotation is not None:
            vstream.set_display_rotation(rotation)

        if not audio_first:
            astreams = [_add_audio(container, audio_codec, track) for track in range(n_audio)]
        sstream = None
        if subtitles:
            scodec = _SUBTITLE_CODEC.get(path.suffix.lower(), "subrip")
            sstream = container.add_mux_stream(scodec)
            sstream.time_base = Fraction(1, 1000)

        fmt = av.VideoFormat(pix_fmt)
        bit_depth = _bit_depth(fmt)
        has_alpha = any(c.is_alpha for c in fmt.components)
        shapes = _plane_shapes(width, height, pix_fmt)
        base = [_smooth_field(rng, h, w, cell=max(4, min(h, w) // 3)) for (h, w) in shapes]

        for i, pts in enumerate(pts_list):
            planes = _frame_planes(i, shapes, base, bit_depth, burn_index, has_alpha)
            frame = _frame_from_planes(planes, width, height, pix_fmt)
            frame.pts = pts
            frame.time_base = time_base
            for key, value in color_tags.items():
                setattr(frame, key, value)
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode(None))

        last = pts_list[-1] if pts_list else start_pts
        duration_s = float((last - start_pts + frame_dur) * time_base)
        start_s = float(start_pts * time_base)
        for track, astream in enumerate(astreams):
            for aframe in _audio_frames(duration_s, track, astream.layout.name):
                aframe.pts += int(round(start_s * 48000))
                container.mux(astream.encode(aframe))
            container.mux(astream.encode(None))

        if sstream is not None:
            _write_subtitles(container, sstream, scodec, start_s, duration_s)
    return path


def _write_subtitles(container, stream, codec: str, start_s: float, duration_s: float) -> None:
    n = max(1, int(duration_s // 0.2))
    for k in range(n):
        text = f"line {k}".encode()
        if codec == "mov_text":
            # 3GPP timed text: a 16-bit big-endian length, then the UTF-8 text.
            data = len(text).to_bytes(2, "big") + text
        else:
            data = text
        packet = av.Packet(data)
        packet.stream = stream
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = int(round((start_s + k * 0.2) * 1000))
        packet.duration = 150
        container.mux(packet)


def make_cover_art(path, *, with_video: bool = False, seconds: float = 0.3) -> Path:
    """Write an MP4 with an audio track and a PNG cover-art (attached picture) stream.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (.mp4 or .mov: the MP4 family stores cover art as ``covr``).
    with_video : bool
        Also add a real video stream (a :func:`make_clip`-style clip) first.
    seconds : float
        Audio duration.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with av.open(str(path), "w") as container:
        vstream = None
        if with_video:
            fps = Fraction(25)
            time_base, frame_dur = _video_time_base(fps)
            vstream = container.add_stream("libx264", rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
            vstream.time_base = time_base
            vstream.codec_context.time_base = time_base
        astream = _add_audio(container, "aac", 0)
        cover = container.add_stream("png")
        cover.width, cover.height, cover.pix_fmt = 32, 32, "rgb24"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame(32, 32, "rgb24")
        for plane in picture.planes:
            np.frombuffer(plane, dtype=np.uint8)[:] = 200
        picture.pts = 0
        container.mux(cover.encode(picture) + cover.encode(None))
        if vstream is not None:
            rng = np.random.default_rng(0)
            shapes = _plane_shapes(64, 48, "yuv420p")
            base = [_smooth_field(rng, h, w, cell=8) for (h, w) in shapes]
            for i in range(int(seconds * 25)):
                planes = _frame_planes(i, shapes, base, 8, True, False)
                frame = _frame_from_planes(planes, 64, 48, "yuv420p")
                frame.pts = i * frame_dur
                frame.time_base = time_base
                container.mux(vstream.encode(frame))
            container.mux(vstream.encode(None))
        for frame in _audio_frames(seconds, 0, "stereo"):
            container.mux(astream.encode(frame))
        container.mux(astream.encode(None))
    return path


def corrupt_video_packet(src, dst, packet_index: int = 5) -> Path:
    """Copy ``src`` (H.264 in MP4) to ``dst`` with one video packet's payload garbled.

    The packet keeps its size and timestamps but its bytes become ``0xff``, which an
    MP4 (length-prefixed) H.264 decoder rejects as an invalid NAL unit size, so
    decoding it raises instead of concealing.

    Parameters
    ----------
    src, dst : str or os.PathLike
        Input clip and the corrupted copy to write (same container family).
    packet_index : int
        Which video packet (in demux order) to garble.

    Returns
    -------
    pathlib.Path
        ``dst``.
    """
    dst = Path(dst)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        n = 0
        for packet in inp.demux(vin):
            if packet.size == 0:
                continue
            if n == packet_index:
                bad = av.Packet(b"\xff" * packet.size)
                bad.pts, bad.dts, bad.time_base = packet.pts, packet.dts, packet.time_base
                bad.is_keyframe = packet.is_keyframe
                packet = bad
            packet.stream = vout
            out.mux(packet)
            n += 1
    return dst


def make_audio_only(path, *, seconds: float = 0.5, codec: str = "aac") -> Path:
    """Write a file with one audio track and no video stream.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (.m4a, .mp4, .mka, ...).
    seconds : float
        Duration.
    codec : str
        Audio encoder.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = _add_audio(container, codec, 0)
        for frame in _audio_frames(seconds, 0, "stereo"):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decode_frames(path) -> list[DecodedFrame]:
    """Decode every frame of the first video stream.

    Parameters
    ----------
    path : str or os.PathLike
        Media file.

    Returns
    -------
    list of DecodedFrame
        Frames in presentation order, with their planes as numpy arrays.
    """
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            out.append(
                DecodedFrame(
                    index=i,
                    pts=frame.pts,
                    time_base=frame.time_base,
                    planes=_planes_from_frame(frame),
                    pix_fmt=frame.format.name,
                    key_frame=bool(frame.key_frame),
                    rotation=frame.rotation,
                    color_primaries=int(frame.color_primaries),
                    color_trc=int(frame.color_trc),
                    colorspace=int(frame.colorspace),
                    color_range=int(frame.color_range),
                )
            )
    return out


def frame_pts(path) -> list[int]:
    """Presentation timestamps of the decoded frames of the first video stream.

    Parameters
    ----------
    path : str or os.PathLike
        Media file.

    Returns
    -------
    list of int
        One pts per frame, in presentation order, in the stream's time base.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [frame.pts for frame in container.decode(stream)]


def packet_hashes(path, kind: str = "audio") -> list[str]:
    """SHA-256 of every packet of every stream of one kind.

    Parameters
    ----------
    path : str or os.PathLike
        Media file.
    kind : str
        Stream type: ``"audio"``, ``"subtitle"``, ``"video"``, ``"data"``.

    Returns
    -------
    list of str
        ``"<n>:<hexdigest>"`` per non-empty packet, where ``n`` is the stream's rank
        among the streams of that kind; grouped by stream, each group in demux order.
        Grouping makes the result independent of how a muxer interleaves tracks.
    """
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        rank = {s.index: n for n, s in enumerate(streams)}
        groups: dict[int, list[str]] = {n: [] for n in range(len(streams))}
        if streams:
            for packet in container.demux(*streams):
                if packet.size == 0:
                    continue
                n = rank[packet.stream.index]
                groups[n].append(f"{n}:{hashlib.sha256(bytes(packet)).hexdigest()}")
    return [h for n in sorted(groups) for h in groups[n]]
