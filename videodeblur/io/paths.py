"""Input/output path checks and atomic output files.

All the refusals a user can hit before any decoding starts live here, so they are made
once, early, with a one-line message, instead of surfacing as FFmpeg errors half way
through a long run.
"""

from __future__ import annotations

import glob
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from videodeblur.errors import InputError, OutputError
from videodeblur.limits import NO_SPACE_ERRNOS

__all__ = ["atomic_output", "check_input", "check_paths", "partial_path"]



def check_input(input_path) -> Path:
    """Refuse an input that is missing, a directory or empty.

    Parameters
    ----------
    input_path : str or os.PathLike
        The input media file.

    Returns
    -------
    pathlib.Path
        ``input_path`` as a Path.

    Raises
    ------
    InputError
        The file does not exist, is a directory, is empty or cannot be read.
    """
    path = Path(input_path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"input '{path}': no such file") from None
    except OSError as exc:
        raise InputError(f"input '{path}': cannot access: {exc.strerror or exc}") from None
    if path.is_dir():
        raise InputError(f"input '{path}': is a directory, not a media file")
    if st.st_size == 0 and path.is_file():
        # Regular files only: pipes and devices report 0 but may still stream data.
        raise InputError(f"input '{path}': empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise InputError(f"input '{path}': permission denied (not readable)")
    return path


#: Video containers refused for output, with why (what a run must keep, they cannot hold).
REFUSED_CONTAINERS = {
    ".avi": "AVI cannot hold the stream's timestamps (the file would declare a wrong frame rate and length)",
}
VIDEO_CONTAINERS = ".mkv, .mp4 or .mov"


def check_video_output(output_path) -> None:
    """Refuse an output video name without an extension, or in a container that loses data."""
    out = Path(output_path)
    if not out.suffix:
        raise OutputError(f"output '{out}': no file extension to choose the container; use {VIDEO_CONTAINERS}")
    reason = REFUSED_CONTAINERS.get(out.suffix.lower())
    if reason:
        raise OutputError(f"output '{out}': {reason}; use {VIDEO_CONTAINERS}")


def check_paths(input_path, output_path, *, overwrite: bool, overwrite_hint: str = "overwrite=True") -> None:
    """Check an input/output pair before anything is opened.

    Parameters
    ----------
    input_path : str or os.PathLike
        The input media file.
    output_path : str or os.PathLike
        The file to write.
    overwrite : bool
        Whether an existing output may be replaced (``-y``).
    overwrite_hint : str
        How the caller says "replace it", for the message: the Python argument by default,
        ``"-y"`` from the command line.

    Raises
    ------
    InputError
        The input is missing, a directory or empty.
    OutputError
        The output is the input file (by any path: symlink, relative path, hard
        link), exists and ``overwrite`` is false, is a directory, its directory is
        missing or not writable.
    """
    check_input(input_path)
    out = Path(output_path)
    if out.exists() or out.is_symlink():
        # samefile compares device and inode, so it catches symlinks, hard links and
        # other spellings of the same path ("./a.mp4", "../dir/a.mp4").
        try:
            same = os.path.samefile(input_path, out)
        except OSError:
            same = False
        if same:
            raise OutputError(f"output '{out}': is the same file as the input '{input_path}'")
        if out.is_dir():
            raise OutputError(f"output '{out}': is a directory")
        if not overwrite:
            raise OutputError(f"output '{out}': exists; pass {overwrite_hint} to overwrite")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"output '{out}': directory '{parent}' does not exist")
    if not parent.is_dir():
        raise OutputError(f"output '{out}': '{parent}' is not a directory")
    # The output is written as a temporary file next to the target and renamed, so the
    # directory (not only the file) must be writable.
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output '{out}': directory '{parent}' is not writable")
    # os.access answers yes to root everywhere and knows nothing of read-only mounts:
    # creating (and removing) a small file there is the only real answer.
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".videodeblur-write-test-"):
            pass
    except OSError as error:
        raise OutputError(f"output '{out}': cannot write in directory '{parent}' ({error.strerror})") from None


def partial_path(output_path) -> Path:
    """A fresh temporary path next to ``output_path`` with the same extension.

    Parameters
    ----------
    output_path : str or os.PathLike
        The final output file.

    Returns
    -------
    pathlib.Path
        ``<dir>/.<name>.partial-<random><ext>``; the extension is kept so FFmpeg
        picks the same container format as for the target.
    """
    out = Path(output_path)
    # The writer's process id is part of the name, so a later run can tell the leftovers
    # of a killed run (process gone) from the file of a run still in progress.
    return out.with_name(f".{out.stem}.partial-{os.getpid()}-{secrets.token_hex(4)}{out.suffix}")


def remove_stale_partials(output_path) -> list[Path]:
    """Delete temporary files that killed runs (SIGKILL, power cut) left next to ``output_path``.

    Only files named like :func:`partial_path`'s whose process no longer exists are removed.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    out = Path(output_path)
    parent = out.parent if str(out.parent) else Path(".")
    removed = []
    for candidate in parent.glob(f".{glob.escape(out.stem)}.partial-*{glob.escape(out.suffix)}"):
        pid_text = candidate.name[len(f".{out.stem}.partial-"):].split("-", 1)[0]
        if not pid_text.isdigit() or _process_alive(int(pid_text)):
            continue
        _remove_quietly(candidate)
        removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        # Never let cleanup mask the error that made us clean up.
        pass


@contextmanager
def atomic_output(output_path) -> Iterator[Path]:
    """Write to a temporary file next to the target; rename it into place on success.

    A crash, an error or Ctrl-C therefore never leaves a truncated file under the
    output name (nor clobbers an existing one before the new one is complete).

    Parameters
    ----------
    output_path : str or os.PathLike
        The final output file.

    Yields
    ------
    pathlib.Path
        The temporary path to write to (``.<name>.partial-<pid>-<random><ext>``). Leftovers
        of earlier runs that were killed are removed first (:func:`remove_stale_partials`).

    Raises
    ------
    OutputError
        The disk is full (ENOSPC/EFBIG/EDQUOT), nothing was written, or the rename
        fails; the temporary file is removed first. Any other exception (including
        KeyboardInterrupt) is re-raised unchanged after the temporary file is removed.
    """
    target = Path(output_path)
    remove_stale_partials(target)
    temp = partial_path(target)
    try:
        yield temp
    except BaseException as exc:
        _remove_quietly(temp)
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            raise OutputError(
                f"output '{target}': no space left writing {temp.name} ({exc.strerror or exc})"
            ) from exc
        if type(exc) is OutputError and f"'{temp}'" in str(exc):
            # The writer only knows the temporary name; the user gave the target's.
            raise OutputError(str(exc).replace(f"'{temp}'", f"'{target}'")) from exc
        # Anything else (an InputError from the reader, Ctrl-C, a bug) keeps its own
        # type and exit code: only the cleanup is ours.
        raise
    if not temp.exists():
        raise OutputError(f"output '{target}': nothing was written")
    try:
        os.replace(temp, target)
    except OSError as exc:
        _remove_quietly(temp)
        raise OutputError(f"output '{target}': cannot move the finished file into place: {exc.strerror or exc}") from exc
