"""videodeblur: restore blurred and out-of-focus video.

Public API::

    from videodeblur import deconvolve, psf
    restored = deconvolve(frame, psf.disk(3.0), method="wiener", nsr="auto")
"""

from videodeblur import psf
from videodeblur.errors import VideoDeblurError
from videodeblur.restoration import FrameDeconvolver, deconvolve

__all__ = ["deconvolve", "psf", "FrameDeconvolver", "VideoDeblurError"]
__version__ = "0.1.0"
