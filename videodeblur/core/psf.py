"""Point-spread functions (blur kernels) as float32 arrays that sum to 1.

Conventions
-----------
* A kernel is a 2-D float32 array indexed ``[row, column]``; its centre is the pixel
  ``(rows // 2, columns // 2)``. Every generator here returns odd sizes, so the centre is exact.
* Angles are in degrees counter-clockwise from the +x axis as the image is displayed (rows grow
  downwards), so ``motion(9, 90)`` is a vertical streak and ``motion(9, 45)`` runs from the
  bottom-left to the top-right.
* Lengths, radii and sigmas are in pixels; sub-pixel values are allowed.

All functions are pure: no I/O (reading a kernel from a file lives in :mod:`videodeblur.psf`).
"""

from __future__ import annotations

import math

import numpy as np

from videodeblur.errors import InvalidParameterError

#: Largest radius, length or 4*sigma accepted, in pixels. Larger blurs are not restorable by
#: linear deconvolution in practice, and this bound keeps a typo from allocating gigabytes.
MAX_KERNEL_EXTENT_PX = 512.0


def _as_number(name: str, value) -> float:
    # Strings and bools are refused even where float() would accept them ("3", True): a
    # config or caller that passes one has a bug worth reporting.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(f"{name} must be a number, got {value!r}")
    return float(value)


def _check_size_parameter(name: str, value: float, *, minimum: float, allow_equal: bool,
                          extent_factor: float = 1.0) -> float:
    value = _as_number(name, value)
    if not math.isfinite(value):
        raise InvalidParameterError(f"{name} must be finite, got {value}")
    too_small = value < minimum if allow_equal else value <= minimum
    if too_small:
        relation = ">=" if allow_equal else ">"
        raise InvalidParameterError(f"{name} must be {relation} {minimum:g} px, got {value:g}")
    if value * extent_factor > MAX_KERNEL_EXTENT_PX:
        limit = MAX_KERNEL_EXTENT_PX / extent_factor
        raise InvalidParameterError(f"{name} = {value:g} px is larger than the supported {limit:g} px")
    return value


def normalise(kernel) -> np.ndarray:
    """Validate a kernel and scale it to sum to 1.

    Parameters
    ----------
    kernel : array_like
        2-D array of finite, non-negative weights with a positive sum.

    Returns
    -------
    numpy.ndarray
        C-contiguous float32 copy that sums to 1.

    Raises
    ------
    InvalidParameterError
        If the kernel is not 2-D, is empty, holds NaN/Inf or negative values, or sums to 0.
    """
    try:
        kernel = np.asarray(kernel)
    except (TypeError, ValueError) as error:  # ragged nested lists
        raise InvalidParameterError(f"a PSF must be a 2-D array of numbers ({error})") from None
    if kernel.dtype.kind not in "biuf":
        raise InvalidParameterError(f"a PSF must hold real numbers, got dtype {kernel.dtype}")
    kernel = kernel.astype(np.float64)
    if kernel.ndim != 2 or kernel.size == 0:
        raise InvalidParameterError(f"a PSF must be a non-empty 2-D array, got shape {kernel.shape}")
    if not np.all(np.isfinite(kernel)):
        raise InvalidParameterError("a PSF must hold finite values only (found NaN or Inf)")
    if np.any(kernel < 0):
        raise InvalidParameterError("a PSF must not hold negative weights")
    total = kernel.sum()
    if total <= 0:
        raise InvalidParameterError("a PSF must have a positive sum (it is all zeros)")
    return np.ascontiguousarray(kernel / total, dtype=np.float32)


