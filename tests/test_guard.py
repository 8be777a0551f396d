"""The guard against a kernel guessed too large (videodeblur.restoration.guard)."""

from __future__ import annotations

import numpy as np
import pytest

from imaging import blurred_frames, luma_psnr, moving_window, write_luma_clip
from videodeblur import deconvolve, psf
from videodeblur.cli import main as cli_main
from videodeblur.config import load_config
from videodeblur.core import psf as psf_models
from videodeblur.core.colour import linearisation
from videodeblur.errors import InvalidParameterError
from videodeblur.restoration import FrameDeconvolver
from videodeblur.restoration.coding import LinearLight
from videodeblur.pipeline.kernels import KernelSpec
from videodeblur.restoration.guard import CLEAR_IMPROVEMENT, GCV_MARGIN, MAX_SPREAD, choose_scale, confirm_scale, gcv_score
from videodeblur.restoration.methods import Regularisation

LINEAR = LinearLight(linearisation("bt709", 8, True))


def second_moments(kernel):
    y, x = np.mgrid[: kernel.shape[0], : kernel.shape[1]].astype(float)
    k = kernel / kernel.sum()
    cy, cx = (k * y).sum(), (k * x).sum()
    return np.array([[(k * (y - cy) ** 2).sum(), (k * (y - cy) * (x - cx)).sum()],
                     [(k * (y - cy) * (x - cx)).sum(), (k * (x - cx) ** 2).sum()]]), (cy, cx)


@pytest.mark.parametrize("kernel, scale, other", [(psf.disk(4.5), 2 / 3, psf.disk(3.0)),
                                                  (psf.gaussian(3.0), 2 / 3, psf.gaussian(2.0)),
                                                  (psf.motion(18, 30), 2 / 3, psf.motion(12, 30)),
                                                  (psf.disk(3.0), 4 / 3, psf.disk(4.0)),
                                                  (psf.gaussian(1.5), 4 / 3, psf.gaussian(2.0))])
