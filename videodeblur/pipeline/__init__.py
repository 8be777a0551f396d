"""The streaming video pipeline: kernel schedules, the frame engine, the runner."""

from videodeblur.pipeline.restorer import FrameRestorer
from videodeblur.pipeline.runner import RunReport, deblur_file

__all__ = ["FrameRestorer", "RunReport", "deblur_file"]
