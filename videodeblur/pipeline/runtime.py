"""The process settings a run works under: one BLAS thread, low-priority workers, no huge pages."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
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
