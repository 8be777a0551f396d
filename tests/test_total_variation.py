"""Tests of total-variation deconvolution (``method="tv"``, videodeblur.core.total_variation).

Quality is checked against ground truth with the protocol of benchmarks/quality.py (blur on a
larger canvas, valid region, 1 % noise, 8 bits); the splitting's building blocks against
NumPy references.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from imaging import add_noise_and_quantise, blur_valid, border, psnr
from videodeblur import FrameDeconvolver, deconvolve, psf
from videodeblur.core.fourier import psf2otf
from videodeblur.core.total_variation import (
    LAMBDA_PER_NOISE_POWER,
    _adjoint_differences,
    _forward_differences,
    tv_deconvolve,
    tv_lambda,
)
from videodeblur.errors import InvalidParameterError


def numpy_transforms(shape):
    return (lambda image: np.fft.rfft2(image),
            lambda spectrum: np.fft.irfft2(spectrum, s=shape))


def test_forward_differences_wrap_around():
    image = np.random.default_rng(0).random((5, 7)).astype(np.float32)
    along_rows, along_columns = np.empty_like(image), np.empty_like(image)
    _forward_differences(image, along_rows, along_columns)
    np.testing.assert_allclose(along_rows, np.roll(image, -1, axis=1) - image, atol=1e-7)
    np.testing.assert_allclose(along_columns, np.roll(image, -1, axis=0) - image, atol=1e-7)


def test_adjoint_differences_are_the_adjoint():
    # <D x, w> == <x, D^T w> for random x, w: the Fourier-domain solve relies on it.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 13))
    w_rows, w_columns = rng.standard_normal((9, 13)), rng.standard_normal((9, 13))
    d_rows, d_columns = np.empty_like(x), np.empty_like(x)
    _forward_differences(x, d_rows, d_columns)
    left = np.sum(d_rows * w_rows) + np.sum(d_columns * w_columns)
    right = np.sum(x * _adjoint_differences(w_rows, w_columns, np.empty_like(x)))
    assert left == pytest.approx(right, rel=1e-12)


def test_a_spectrum_given_by_the_caller_is_the_same_as_computing_it(camera):
    shape = (64, 96)
    image = camera[:64, :96].astype(np.float32)
    otf = psf2otf(psf.motion(9, 30), shape)
    transforms = numpy_transforms(shape)
    np.testing.assert_array_equal(
        tv_deconvolve(image, otf, 1e-4, *transforms),
        tv_deconvolve(image, otf, 1e-4, *transforms, image_spectrum=np.fft.rfft2(image)))


def test_a_flat_frame_stays_flat():
    # Total variation 0 and a blur that keeps a constant: the constant is the exact minimiser.
    shape = (48, 64)
    image = np.full(shape, 0.37, dtype=np.float32)
    restored = tv_deconvolve(image, psf2otf(psf.disk(3), shape), 1e-3, *numpy_transforms(shape))
    np.testing.assert_allclose(restored, 0.37, atol=1e-5)


def test_circular_blur_of_a_cartoon_is_undone_better_than_by_wiener():
    # Piecewise-constant picture, exact circular model, 1 % noise: the case TV is built for.
    rng = np.random.default_rng(2)
    truth = np.zeros((96, 128))
    truth[20:60, 30:90] = 0.8
    truth[50:85, 70:120] = 0.4
    yy, xx = np.mgrid[:96, :128]
    truth[(yy - 40) ** 2 + (xx - 40) ** 2 < 15**2] = 0.6
    kernel = psf.disk(3)
    blurred = ndimage.convolve(truth, kernel.astype(np.float64), mode="wrap") + rng.normal(0, 0.01, truth.shape)
    blurred = blurred.astype(np.float32)
    restored = tv_deconvolve(blurred, psf2otf(kernel, truth.shape), tv_lambda(0.01), *numpy_transforms(truth.shape))

    def error_db(estimate):
        return 10 * np.log10(1 / np.mean((estimate - truth) ** 2))

    wiener = deconvolve(blurred, kernel, edgetaper=False)
    assert error_db(restored) > error_db(blurred) + 6.0
    assert error_db(restored) > error_db(wiener) + 3.0


@pytest.mark.parametrize("kernel", [psf.disk(3.5), psf.motion(11, 37), psf.gaussian(2.0)],
                         ids=["disk", "motion", "gaussian"])
def test_tv_beats_automatic_wiener_on_a_photograph(camera, kernel):
    # The quality benchmark's protocol; on average TV gains about 1 dB over Wiener there.
    sharp = camera[64:320, 96:352]
    blurred_clean, truth = blur_valid(sharp, kernel)
    blurred = add_noise_and_quantise(blurred_clean, 0.01, np.random.default_rng(3))
    crop = border(kernel)
    base = psnr(blurred, truth, crop)
    wiener_gain = psnr(deconvolve(blurred, kernel), truth, crop) - base
    tv_gain = psnr(deconvolve(blurred, kernel, method="tv"), truth, crop) - base
    assert tv_gain > wiener_gain + 0.3, (tv_gain, wiener_gain)


def test_asymmetric_kernel_keeps_its_phase(camera):
    # A one-sided streak: restoring with the real part of its OTF only would shift and smear.
    kernel = np.zeros((1, 15))
    kernel[0, 7:] = 1.0 / 8
    shape = (128, 160)
    truth = camera[200:328, 150:310]
    blurred = ndimage.convolve(truth, kernel, mode="wrap").astype(np.float32)
    otf = psf2otf(kernel, shape)
    transforms = numpy_transforms(shape)
    right = tv_deconvolve(blurred, otf, 1e-5, *transforms)
    wrong = tv_deconvolve(blurred, otf.real.astype(np.complex64), 1e-5, *transforms)

    def error_db(estimate):
        return 10 * np.log10(1 / np.mean((estimate - truth) ** 2))

    assert error_db(right) > error_db(blurred) + 5.0
    assert error_db(right) > error_db(wrong) + 5.0


def test_automatic_weight_follows_the_noise():
    assert tv_lambda(0.01) == pytest.approx(LAMBDA_PER_NOISE_POWER * 1e-4)
    assert tv_lambda(0.02) == pytest.approx(4 * tv_lambda(0.01))


def test_frame_deconvolver_uses_the_frame_noise(camera):
    # nsr="auto": the weight comes from this frame's noise (more noise, a larger weight).
    kernel = psf.disk(3)
    sharp = camera[:256, :256]
    blurred_clean, _ = blur_valid(sharp, kernel)
    weights = []
    for sigma in (0.005, 0.02):
        frame = add_noise_and_quantise(blurred_clean, sigma, np.random.default_rng(4)).astype(np.float32)
        deconvolver = FrameDeconvolver(kernel, frame.shape, method="tv")
        weights.append(deconvolver.restore(frame).regularisation.weight)
    assert weights[1] > 8 * weights[0]
    assert weights[1] == pytest.approx(tv_lambda(0.02), rel=0.5)


def test_deconvolve_tv_api(astronaut_rgb):
    image = astronaut_rgb[:100, :120]
    kernel = psf.motion(7, 20)
    result = deconvolve(image, kernel, method="tv")
    assert result.shape == image.shape and result.dtype == np.float32 and np.all(np.isfinite(result))
    fixed = deconvolve(image[:, :, 0], kernel, method="tv", nsr=1e-3)
    assert fixed.shape == image.shape[:2]
    # A frame size FFTW pads (119 x 101 -> a fast size), cropped back.
    odd = deconvolve(np.ascontiguousarray(astronaut_rgb[:101, :119, 1]), kernel, method="tv")
    assert odd.shape == (101, 119)


@pytest.mark.parametrize("lam", [0.0, -1.0, float("nan")])
def test_bad_weights_are_refused(lam):
    shape = (16, 16)
    with pytest.raises(InvalidParameterError):
        tv_deconvolve(np.zeros(shape, np.float32), psf2otf(psf.disk(1), shape), lam, *numpy_transforms(shape))


def test_bad_iteration_count_is_refused():
    shape = (16, 16)
    with pytest.raises(InvalidParameterError):
        tv_deconvolve(np.zeros(shape, np.float32), psf2otf(psf.disk(1), shape), 1e-3, *numpy_transforms(shape),
                      iterations=0)
