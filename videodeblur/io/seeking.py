"""Frame-exact seeking: decode frames N..M of a stream as a sequential pass would.

Frame N is the N-th frame the decoder outputs (presentation order). The frame index
(:mod:`videodeblur.io.frame_index`) gives every frame's pts and the key frames; a seek goes to
the key frame before N and decodes forward, so the frames are exactly those a pass from the
start of the file hands out.
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import av.error

from videodeblur.errors import InputError, InvalidParameterError
from videodeblur.io.probe import av_message


def frame_at(reader, index: int, frames):
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
    for item in frames_between(reader, index, index, frames):
        return item
    raise InputError(f"input '{reader.path}': frame {index} (pts {int(frames.pts[index])}) could not be decoded")


def frames_between(reader, first: int, last: int, frames) -> Iterator:
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
    video = reader.video_stream
    try:
        reader.container.seek(frames.keyframe_before(first), stream=video, backward=True, any_frame=False)
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"input '{reader.path}': cannot seek to frame {first} ({av_message(exc)})") from None
    video.codec_context.flush_buffers()
    reader.after_seek()
    context = video.codec_context
    expected = first
    try:
        for packet in reader.container.demux(video):
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
                    raise InputError(f"input '{reader.path}': frame {expected} could not be decoded")
                yield reader.to_item(frame, index)
                if index == last:
                    return
                expected += 1
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"input '{reader.path}': decode error seeking frame {expected}: {av_message(exc)}") from None
    finally:
        context.skip_frame = "DEFAULT"
    raise InputError(f"input '{reader.path}': frame {expected} (pts {int(frames.pts[expected])}) could not be decoded")
