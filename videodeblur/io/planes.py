"""Decoded frames as NumPy planes and back, and what a pixel format's planes look like.

Frames travel through the pipeline as planes (Y, U, V[, A]), never through an 8-bit RGB
conversion, so bit depth, chroma subsampling and colour tags survive. Packed and semi-planar
decoder output (``nv12``, ``p010le``, ``rgb24`` ...) is losslessly rearranged to the planar
format of the same subsampling and depth.
"""

from __future__ import annotations

import math

import av
import av.error
import numpy as np

from videodeblur.errors import InputError, InvalidParameterError

__all__ = ["bit_depth", "chroma_subsampling", "frame_from_item", "frame_to_planes", "planar_format",
           "planar_or_none", "plane_shapes"]

# Chroma subsampling (log2 w, log2 h) -> the planar YUV family name.
_SUBSAMPLING = {(1, 1): "420", (1, 0): "422", (0, 0): "444", (2, 0): "411", (2, 2): "410", (0, 1): "440"}


def bit_depth(fmt: av.VideoFormat) -> int:
    """Bits per sample of a format (its deepest component)."""
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
    depth = 8 if fmt.has_palette else bit_depth(fmt)
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


def planar_or_none(pix_fmt: str) -> str | None:
    """:func:`planar_format`, or None when there is no planar equivalent."""
    try:
        return planar_format(pix_fmt)
    except InputError:
        return None


def _plane_dtype(fmt: av.VideoFormat) -> np.dtype:
    if bit_depth(fmt) <= 8:
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


def chroma_subsampling(pix_fmt: str) -> tuple[int, int]:
    """(horizontal, vertical) chroma subsampling factors, e.g. (2, 2) for 4:2:0."""
    fmt = av.VideoFormat(pix_fmt)
    if len([c for c in fmt.components if not c.is_alpha]) < 3 or fmt.is_rgb:
        return 1, 1
    return 64 // max(1, fmt.chroma_width(64)), 64 // max(1, fmt.chroma_height(64))


def frame_from_item(item, info) -> av.VideoFrame:
    """An ``av.VideoFrame`` holding a :class:`~videodeblur.io.reader.FrameItem`'s planes, pts and
    time base and the colour tags of its stream's :class:`~videodeblur.io.probe.VideoInfo`."""
    try:
        frame = av.VideoFrame(info.width, info.height, item.pix_fmt)
    except (ValueError, av.error.FFmpegError):
        raise InvalidParameterError(f"frame {item.index}: unknown pixel format '{item.pix_fmt}'") from None
    fmt = frame.format
    depth = bit_depth(fmt)
    want = np.dtype(np.uint8) if depth <= 8 else np.dtype(np.uint16)
    if len(item.planes) != len(frame.planes):
        raise InvalidParameterError(
            f"frame {item.index}: {item.pix_fmt} has {len(frame.planes)} planes, got {len(item.planes)}"
        )
    # Little- or big-endian storage as the pixel format says; our arrays are native.
    store = want if depth <= 8 else np.dtype(">u2" if fmt.is_big_endian else "<u2")
    for k, (arr, plane) in enumerate(zip(item.planes, frame.planes)):
        arr = np.asarray(arr)
        if arr.shape != (plane.height, plane.width):
            raise InvalidParameterError(
                f"frame {item.index}: plane {k} has shape {arr.shape}, "
                f"expected {(plane.height, plane.width)} for {item.pix_fmt} {info.width}x{info.height}"
            )
        if arr.dtype != want:
            raise InvalidParameterError(
                f"frame {item.index}: plane {k} has dtype {arr.dtype}, expected {want} for {item.pix_fmt}"
            )
        # FFmpeg pads each line to its alignment: copy row by row through a view
        # with the plane's real line size.
        row_items = plane.line_size // store.itemsize
        dst = np.frombuffer(plane, dtype=store)[: plane.height * row_items]
        dst.reshape(plane.height, row_items)[:, : plane.width] = arr
    frame.pts = item.pts
    frame.time_base = item.time_base
    for key, value in info.colour_tags().items():
        setattr(frame, key, value)
    return frame


def plane_shapes(pix_fmt: str, width: int, height: int) -> list[tuple[int, int]]:
    """(rows, columns) of each plane of a frame: e.g. chroma of 4:2:0 is half size, rounded up."""
    shapes: dict[int, tuple[int, int]] = {}
    for component in av.VideoFormat(pix_fmt, width, height).components:
        shapes.setdefault(component.plane, (component.height, component.width))
    return [shapes[plane] for plane in sorted(shapes)]