def test_a_rescaled_kernel_is_the_kernel_of_that_size(kernel, scale, other):
    rescaled = psf_models.rescaled(kernel, scale)
    assert rescaled.shape[0] % 2 == 1 and rescaled.shape[1] % 2 == 1
    assert rescaled.sum() == pytest.approx(1.0, abs=1e-5) and rescaled.min() >= 0
    moments, centre = second_moments(rescaled)
    expected, _ = second_moments(other)
    # Bilinear resampling widens a kernel by about 1/6 px^2 per axis: within half a px^2.
    np.testing.assert_allclose(moments, expected, atol=0.5)
    assert centre == pytest.approx((rescaled.shape[0] // 2, rescaled.shape[1] // 2), abs=0.05)
    np.testing.assert_array_equal(psf_models.rescaled(kernel, 1.0), psf.normalise(kernel))


@pytest.mark.parametrize("scale", [0.0, -0.5, float("nan"), float("inf")])
def test_a_kernel_is_rescaled_by_a_positive_scale_only(scale):
    with pytest.raises(InvalidParameterError, match="scale"):
        psf_models.rescaled(psf.disk(3.0), scale)


def test_a_model_kernel_is_rescaled_by_its_sizes_and_a_file_by_resampling(tmp_path):
    # A streak 4/3 as long is the model's streak of that length, exactly (as sharp as the
    # streak), not the shorter one resampled (softer: wider across).
    np.testing.assert_array_equal(KernelSpec.of("motion", length=9.0, angle=30.0).kernel_at_scale(4 / 3),
                                  KernelSpec.of("motion", length=12.0, angle=30.0).kernel())
    np.testing.assert_array_equal(KernelSpec.of("defocus", radius=3.0).kernel_at_scale(0.5),
                                  KernelSpec.of("defocus", radius=1.5).kernel())
    # Below a parameter's bounds (a streak shorter than 1 px) and for a file: resampled.
    short = KernelSpec.of("motion", length=2.0, angle=0.0)
    np.testing.assert_array_equal(short.kernel_at_scale(0.45), psf_models.rescaled(short.kernel(), 0.45))
    path = tmp_path / "k.npy"
    np.save(path, psf.disk(3.0))
    from_file = KernelSpec.of("file", path=str(path))
    np.testing.assert_array_equal(from_file.kernel_at_scale(0.75), psf_models.rescaled(from_file.kernel(), 0.75))


def test_the_rule_takes_a_smaller_kernel_only_where_it_clearly_explains_the_frame():
    assert choose_scale({1.0: MAX_SPREAD, 0.65: 0.0}) == 1.0  # the kernel explains the frame
    assert choose_scale({1.0: 1.0, 0.85: 0.4, 0.65: 0.1, 0.45: 0.2}) == 0.65  # the best, not the first
    assert choose_scale({1.0: 1.0, 0.85: 0.45}) == 1.0  # halved, but neither good nor clearly better
    assert choose_scale({1.0: 1.0, 0.65: CLEAR_IMPROVEMENT * 0.99, 0.45: 0.9}) == 0.65  # a texture no law fits
    # The spread still falling at the smallest copy: a flat spectrum, not a kernel too large.
    assert choose_scale({1.0: 0.41, 0.85: 0.22, 0.75: 0.16, 0.65: 0.13, 0.55: 0.124, 0.45: 0.12}) == 1.0
    # The mildest copy best, the next one far off: a spread jumping with the scale locates nothing.
    assert choose_scale({1.0: 0.32, 0.85: 0.04, 0.75: 0.46, 0.65: 0.08, 0.45: 0.13}) == 1.0
    assert choose_scale({1.0: 0.6, 0.85: 0.13, 0.75: 0.16, 0.65: 0.41, 0.45: 1.0}) == 0.85
    assert choose_scale({1.0: 1.0, 0.85: 0.9, 0.65: 0.8}) == 1.0  # too small a kernel: nothing helps
    assert choose_scale({1.0: 1.0}) == 1.0


def test_the_cross_validation_score_is_its_definition():
    # V = (1/n) |(I - A) y|^2 / ((1/n) trace(I - A))^2, with A the filter's influence matrix
    # (restore, then blur again), built here pixel by pixel on a small frame.
    rng = np.random.default_rng(3)
    rows, columns = 12, 16
    frame = rng.normal(size=(rows, columns))
    otf = np.fft.rfft2(np.roll(np.pad(psf.disk(2.0), ((0, rows - 5), (0, columns - 5))), (-2, -2), (0, 1)))
    nsr = 0.05
    influence = np.abs(otf) ** 2 / (np.abs(otf) ** 2 + nsr)
    matrix = np.stack([np.fft.irfft2(influence * np.fft.rfft2(unit.reshape(rows, columns)), s=(rows, columns)).ravel()
                       for unit in np.eye(rows * columns)], axis=1)
    n = rows * columns
    expected = (np.sum((frame.ravel() - matrix @ frame.ravel()) ** 2) / n) / (np.trace(np.eye(n) - matrix) / n) ** 2
    spectrum = np.fft.rfft2(frame)
    weight = np.full(spectrum.shape, 2.0)
    weight[:, [0, -1]] = 1.0  # the columns that are their own mirror image (even width)
    score = gcv_score((np.abs(spectrum) ** 2 / n).ravel(), weight.ravel(), np.zeros(spectrum.size),
                      (np.abs(otf) ** 2).ravel(), Regularisation(nsr, 0.0))
    assert score == pytest.approx(expected, rel=1e-7)


def test_cross_validation_confirms_moves_or_refuses_the_spread_choice():
    clearly = GCV_MARGIN * 0.99
    scores = {1.0: 1.0, 0.85: 0.6, 0.75: 0.5, 0.65: 0.5 * clearly, 0.55: 0.45, 0.45: 0.4}
    assert confirm_scale(0.85, scores) == 0.65  # moved to a clearly lower, interior minimum
    assert confirm_scale(0.65, scores) == 0.65
    scores[0.45] = 0.1  # lowest at the smallest copy: still falling, no move
    assert confirm_scale(0.85, scores) == 0.85
    # Refused unless the copy predicts the frame clearly better than the full kernel.
    assert confirm_scale(0.75, {1.0: 1.0, 0.85: 1.2, 0.75: 0.9, 0.65: 1.1}) == 1.0
    assert confirm_scale(0.75, {1.0: 1.0, 0.85: 1.2, 0.75: clearly, 0.65: 1.1}) == 0.75
    assert confirm_scale(1.0, {1.0: 1.0, 0.65: 0.1}) == 1.0  # the spread kept the kernel: nothing to check


def lens_blurred_window(image, kernel):
    """A 256 x 224 window of a photograph blurred in linear light, 8-bit codes: (sharp, blurred)."""
    sharp = moving_window(image, 1, 256, 224, noise_levels=0.3)[0]
    return sharp, blurred_frames([sharp], kernel)[0]


def test_a_right_kernel_that_a_power_law_misreads_is_kept():
    # The rocket under a 15 px streak: a smaller copy fits the power law better than the right
    # kernel, but predicts the frame worse; a smaller copy would lose 0.7 dB here.
    from skimage import data

    sharp, blurred = lens_blurred_window(data.rocket() @ np.array([0.2126, 0.7152, 0.0722]) / 255.0,
                                         psf.motion(15, 70))
    restored, scale = restore(blurred, psf.motion(15, 70))
    assert scale == 1.0
    assert luma_psnr(restored, sharp, 16) > luma_psnr(blurred, sharp, 16) + 0.3


def test_cross_validation_finds_the_copy_the_spread_misses(camera):
    # A streak half again too long: the power law fits best at 0.75 (a loss of 1.7 dB), the
    # cross-validation at 0.65 (the true blur is 2/3 of the guess).
    sharp, blurred = lens_blurred_window(camera[40:, 40:], psf.motion(12, 30))
    restored, scale = restore(blurred, psf.motion(18, 30))
    assert scale == 0.65
    assert luma_psnr(restored, sharp, 16) > luma_psnr(blurred, sharp, 16) + 1.5


@pytest.fixture(scope="module")
def gaussian_two(camera):
    """A clean textured frame blurred in linear light by a Gaussian of sigma 2."""
    return lens_blurred_window(camera[60:, 40:], psf.gaussian(2.0))


def restore(blurred, kernel, guard=True):
    out = np.empty_like(blurred)
    result = FrameDeconvolver(kernel, blurred.shape, guard=guard).restore(blurred, out=out, coding=LINEAR)
    return out, result.regularisation.kernel_scale


def test_a_kernel_half_again_too_large_is_held_back_and_still_gains(gaussian_two):
    sharp, blurred = gaussian_two
    before = luma_psnr(blurred, sharp, 16)
    unguarded, scale = restore(blurred, psf.gaussian(3.0), guard=False)
    assert scale == 1.0 and luma_psnr(unguarded, sharp, 16) < before - 3.0  # worm-like ripples
    guarded, scale = restore(blurred, psf.gaussian(3.0))
    assert 0.55 <= scale <= 0.75  # the true blur is 2/3 of the guess
    assert luma_psnr(guarded, sharp, 16) > before + 1.0


@pytest.mark.parametrize("sigma", [2.0, 1.5])
def test_the_right_kernel_and_one_too_small_are_not_touched(gaussian_two, sigma):
    sharp, blurred = gaussian_two
    guarded, scale = restore(blurred, psf.gaussian(sigma))
    assert scale == 1.0
    np.testing.assert_array_equal(guarded, restore(blurred, psf.gaussian(sigma), guard=False)[0])
    assert luma_psnr(guarded, sharp, 16) > luma_psnr(blurred, sharp, 16) + 0.5


def test_the_python_api_guards_by_default(gaussian_two):
    sharp, blurred = gaussian_two
    image = blurred.astype(np.float32) / 255.0
    guarded = deconvolve(image, psf.gaussian(3.0))
    unguarded = deconvolve(image, psf.gaussian(3.0), guard=False)
    truth = sharp.astype(np.float32) / 255.0
    error = lambda x: float(np.mean((x[16:-16, 16:-16] - truth[16:-16, 16:-16]) ** 2))  # noqa: E731
    assert error(guarded) < 0.5 * error(unguarded)


def test_a_run_and_the_preview_say_when_the_guard_held_frames_back(gaussian_two, tmp_path, capsys):
    _, blurred = gaussian_two
    clip = tmp_path / "soft.mkv"
    write_luma_clip(clip, [blurred] * 3)
    settings = ["--set", "psf.kind=gaussian", "--set", "psf.sigma=3", "--set", "output.codec=ffv1", "-q"]
    assert cli_main(["run", str(clip), "-o", str(tmp_path / "a.mkv"), *settings]) == 0
    assert "3 held back to a smaller kernel" in capsys.readouterr().err
    assert cli_main(["run", str(clip), "-o", str(tmp_path / "b.mkv"), *settings,
                     "--set", "deconvolution.guard=false"]) == 0
    assert "held back" not in capsys.readouterr().err
    from videodeblur.preview import Previewer

    with Previewer(clip, load_config(None, ["psf.kind=gaussian", "psf.sigma=3"])) as previewer:
        label = previewer.describe_psf(previewer.frame_and_row(1)[1])
    assert "held back to 0.65 x the kernel" in label or "held back to 0.75 x the kernel" in label
    with Previewer(clip, load_config(None, ["psf.kind=gaussian", "psf.sigma=2"])) as previewer:
        assert "held back" not in previewer.describe_psf(previewer.frame_and_row(1)[1])
