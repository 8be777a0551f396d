"""The project's one exception family.

Every error that videodeblur raises on purpose derives from :class:`VideoDeblurError` and
carries the process exit code the CLI maps it to. Nothing here imports a CLI library.

Exit codes
----------
0    success
1    unexpected internal error (a bug: please report it)
2    bad usage, bad parameters or a bad config file
3    the input cannot be read or decoded
4    the output cannot be written (exists, is the input, no space, no permission)
5    processing failed (a worker raised)
130  interrupted (Ctrl-C / SIGINT)
"""

from __future__ import annotations


class VideoDeblurError(Exception):
    """Base class of every error raised on purpose by videodeblur."""

    exit_code: int = 1


class InvalidParameterError(VideoDeblurError, ValueError):
    """A numeric parameter (radius, length, NSR, kernel, image) is invalid."""

    exit_code = 2


class ConfigError(VideoDeblurError):
    """A config file or ``--set`` override is invalid.

    Parameters
    ----------
    problems : list of str
        Every problem found, one line each, so the user can fix them all at once.
    """

    exit_code = 2

    def __init__(self, problems: list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("invalid config: " + "; ".join(self.problems))


class InputError(VideoDeblurError):
    """The input file is missing, unreadable, not a video, or cannot be decoded."""

    exit_code = 3


class OutputError(VideoDeblurError):
    """The output cannot be written (exists, is the input, no space, no permission)."""

    exit_code = 4


class ProcessingError(VideoDeblurError):
    """Restoring a frame failed; names the frame index where known."""

    exit_code = 5


class Interrupted(VideoDeblurError):
    """The run was stopped by the user (SIGINT)."""

    exit_code = 130
