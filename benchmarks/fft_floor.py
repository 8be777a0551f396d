"""Restoring one 1920x1080 luma frame vs. the bare FFT pair it cannot avoid.

Times, side by side in one run, (a) ``FrameDeconvolver.restore`` with default settings
(Wiener, ``nsr="auto"``, edgetaper on) and (b) the bare pyFFTW float32 ``rfft2`` + ``irfft2``
pair on the same array with the same planner flags, and prints the ratio of their medians.
Also shows where the time goes (edgetaper, noise/spectrum fit, filter multiply).

Usage: python benchmarks/fft_floor.py [--repeats N] [--kernel defocus|motion|gaussian]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ground_truth_images, median_time  # noqa: E402

from videodeblur import psf  # noqa: E402
from videodeblur.core.edgetaper import edgetaper_inplace  # noqa: E402
from videodeblur.core.noise import estimate_noise_sigma, fit_power_law  # noqa: E402
from videodeblur.fft.plans import empty_frame, plan_pair  # noqa: E402
from videodeblur.restoration import FrameDeconvolver  # noqa: E402

KERNELS = {"defocus": lambda: psf.disk(3.0), "motion": lambda: psf.motion(15, 30), "gaussian": lambda: psf.gaussian(2.0)}


def test_frame(shape=(1080, 1920)) -> np.ndarray:
    """A real photograph tiled to 1080p, blurred a little and with 1 % noise (a realistic frame)."""
    import cv2

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
    out = empty_frame(frame.shape)  # FFTW-aligned: the inverse transform writes straight into it
    deconvolver.restore(frame, out=out)  # plans, filter cache

    pair = plan_pair(frame.shape)
    pair.frame[...] = frame

    def fft_pair():
        # The bare pair: no copy, no filter. The c2r transform destroys the spectrum and
        # overwrites the frame, which changes nothing in FFTW's timing (data-independent).
        pair.forward()
        pair.inverse()

    def restore():
        deconvolver.restore(frame, out=out)

    # Interleave the two measurements so that load on the shared machine hits both alike.
    floor_times, restore_times = [], []
    for _ in range(3):
        floor_times.append(median_time(fft_pair, repeats=args.repeats // 3 + 1))
        restore_times.append(median_time(restore, repeats=args.repeats // 3 + 1))
    floor, ours = float(np.median(floor_times)), float(np.median(restore_times))

    buffer = frame.copy()
    response = deconvolver.filter_for(*deconvolver.last_regularisation)
    parts = {
        "edgetaper (bands only)": median_time(lambda: edgetaper_inplace(buffer, deconvolver.taper_plan)),
        "noise estimate": median_time(lambda: estimate_noise_sigma(frame)),
        "spectrum fit": median_time(lambda: fit_power_law(pair.spectrum, deconvolver.samples, 0.01)),
        "filter multiply": median_time(lambda: np.multiply(pair.spectrum, response, out=pair.spectrum)),
    }
    print(f"1920x1080 float32 luma, kernel {args.kernel} {kernel.shape}, medians of {args.repeats} runs")
    print(f"  bare rfft2+irfft2 pair : {floor * 1e3:7.2f} ms")
    print(f"  restore (default)      : {ours * 1e3:7.2f} ms")
    for name, seconds in parts.items():
        print(f"    {name:22}: {seconds * 1e3:7.2f} ms")
    print(f"ratio restore / FFT floor: {ours / floor:.3f} (target <= 1.25)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
