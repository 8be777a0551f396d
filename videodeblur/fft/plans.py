"""Per-thread buffers and plans for real 2-D transforms in float32.

:class:`RealFFTPair` (a frame's forward and inverse transform, used by every restoration)
runs on OpenCV's DFT; :class:`TileTransform` (the blur estimator's batched transform of
small tiles) on pyFFTW plans, with FFTW's wisdom kept on disk.

Why per thread: a pair or a plan owns its buffers, so it must never run in two threads at
once; each worker thread gets its own per shape. Planning (FFTW_MEASURE times candidate
algorithms) is not thread-safe in FFTW and is serialised by a global lock; the transforms
release the GIL, so workers transform in parallel.

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

from videodeblur.errors import ProcessingError

PLANNER_EFFORT = "FFTW_MEASURE"
_planning_lock = threading.Lock()
_thread_state = threading.local()
_wisdom_loaded = False
#: Number of transforms (frame pairs and tile plans) built in this process (tests check that
#: they are reused).
transforms_built = 0


def _pyfftw():
    """pyFFTW, imported on first use: with SciPy, which it imports, it is a large part of the
    program's start-up, and only the blur estimator plans FFTW transforms."""
    import pyfftw

    return pyfftw


def wisdom_path() -> Path:
    """File holding FFTW wisdom; ``VIDEODEBLUR_CACHE_DIR`` overrides the user cache directory."""
    pyfftw = _pyfftw()
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
            _pyfftw().import_wisdom(wisdom)
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
            data = pickle.dumps(_pyfftw().export_wisdom())
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".wisdom-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except OSError:
        pass  # a read-only cache only costs planning time on the next run


