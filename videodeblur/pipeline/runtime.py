"""The process settings a run works under: one BLAS thread, OpenCV without its own threads,
low-priority workers, no huge pages, stop signals taken at safe points."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import signal
import sys
import threading

#: Nice value of the restoration workers' threads (Linux): the lowest priority. See
#: :func:`run_as_background_worker`.
WORKER_NICE = 19


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block with BLAS (OpenBLAS under NumPy) limited to one thread.

    The pipeline's parallelism is its own worker threads. OpenBLAS would start threads of its
    own inside each worker for the estimators' small matrix products, and they spin while they
    wait, stealing the cores from the workers (docs/performance.md). One thread also makes the
    products' rounding independent of the machine, so a preview reproduces a run exactly.
    """
    with blas_controller().limit(limits=1, user_api="blas"):
        yield


_opencv_lock = threading.Lock()
_opencv_depth = 0
_opencv_threads_before = 0


@contextlib.contextmanager
def single_threaded_opencv():
    """Run the block with OpenCV's own parallel loops off (its calls run in the calling thread).

    In a run the parallelism is the workers and the encoder's threads; OpenCV would split its
    resizes, look-ups and transforms over a pool of its own as well, one more set of threads
    for the two cores, and a run took 2-5 % longer with it (docs/performance.md). The results
    are the same either way. OpenCV's setting is the process's: nested and concurrent blocks
    share it, and the last to leave restores what it was.
    """
    global _opencv_depth, _opencv_threads_before
    import cv2

    with _opencv_lock:
        if _opencv_depth == 0:
            _opencv_threads_before = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _opencv_depth += 1
    try:
        yield
    finally:
        with _opencv_lock:
            _opencv_depth -= 1
            if _opencv_depth == 0:
                cv2.setNumThreads(_opencv_threads_before)


def run_as_background_worker() -> None:
    """Lower the calling thread's priority to :data:`WORKER_NICE` (Linux; elsewhere a nice
    value belongs to the whole process, and nothing is changed).

    The encoder is a run's critical path: it must take frames in order, and its threads wait
    on each other, so on its own it leaves part of the machine idle. Restoring is the work that
    can wait: at the lowest priority it runs in the encoder's gaps instead of preempting it,
    and when the encoder runs out of restored frames it blocks and the workers get the cores
    (the measurements are in docs/performance.md). Threads inherit the value, and the pool's
    threads end with the run.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
    except OSError:
        pass  # (a sandbox that forbids it only costs speed)


@contextlib.contextmanager
def no_numpy_hugepages():
    """Run the block with NumPy's ``madvise(MADV_HUGEPAGE)`` on large arrays switched off.

    With transparent huge pages in ``madvise`` mode (the common default), a page fault in an
    advised region may compact memory first, so on a busy machine building a deconvolver for a
    changed blur estimate (a few arrays of 4-16 MB) costs several times its arithmetic. The
    pipeline reuses its large buffers, so it gains nothing from huge pages. The previous
    setting is restored after.
    """
    setter = madvise_hugepage_setter()
    previous = setter(False) if setter is not None else None
    try:
        yield
    finally:
        if setter is not None:
            setter(previous)


@contextlib.contextmanager
def run_settings():
    """The process settings of a pass over a video (a run, a segment, ``estimate``): one BLAS
    thread, OpenCV without its own threads, no huge-page advice; each restored on leaving."""
    with single_threaded_blas(), single_threaded_opencv(), no_numpy_hugepages():
        yield


def madvise_hugepage_setter():
    """NumPy's switch for madvise hugepage (``_set_madvise_hugepage``; private, so looked up
    defensively: without it nothing changes)."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            setter = getattr(importlib.import_module(module), "_set_madvise_hugepage", None)
        except ImportError:
            continue
        if setter is not None:
            return setter
    return None


@functools.lru_cache(maxsize=1)
def blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, found once per process.

    Finding them walks the loaded libraries with a ctypes callback, and a Ctrl-C that lands in
    a ctypes callback is printed and swallowed; so it is done once, before any output exists
    (:func:`deblur_file` calls this first), not at the start of every run.
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


#: Signals whose Python handler raises in the main thread (Ctrl-C's KeyboardInterrupt, the
#: command line's SIGTERM and SIGHUP): inside :func:`signals_at_safe_points` they are held.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class _HeldSignals:
    """The state of :func:`signals_at_safe_points` (one per process: handlers are per process)."""

    def __init__(self):
        self.depth = 0
        self.handlers: dict[int, object] = {}  # signal -> the handler it had on entry
        self.pending: list[int] = []
        self.delivered = False

    def hold(self, signum, frame) -> None:
        self.pending.append(signum)

    def deliver(self, handlers: dict) -> None:
        """Hand the first held signal, once, to its handler in ``handlers`` (which raises)."""
        if self.pending and not self.delivered:
            self.delivered = True
            number = self.pending[0]
            handlers[number](number, None)


_held = _HeldSignals()


@contextlib.contextmanager
def signals_at_safe_points():
    """Run the block with stop signals delivered only at :func:`stop_point`.

    A Python signal handler runs in the main thread between any two bytecodes, so the
    KeyboardInterrupt of Ctrl-C (or the command line's SIGTERM and SIGHUP) can land inside a
    lock's acquire-release pair in ``queue`` or ``concurrent.futures`` and leave the lock held
    (the run then hangs), or between starting the decode thread and the code that stops it
    (the input is then closed while that thread demuxes it, which crashes). Inside this block
    those signals are only recorded; :func:`stop_point`, called where the main thread waits,
    hands the first one to the handler it had (which raises), outside every lock. Cleanup code
    in the block is never interrupted; a signal still pending when the outermost block is left
    is delivered then. Nested blocks share one state; in a thread other than the main one
    (where Python runs no handler) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _held.depth == 0:
        _held.pending.clear()
        _held.delivered = False
        for number in STOP_SIGNALS:
            handler = signal.getsignal(number)
            if callable(handler):  # SIG_DFL and SIG_IGN do not raise: left as they are
                _held.handlers[number] = handler
                signal.signal(number, _held.hold)
    _held.depth += 1
    try:
        yield
    finally:
        _held.depth -= 1
        if _held.depth == 0:
            handlers, _held.handlers = _held.handlers, {}
            for number, handler in handlers.items():
                signal.signal(number, handler)
            _held.deliver(handlers)


def stop_point() -> None:
    """Deliver a stop signal held by :func:`signals_at_safe_points` (the first only): its
    handler raises here. Call it where the main thread waits, holding no lock."""
    if threading.current_thread() is threading.main_thread():
        _held.deliver(_held.handlers)
