"""The streaming video pipeline: kernels per plane, the threaded runner."""

from videodeblur.pipeline.runner import FrameRestorer, RunReport, deblur_file

__all__ = ["FrameRestorer", "RunReport", "deblur_file"]