def _quadrant_area(x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Area of {0<=u<=x, 0<=v<=y} inside the circle of ``radius``, for x, y >= 0."""
    x = np.minimum(x, radius)
    y = np.minimum(y, radius)
    # Beyond x_turn the circle is lower than y, so the strip height follows the circle.
    x_turn = np.sqrt(np.maximum(radius * radius - y * y, 0.0))

    def circle_integral(u):  # integral of sqrt(r^2 - t^2) dt from 0 to u
        u = np.clip(u, 0.0, radius)
        return 0.5 * (u * np.sqrt(np.maximum(radius * radius - u * u, 0.0)) + radius * radius * np.arcsin(u / radius))

    return np.where(
        x <= x_turn,
        x * y,
        x_turn * y + circle_integral(x) - circle_integral(x_turn),
    )


def _signed_area(x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    # Odd extension in both axes: the disk is symmetric, so inclusion-exclusion on this
    # "cumulative area" gives the overlap of any axis-aligned rectangle with the disk.
    return np.sign(x) * np.sign(y) * _quadrant_area(np.abs(x), np.abs(y), radius)


def disk(radius: float) -> np.ndarray:
    """Defocus (pillbox) kernel with exact pixel/circle overlap areas.

    Each pixel's weight is the exact area of its unit square inside a circle of ``radius``
    pixels centred on the central pixel, as MATLAB's ``fspecial('disk')`` intends.

    Parameters
    ----------
    radius : float
        Radius of the circle of confusion in pixels, >= 0 (sub-pixel allowed; 0 gives the
        identity kernel).

    Returns
    -------
    numpy.ndarray
        Square float32 kernel of odd size ``2 * ceil(radius - 0.5) + 1`` summing to 1.

    Examples
    --------
    >>> k = disk(2.5)
    >>> k.shape, round(float(k.sum()), 6)
    ((5, 5), 1.0)
    """
    radius = _check_size_parameter("radius", radius, minimum=0.0, allow_equal=True)
    half = max(0, math.ceil(radius - 0.5))
    if half == 0:  # the whole disk lies inside the central pixel (also avoids r^2 underflow)
        return np.ones((1, 1), dtype=np.float32)
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    y0, x0 = np.meshgrid(offsets - 0.5, offsets - 0.5, indexing="ij")
    y1, x1 = y0 + 1.0, x0 + 1.0
    area = (
        _signed_area(x1, y1, radius)
        - _signed_area(x0, y1, radius)
        - _signed_area(x1, y0, radius)
        + _signed_area(x0, y0, radius)
    )
    return normalise(np.maximum(area, 0.0))


def gaussian(sigma: float, size: int | None = None) -> np.ndarray:
    """Isotropic Gaussian kernel, sampled at pixel centres like ``fspecial('gaussian')``.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels, > 0.
    size : int, optional
        Odd side length in pixels. Default ``2 * ceil(3 * sigma) + 1``, which keeps more than
        99.7 % of the mass in each axis.

    Returns
    -------
    numpy.ndarray
        Square float32 kernel summing to 1.
    """
    sigma = _check_size_parameter("sigma", sigma, minimum=0.0, allow_equal=False, extent_factor=4.0)
    if size is None:
        size = 2 * math.ceil(3.0 * sigma) + 1
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
        raise InvalidParameterError(f"size must be a positive odd integer, got {size!r}")
    if size > 2 * MAX_KERNEL_EXTENT_PX + 1:
        raise InvalidParameterError(f"size = {size} px is larger than the supported {2 * MAX_KERNEL_EXTENT_PX + 1:g} px")
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    profile = np.exp(-0.5 * (offsets / sigma) ** 2)  # offsets / sigma: no underflow of sigma^2
    return normalise(np.outer(profile, profile))


def motion(length: float, angle: float) -> np.ndarray:
    """Linear motion kernel: a straight streak of ``length`` pixels at ``angle`` degrees.

    The kernel is the exposure of a point moving at constant speed along a segment of
    ``length`` pixels centred on the central pixel. The segment is integrated with bilinear
    (tent) pixel weights, so sub-pixel lengths and arbitrary angles are anti-aliased and the
    kernel moves smoothly as the parameters change.

    Parameters
    ----------
    length : float
        Length of the streak in pixels, >= 0 (0 gives the identity kernel).
    angle : float
        Direction in degrees counter-clockwise from the +x axis (image displayed with rows
        downwards). Any finite value; only ``angle mod 180`` matters.

    Returns
    -------
    numpy.ndarray
        Float32 kernel of odd size summing to 1, symmetric about its centre.
    """
    length = _check_size_parameter("length", length, minimum=0.0, allow_equal=True)
    angle = _as_number("angle", angle)
    if not math.isfinite(angle):
        raise InvalidParameterError(f"angle must be finite, got {angle}")
    theta = math.radians(angle % 180.0)
    dx, dy = math.cos(theta), -math.sin(theta)  # rows grow downwards
    half_x = math.ceil(0.5 * length * abs(dx)) + 1
    half_y = math.ceil(0.5 * length * abs(dy)) + 1
    kernel = np.zeros((2 * half_y + 1, 2 * half_x + 1), dtype=np.float64)
    # Midpoint rule along the segment; 16 samples per pixel of length makes the bilinear
    # splat's quadrature error far below float32 resolution of the weights.
    samples = max(2, math.ceil(16 * length))
    s = (np.arange(samples) + 0.5) / samples * length - 0.5 * length
    xs, ys = half_x + s * dx, half_y + s * dy
    x0, y0 = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    fx, fy = xs - x0, ys - y0
    for oy, wy in ((0, 1.0 - fy), (1, fy)):
        for ox, wx in ((0, 1.0 - fx), (1, fx)):
            np.add.at(kernel, (y0 + oy, x0 + ox), wy * wx)
    # Symmetrise to remove the last rounding asymmetry: a linear streak is point-symmetric.
    kernel = 0.5 * (kernel + kernel[::-1, ::-1])
    return normalise(_trim_zero_border(kernel))


def _trim_zero_border(kernel: np.ndarray) -> np.ndarray:
    """Drop all-zero outer rows/columns symmetrically so the centre stays the centre."""
    tiny = kernel.max() * 1e-9
    rows = np.nonzero(kernel.max(axis=1) > tiny)[0]
    cols = np.nonzero(kernel.max(axis=0) > tiny)[0]
    centre_y, centre_x = kernel.shape[0] // 2, kernel.shape[1] // 2
    half_y = max(centre_y - rows[0], rows[-1] - centre_y)
    half_x = max(centre_x - cols[0], cols[-1] - centre_x)
    return kernel[centre_y - half_y : centre_y + half_y + 1, centre_x - half_x : centre_x + half_x + 1]


def rescaled(kernel: np.ndarray, scale: float) -> np.ndarray:
    """The same kernel ``scale`` times as large (``scale > 0``), resampled about its centre with
    area-preserving bilinear interpolation; odd-sized and normalised.

    A disk of radius r becomes (very nearly) a disk of radius ``scale * r``, a streak of
    length L a streak of ``scale * L`` at the same angle: the shape of any kernel, model or
    file, kept while its size changes. Bilinear resampling softens the result by about a
    sixth of a square pixel per axis.
    """
    import cv2

    kernel = normalise(kernel)
    if not (math.isfinite(scale) and scale > 0.0):
        raise InvalidParameterError(f"a kernel can be rescaled by a positive scale, got {scale!r}")
    rows, columns = kernel.shape
    # The output keeps the input's centre pixel at its centre; sizes stay odd.
    out_rows, out_columns = (2 * max(1, math.ceil((n // 2) * scale)) + 1 for n in (rows, columns))
    matrix = np.array([[scale, 0.0, out_columns // 2 - scale * (columns // 2)],
                       [0.0, scale, out_rows // 2 - scale * (rows // 2)]])
    resampled = cv2.warpAffine(kernel.astype(np.float32), matrix, (out_columns, out_rows),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    if resampled.sum() <= 0:  # shrunk below a pixel: a point
        resampled = np.zeros((1, 1), np.float32)
        resampled[0, 0] = 1.0
    return normalise(np.maximum(resampled, 0.0))
