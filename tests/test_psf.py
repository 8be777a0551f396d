"""Tests of the PSF models (videodeblur.core.psf) and of loading kernels from files (videodeblur.psf).

References are computed independently here: overlap areas by brute-force supersampling and by
adaptive quadrature, Gaussian samples from the closed form, motion streaks through their second
moments (orientation, length, thickness).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy import integrate

from videodeblur import psf
from videodeblur.core import psf as core_psf
from videodeblur.errors import InvalidParameterError, VideoDeblurError

MAX = core_psf.MAX_KERNEL_EXTENT_PX
HALF_DIAGONAL = math.sqrt(0.5) + 1e-4  # distance from a pixel's centre to its corners, plus slack


# --------------------------------------------------------------------------------------------
# Reference computations
# --------------------------------------------------------------------------------------------
def centred_grid(kernel):
    """Offsets (x to the right, y UP as displayed) of every kernel pixel from the centre pixel."""
    rows, columns = kernel.shape
    row, column = np.mgrid[0:rows, 0:columns]
    return column - columns // 2, rows // 2 - row


def supersampled_disk_areas(radius: float, size: int, samples: int = 200) -> np.ndarray:
    """Overlap area of every pixel with the disk, by counting samples x samples sub-pixel centres."""
    half = size // 2
    sub = (np.arange(samples) + 0.5) / samples - 0.5
    areas = np.zeros((size, size))
    for i in range(size):
        y = (i - half) + sub
        for j in range(size):
            x = (j - half) + sub
            areas[i, j] = np.mean(y[:, None] ** 2 + x[None, :] ** 2 <= radius * radius)
    return areas


def quadrature_square_disk_area(x0, x1, y0, y1, radius):
    """Area of [x0, x1] x [y0, y1] inside the disk, integrating chord lengths with scipy.quad."""
    a, b = max(x0, -radius), min(x1, radius)
    if a >= b:
        return 0.0

    def chord(x):
        h = math.sqrt(max(radius * radius - x * x, 0.0))
        return max(0.0, min(y1, h) - max(y0, -h))

    # Kinks of the integrand: where the circle crosses y0 or y1.
    kinks = [s * math.sqrt(radius**2 - y**2) for y in (y0, y1) if abs(y) < radius for s in (-1, 1)]
    kinks = sorted(k for k in kinks if a < k < b)
    value, _ = integrate.quad(chord, a, b, points=kinks or None, epsabs=1e-13, epsrel=1e-12, limit=200)
    return value


def second_moments(kernel):
    """Mean and covariance of the kernel (displayed coordinates, y up)."""
    k = kernel.astype(np.float64)
    x, y = centred_grid(k)
    mean = np.array([(k * x).sum(), (k * y).sum()])
    dx, dy = x - mean[0], y - mean[1]
    covariance = np.array([[(k * dx * dx).sum(), (k * dx * dy).sum()], [(k * dx * dy).sum(), (k * dy * dy).sum()]])
    return mean, covariance


def angle_difference_mod_180(a, b):
    d = (a - b) % 180.0
    return min(d, 180.0 - d)


# --------------------------------------------------------------------------------------------
# Properties every kernel must have
# --------------------------------------------------------------------------------------------
ALL_KERNELS = {
    "disk(0)": lambda: psf.disk(0),
    "disk(0.4)": lambda: psf.disk(0.4),
    "disk(0.6)": lambda: psf.disk(0.6),
    "disk(1)": lambda: psf.disk(1),
    "disk(2.3)": lambda: psf.disk(2.3),
    "disk(4.5)": lambda: psf.disk(4.5),
    "disk(12.7)": lambda: psf.disk(12.7),
    "gaussian(0.3)": lambda: psf.gaussian(0.3),
    "gaussian(1)": lambda: psf.gaussian(1),
    "gaussian(2.5)": lambda: psf.gaussian(2.5),
    "gaussian(2,size=5)": lambda: psf.gaussian(2, size=5),
    "motion(0,0)": lambda: psf.motion(0, 0),
    "motion(0.7,33)": lambda: psf.motion(0.7, 33),
    "motion(9,0)": lambda: psf.motion(9, 0),
    "motion(9,90)": lambda: psf.motion(9, 90),
    "motion(15,30)": lambda: psf.motion(15, 30),
    "motion(10,45)": lambda: psf.motion(10, 45),
    "motion(23.4,118)": lambda: psf.motion(23.4, 118),
    "motion(31,-200)": lambda: psf.motion(31, -200),
}


@pytest.mark.parametrize("name", sorted(ALL_KERNELS))
def test_every_kernel_is_float32_normalised_odd_and_non_negative(name):
    kernel = ALL_KERNELS[name]()
    assert kernel.dtype == np.float32
    assert kernel.ndim == 2
    assert kernel.shape[0] % 2 == 1 and kernel.shape[1] % 2 == 1
    assert kernel.flags.c_contiguous
    assert np.all(np.isfinite(kernel))
    assert kernel.min() >= 0.0
    assert abs(float(kernel.astype(np.float64).sum()) - 1.0) <= 1e-6
    # The centre pixel carries weight (all these kernels are centred on it).
    assert kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] > 0


# --------------------------------------------------------------------------------------------
# disk
# --------------------------------------------------------------------------------------------
def test_disk_zero_radius_is_identity():
    np.testing.assert_array_equal(psf.disk(0), np.ones((1, 1), np.float32))
    np.testing.assert_array_equal(psf.disk(0.0), np.ones((1, 1), np.float32))


@pytest.mark.parametrize("radius, size", [(0.5, 1), (0.51, 3), (1.0, 3), (1.5, 3), (2.3, 5), (2.5, 5), (3.5, 7), (4.5, 9), (4.51, 11)])
def test_disk_size_is_smallest_odd_square_containing_the_circle(radius, size):
    assert psf.disk(radius).shape == (size, size)


@pytest.mark.parametrize("radius", [0.6, 1.0, 2.3, 3.7, 4.5, 6.0, 10.2])
def test_disk_support_radius(radius):
    kernel = psf.disk(radius).astype(np.float64)
    x, y = centred_grid(kernel)
    distance = np.hypot(x, y)
    outside = kernel[distance > radius + HALF_DIAGONAL]
    inside = kernel[distance < radius - HALF_DIAGONAL]
    partial = kernel[np.abs(distance - radius) < 0.5 - 1e-3]
    # No weight beyond r + sqrt(2)/2: those pixels do not touch the circle. (They hold round-off
    # of the inclusion-exclusion, about 1e-16, hence a tolerance of 1e-12 of the peak.)
    assert outside.size == 0 or outside.max() <= 1e-12 * kernel.max()
    # Pixels entirely inside the circle all carry the full (maximal) weight.
    if inside.size:
        np.testing.assert_allclose(inside, kernel.max(), rtol=1e-6)
    # Pixels the circle crosses carry a strictly partial weight.
    assert np.all(partial > 0) and np.all(partial < kernel.max() * (1 - 1e-6))
    # Circular symmetry: invariant under flips and transposition.
    # (Exact up to the ~1e-16 round-off in pixels outside the circle.)
    for image in (kernel[::-1, :], kernel[:, ::-1], kernel.T):
        np.testing.assert_allclose(kernel, image, rtol=0, atol=1e-7 * kernel.max())


@pytest.mark.parametrize("radius", [0.6, 1.0, 2.3, 3.0, 4.5])
def test_disk_weights_equal_supersampled_overlap_areas(radius):
    kernel = psf.disk(radius).astype(np.float64)
    brute = supersampled_disk_areas(radius, kernel.shape[0], samples=200)
    # The kernel is the overlap area divided by the disk's area pi r^2 (the kernel contains the
    # whole disk). 200x200 sub-samples resolve a pixel's area to well under 1e-3.
    areas = kernel * math.pi * radius * radius
    np.testing.assert_allclose(areas, brute, rtol=0, atol=1e-3)
    # Relative to the full-pixel weight, after normalising both the same way.
    np.testing.assert_allclose(kernel, brute / brute.sum(), rtol=0, atol=1e-3 * kernel.max())


@pytest.mark.parametrize("radius", [0.6, 2.3, 4.5, 7.25])
def test_disk_weights_equal_exact_overlap_areas_by_quadrature(radius):
    kernel = psf.disk(radius).astype(np.float64)
    half = kernel.shape[0] // 2
    exact = np.zeros_like(kernel)
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            y, x = i - half, j - half
            exact[i, j] = quadrature_square_disk_area(x - 0.5, x + 0.5, y - 0.5, y + 0.5, radius)
    assert abs(exact.sum() - math.pi * radius * radius) < 1e-8  # the reference itself is right
    # float32 weights: agreement to float32 resolution of the largest weight.
    np.testing.assert_allclose(kernel, exact / exact.sum(), rtol=0, atol=3e-7 * kernel.max())


def test_disk_grows_continuously_with_sub_pixel_radius():
    # 2.3 -> 2.31 changes only the rim pixels, and only slightly.
    a, b = psf.disk(2.3), psf.disk(2.31)
    assert a.shape == b.shape
    assert 0 < np.abs(a - b).max() < 2e-3


# --------------------------------------------------------------------------------------------
# gaussian
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.3, 1.0, 1.7, 2.5, 4.0])
def test_gaussian_matches_closed_form_samples(sigma):
    kernel = psf.gaussian(sigma)
    size = 2 * math.ceil(3 * sigma) + 1
    assert kernel.shape == (size, size)
    offsets = np.arange(size) - size // 2
    profile = np.exp(-(offsets**2) / (2 * sigma**2))
    expected = np.outer(profile, profile)
    np.testing.assert_allclose(kernel, expected / expected.sum(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("sigma", [1.0, 1.7, 2.5, 4.0])
def test_gaussian_second_moment_is_sigma_squared_per_axis(sigma):
    # With a generous size (6 sigma each side) truncation is negligible: variance = sigma^2.
    size = 2 * math.ceil(6 * sigma) + 1
    mean, covariance = second_moments(psf.gaussian(sigma, size=size))
    np.testing.assert_allclose(mean, 0.0, atol=1e-6)
    np.testing.assert_allclose(np.diag(covariance), sigma**2, rtol=2e-3)
    assert abs(covariance[0, 1]) < 1e-6 * sigma**2
    # The default 3-sigma size truncates the tails: the variance then loses about 2.7 %.
    _, default_covariance = second_moments(psf.gaussian(sigma))
    np.testing.assert_allclose(np.diag(default_covariance), sigma**2, rtol=0.04)
    assert np.all(np.diag(default_covariance) < sigma**2)


def test_gaussian_custom_size():
    kernel = psf.gaussian(2.0, size=7)
    assert kernel.shape == (7, 7)
    profile = np.exp(-(np.arange(-3, 4) ** 2) / 8.0)
    np.testing.assert_allclose(kernel, np.outer(profile, profile) / np.outer(profile, profile).sum(), rtol=1e-6)
    assert psf.gaussian(3.0, size=1).shape == (1, 1)
    assert psf.gaussian(0.5, size=np.int64(9)).shape == (9, 9)
    np.testing.assert_array_equal(psf.gaussian(1.5, size=11)[1:-1, 1:-1] > 0, True)


@pytest.mark.parametrize("size", [0, -3, 4, 10, 5.0, 7.5, True, "5", [5], 2 * int(MAX) + 3])
def test_gaussian_bad_size_raises(size):
    with pytest.raises(InvalidParameterError):
        psf.gaussian(1.0, size=size)


# --------------------------------------------------------------------------------------------
# motion
# --------------------------------------------------------------------------------------------
MOTIONS = [(15, 30), (9, 45), (9, 90), (10, 0), (7.3, 123), (21, 160), (12.5, -20), (6, 400), (18, 75), (25, 97.5)]


@pytest.mark.parametrize("length, angle", MOTIONS)
def test_motion_orientation_length_and_thickness(length, angle):
    kernel = psf.motion(length, angle)
    mean, covariance = second_moments(kernel)
    np.testing.assert_allclose(mean, 0.0, atol=1e-6)  # centred on the centre pixel
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    across_variance, along_variance = eigenvalues
    axis = eigenvectors[:, 1]
    principal_angle = math.degrees(math.atan2(axis[1], axis[0])) % 180.0
    # Displayed orientation: y grows upwards, so 45 degrees runs bottom-left to top-right.
    assert angle_difference_mod_180(principal_angle, angle % 180.0) < 1.0
    # A uniform segment of length L has variance L^2/12; the bilinear splat adds at most 1/4.
    assert length**2 / 12 - 1e-3 <= along_variance <= length**2 / 12 + 0.26
    assert across_variance <= 0.26
    # No weight beyond the segment's end (plus the splat's reach of one pixel per axis).
    x, y = centred_grid(kernel)
    theta = math.radians(angle)
    along = x * math.cos(theta) + y * math.sin(theta)
    across = -x * math.sin(theta) + y * math.cos(theta)
    far = (np.abs(along) > length / 2 + math.sqrt(2) + 1e-6) | (np.abs(across) > math.sqrt(2) + 1e-6)
    assert np.all(kernel[far] == 0)


def test_motion_45_degrees_runs_bottom_left_to_top_right():
    kernel = psf.motion(11, 45)
    rows, columns = kernel.shape
    top_right = kernel[: rows // 2, columns // 2 + 1 :].sum()
    top_left = kernel[: rows // 2, : columns // 2].sum()
    assert top_right > 0.35 and top_left < 1e-3
    # and 135 degrees is the mirror image: top-left to bottom-right.
    np.testing.assert_allclose(psf.motion(11, 135), kernel[:, ::-1], atol=1e-7)


def test_motion_axis_aligned_kernels_are_thin_lines():
    horizontal = psf.motion(9, 0)
    vertical = psf.motion(9, 90)
    assert horizontal.shape[0] == 1 and vertical.shape[1] == 1
    np.testing.assert_allclose(vertical[:, 0], horizontal[0, :], atol=1e-7)
    # The interior of a streak is flat: every pixel inside gets one pixel of length.
    np.testing.assert_allclose(horizontal[0, 2:-2], 1.0 / 9.0, rtol=1e-5)


def test_motion_zero_length_is_identity():
    for angle in (0, 37, 90, 180):
        np.testing.assert_array_equal(psf.motion(0, angle), np.ones((1, 1), np.float32))


@pytest.mark.parametrize("length, angle", [(9, 0), (15, 30), (7.3, 123), (20, 89)])
def test_motion_only_angle_mod_180_matters(length, angle):
    reference = psf.motion(length, angle)
    for other in (angle + 180, angle - 180, angle + 360):
        np.testing.assert_allclose(psf.motion(length, other), reference, rtol=0, atol=1e-7)


def test_motion_zero_and_180_identical():
    np.testing.assert_array_equal(psf.motion(13, 0), psf.motion(13, 180))


@pytest.mark.parametrize("length, angle", MOTIONS)
def test_motion_is_point_symmetric(length, angle):
    kernel = psf.motion(length, angle)
    np.testing.assert_array_equal(kernel, kernel[::-1, ::-1])


def test_motion_varies_smoothly_with_sub_pixel_parameters():
    a = psf.motion(10.0, 30)
    for b in (psf.motion(10.05, 30), psf.motion(10.0, 30.2)):
        assert b.shape == a.shape == (7, 11)
        assert 0 < np.abs(a - b).max() < 5e-3


# --------------------------------------------------------------------------------------------
# invalid parameters
# --------------------------------------------------------------------------------------------
BAD_SIZE_VALUES = [-1, -0.01, math.nan, math.inf, -math.inf, "abc", "", None, [3], MAX + 1, 1e9]


@pytest.mark.parametrize("value", BAD_SIZE_VALUES)
def test_disk_invalid_radius_raises(value):
    with pytest.raises(InvalidParameterError) as info:
        psf.disk(value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, VideoDeblurError)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("value", BAD_SIZE_VALUES + [0, 0.0])
def test_gaussian_invalid_sigma_raises(value):
    with pytest.raises(InvalidParameterError):
        psf.gaussian(value)


@pytest.mark.parametrize("value", BAD_SIZE_VALUES)
def test_motion_invalid_length_raises(value):
    with pytest.raises(InvalidParameterError):
        psf.motion(value, 0)


@pytest.mark.parametrize("angle", [math.nan, math.inf, -math.inf, "up", None, [45]])
def test_motion_invalid_angle_raises(angle):
    with pytest.raises(InvalidParameterError):
        psf.motion(5, angle)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("call", [lambda: psf.disk(1e-170), lambda: psf.gaussian(1e-170)], ids=["disk", "gaussian"])
def test_tiny_positive_sizes_give_the_identity(call):
    kernel = call()
    assert kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] == 1.0 and kernel.sum() == 1.0


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_small_positive_sizes_give_the_identity():
    for value in (1e-160, 1e-8, 1e-3):
        np.testing.assert_array_equal(psf.disk(value), np.ones((1, 1), np.float32))
        assert psf.gaussian(value)[1, 1] == 1.0 and psf.gaussian(value).sum() == 1.0
        np.testing.assert_allclose(psf.motion(value / 1000, 30).sum(), 1.0)


def test_largest_supported_extent_is_accepted():
    # The bound itself is allowed (the check is "larger than", not "at least").
    assert psf.motion(MAX, 0).shape[1] >= MAX
    with pytest.raises(InvalidParameterError):
        psf.motion(MAX + 0.5, 0)


@pytest.mark.parametrize("call", [lambda: psf.disk("3"), lambda: psf.gaussian("2"),
                                  lambda: psf.motion("9", 0), lambda: psf.motion(9, "45"),
                                  lambda: psf.disk(True)],
                         ids=["disk('3')", "gaussian('2')", "motion('9',0)", "motion(9,'45')", "disk(True)"])
def test_numeric_strings_and_bools_are_rejected(call):
    with pytest.raises(InvalidParameterError):
        call()


def test_gaussian_bound_applies_to_four_sigma():
    with pytest.raises(InvalidParameterError):
        psf.gaussian(MAX / 4 + 1)  # 4 * sigma = 516 px > 512 px


@pytest.mark.parametrize(
    "kernel",
    [np.zeros((3, 3)), np.array([[0.0, 1.0], [-0.1, 1.0]]), np.array([[np.nan, 1.0]]),
     np.array([[np.inf, 1.0]]), np.ones(5), np.ones((2, 2, 2)), np.zeros((0, 3)), np.float64(1.0)],
    ids=["zeros", "negative", "nan", "inf", "1-D", "3-D", "empty", "0-D"],
)
def test_normalise_rejects_invalid_kernels(kernel):
    with pytest.raises(InvalidParameterError):
        psf.normalise(kernel)


def test_normalise_scales_to_unit_sum_and_copies():
    source = np.arange(1, 13, dtype=np.float64).reshape(3, 4)
    result = psf.normalise(source)
    assert result.dtype == np.float32 and result.flags.c_contiguous
    np.testing.assert_allclose(result, source / source.sum(), rtol=1e-6)
    result[0, 0] = 99
    assert source[0, 0] == 1  # the input is not aliased
    non_contiguous = psf.normalise(np.ones((4, 6), np.uint8)[:, ::2])
    assert non_contiguous.flags.c_contiguous
    np.testing.assert_allclose(non_contiguous, 1 / 12)


# --------------------------------------------------------------------------------------------
# from_file
# --------------------------------------------------------------------------------------------
def _asymmetric_source(dtype, high):
    rng = np.random.default_rng(5)
    values = rng.integers(0, high, size=(7, 9)).astype(dtype)
    values[3, 4] = high - 1  # at least one positive weight
    return values


def test_from_file_npy(tmp_path):
    source = np.random.default_rng(1).random((5, 7))
    path = tmp_path / "kernel.npy"
    np.save(path, source)
    kernel = psf.from_file(path)
    assert kernel.dtype == np.float32 and kernel.shape == (5, 7)
    np.testing.assert_allclose(kernel, source / source.sum(), rtol=1e-6)
    assert isinstance(psf.from_file(str(path)), np.ndarray)  # str paths too


@pytest.mark.parametrize(
    "suffix, dtype, high",
    [(".png", np.uint8, 256), (".png", np.uint16, 65536), (".tif", np.uint16, 65536),
     (".tiff", np.uint8, 256), (".PNG", np.uint16, 65536)],
)
def test_from_file_grayscale_images(tmp_path, suffix, dtype, high):
    source = _asymmetric_source(dtype, high)
    path = tmp_path / f"kernel{suffix}"
    assert cv2.imwrite(str(path), source)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == dtype  # really 8/16-bit on disk
    kernel = psf.from_file(path)
    assert kernel.dtype == np.float32 and kernel.shape == source.shape
    expected = source.astype(np.float64) / source.astype(np.float64).sum()
    np.testing.assert_allclose(kernel, expected, rtol=1e-6, atol=1e-12)


def test_from_file_colour_png_is_averaged_to_gray(tmp_path):
    rng = np.random.default_rng(2)
    colour = rng.integers(0, 256, size=(5, 5, 3)).astype(np.uint8)
    path = tmp_path / "colour.png"
    assert cv2.imwrite(str(path), colour)
    expected = colour.astype(np.float64).mean(axis=2)
    np.testing.assert_allclose(psf.from_file(path), expected / expected.sum(), rtol=1e-6)


def test_from_file_missing(tmp_path):
    with pytest.raises(InvalidParameterError, match="not found"):
        psf.from_file(tmp_path / "nope.png")
    with pytest.raises(InvalidParameterError):
        psf.from_file(tmp_path)  # a directory is not a file


@pytest.mark.parametrize("name", ["kernel.jpg", "kernel.txt", "kernel"])
def test_from_file_unsupported_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"1 2 3")
    with pytest.raises(InvalidParameterError, match="unsupported"):
        psf.from_file(path)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".npy"])
def test_from_file_all_zero_kernel(tmp_path, suffix):
    path = tmp_path / f"zeros{suffix}"
    zeros = np.zeros((5, 5), np.uint8)
    if suffix == ".npy":
        np.save(path, zeros)
    else:
        assert cv2.imwrite(str(path), zeros)
    with pytest.raises(InvalidParameterError, match="zero"):
        psf.from_file(path)


def test_from_file_bad_contents(tmp_path):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a PNG")
    with pytest.raises(InvalidParameterError):
        psf.from_file(garbage)
    one_d = tmp_path / "line.npy"
    np.save(one_d, np.ones(5))
    with pytest.raises(InvalidParameterError):
        psf.from_file(one_d)
    negative = tmp_path / "negative.npy"
    np.save(negative, np.array([[1.0, -1.0, 2.0]]))
    with pytest.raises(InvalidParameterError):
        psf.from_file(negative)
    pickled = tmp_path / "object.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidParameterError):
        psf.from_file(pickled)
    not_npy = tmp_path / "text.npy"
    not_npy.write_text("hello")
    with pytest.raises(InvalidParameterError):
        psf.from_file(not_npy)


NON_REAL_ARRAYS = {
    "strings": np.array([["a", "b"], ["c", "d"]]),
    "structured": np.zeros((3, 3), dtype=[("a", "f4"), ("b", "f4")]),
    "complex": np.array([[1 + 1j, 2.0], [0.5, 1.0]]),
}


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
@pytest.mark.parametrize("name", sorted(NON_REAL_ARRAYS))
def test_from_file_rejects_non_real_npy(tmp_path, name):
    path = tmp_path / f"{name}.npy"
    np.save(path, NON_REAL_ARRAYS[name])
    with pytest.raises(InvalidParameterError):
        psf.from_file(path)


def test_normalise_rejects_non_numeric_entries():
    with pytest.raises(InvalidParameterError):
        psf.normalise([[1.0, "x"]])
