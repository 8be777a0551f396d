"""videodeblur: restore blurred and out-of-focus video.

Public API::

    from videodeblur import deconvolve, psf
    restored = deconvolve(frame, psf.disk(3.0), method="wiener", nsr="auto")
    deblur_file("shot.mov", "shot_restored.mov", "defocus")
    rows = estimate_track("shot.mov", "auto")     # the blur found per frame
    fit = estimate_blur(blur_spectrum(luma))                   # one frame: motion, defocus or none
"""

#: Set before the imports: modules below record it (a segment manifest).
__version__ = "0.1.0"

from videodeblur import psf
from videodeblur.config import Config, load_config
from videodeblur.core.estimation import blur_spectrum, estimate_blur
from videodeblur.errors import VideoDeblurError
from videodeblur.pipeline import deblur_file
from videodeblur.pipeline.estimate import estimate_track
from videodeblur.preview import preview_frame
from videodeblur.restoration import FrameDeconvolver, deconvolve

__all__ = ["deconvolve", "psf", "deblur_file", "preview_frame", "estimate_track", "estimate_blur", "blur_spectrum",
           "Config", "load_config", "FrameDeconvolver", "VideoDeblurError"]
