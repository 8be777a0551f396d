"""Per-thread pyFFTW plans for real 2-D transforms in float32, with wisdom kept on disk.

Why per thread: an FFTW plan object owns its input and output buffers, so one plan must never
execute in two threads at once. Each worker thread gets its own pair of plans per frame shape.
Planning (FFTW_MEASURE times candidate algorithms) is not thread-safe in FFTW and is serialised
by a global lock; execution releases the GIL, so workers transform in parallel.

Wisdom (FFTW's memory of which algorithm was fastest) is loaded from and saved to the user
cache directory, so the second run of the program does not measure again.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import platformdirs
import pyfftw

from videodeblur.errors import ProcessingError

PLANNER_EFFORT = "FFTW_MEASURE"
_planning_lock = threading.Lock()
_thread_state = threading.local()
_wisdom_loaded = False
#: Number of plan pairs built in this process (tests check that plans are reused).
plans_built = 0


def wisdom_path() -> Path:
    """File holding FFTW wisdom; ``VIDEODEBLUR_CACHE_DIR`` overrides the user cache directory."""
    base = os.environ.get("VIDEODEBLUR_CACHE_DIR") or platformdirs.user_cache_dir("videodeblur")
    return Path(base) / f"fftw-wisdom-{pyfftw.__version__}.pickle"


def load_wisdom() -> bool:
    """Import saved wisdom once per process. Returns True if any was imported."""
    global _wisdom_loaded
    with _planning_lock:
        if _wisdom_loaded:
            return False
        _wisdom_loaded = True
        try:
            wisdom = pickle.loads(wisdom_path().read_bytes())
            pyfftw.import_wisdom(wisdom)
            return True
        except (OSError, pickle.UnpicklingError, EOFError, TypeError, ValueError):
            # No wisdom or a stale/corrupt file: planning measures again, nothing else changes.
            return False


def save_wisdom() -> None:
    """Write the process's wisdom atomically (a crash never leaves a half-written file)."""
    path = wisdom_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _planning_lock:
            data = pickle.dumps(pyfftw.export_wisdom())
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".wisdom-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except OSError:
        pass  # a read-only cache only costs planning time on the next run


def reset_wisdom_state() -> None:
    """Forget imported wisdom and this thread's plans (for tests of the wisdom round trip)."""
    global _wisdom_loaded
    with _planning_lock:
        pyfftw.forget_wisdom()
        _wisdom_loaded = False
    _thread_state.__dict__.clear()


class RealFFTPair:
    """Forward ``rfft2`` and inverse ``irfft2`` for one frame shape, owned by one thread.

    A 2-D real FFT is a real FFT of every row followed by a complex FFT of every column of
    the half spectrum. The row transforms run in OpenCV's ``dft`` (Intel IPP in the
    opencv-python wheels, AVX-512 where the CPU has it): 1.4 ms of CPU for the 1080 rows of a
    1080p frame against 2.9 ms in the FFTW that pyFFTW's wheels bundle (FFTW 3.3.5, whose
    widest codelets are AVX). The column transforms, strided, are FFTW's, planned once and
    kept as wisdom. Measured at 1080p, the pair takes 10.0 ms of CPU against 12.7 ms for
    FFTW's 2-D plans.

    Layout: one buffer of ``rows x 2 * (columns // 2 + 1)`` floats. ``frame`` is a view of it
    starting one float into each row, so that OpenCV's packed row spectrum (``Re0, Re1, Im1,
    Re2, ...``), written in place, lands on the interleaved complex layout of ``spectrum``
    (the whole buffer as complex64) with only the zero-frequency (and, for even widths,
    Nyquist) imaginary parts to set: two or three strided column writes. ``spectrum`` is laid
    out exactly as ``numpy.fft.rfft2`` returns it.

    Write the frame into ``frame``, call :meth:`forward` (which overwrites it with the
    spectrum), modify ``spectrum`` in place (e.g. multiply by a filter), call :meth:`inverse`,
    which writes to a separate ``result`` array (or to an ``output`` array given to it). The
    inverse is unnormalised (fold ``1 / frame.size`` into the filter) and destroys
    ``spectrum``; like FFTW's c2r it ignores the imaginary parts a real frame's spectrum
    cannot have (zero frequency and Nyquist of each row).
    """

    def __init__(self, buffer: np.ndarray, columns: int, column_forward: pyfftw.FFTW,
                 column_inverse: pyfftw.FFTW, result: np.ndarray):
        self._buffer = buffer
        self._columns = columns
        self._frame = buffer[:, 1:columns + 1]
        self._spectrum = buffer.view(np.complex64)
        self._column_forward = column_forward
        self._column_inverse = column_inverse
        self._result = result

    @property
    def frame(self) -> np.ndarray:
        """The forward transform's input: a (rows, columns) float32 view into the spectrum's buffer."""
        return self._frame

    @property
    def spectrum(self) -> np.ndarray:
        """The half spectrum, (rows, columns // 2 + 1) complex64, in the same memory as ``frame``."""
        return self._spectrum

    @property
    def result(self) -> np.ndarray:
        """Where :meth:`inverse` writes when given no ``output``: (rows, columns) float32, C order."""
        return self._result

    def forward(self) -> np.ndarray:
        """``spectrum = rfft2(frame)`` (``frame`` is overwritten); returns ``spectrum``."""
        buffer = self._buffer
        _into(cv2.dft(self._frame, dst=self._frame, flags=cv2.DFT_ROWS), self._frame)
        # Each row's packed spectrum starts one float in: move Re0 to the first float and
        # zero the imaginary parts of frequency 0 (and of the Nyquist one for even widths).
        buffer[:, 0] = buffer[:, 1]
        buffer[:, 1] = 0.0
        if self._columns % 2 == 0:
            buffer[:, self._columns + 1] = 0.0
        self._column_forward.execute()
        return self._spectrum

    def inverse(self, output: np.ndarray | None = None) -> np.ndarray:
        """``irfft2(spectrum) * frame.size`` into ``result``, or straight into ``output`` (a
        writeable float32 array of the frame's shape, rows contiguous)."""
        target = self._result if output is None or not _fits(output, self._result) else output
        self._column_inverse.execute()
        # Back to OpenCV's packed rows: Re0 goes where the packing expects it. (The Nyquist
        # real part is already in place; the imaginary parts dropped here are those of the
        # real rows' spectra, zero up to rounding.)
        self._buffer[:, 1] = self._buffer[:, 0]
        return _into(cv2.idft(self._frame, dst=target, flags=cv2.DFT_ROWS | cv2.DFT_REAL_OUTPUT), target)


