"""Video input/output: probing, streaming decode to YUV planes, encode and stream copy.

Public API
----------
probe, VideoInfo, FrameItem, VideoReader
    Read a file's main video stream as planes, with the packets of every other stream.
VideoWriter
    Encode planes and copy packets into a new file.
check_paths, atomic_output
    Refuse unsafe input/output pairs; write through a temporary file.
"""

from videodeblur.io.paths import atomic_output, check_paths
from videodeblur.io.probe import VideoInfo
from videodeblur.io.reader import FrameItem, VideoReader, probe
from videodeblur.io.writer import VideoWriter

__all__ = [
    "FrameItem",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "atomic_output",
    "check_paths",
    "probe",
]
