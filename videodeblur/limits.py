"""Limits and error classes shared by the config and the I/O layer (no heavy imports here)."""

from __future__ import annotations

import errno

#: Largest frame (width x height) opened by default: 8192 x 8192. A damaged or hostile header
#: can declare any size; refusing it up front keeps memory bounded.
DEFAULT_MAX_FRAME_PIXELS = 8192 * 8192

#: errno values that mean "the disk (or the file size limit) is full".
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})
