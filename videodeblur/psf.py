"""Blur kernels for users: the models of :mod:`videodeblur.core.psf` plus loading from a file.

>>> from videodeblur import psf
>>> psf.disk(3.5).shape
(7, 7)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videodeblur.core.psf import MAX_KERNEL_EXTENT_PX, disk, gaussian, motion, normalise
from videodeblur.errors import InvalidParameterError

__all__ = ["disk", "gaussian", "motion", "from_file", "normalise", "MAX_KERNEL_EXTENT_PX"]

_IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".bmp", ".pgm"}


def from_file(path) -> np.ndarray:
    """Load a PSF from a grayscale image (PNG/TIFF, 8 or 16 bit) or a ``.npy`` array.

    Colour images are converted to gray by averaging channels. The kernel is normalised to
    sum 1; its centre is the pixel ``(rows // 2, columns // 2)``, so give odd sizes for an
    unambiguous centre.

    Raises
    ------
    InvalidParameterError
        Missing or unreadable file, unsupported format, or an invalid kernel (negative, all
        zeros, not 2-D, larger than the supported extent).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidParameterError(f"PSF file '{path}': not found")
    if suffix == ".npy":
        try:
            kernel = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise InvalidParameterError(f"PSF file '{path}': cannot read as .npy ({error})") from None
    elif suffix in _IMAGE_SUFFIXES:
        import cv2  # imported here: only this loader needs image decoding

        kernel = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if kernel is None:
            raise InvalidParameterError(f"PSF file '{path}': cannot decode the image")
        if kernel.ndim == 3:
            kernel = kernel[:, :, :3].astype(np.float64).mean(axis=2)
    else:
        raise InvalidParameterError(
            f"PSF file '{path}': unsupported type '{suffix}' (use .png, .tif, .tiff, .bmp, .pgm or .npy)"
        )
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise InvalidParameterError(f"PSF file '{path}': expected a 2-D kernel, got shape {kernel.shape}")
    if max(kernel.shape) > 2 * MAX_KERNEL_EXTENT_PX + 1:
        raise InvalidParameterError(f"PSF file '{path}': kernel {kernel.shape} is larger than supported")
    try:
        return normalise(kernel)
    except InvalidParameterError as error:
        raise InvalidParameterError(f"PSF file '{path}': {error}") from None
