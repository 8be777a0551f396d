"""Turn the ``[psf]`` config section into kernels, one per image plane."""

from __future__ import annotations

import math

import cv2
import numpy as np

from videodeblur import psf as psf_models
from videodeblur.errors import InvalidParameterError


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
    kind = psf_section.kind
    if kind == "defocus":
        return psf_models.disk(psf_section.radius)
    if kind == "motion":
        return psf_models.motion(psf_section.length, psf_section.angle)
    if kind == "gaussian":
        return psf_models.gaussian(psf_section.sigma)
    if kind == "file":
        return psf_models.from_file(psf_section.path)
    raise InvalidParameterError(f"psf.kind {kind!r} is not supported")


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
