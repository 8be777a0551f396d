"""Imaging helpers for the tests: blur without wrap-around, noise, scores, lossless luma clips.

The quality protocol of docs/quality.md in the small: blur a real image on a larger canvas
and keep the valid region (no circular wrap-around), add Gaussian noise, quantise to 8 bits;
score PSNR away from the borders. Clips are written with PyAV alone (not through the I/O layer
under test) and losslessly (FFV1), so a decoded plane is exactly the array written.
"""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
from scipy.signal import fftconvolve


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
    """PSNR in dB of an image in [0, 1] (clipped) against the truth, ``crop`` px from each border."""
    region = (slice(crop, -crop), slice(crop, -crop))
    error = np.mean((np.clip(estimate[region], 0, 1) - truth[region]) ** 2)
    return float(10.0 * np.log10(1.0 / error))


def luma_psnr(a: np.ndarray, b: np.ndarray, border_px: int = 8) -> float:
    """PSNR in dB between two 8-bit planes, ``border_px`` from each border."""
    region = (slice(border_px, -border_px), slice(border_px, -border_px))
    error = np.mean((a[region].astype(np.float64) - b[region].astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / error))


def sharpness(luma: np.ndarray, border_px: int = 8) -> float:
    """Mean absolute Laplacian away from the borders."""
    laplacian = cv2.Laplacian(luma.astype(np.float64), cv2.CV_64F)
    return float(np.abs(laplacian[border_px:-border_px, border_px:-border_px]).mean())


def moving_window(image: np.ndarray, frames: int, width: int, height: int, step=(5, 3), noise_levels=1.0,
                  seed: int = 0) -> list[np.ndarray]:
    """8-bit luma frames of a window moving over ``image`` (in [0, 1]) by ``step`` px (x, y) per
    frame, with a little noise: textured, genuinely sharp footage."""
    rng = np.random.default_rng(seed)
    scaled = image * 255.0
    out = []
    for i in range(frames):
        crop = scaled[step[1] * i : step[1] * i + height, step[0] * i : step[0] * i + width]
        out.append(np.clip(np.rint(crop + rng.normal(0.0, noise_levels, crop.shape)), 0, 255).astype(np.uint8))
    return out


def to_linear_light(codes: np.ndarray, max_code: int = 255) -> np.ndarray:
    """Limited-range BT.709 luma codes to linear light (colour-science's inverse OETF, the reference)."""
    import colour

    scale = (max_code + 1) / 256
    return colour.oetf_inverse(np.clip((codes.astype(np.float64) - 16 * scale) / (219 * scale), 0, None),
                               function="ITU-R BT.709")


def to_codes(light: np.ndarray, max_code: int = 255) -> np.ndarray:
    """Linear light to limited-range BT.709 luma codes (float, not rounded)."""
    import colour

    scale = (max_code + 1) / 256
    return colour.oetf(np.clip(light, 0, None), function="ITU-R BT.709") * 219 * scale + 16 * scale


def blurred_frames(lumas: list[np.ndarray], kernels, linear_light: bool = True) -> list[np.ndarray]:
    """Each 8-bit frame blurred by its kernel (one kernel, or one per frame), rounded back to 8
    bits; in linear light (the frames taken as limited-range BT.709 luma), as a lens blurs, or
    on the codes themselves."""
    if isinstance(kernels, np.ndarray):
        kernels = [kernels] * len(lumas)
    out = []
    for luma, kernel in zip(lumas, kernels):
        values = to_linear_light(luma) if linear_light else luma.astype(np.float64)
        blurred = cv2.filter2D(values.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT)
        coded = to_codes(blurred) if linear_light else blurred
        out.append(np.clip(np.rint(coded), 0, 255).astype(np.uint8))
    return out


def write_luma_clip(path, lumas: list[np.ndarray], fps: int = 25, codec: str = "ffv1", options: dict | None = None):
    """Write 4:2:0 frames with the given luma planes and flat (128) chroma, pts 0, 1, 2, ..."""
    height, width = lumas[0].shape
    chroma = np.full((height // 4, width), 128, np.uint8)  # two half-size planes, packed as PyAV expects
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=dict(options or {}))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i, luma in enumerate(lumas):
            frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma, chroma]), format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