def _into(written: np.ndarray, target: np.ndarray) -> np.ndarray:
    # OpenCV silently allocates a new array when it cannot write into ``dst`` (a layout it
    # does not accept); that would lose the transform, so it is an error, not a copy.
    if written.ctypes.data != target.ctypes.data:
        raise ProcessingError("OpenCV did not transform into the given buffer (unsupported memory layout)")
    return target


def _fits(candidate: np.ndarray, planned: np.ndarray) -> bool:
    return (
        candidate.shape == planned.shape
        and candidate.dtype == planned.dtype
        and candidate.strides[1] == planned.itemsize
        and candidate.flags.writeable
    )


def plan_pair(shape: tuple[int, int]) -> RealFFTPair:
    """This thread's float32 real-FFT pair for ``shape``, planned once and then reused."""
    global plans_built
    cache = _thread_state.__dict__.setdefault("pairs", {})
    pair = cache.get(shape)
    if pair is not None:
        return pair
    load_wisdom()
    rows, columns = shape
    half = columns // 2 + 1
    buffer = pyfftw.empty_aligned((rows, 2 * half), dtype=np.float32)
    spectrum = buffer.view(np.complex64)
    result = pyfftw.empty_aligned((rows, columns), dtype=np.float32)
    with _planning_lock:
        had_wisdom_before = len(pyfftw.export_wisdom()[1])
        # Complex transforms of the half spectrum's columns, in place. FFTW_DESTROY_INPUT
        # is the default for in-place transforms; the spectrum is recomputed every frame.
        column_forward = pyfftw.FFTW(spectrum, spectrum, axes=(0,), direction="FFTW_FORWARD",
                                     flags=(PLANNER_EFFORT,), threads=1)
        column_inverse = pyfftw.FFTW(spectrum, spectrum, axes=(0,), direction="FFTW_BACKWARD",
                                     flags=(PLANNER_EFFORT,), threads=1)
        plans_built += 1
        learned = len(pyfftw.export_wisdom()[1]) != had_wisdom_before
    if learned:
        save_wisdom()
    pair = RealFFTPair(buffer, columns, column_forward, column_inverse, result)
    cache[shape] = pair
    return pair


class TileTransform:
    """A batched forward real FFT of ``count`` square tiles, with its own aligned buffers.

    For blur estimation (:func:`videodeblur.core.estimation.blur_spectrum`): fill
    :meth:`tiles`, call :meth:`forward`. Reusing the buffers frame after frame also saves the
    page faults of allocating several megabytes per frame.
    """

    def __init__(self, count: int, tile_px: int):
        global plans_built
        load_wisdom()
        self._input = pyfftw.empty_aligned((count, tile_px, tile_px), dtype=np.float32)
        output = pyfftw.empty_aligned((count, tile_px, tile_px // 2 + 1), dtype=np.complex64)
        with _planning_lock:
            had_wisdom_before = len(pyfftw.export_wisdom()[1])
            self._plan = pyfftw.FFTW(self._input, output, axes=(1, 2), direction="FFTW_FORWARD",
                                     flags=(PLANNER_EFFORT,), threads=1)
            plans_built += 1
            learned = len(pyfftw.export_wisdom()[1]) != had_wisdom_before
        if learned:
            save_wisdom()

    def tiles(self) -> np.ndarray:
        """The float32 input buffer, ``(count, tile_px, tile_px)``."""
        return self._input

    def forward(self) -> np.ndarray:
        """The complex64 spectra of the tiles, ``(count, tile_px, tile_px // 2 + 1)`` (reused buffer)."""
        return self._plan()


def tile_transform(count: int, tile_px: int) -> TileTransform:
    """This thread's :class:`TileTransform` for ``count`` tiles of ``tile_px``, planned once."""
    cache = _thread_state.__dict__.setdefault("tiles", {})
    key = (count, tile_px)
    transform = cache.get(key)
    if transform is None:
        transform = cache[key] = TileTransform(count, tile_px)
    return transform


def empty_frame(shape: tuple[int, int]) -> np.ndarray:
    """A float32 array aligned for FFTW, so ``restore(..., out=...)`` can transform straight into it."""
    return pyfftw.empty_aligned(shape, dtype=np.float32)
