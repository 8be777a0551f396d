"""videodeblur: restore blurred and out-of-focus video.

Public API::

    from videodeblur import deconvolve, psf
    restored = deconvolve(frame, psf.disk(3.0), method="wiener", nsr="auto")
    deblur_file("shot.mov", "shot_restored.mov", "configs/defocus.toml")
"""

from videodeblur import psf
from videodeblur.config import Config, load_config
from videodeblur.errors import VideoDeblurError
from videodeblur.pipeline import deblur_file
from videodeblur.preview import preview_frame
from videodeblur.restoration import FrameDeconvolver, deconvolve

__all__ = ["deconvolve", "psf", "deblur_file", "preview_frame", "Config", "load_config", "FrameDeconvolver", "VideoDeblurError"]
__version__ = "0.1.0"
