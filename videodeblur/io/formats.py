"""Which pixel format an encoder writes a source in without loss."""

from __future__ import annotations

import av
import av.error

from videodeblur.errors import InvalidParameterError, OutputError
from videodeblur.io.planes import bit_depth, chroma_subsampling, planar_format
from videodeblur.io.probe import av_message


def choose_pix_fmt(codec: str, source_pix_fmt: str) -> str:
    """Pick the encoder pixel format that loses nothing of ``source_pix_fmt``.

    The source format itself when the encoder supports it; otherwise the supported
    planar format with the same family (YUV/RGB/gray), chroma resolution at least as
    high and bit depth at least as high, preferring the smallest such upgrade
    (e.g. ``yuv420p`` -> ``yuv422p10le`` for ``prores_ks``).

    Parameters
    ----------
    codec : str
        Encoder name.
    source_pix_fmt : str
        Pixel format of the frames that will be written.

    Returns
    -------
    str
        A pixel format the encoder accepts.

    Raises
    ------
    OutputError
        The encoder supports no format that holds the source losslessly.
    InvalidParameterError
        Unknown encoder.
    """
    enc = encoder_for(codec)
    supported = [f.name for f in (enc.video_formats or ())]
    if not supported or source_pix_fmt in supported:
        return source_pix_fmt
    src = av.VideoFormat(source_pix_fmt)
    src_depth = bit_depth(src)
    src_sub = chroma_subsampling(source_pix_fmt)
    src_alpha = any(c.is_alpha for c in src.components)
    src_gray = len(src.components) - int(src_alpha) == 1
    best = None
    for name in supported:
        try:
            if planar_format(name) != name:
                continue
        except Exception:
            continue
        fmt = av.VideoFormat(name)
        if fmt.is_rgb != src.is_rgb or name.startswith("yuvj"):
            continue
        alpha = any(c.is_alpha for c in fmt.components)
        gray = len(fmt.components) - int(alpha) == 1
        if gray != src_gray or (src_alpha and not alpha):
            continue
        depth = bit_depth(fmt)
        sub = chroma_subsampling(name)
        if depth < src_depth or sub[0] > src_sub[0] or sub[1] > src_sub[1]:
            continue
        cost = (depth, -sub[0] * sub[1], int(alpha))
        if best is None or cost < best[0]:
            best = (cost, name)
    if best is None:
        raise OutputError(
            f"encoder {codec} cannot encode {source_pix_fmt} or any format that holds it "
            f"(supported: {', '.join(supported)})"
        )
    return best[1]


def encoder_for(codec: str) -> av.Codec:
    try:
        enc = av.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError) as exc:
        raise InvalidParameterError(f"unknown video encoder '{codec}' ({av_message(exc)})") from None
    if enc.type != "video":
        raise InvalidParameterError(f"'{codec}' is a {enc.type} encoder, not a video encoder")
    return enc
