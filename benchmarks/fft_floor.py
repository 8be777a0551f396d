"""Restoring one 1920x1080 luma frame vs. the bare FFT pair it cannot avoid.

Times, side by side in one run, ``FrameDeconvolver.restore`` with default settings (Wiener,
``nsr="auto"``, edgetaper on) and the bare pyFFTW float32 ``rfft2`` + ``irfft2`` pair on the
same array with the same planner flags, and prints the ratio of their medians (the target).
For transparency it also times the pair restore runs itself (OpenCV's 2-D transforms in
place; see :class:`videodeblur.fft.plans.RealFFTPair`) and FFTW's 2-D pair with both
transforms in place, and shows where the rest of the time goes (edgetaper, noise/spectrum
fit, filter multiply). Everything runs on one thread.

Usage: python -m benchmarks.fft_floor [--repeats N] [--kernel defocus|motion|gaussian]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pyfftw

from benchmarks.common import ground_truth_images, median_time
from videodeblur import psf
from videodeblur.core.edgetaper import edgetaper_inplace
from videodeblur.core.noise import estimate_noise_sigma, fit_power_law
from videodeblur.fft.plans import PLANNER_EFFORT, frame_transform, save_wisdom
from videodeblur.restoration import FrameDeconvolver

KERNELS = {"defocus": lambda: psf.disk(3.0), "motion": lambda: psf.motion(15, 30), "gaussian": lambda: psf.gaussian(2.0)}


def test_frame(shape=(1080, 1920)) -> np.ndarray:
    """A real photograph tiled to 1080p, blurred a little and with 1 % noise (a realistic frame)."""
    image = ground_truth_images()["astronaut"]
    frame = cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    frame = cv2.GaussianBlur(frame, (0, 0), 1.5) + np.random.default_rng(0).normal(0, 0.01, shape)
    return np.clip(frame, 0, 1).astype(np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--kernel", choices=sorted(KERNELS), default="defocus")
    args = parser.parse_args(argv)
    frame = test_frame()
    kernel = KERNELS[args.kernel]()
    deconvolver = FrameDeconvolver(kernel, frame.shape)  # defaults: wiener, auto, edgetaper
    out = np.empty(frame.shape, dtype=np.float32)
    regularisation = deconvolver.restore(frame, out=out).regularisation  # plans, filter cache

    # (a) The floor the target is set against: pyFFTW's rfft2 + irfft2 as its interfaces lay
    # them out (input, spectrum and output in separate arrays), same planner flags, one thread.
    pair = frame_transform(frame.shape)
    rows, columns = frame.shape
    separate_frame = pyfftw.empty_aligned(frame.shape, dtype=np.float32)
    separate_spectrum = pyfftw.empty_aligned((rows, columns // 2 + 1), dtype=np.complex64)
    flags = (PLANNER_EFFORT,)
    rfft2 = pyfftw.FFTW(separate_frame, separate_spectrum, axes=(0, 1), flags=flags, threads=1)
    irfft2 = pyfftw.FFTW(separate_spectrum, separate_frame, axes=(0, 1), direction="FFTW_BACKWARD",
                         flags=flags + ("FFTW_DESTROY_INPUT",), threads=1)
    separate_frame[...] = frame
    # (b) The pair restore itself runs (OpenCV's, both transforms in place) and (c) FFTW's
    # 2-D transforms, both in place: the fastest layout FFTW alone offers.
    in_place_buffer = pyfftw.empty_aligned((rows, 2 * (columns // 2 + 1)), dtype=np.float32)
    in_place_frame, in_place_spectrum = in_place_buffer[:, :columns], in_place_buffer.view(np.complex64)
    in_place_forward = pyfftw.FFTW(in_place_frame, in_place_spectrum, axes=(0, 1), flags=flags, threads=1)
    in_place_inverse = pyfftw.FFTW(in_place_spectrum, in_place_frame, axes=(0, 1), direction="FFTW_BACKWARD",
                                   flags=flags + ("FFTW_DESTROY_INPUT",), threads=1)
    in_place_frame[...] = frame
    pair.frame[...] = frame
    save_wisdom()

    # The c2r transforms destroy the spectrum and overwrite the frame, which changes nothing in
    # FFTW's timing (it does not depend on the data).
    candidates = {
        "pyFFTW rfft2+irfft2 pair": lambda: (rfft2.execute(), irfft2.execute()),
        "restore's own pair": lambda: (pair.forward(), pair.inverse()),
        "FFTW 2-D, both in place": lambda: (in_place_forward.execute(), in_place_inverse.execute()),
        "restore (default)": lambda: deconvolver.restore(frame, out=out),
    }
    # Interleave the measurements so that load on the shared machine hits all alike.
    times = {name: [] for name in candidates}
    for _ in range(3):
        for name, function in candidates.items():
            times[name].append(median_time(function, repeats=args.repeats // 3 + 1))
    medians = {name: float(np.median(values)) for name, values in times.items()}
    floor, ours = medians["pyFFTW rfft2+irfft2 pair"], medians["restore (default)"]

    buffer = frame.copy()
    response = deconvolver.method.filter_for(*regularisation)
    parts = {
        "edgetaper (bands only)": median_time(lambda: edgetaper_inplace(buffer, deconvolver.taper_plan)),
        "noise estimate": median_time(lambda: estimate_noise_sigma(frame)),
        "spectrum fit": median_time(lambda: fit_power_law(pair.spectrum, deconvolver.method.noise.samples, 0.01)),
        "filter multiply": median_time(lambda: np.multiply(pair.spectrum, response, out=pair.spectrum)),
    }
    print(f"1920x1080 float32 luma, kernel {args.kernel} {kernel.shape}, medians of {args.repeats} runs")
    for name in ("pyFFTW rfft2+irfft2 pair", "restore's own pair", "FFTW 2-D, both in place"):
        print(f"  bare {name:25}: {medians[name] * 1e3:7.2f} ms")
    print(f"  restore (default)           : {ours * 1e3:7.2f} ms")
    for name, seconds in parts.items():
        print(f"    {name:25}: {seconds * 1e3:7.2f} ms")
    print(f"ratio restore / FFT floor: {ours / floor:.3f} (target <= 1.25)")
    own, in_place = medians["restore's own pair"], medians["FFTW 2-D, both in place"]
    print(f"  (restore / FFTW's 2-D pair in place: {ours / in_place:.3f}; restore / its own pair: {ours / own:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
