"""An index of a video stream's frame timestamps, for frame-exact seeking.

Frame N is the N-th frame the decoder outputs, i.e. the N-th smallest presentation timestamp
of the stream's packets. The index holds every frame's pts in presentation order and the pts
of the key frames, read by demuxing alone (no decoding: a few seconds for an hour of video),
and is cached per input file in the user cache directory, so later seeks are immediate.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np
import platformdirs

from videodeblur.errors import InputError, InvalidParameterError

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class FrameIndex:
    """Timestamps of one video stream.

    Attributes
    ----------
    pts : numpy.ndarray
        int64 pts of every frame, in presentation order (frame N has ``pts[N]``).
    keyframe_pts : numpy.ndarray
        int64 pts of the key frames (decoding can start there), sorted.
    time_base : float
        Seconds per pts unit.
    start_pts : int
        The stream's start time in pts units (times are measured from it).
    """

    pts: np.ndarray
    keyframe_pts: np.ndarray
    time_base: float
    start_pts: int

    @property
    def frame_count(self) -> int:
        return int(self.pts.size)

    def time_s(self, index: int) -> float:
        """Time of frame ``index`` in seconds from the start of the stream."""
        return float(self.pts[index] - self.start_pts) * self.time_base

    def end_s(self) -> float:
        """When the last frame leaves the screen: its time plus the typical frame duration."""
        last = self.time_s(self.frame_count - 1)
        if self.frame_count < 2:
            return last + 1.0 / 25.0  # one frame, no rate to go by: assume 25 fps
        return last + float(np.median(np.diff(self.pts))) * self.time_base

    def index_at_time(self, time_s: float) -> int:
        """The frame on screen at ``time_s`` seconds: the last one that starts at or before it."""
        target = self.start_pts + time_s / self.time_base
        position = int(np.searchsorted(self.pts, target + 1e-9, side="right")) - 1
        return max(position, 0)

    def first_at_or_after(self, time_s: float) -> int:
        """The first frame whose time is at or after ``time_s`` (``frame_count`` if none is):
        where a time range that starts or ends at ``time_s`` starts or ends."""
        # pts are integers: a millionth of a unit absorbs the float round-off of the division.
        target = self.start_pts + time_s / self.time_base - 1e-6
        return int(np.searchsorted(self.pts, target, side="left"))

    def keyframe_before(self, index: int) -> int:
        """pts of the last key frame at or before frame ``index`` (where decoding must start)."""
        position = bisect.bisect_right(self.keyframe_pts.tolist(), int(self.pts[index])) - 1
        return int(self.keyframe_pts[max(position, 0)])

    def check(self, index: int) -> int:
        """``index`` if it names a frame, else a clear InvalidParameterError."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InvalidParameterError(f"frame must be an integer, got {index!r}")
        if not 0 <= index < self.frame_count:
            raise InvalidParameterError(
                f"frame {index} is out of range: the clip has {self.frame_count} frames (0 to {self.frame_count - 1})"
            )
        return int(index)


def _cache_file(path: Path) -> Path:
    status = path.stat()
    identity = f"{path.resolve()}|{status.st_size}|{status.st_mtime_ns}|{_FORMAT_VERSION}"
    base = os.environ.get("VIDEODEBLUR_CACHE_DIR") or platformdirs.user_cache_dir("videodeblur")
    return Path(base) / "frame-index" / (hashlib.sha256(identity.encode()).hexdigest()[:32] + ".npz")


def build_frame_index(path, stream_index: int) -> FrameIndex:
    """Demux the video stream (no decoding) and collect its timestamps."""
    path = Path(path)
    pts, keyframes = [], []
    try:
        with av.open(str(path)) as container:
            stream = container.streams[stream_index]
            start_pts = stream.start_time if stream.start_time is not None else 0
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    raise InputError(f"input '{path}': video packets without timestamps; frame-exact seeking "
                                     "is not possible in this file (remux it to .mkv or .mp4)")
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keyframes.append(packet.pts)
            time_base = float(stream.time_base)
    except (av.error.FFmpegError, OSError) as error:
        raise InputError(f"input '{path}': cannot index the video stream ({error})") from None
    if not pts:
        raise InputError(f"input '{path}': the video stream has no frames")
    if not keyframes:
        keyframes = [min(pts)]
    return FrameIndex(np.sort(np.array(pts, dtype=np.int64)), np.sort(np.array(keyframes, dtype=np.int64)),
                      time_base, int(start_pts))


def frame_index(path, stream_index: int) -> FrameIndex:
    """The frame index of ``path``, from the cache when the file is unchanged, else built and cached."""
    path = Path(path)
    cache = _cache_file(path)
    try:
        with np.load(cache) as data:
            return FrameIndex(data["pts"], data["keyframe_pts"], float(data["time_base"]), int(data["start_pts"]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        pass  # missing, or damaged (say by a power cut while it was written): build it again
    index = build_frame_index(path, stream_index)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, pts=index.pts, keyframe_pts=index.keyframe_pts, time_base=index.time_base,
                 start_pts=index.start_pts)
        os.replace(temporary, cache)
    except OSError:
        pass  # a read-only cache only costs indexing time next time
    return index
