"""Turn the ``[psf]`` config section into kernels, one per image plane."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from videodeblur import psf as psf_models
from videodeblur.errors import InvalidParameterError


#: Steps that estimated and interpolated parameters are rounded to before a kernel is built:
#: coarse enough that a steady blur reuses one kernel (and its cached filters) frame after
#: frame, and fine enough not to matter: measured on footage at 0.5 % noise, the largest
#: rounding error (half a step) costs a median 0.03 dB PSNR (radius 2-3 px, the most
#: sensitive; 0.23 dB with a 0.1 px step) and at most 0.1 dB for lengths and angles.
LENGTH_STEP_PX = 0.1
ANGLE_STEP_DEG = 0.5
RADIUS_STEP_PX = 0.05
SIGMA_STEP_PX = 0.05


@dataclass(frozen=True)
class KernelSpec:
    """Which kernel to restore a frame with: hashable, so restorers cache one filter per spec.

    Attributes
    ----------
    kind : {"defocus", "motion", "gaussian", "file", "none"}
        ``"none"``: leave the frame as it is.
    radius_px, length_px, angle_deg, sigma_px : float or None
        The parameters of ``kind``.
    path : str or None
        PSF file of kind ``"file"``.
    """

    kind: str
    radius_px: float | None = None
    length_px: float | None = None
    angle_deg: float | None = None
    sigma_px: float | None = None
    path: str | None = None

    def kernel(self) -> np.ndarray:
        """The luma-resolution kernel (float32, sums to 1)."""
        if self.kind == "defocus":
            return psf_models.disk(self.radius_px)
        if self.kind == "motion":
            return psf_models.motion(self.length_px, self.angle_deg)
        if self.kind == "gaussian":
            return psf_models.gaussian(self.sigma_px)
        if self.kind == "file":
            return psf_models.from_file(self.path)
        raise InvalidParameterError(f"no kernel for PSF kind {self.kind!r}")

    def describe(self) -> str:
        """A short human-readable description, e.g. ``"defocus radius 3.2 px"``."""
        if self.kind == "defocus":
            return f"defocus radius {self.radius_px:g} px"
        if self.kind == "motion":
            return f"motion length {self.length_px:g} px, angle {self.angle_deg:g} deg"
        if self.kind == "gaussian":
            return f"gaussian sigma {self.sigma_px:g} px"
        if self.kind == "file":
            return f"file {os.path.basename(self.path)}"
        return "none (left as is)"


def _round_to(value: float, step: float) -> float:
    return round(round(value / step) * step, 6)


def quantised_spec(kind: str, *, radius_px=None, length_px=None, angle_deg=None, sigma_px=None) -> KernelSpec:
    """A KernelSpec with its parameters rounded to the steps above (angles to [0, 180))."""
    if kind == "defocus":
        return KernelSpec("defocus", radius_px=max(RADIUS_STEP_PX, _round_to(radius_px, RADIUS_STEP_PX)))
    if kind == "motion":
        # A motion kernel is symmetric: direction a and a + 180 are the same blur.
        angle = _round_to(angle_deg % 180.0, ANGLE_STEP_DEG) % 180.0
        return KernelSpec("motion", length_px=max(1.0, _round_to(length_px, LENGTH_STEP_PX)), angle_deg=angle)
    if kind == "gaussian":
        return KernelSpec("gaussian", sigma_px=max(SIGMA_STEP_PX, _round_to(sigma_px, SIGMA_STEP_PX)))
    if kind == "none":
        return KernelSpec("none")
    raise InvalidParameterError(f"cannot quantise PSF kind {kind!r}")


def spec_from_config(psf_section) -> KernelSpec:
    """The fixed KernelSpec of a ``[psf]`` section of kind defocus, motion, gaussian or file."""
    kind = psf_section.kind
    if kind == "defocus":
        return KernelSpec("defocus", radius_px=psf_section.radius)
    if kind == "motion":
        return KernelSpec("motion", length_px=psf_section.length, angle_deg=psf_section.angle)
    if kind == "gaussian":
        return KernelSpec("gaussian", sigma_px=psf_section.sigma)
    if kind == "file":
        return KernelSpec("file", path=psf_section.path)
    raise InvalidParameterError(f"psf.kind {kind!r} has no fixed kernel")


def kernel_from_config(psf_section) -> np.ndarray:
    """The luma-resolution kernel that the ``[psf]`` section describes.

    Parameters
    ----------
    psf_section : videodeblur.config.PsfSection
        ``kind`` and the parameters that kind needs.

    Returns
    -------
    numpy.ndarray
        float32 kernel summing to 1.
    """
    return spec_from_config(psf_section).kernel()


def kernel_for_plane(kernel: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """Resample a luma kernel to a subsampled plane (chroma of 4:2:0 is scale 0.5 x 0.5).

    The kernel is resized by area averaging, padded to odd sides so that its centre stays a
    pixel, and normalised. One mechanism for every kernel kind, including anisotropic
    subsampling (4:2:2) and kernels loaded from files.
    """
    if scale_x == 1.0 and scale_y == 1.0:
        return kernel
    rows, columns = kernel.shape
    # Keep the kernel centred: resample about the centre by making the target size odd.
    target_columns = max(1, 2 * math.ceil((columns * scale_x - 1) / 2) + 1)
    target_rows = max(1, 2 * math.ceil((rows * scale_y - 1) / 2) + 1)
    resized = cv2.resize(kernel.astype(np.float32), (target_columns, target_rows), interpolation=cv2.INTER_AREA)
    return psf_models.normalise(np.maximum(resized, 0.0))