class RealFFTPair:
    """Forward ``rfft2`` and inverse ``irfft2`` for one frame shape, owned by one thread.

    The transforms are OpenCV's ``dft`` and ``idft`` (Intel IPP in the opencv-python wheels,
    AVX-512 where the CPU has it), faster than the FFTW that pyFFTW's wheels bundle, whose
    widest codelets are AVX (docs/performance.md).

    Layout: one buffer of ``rows x 2 * (columns // 2 + 1)`` floats. ``frame`` is a view of it
    starting one float into each row, so that OpenCV's packed spectrum ("CCS"), written in
    place, lands on the interleaved complex layout of ``spectrum`` (the whole buffer as
    complex64, exactly as ``numpy.fft.rfft2`` lays it out) everywhere but in two columns:
    the zero-frequency column and, for even widths, the Nyquist column, which OpenCV packs
    down the rows (each is the spectrum of a real column). :meth:`forward` unpacks those two
    and :meth:`inverse` packs them back: a few thousand numbers per frame.

    Write the frame into ``frame``, call :meth:`forward` (which overwrites it with the
    spectrum), modify ``spectrum`` in place (e.g. multiply by a filter), call :meth:`inverse`,
    which also works in place: it overwrites the spectrum with the frame and returns
    ``frame``. The inverse is unnormalised (fold ``1 / frame.size`` into the filter). Like
    ``numpy.fft.irfft2``, it keeps only the part of the spectrum a real frame can have.

    Both transforms in place keep a restoration's working set to this one buffer (8 MB at
    1080p): in a run the encoder's threads evict the workers' data from the caches whenever
    they preempt them, and every further buffer is read back from memory.
    """

    def __init__(self, shape: tuple[int, int]):
        rows, columns = shape
        half = columns // 2 + 1
        self._buffer = np.empty((rows, 2 * half), dtype=np.float32)
        self._frame = self._buffer[:, 1:columns + 1]
        self._spectrum = self._buffer.view(np.complex64)
        # (buffer column of OpenCV's packed column, complex column of the half spectrum)
        self._packed_columns = [(1, 0)] + ([(columns, columns // 2)] if columns % 2 == 0 else [])

    @property
    def frame(self) -> np.ndarray:
        """The forward transform's input: a (rows, columns) float32 view into the spectrum's buffer."""
        return self._frame

    @property
    def spectrum(self) -> np.ndarray:
        """The half spectrum, (rows, columns // 2 + 1) complex64, in the same memory as ``frame``."""
        return self._spectrum

    def forward(self) -> np.ndarray:
        """``spectrum = rfft2(frame)`` (``frame`` is overwritten); returns ``spectrum``."""
        _into(cv2.dft(self._frame, dst=self._frame), self._frame)
        for packed, column in self._packed_columns:
            self._spectrum[:, column] = _unpack_real_column_spectrum(self._buffer[:, packed])
        return self._spectrum

    def inverse(self) -> np.ndarray:
        """``frame = irfft2(spectrum) * frame.size`` (``spectrum`` is overwritten); returns ``frame``."""
        for packed, column in self._packed_columns:
            self._buffer[:, packed] = _pack_real_column_spectrum(self._spectrum[:, column])
        return _into(cv2.idft(self._frame, dst=self._frame, flags=cv2.DFT_REAL_OUTPUT), self._frame)


def _unpack_real_column_spectrum(packed: np.ndarray) -> np.ndarray:
    """The full spectrum (complex64) of a real column from OpenCV's packing of it: ``Re Y0,
    Re Y1, Im Y1, ..., Re Y(n/2)`` (the last for even n), the rest by Hermitian symmetry."""
    length = packed.shape[0]
    last = (length - 1) // 2  # the highest frequency with an imaginary part
    spectrum = np.zeros(length, dtype=np.complex64)
    spectrum[0] = packed[0]
    spectrum.real[1:last + 1] = packed[1:2 * last:2]
    spectrum.imag[1:last + 1] = packed[2:2 * last + 1:2]
    if length % 2 == 0:
        spectrum[length // 2] = packed[length - 1]
    spectrum[length - last:] = np.conj(spectrum[last:0:-1])
    return spectrum


def _pack_real_column_spectrum(spectrum: np.ndarray) -> np.ndarray:
    """OpenCV's packing of the Hermitian part of ``spectrum`` (the part a real column can
    have; it is the spectrum itself for any spectrum of a real frame, up to rounding)."""
    length = spectrum.shape[0]
    last = (length - 1) // 2
    ascending, mirrored = spectrum[1:last + 1], spectrum[length - 1:length - last - 1:-1]
    packed = np.empty(length, dtype=np.float32)
    packed[0] = spectrum[0].real
    packed[1:2 * last:2] = (ascending.real + mirrored.real) * 0.5
    packed[2:2 * last + 1:2] = (ascending.imag - mirrored.imag) * 0.5
    if length % 2 == 0:
        packed[length - 1] = spectrum[length // 2].real
    return packed


def _into(written: np.ndarray, target: np.ndarray) -> np.ndarray:
    # OpenCV silently allocates a new array when it cannot write into ``dst`` (a layout it
    # does not accept); that would lose the transform, so it is an error, not a copy.
    if written.ctypes.data != target.ctypes.data:
        raise ProcessingError("OpenCV did not transform into the given buffer (unsupported memory layout)")
    return target


def scratch(shape: tuple[int, int], dtype, purpose: str) -> np.ndarray:
    """This thread's reusable array of ``shape`` and ``dtype`` for one ``purpose``: a fresh
    8 MB array per frame costs more in page faults than the pass that fills it."""
    cache = _thread_state.__dict__.setdefault("scratch", {})
    key = (purpose, tuple(shape), np.dtype(dtype).str)
    array = cache.get(key)
    if array is None:
        array = cache[key] = np.empty(shape, dtype=dtype)
    return array


def frame_transform(shape: tuple[int, int]) -> RealFFTPair:
    """This thread's :class:`RealFFTPair` for ``shape``, made once and then reused."""
    global transforms_built
    cache = _thread_state.__dict__.setdefault("pairs", {})
    pair = cache.get(shape)
    if pair is None:
        pair = cache[shape] = RealFFTPair(shape)
        transforms_built += 1
    return pair


class TileTransform:
    """A batched forward real FFT of ``count`` square tiles, with its own aligned buffers.

    For blur estimation (:func:`videodeblur.core.estimation.blur_spectrum`): fill
    :meth:`tiles`, call :meth:`forward`. Reusing the buffers frame after frame also saves the
    page faults of allocating several megabytes per frame.
    """

    def __init__(self, count: int, tile_px: int):
        global transforms_built
        load_wisdom()
        pyfftw = _pyfftw()
        self._input = pyfftw.empty_aligned((count, tile_px, tile_px), dtype=np.float32)
        output = pyfftw.empty_aligned((count, tile_px, tile_px // 2 + 1), dtype=np.complex64)
        with _planning_lock:
            had_wisdom_before = len(pyfftw.export_wisdom()[1])
            self._plan = pyfftw.FFTW(self._input, output, axes=(1, 2), direction="FFTW_FORWARD",
                                     flags=(PLANNER_EFFORT,), threads=1)
            transforms_built += 1
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
