"""Tests of videodeblur.core.edgetaper against a full-frame NumPy reference.

The library blurs only the two border bands (with OpenCV); the reference here blurs the whole
frame circularly with NumPy FFTs and blends ``alpha * I + (1 - alpha) * blur(I)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from videodeblur import psf
from videodeblur.core.edgetaper import (
    DIRECT_FILTER_MAX_TAPS,
    _circular_slices,
    _kernel_pieces,
    edgetaper,
    edgetaper_inplace,
    edgetaper_weights,
    taper_plan,
    taper_profile,
)
from videodeblur.errors import InvalidParameterError


def circular_blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Circular convolution with the kernel centred at ``shape // 2`` (NumPy FFT, float64)."""
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    padded = np.zeros(image.shape)
    padded[: kernel.shape[0], : kernel.shape[1]] = kernel
    padded = np.roll(padded, (-(kernel.shape[0] // 2), -(kernel.shape[1] // 2)), axis=(0, 1))
    return np.fft.irfft2(np.fft.rfft2(image) * np.fft.rfft2(padded), s=image.shape)


def reference_edgetaper(image, kernel):
    alpha = edgetaper_weights(image.shape, kernel).astype(np.float64)
    return alpha * image + (1.0 - alpha) * circular_blur(image, kernel)


def _random_kernel(shape, seed):
    kernel = np.random.default_rng(seed).random(shape)
    return kernel / kernel.sum()


def _one_sided_streak(length):
    kernel = np.zeros((1, 2 * length - 1))
    kernel[0, length - 1 :] = 1.0  # weights only at and right of the centre pixel
    return kernel / kernel.sum()


KERNELS = {
    "identity": lambda: np.ones((1, 1)),
    "disk(4)": lambda: psf.disk(4),
    "disk(2.3)": lambda: psf.disk(2.3),
    "gaussian(2)": lambda: psf.gaussian(2),
    "motion(15,37)": lambda: psf.motion(15, 37),
    "motion(21.5,123)": lambda: psf.motion(21.5, 123),
    "motion(11,0)": lambda: psf.motion(11, 0),
    "motion(11,90)": lambda: psf.motion(11, 90),
    "even 6x4 random": lambda: _random_kernel((6, 4), 0),
    "odd 7x5 random": lambda: _random_kernel((7, 5), 1),
    "even 5x8 random": lambda: _random_kernel((5, 8), 2),
    "one-sided streak": lambda: _one_sided_streak(8),
    "disk(40) in 96 rows": lambda: psf.disk(40),
    "motion(120,10) in 128 cols": lambda: psf.motion(120, 10),
    "gaussian(10,size=91)": lambda: psf.gaussian(10, size=91),
    "random 96x128 (frame size)": lambda: _random_kernel((96, 128), 3),
}


@pytest.fixture(scope="module")
def frame(camera):
    return camera[100:196, 200:328].copy()  # 96 x 128, real content up to the borders


def test_reference_blur_is_circular_convolution():
    # Guard the reference itself: it equals scipy's wrap-around convolution (centre shape // 2).
    rng = np.random.default_rng(0)
    image = rng.random((23, 31))
    for kernel in (_random_kernel((6, 4), 4), _random_kernel((7, 5), 5), psf.motion(9, 30)):
        expected = ndimage.convolve(image, kernel.astype(np.float64), mode="wrap")
        np.testing.assert_allclose(circular_blur(image, kernel), expected, atol=1e-12)


@pytest.mark.parametrize("name", list(KERNELS))
def test_edgetaper_equals_full_frame_reference(frame, name):
    kernel = KERNELS[name]()
    result = edgetaper(frame, kernel)
    assert result.dtype == np.float32 and result.shape == frame.shape
    np.testing.assert_allclose(result, reference_edgetaper(frame, kernel), rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 2), (3, 7), (17, 5), (31, 40)])
def test_edgetaper_small_and_odd_frames(shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.random(shape)
    for kernel in (_random_kernel((min(3, shape[0]), min(2, shape[1])), 6), np.ones((1, 1)), _random_kernel(shape, 7)):
        np.testing.assert_allclose(edgetaper(image, kernel), reference_edgetaper(image, kernel), atol=1e-5)


def test_identity_kernel_leaves_the_frame_unchanged(frame):
    np.testing.assert_array_equal(edgetaper(frame, np.ones((1, 1))), frame.astype(np.float32))


@pytest.mark.parametrize("name", ["disk(4)", "gaussian(2)", "motion(21.5,123)", "even 6x4 random", "one-sided streak", "disk(40) in 96 rows"])
def test_weights_zero_on_borders_one_inside(frame, name):
    kernel = np.asarray(KERNELS[name](), dtype=np.float64)
    rows, columns = frame.shape
    weights = edgetaper_weights((rows, columns), kernel)
    assert weights.shape == (rows, columns) and weights.dtype == np.float32
    assert weights.min() >= 0.0 and weights.max() <= 1.0
    for border in (weights[0], weights[-1], weights[:, 0], weights[:, -1]):
        np.testing.assert_array_equal(border, 0.0)
    kh, kw = kernel.shape
    if 2 * kh < rows and 2 * kw < columns:
        # Exactly 1 from one kernel width inside.
        np.testing.assert_array_equal(weights[kh : rows - kh, kw : columns - kw], 1.0)
        # ... and strictly below 1 one pixel further out where the kernel's first and last
        # rows (columns) carry weight: the projection's autocorrelation reaches lag size - 1.
        if kh > 1 and kernel[0].any() and kernel[-1].any():
            assert weights[kh - 1, columns // 2] < 1.0 and weights[rows - kh, columns // 2] < 1.0
        if kw > 1 and kernel[:, 0].any() and kernel[:, -1].any():
            assert weights[rows // 2, kw - 1] < 1.0 and weights[rows // 2, columns - kw] < 1.0
    # Separable and symmetric between opposite borders.
    np.testing.assert_allclose(weights, np.outer(weights[:, columns // 2], weights[rows // 2, :])
                               / max(weights[rows // 2, columns // 2], 1e-12), atol=1e-6)
    np.testing.assert_array_equal(weights, weights[::-1, ::-1])


@pytest.mark.parametrize("length, projection", [
    (96, [1.0]),
    (96, [0.2, 0.5, 0.3]),
    (50, [0.1, 0.0, 0.4, 0.2, 0.3]),
    (41, list(np.random.default_rng(8).random(9))),
])
def test_taper_profile_equals_linear_autocorrelation_for_small_kernels(length, projection):
    # For a kernel much shorter than the frame, the circular autocorrelation is the linear one:
    # weight(i) = 1 - ac(i) / ac(0) for i < m, mirrored at the other end, 1 in between.
    p = np.asarray(projection, dtype=np.float64)
    m = p.size
    ac = np.correlate(p, p, mode="full")[m - 1 :]  # lags 0 .. m-1
    expected = np.ones(length)
    expected[:m] = 1.0 - ac / ac[0]
    expected[length - m :] = np.minimum(expected[length - m :], (1.0 - ac / ac[0])[::-1])
    expected[length - 1] = 0.0
    np.testing.assert_allclose(taper_profile(length, p), expected, atol=2e-7)


@pytest.mark.parametrize("name", ["disk(4)", "gaussian(2)", "motion(21.5,123)", "odd 7x5 random", "motion(15,37)"])
def test_tapered_frame_wraps_around_smoothly(frame, name):
    kernel = KERNELS[name]()
    tapered = edgetaper(frame, kernel).astype(np.float64)
    original_row_jump = np.abs(frame[0] - frame[-1]).mean()
    original_column_jump = np.abs(frame[:, 0] - frame[:, -1]).mean()
    assert original_row_jump > 0.2 and original_column_jump > 0.05  # the crop really has seams
    assert np.abs(tapered[0] - tapered[-1]).mean() < 0.25 * original_row_jump
    assert np.abs(tapered[:, 0] - tapered[:, -1]).mean() < 0.35 * original_column_jump
    # The interior is untouched.
    kh, kw = np.shape(kernel)
    np.testing.assert_array_equal(tapered[kh:-kh, kw:-kw], frame[kh:-kh, kw:-kw].astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_input_is_not_modified(frame, dtype):
    image = (frame * (255 if dtype == np.uint8 else 1)).astype(dtype)
    original = image.copy()
    kernel = psf.disk(4)
    kernel_copy = kernel.copy()
    result = edgetaper(image, kernel)
    np.testing.assert_array_equal(image, original)
    np.testing.assert_array_equal(kernel, kernel_copy)
    assert result.dtype == np.float32 and not np.shares_memory(result, image)
    np.testing.assert_allclose(result, reference_edgetaper(original.astype(np.float64), kernel),
                               atol=1e-5 * (255 if dtype == np.uint8 else 1))


def test_edgetaper_invalid_inputs():
    with pytest.raises(InvalidParameterError):
        edgetaper(np.ones(10), psf.disk(1))
    with pytest.raises(InvalidParameterError):
        edgetaper(np.ones((4, 4, 3)), psf.disk(1))
    with pytest.raises(InvalidParameterError):
        edgetaper(np.ones((8, 8)), psf.disk(5))  # 11x11 kernel, 8x8 frame
    with pytest.raises(InvalidParameterError):
        edgetaper(np.ones((1, 8)), np.ones((1, 1)))
    with pytest.raises(InvalidParameterError):
        edgetaper_weights((20, 6), psf.motion(9, 0))  # 1x11 kernel, 6 columns


@pytest.mark.parametrize("name", ["disk(4)", "motion(15,37)", "motion(11,90)", "disk(40) in 96 rows",
                                  "motion(120,10) in 128 cols", "random 96x128 (frame size)"])
def test_kernel_pieces_add_up_to_the_kernel_in_blocks_of_one_shape(name):
    # Large kernels are filtered in blocks small enough for OpenCV's direct filter (its DFT
    # path is several times slower on thin strips); the blocks must sum to the kernel exactly.
    kernel = np.asarray(KERNELS[name](), dtype=np.float32)
    pieces = _kernel_pieces(kernel)
    assert len({taps.shape for _, _, taps in pieces}) == 1
    if kernel.size > DIRECT_FILTER_MAX_TAPS:
        assert all(taps.size <= DIRECT_FILTER_MAX_TAPS for _, _, taps in pieces)
    rebuilt = np.zeros_like(kernel)
    for row, column, taps in pieces:
        rebuilt[row : row + taps.shape[0], column : column + taps.shape[1]] += taps
    np.testing.assert_array_equal(rebuilt, kernel)


def test_a_taper_plan_refuses_frames_of_another_shape(frame):
    plan = taper_plan(frame.shape, psf.disk(3))
    image = frame.astype(np.float32)
    edgetaper_inplace(image, plan)
    np.testing.assert_allclose(image, reference_edgetaper(frame, psf.disk(3)), atol=1e-5)
    with pytest.raises(InvalidParameterError, match="shape"):
        edgetaper_inplace(np.ones((40, 40), dtype=np.float32), plan)


@pytest.mark.parametrize("name", ["disk(2.3)", "motion(15,37)", "gaussian(2)", "disk(40) in 96 rows"])
def test_a_strided_frame_is_tapered_like_a_contiguous_one(frame, name):
    """The FFT buffer's frame is a view with padded rows (the transform is in place)."""
    kernel = KERNELS[name]()
    plan = taper_plan(frame.shape, kernel)
    padded = np.zeros((frame.shape[0], frame.shape[1] + 2), dtype=np.float32)
    padded[:, -2:] = 7.0  # must neither be read nor written
    strided = padded[:, : frame.shape[1]]
    strided[...] = frame
    contiguous = frame.astype(np.float32)
    edgetaper_inplace(strided, plan)
    edgetaper_inplace(contiguous, plan)
    np.testing.assert_array_equal(strided, contiguous)
    assert np.all(padded[:, -2:] == 7.0)


@pytest.mark.parametrize("start, stop, length, expected", [
    (0, 5, 10, [(0, 5)]),
    (-3, 4, 10, [(7, 10), (0, 4)]),
    (8, 13, 10, [(8, 10), (0, 3)]),
    (-2, 19, 10, [(8, 10), (0, 10), (0, 9)]),
])
def test_circular_slices_cover_the_range_modulo_the_length(start, stop, length, expected):
    slices = _circular_slices(start, stop, length)
    assert [(s.start, s.stop) for s in slices] == expected
    np.testing.assert_array_equal(np.concatenate([np.arange(length)[s] for s in slices]),
                                  np.arange(start, stop) % length)
