"""Restoring in linear light (pipeline/light.py, restoration/coding.py, restoration/highlights.py).

Clips are generated here with PyAV, blurred in linear light as a lens blurs (tests/imaging.py,
colour-science's BT.709 curve), written losslessly, restored through the command line or the
restorer and decoded back independently.
"""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest

from imaging import blur_valid, blurred_frames, luma_psnr, moving_window, to_codes, to_linear_light, write_luma_clip
from media import decode_frames
from videodeblur import deconvolve, psf
from videodeblur.cli import main as cli_main
from videodeblur.config import load_config
from videodeblur.errors import InvalidParameterError
from videodeblur.pipeline.kernels import KernelSpec
from videodeblur.pipeline.light import light_for
from videodeblur.pipeline.restorer import FrameRestorer
from videodeblur.restoration import FrameDeconvolver
from videodeblur.restoration.coding import LinearLight, integer_plane
from videodeblur.restoration.highlights import patch_radius
from videodeblur.core.colour import linearisation


def info(trc=None, color_range=None, pix_fmt="yuv420p", bit_depth=8, width=64, height=48):
    return SimpleNamespace(color_trc=trc, color_range=color_range, pix_fmt=pix_fmt, bit_depth=bit_depth,
                           width=width, height=height, color_primaries=None, colorspace=None, average_rate=None)


# ----------------------------------------------------------------------------- choosing


@pytest.mark.parametrize("trc, linear, name", [(1, True, "bt709"), (13, True, "srgb"), (16, True, "pq"),
                                               (18, True, "hlg"), (None, True, "bt709"), (9, False, None)])
def test_auto_follows_the_transfer_tag(trc, linear, name):
    choice = light_for("auto", info(trc))
    assert choice.linear == linear
    assert (choice.transfer.name if choice.transfer else None) == name
    if trc is None:
        assert "taken as BT.709" in choice.note and "assumed" in choice.description
    elif not linear:
        assert "not known" in choice.note


def test_linear_refuses_an_unknown_curve_and_encoded_is_the_codes():
    with pytest.raises(InvalidParameterError, match="not one videodeblur knows"):
        light_for("linear", info(9))
    choice = light_for("encoded", info(1))
    assert not choice.linear and "coded values" in choice.description


@pytest.mark.parametrize("color_range, pix_fmt, limited", [(1, "yuv420p", True), (2, "yuv420p", False),
                                                           (None, "yuv420p", True), (None, "gbrp", False),
                                                           (None, "gray", False)])
def test_range_from_the_tag_or_the_pixel_format(color_range, pix_fmt, limited):
    assert light_for("auto", info(1, color_range, pix_fmt)).limited == limited


# ----------------------------------------------------------------------------- restoring


@pytest.fixture(scope="module")
def lens_blur(camera):
    sharp = moving_window(camera[100:, 100:], 3, 192, 160)
    return sharp, blurred_frames(sharp, psf.disk(3.0))


def test_linear_light_restores_a_lens_blur_better_than_the_codes(lens_blur):
    sharp, blurred = lens_blur
    deconvolver = FrameDeconvolver(psf.disk(3.0), blurred[0].shape)
    linear, coded = np.empty_like(blurred[0]), np.empty_like(blurred[0])
    deconvolver.restore(blurred[0], out=linear, coding=LinearLight(linearisation("bt709", 8, True)))
    deconvolver.restore(blurred[0], out=coded, coding=integer_plane(255.0))
    before = luma_psnr(blurred[0], sharp[0], 12)
    assert luma_psnr(linear, sharp[0], 12) > before + 3.0
    assert luma_psnr(linear, sharp[0], 12) > luma_psnr(coded, sharp[0], 12) + 1.0


def test_the_linear_coding_is_exact_where_nothing_changes():
    # A flat frame: the restoration keeps the mean, so every code must come back as it was.
    flat = np.full((48, 64), 117, np.uint8)
    out = np.empty_like(flat)
    FrameDeconvolver(psf.disk(2.0), flat.shape).restore(flat, out=out, coding=LinearLight(linearisation("bt709", 8, True)))
    assert np.array_equal(out, flat)


def test_strength_zero_is_the_input_and_one_half_lies_between(lens_blur):
    _, blurred = lens_blur
    frame = blurred[1]
    coding = LinearLight(linearisation("bt709", 8, True))
    outs = {}
    for strength in (0.0, 0.5, 1.0):
        out = np.empty_like(frame)
        FrameDeconvolver(psf.disk(3.0), frame.shape, strength=strength).restore(frame, out=out, coding=coding)
        outs[strength] = out.astype(float)
    assert np.array_equal(outs[0.0], frame)  # borders included: the taper is taken back
    change_half, change_full = outs[0.5] - frame, outs[1.0] - frame
    assert 0.3 < np.abs(change_half).mean() / np.abs(change_full).mean() < 0.7


def test_strength_is_folded_into_the_filter():
    deconvolver = FrameDeconvolver(psf.disk(2.0), (32, 40), nsr=0.01, strength=0.25)
    full = FrameDeconvolver(psf.disk(2.0), (32, 40), nsr=0.01).method.filter_for(0.01, 0.0)
    scale = 1.0 / deconvolver.method.pixel_count
    np.testing.assert_allclose(deconvolver.method.filter_for(0.01, 0.0), 0.25 * full + 0.75 * scale, rtol=1e-5)


def test_strength_is_validated():
    for bad in (-0.1, 1.5, "1", True):
        with pytest.raises(InvalidParameterError, match="strength"):
            FrameDeconvolver(psf.disk(2.0), (32, 40), strength=bad)
    from videodeblur.errors import ConfigError

    with pytest.raises(ConfigError, match="deconvolution.strength"):
        load_config(None, ["deconvolution.strength=2"])


def test_the_python_api_restores_coded_floats_in_linear_light(lens_blur):
    sharp, blurred = lens_blur
    coded = blurred[0].astype(np.float64) / 255.0
    linear = deconvolve(coded, psf.disk(3.0), transfer="bt709", clip=True)
    plain = deconvolve(coded, psf.disk(3.0), clip=True)
    truth = sharp[0].astype(np.float64) / 255.0
    error = lambda a: float(np.mean((a[12:-12, 12:-12] - truth[12:-12, 12:-12]) ** 2))  # noqa: E731
    assert error(linear) < 0.6 * error(plain)
    assert np.array_equal(deconvolve(coded, psf.disk(3.0), strength=0.0), coded.astype(np.float32))
    with pytest.raises(InvalidParameterError, match="transfer"):
        deconvolve(coded, psf.disk(3.0), transfer="log")


# --------------------------------------------------------------------------- point lights


def lamps_at_night(size=(160, 192), radius=4.0, seed=0, spots=((40, 50), (40, 140), (110, 60), (120, 150))):
    """A dark, faintly textured scene with point lights 3-12 x white at ``spots``, blurred by a
    disk in linear light, coded BT.709 limited range 8-bit with a little noise."""
    rng = np.random.default_rng(seed)
    scene = 0.02 + 0.02 * rng.random(size)
    spots = list(spots)
    for (r, c), level in zip(spots, (3.0, 6.0, 9.0, 12.0)):
        scene[r, c] = level
    import cv2

    blurred = cv2.filter2D(scene.astype(np.float32), -1, psf.disk(radius), borderType=cv2.BORDER_REFLECT)
    noisy = np.clip(blurred + rng.normal(0, 0.0015, size), 0, 1)
    codes = np.clip(np.rint(to_codes(noisy)), 0, 255).astype(np.uint8)
    reference = np.clip(np.rint(to_codes(np.clip(scene, 0, 1))), 0, 255).astype(np.uint8)
    return codes, reference, spots


def ring_energy(plane, spots, inner=2, outer=14):
    """Mean squared deviation from the local median in annuli around the spots (a bullseye's
    energy), the annuli cut at the frame's edges."""
    total = 0.0
    for r, c in spots:
        top, left = max(0, r - outer), max(0, c - outer)
        patch = plane[top:r + outer + 1, left:c + outer + 1].astype(float)
        distance = np.hypot(*np.mgrid[top - r:top - r + patch.shape[0], left - c:left - c + patch.shape[1]])
        annulus = (distance > inner) & (distance <= outer)
        total += float(np.mean((patch[annulus] - np.median(patch[annulus])) ** 2))
    return total / len(spots)


def test_point_lights_come_back_as_points_not_bullseyes():
    codes, reference, spots = lamps_at_night()
    deconvolver = FrameDeconvolver(psf.disk(4.0), codes.shape)
    out = np.empty_like(codes)
    result = deconvolver.restore(codes, out=out, coding=LinearLight(linearisation("bt709", 8, True)))
    assert result.point_lights >= len(spots) - 1  # the faintest (3 x white) may stay a small blob
    # Without the point step: the same filter's rings.
    from videodeblur.restoration import highlights

    saved = highlights.MIN_CORRELATION
    highlights.MIN_CORRELATION = 2.0  # nothing correlates that well: no point is taken
    try:
        ringing = np.empty_like(codes)
        assert deconvolver.restore(codes, out=ringing, coding=LinearLight(linearisation("bt709", 8, True))).point_lights == 0
    finally:
        highlights.MIN_CORRELATION = saved
    assert ring_energy(out, spots) < 0.3 * ring_energy(ringing, spots)
    assert ring_energy(out, spots) < 2.0 * ring_energy(reference, spots) + 4.0
    for r, c in spots[1:]:  # the lamps from 6 x white up are white at their pixel ...
        assert out[r, c] >= 230
    for r, c in spots:  # ... and around every lamp the scene is dark again
        assert np.median(out[r - 6:r + 7, c - 6:c + 7]) < 80


def test_lamps_near_the_frame_edges_come_back_as_points_too():
    """A lamp nearer the frame's edge than its rings reach (here 12 px, the rings 18) is taken
    back to a point like any other, its rings removed as far as the frame goes."""
    spots = [(12, 60), (80, 12), (147, 100), (60, 179)]  # 12 px from the top, left, bottom, right
    codes, reference, _ = lamps_at_night(spots=spots)
    deconvolver = FrameDeconvolver(psf.disk(4.0), codes.shape)
    assert patch_radius(deconvolver.kernel.shape) > 12
    out = np.empty_like(codes)
    result = deconvolver.restore(codes, out=out, coding=LinearLight(linearisation("bt709", 8, True)))
    rings = deconvolve(np.clip((codes.astype(np.float32) - 16) / 219, 0, 1), psf.disk(4.0), transfer="bt709",
                       point_lights=False)
    rings = np.clip(np.rint(rings * 219 + 16), 0, 255)
    assert result.point_lights >= len(spots) - 1  # the faintest (3 x white) may stay a small blob
    for r, c in spots[1:]:
        assert out[r, c] >= 230
    for r, c in spots:
        assert np.median(out[max(0, r - 6):r + 7, max(0, c - 6):c + 7]) < 80
    assert ring_energy(out, spots) < 0.3 * ring_energy(rings, spots)
    assert ring_energy(out, spots) < 2.0 * ring_energy(reference, spots) + 4.0


def test_the_point_step_can_be_turned_off_in_a_run_and_in_the_python_api(tmp_path, capsys):
    """``deconvolution.point_lights = false`` (for footage whose bright specks are texture)
    leaves every lamp as the filter restores it, rings and all, and the summary says nothing of
    points; the default takes them back to points. The Python API's ``point_lights`` likewise."""
    codes, _, spots = lamps_at_night(size=(160, 192))
    clip = write_luma_clip(tmp_path / "lamps.mkv", [codes] * 2)
    settings = ["--set", "psf.kind=defocus", "--set", "psf.radius=4", "--set", "output.codec=ffv1", "-q"]
    outputs = {}
    for name, extra in (("on", []), ("off", ["--set", "deconvolution.point_lights=false"])):
        assert cli_main(["run", str(clip), "-o", str(tmp_path / f"{name}.mkv"), *settings, *extra]) == 0
        outputs[name] = (capsys.readouterr().err, decode_frames(tmp_path / f"{name}.mkv")[1].planes[0])
    assert "point lights kept as points" in outputs["on"][0]
    assert "deconvolution.point_lights = false" in outputs["on"][0]  # where to turn it off, when they are texture
    assert "point lights" not in outputs["off"][0]
    assert ring_energy(outputs["on"][1], spots) < 0.3 * ring_energy(outputs["off"][1], spots)

    image = np.clip((codes.astype(np.float32) - 16) / 219, 0, 1)  # the coded values, 1.0 = white
    points = deconvolve(image, psf.disk(4.0), transfer="bt709")
    rings = deconvolve(image, psf.disk(4.0), transfer="bt709", point_lights=False)
    assert ring_energy(np.clip(points, 0, 1) * 219, spots) < 0.3 * ring_energy(np.clip(rings, 0, 1) * 219, spots)


def test_every_lamp_is_found_on_a_small_blur():
    """Lamps are looked for on 4 x 4 block means: a 3 x white lamp under a radius-2.5 disk is
    found too (a Gaussian pyramid's decimation spread it below the threshold)."""
    for seed in range(3):
        codes, _, spots = lamps_at_night(radius=2.5, seed=seed)
        out = np.empty_like(codes)
        result = FrameDeconvolver(psf.disk(2.5), codes.shape).restore(
            codes, out=out, coding=LinearLight(linearisation("bt709", 8, True)))
        assert result.point_lights == len(spots)
        assert all(out[r, c] >= 250 for r, c in spots)


def test_small_bright_blobs_are_not_taken_for_points():
    """A blob of light a few pixels across (a bright spot of texture) correlates with the point
    spread too; taken for a point it would become one bright pixel in a dark ring."""
    import cv2

    rng = np.random.default_rng(4)
    scene = 0.03 + 0.02 * rng.random((160, 192))
    blobs = [(40, 50), (40, 140), (110, 60), (120, 150)]
    for r, c in blobs:
        scene[r - 2:r + 3, c - 2:c + 3] = cv2.getGaussianKernel(5, 1.2) @ cv2.getGaussianKernel(5, 1.2).T * 20
    blurred = cv2.filter2D(scene.astype(np.float32), -1, psf.gaussian(1.5), borderType=cv2.BORDER_REFLECT)
    codes = np.clip(np.rint(to_codes(np.clip(blurred + rng.normal(0, 0.0015, scene.shape), 0, 1))), 0, 255)
    codes = codes.astype(np.uint8)
    out = np.empty_like(codes)
    result = FrameDeconvolver(psf.gaussian(1.5), codes.shape).restore(
        codes, out=out, coding=LinearLight(linearisation("bt709", 8, True)))
    assert result.point_lights == 0
    for r, c in blobs:  # each comes back as a blob of bright pixels, not a single one
        assert out[r - 1:r + 2, c - 1:c + 2].min() >= 200


# --------------------------------------------------------------------------- clipped highlights


class Unclipped(LinearLight):
    """Linear light that does not know which pixels are clipped: the restoration before the
    clipped light is estimated."""

    def clipped(self, plane):
        return None


def overexposed(astronaut, exposure=1.3, radius=6.0, seed=3):
    """The astronaut exposed 1.3 x (the helmet and the suit above white), blurred by a disk in
    linear light, clipped at white by the sensor, coded BT.709 limited range 8-bit with a little
    noise; and the reference (the sharp scene clipped at white), as float codes."""
    rng = np.random.default_rng(seed)
    light = to_linear_light(np.rint(astronaut * 219 + 16)) * exposure
    blurred, sharp = blur_valid(light, psf.disk(radius))
    noisy = blurred + rng.normal(0, 0.002, blurred.shape)
    codes = np.clip(np.rint(to_codes(np.clip(noisy, 0, 1))), 0, 255).astype(np.uint8)
    return codes, to_codes(np.clip(sharp, 0, 1))


def band_around(mask, inner, outer):
    """Pixels between ``inner`` and ``outer`` pixels away from ``mask``."""
    from scipy import ndimage

    distance = ndimage.distance_transform_edt(~mask)
    return (distance > inner) & (distance <= outer)


def test_clipped_light_is_the_light_the_reblur_explains():
    """On a clipped, blurred bright disk, the estimated light at the clipped pixels near the
    clip's edge (where a plateau at white rings) is closer to the light that was there, and
    nothing is added off the clipped pixels or below their value."""
    from videodeblur.core.fourier import psf2otf
    from videodeblur.restoration.highlights import clipped_light

    shape = (96, 96)
    sharp = np.full(shape, 0.1, np.float32)
    sharp[np.hypot(*np.mgrid[-48:48, -48:48]) < 16] = 1.3
    otf = psf2otf(psf.disk(4.0), shape).astype(np.complex128)
    light = np.fft.irfft2(otf * np.fft.rfft2(sharp), s=shape)
    clipped = light >= 1.0
    observed = np.minimum(light, 1.0).astype(np.float32)
    h2 = np.abs(otf) ** 2
    reblur = h2 / (h2 + 1e-3)
    added = clipped_light(observed, clipped, reblur, steps=8)
    assert np.all(added[~clipped] == 0) and np.all(added >= 0)
    edge = clipped & band_around(~clipped, 0, 4)
    assert np.abs(observed + added - light)[edge].mean() < 0.85 * np.abs(observed - light)[edge].mean()


def test_overexposed_areas_ring_less_and_the_frame_scores_better(astronaut):
    """The rings a restoration draws around clipped areas (a plateau at white does not fit the
    blur) are weaker where the light they lacked is estimated, and the frame is closer to the
    scene; a strength of 0 still gives the input back exactly."""
    codes, reference = overexposed(astronaut)
    lin = linearisation("bt709", 8, True)
    deconvolver = FrameDeconvolver(psf.disk(6.0), codes.shape)
    estimated, unestimated = np.empty_like(codes), np.empty_like(codes)
    deconvolver.restore(codes, out=estimated, coding=LinearLight(lin))
    deconvolver.restore(codes, out=unestimated, coding=Unclipped(lin))
    band = band_around(codes >= LinearLight(lin).clipped_code, 1, 18)

    def band_error(plane):
        return float(np.mean((plane[band].astype(float) - reference[band]) ** 2))

    assert band_error(estimated) < 0.8 * band_error(unestimated)
    assert luma_psnr(estimated, reference) > luma_psnr(unestimated, reference) + 0.3
    kept = np.empty_like(codes)
    FrameDeconvolver(psf.disk(6.0), codes.shape, strength=0.0).restore(codes, out=kept, coding=LinearLight(lin))
    np.testing.assert_array_equal(kept, codes)


@pytest.mark.parametrize("bits", [8, 10])
def test_the_clipped_mask_marks_codes_from_the_clipped_code_up_in_groups_of_enough_pixels(bits):
    from videodeblur.restoration.highlights import MIN_CLIPPED_GROUP_PX

    light = LinearLight(linearisation("bt709", bits, True))
    code = light.clipped_code
    plane = np.full((40, 60), code - 1, np.uint8 if bits == 8 else np.uint16)
    assert light.clipped(plane) is None  # just below the clipped code everywhere
    plane.flat[: MIN_CLIPPED_GROUP_PX - 1] = code
    assert light.clipped(plane) is None  # too few to ring
    plane.flat[MIN_CLIPPED_GROUP_PX - 1] = (1 << bits) - 1
    mask = light.clipped(plane)
    np.testing.assert_array_equal(mask != 0, plane >= code)
    assert np.count_nonzero(mask) == MIN_CLIPPED_GROUP_PX


def test_a_clipped_group_is_solved_in_its_region_as_in_the_whole_frame(monkeypatch):
    """Clipped pixels are worked on in a region around each group, wrapping around the frame's
    edge as the frame's transform does: a lamp shade across the top edge gets what the same
    estimate gives on the whole frame (the margin holds the restoration's reach)."""
    import cv2

    from videodeblur.restoration import deconvolver as shell

    rng = np.random.default_rng(5)
    scene = 0.05 + 0.1 * cv2.GaussianBlur(rng.random((180, 320)), (0, 0), 2.0)
    scene[np.hypot(*np.mgrid[-3:177, -160:160]) < 20] = 1.4  # a disk of light centred 3 px above the frame
    blurred = cv2.filter2D(scene.astype(np.float32), -1, psf.disk(5.0), borderType=cv2.BORDER_REFLECT)
    codes = np.clip(np.rint(to_codes(np.clip(blurred + rng.normal(0, 0.002, scene.shape), 0, 1))), 0, 255)
    codes = codes.astype(np.uint8)
    lin = linearisation("bt709", 8, True)
    deconvolver = FrameDeconvolver(psf.disk(5.0), codes.shape)
    blocks = (deconvolver.padded_shape[0] // 2, deconvolver.padded_shape[1] // 2)  # (2 x 2 block means)
    [(index, _, _)] = deconvolver._clipped_regions(LinearLight(lin).clipped(codes), blocks)
    assert not isinstance(index[0], slice) and index[0][0] > index[0][-1]  # rows wrapping around the top edge
    assert isinstance(index[1], slice) and index[1].stop - index[1].start < blocks[1]
    by_region, whole, unestimated = (np.empty_like(codes) for _ in range(3))
    deconvolver.restore(codes, out=by_region, coding=LinearLight(lin))
    deconvolver.restore(codes, out=unestimated, coding=Unclipped(lin))
    monkeypatch.setattr(shell, "CLIPPED_WHOLE_SHARE", 0.0)
    deconvolver.restore(codes, out=whole, coding=LinearLight(lin))
    assert np.abs(whole.astype(int) - unestimated).max() >= 10  # (the estimate does change the frame)
    assert np.abs(by_region.astype(int) - whole).max() <= 1


def test_a_run_says_on_how_many_frames_clipped_highlights_were_completed(astronaut, tmp_path, capsys):
    """The run's summary counts the frames whose clipped areas were completed, in one piece and
    in segments; a frame with nothing clipped is not counted."""
    overexposed_codes, _ = overexposed(astronaut)
    dim = np.clip(np.rint((overexposed_codes.astype(float) - 16) * 0.7 + 16), 0, 255).astype(np.uint8)
    clip = write_luma_clip(tmp_path / "sky.mkv", [overexposed_codes[:192, :256]] * 3 + [dim[:192, :256]])
    settings = ["--set", "psf.kind=defocus", "--set", "psf.radius=6", "--set", "output.codec=ffv1", "-q"]
    assert cli_main(["run", str(clip), "-o", str(tmp_path / "a.mkv"), *settings]) == 0
    assert "clipped highlights completed on 3 frames" in capsys.readouterr().err
    assert cli_main(["run", str(clip), "-o", str(tmp_path / "b.mkv"), *settings, "--set", "pipeline.backend=processes",
                     "--set", "pipeline.segment_frames=2"]) == 0
    assert "clipped highlights completed on 3 frames" in capsys.readouterr().err


def test_the_block_median_is_the_median_of_each_5x5_neighbourhood_with_negatives_as_black():
    from videodeblur.restoration import highlights

    rng = np.random.default_rng(3)
    scale = 6859.6
    small = (rng.gamma(0.5, 0.2, (60, 90)) * scale).astype(np.float32)
    small[::7, ::5] *= 30  # lamps
    small[3, 3] = -50.0  # a ring's undershoot counts as black
    small[40:44, 10:14] = -5.0
    small[50, 50] = 40 * scale  # beyond the 16-bit steps: held at the top
    # The reference: every pixel's 25 neighbours (the edge repeated beyond the border), sorted.
    padded = np.pad(np.maximum(small, 0), 2, mode="edge")
    neighbourhoods = np.lib.stride_tricks.sliding_window_view(padded, (5, 5))
    exact = np.median(neighbourhoods, axis=(2, 3))
    median = highlights._median5(small, scale)
    assert median.dtype == np.float32 and median.shape == small.shape
    # To the nearest step of white: the median of the rounded values, within half a step of the exact one.
    step = scale / highlights.MEDIAN_STEPS_PER_WHITE
    rounded = np.median(np.minimum(np.rint(neighbourhoods / step), 65535), axis=(2, 3)) * step
    np.testing.assert_allclose(median, rounded, rtol=1e-6)
    np.testing.assert_allclose(median, exact, atol=0.5 * step * 1.001)
    assert np.all(median[exact == 0] == 0)


# ------------------------------------------------------------------------- the command line


def tagged_clip(path, lumas, trc):
    height, width = lumas[0].shape
    chroma = np.full((height // 4, width), 128, np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 25)
        if trc is not None:
            stream.codec_context.color_trc = trc
        for i, luma in enumerate(lumas):
            frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma, chroma]), format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            if trc is not None:
                frame.color_trc = trc
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_a_run_says_where_it_restored_and_what_it_assumed(lens_blur, tmp_path, capsys):
    _, blurred = lens_blur
    untagged = write_luma_clip(tmp_path / "untagged.mkv", blurred)
    assert cli_main(["run", str(untagged), "-o", str(tmp_path / "a.mkv"), "--set", "psf.radius=3",
                     "--set", "output.codec=ffv1", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("no transfer tag: taken as BT.709") == 1
    assert "in linear light (bt709, limited range, untagged: assumed)" in err
    log = tagged_clip(tmp_path / "log.mkv", blurred, 9)
    assert cli_main(["run", str(log), "-o", str(tmp_path / "b.mkv"), "--set", "psf.radius=3",
                     "--set", "output.codec=ffv1", "-q"]) == 0
    assert "is not known: restoring the coded values" in capsys.readouterr().err
    assert cli_main(["run", str(log), "-o", str(tmp_path / "c.mkv"), "--set", "deconvolution.light=linear",
                     "--set", "output.codec=ffv1", "-q"]) == 2
    assert "not one videodeblur knows" in capsys.readouterr().err
    assert not (tmp_path / "c.mkv").exists()


def test_config_show_and_the_preview_label_say_what_is_used(lens_blur, tmp_path, capsys):
    _, blurred = lens_blur
    clip = tagged_clip(tmp_path / "bt709.mkv", blurred, 1)
    assert cli_main(["config", "show", str(clip), "--strength", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "strength = 0.5" in out and 'light = "auto"' in out
    assert "restored in linear light (bt709, limited range)" in out
    from videodeblur.preview import Previewer

    with Previewer(clip, load_config(None, ["deconvolution.strength=0.5"])) as previewer:
        label = previewer.describe_psf(previewer.frame_and_row(0)[1])
    assert "strength 0.5" in label and "linear light (bt709" in label


def test_luma_restoration_keeps_the_colours(camera, astronaut_rgb, tmp_path):
    """Luma only, in linear light: chroma planes pass bit for bit, and the picture's mean hue
    and saturation do not move."""
    from media import make_clip

    clip = make_clip(tmp_path / "colour.mkv", width=96, height=64, frames=3, codec="ffv1", audio=False)
    out = tmp_path / "out.mkv"
    assert cli_main(["run", str(clip), "-o", str(out), "--set", "psf.radius=2", "--set", "output.codec=ffv1",
                     "-q"]) == 0
    before, after = decode_frames(clip), decode_frames(out)
    for a, b in zip(before, after):
        assert np.array_equal(a.planes[1], b.planes[1]) and np.array_equal(a.planes[2], b.planes[2])
        # Mean luma (so the mean of every RGB channel) is kept within a level.
        assert abs(float(a.planes[0].mean()) - float(b.planes[0].mean())) < 1.0


def test_the_restorer_estimates_in_the_light_it_restores_in(lens_blur):
    _, blurred = lens_blur
    restorer = FrameRestorer(load_config(None, ["psf.kind=auto-defocus"]), info(None, 1, width=192, height=160))
    assert restorer.light.linear
    schedule = restorer.schedule()
    assert schedule.light_table is not None
    item = SimpleNamespace(index=0, time_s=0.0, planes=[blurred[0]])
    analysis = schedule.analyse(item)
    assert analysis.estimate.kind == "defocus"
    assert abs(analysis.estimate.fit("defocus").radius_px - 3.0) < 0.3
    assert KernelSpec.of("defocus", radius=3.0).describe() == "defocus radius 3 px"


# ----------------------------------------------------------------------------- weighting in the dark


def test_the_weight_grows_as_the_frame_darkens():
    from videodeblur.core.colour import TRANSFERS
    from videodeblur.restoration.coding import MOST_LIGHT_WEIGHT, light_weighting

    # Frames of ordinary brightness: twice the weight, half a power of |P|^2 steeper.
    assert light_weighting(0.5) == light_weighting(0.2) == light_weighting(1.3) == (2.0, 0.5)
    # Darker than a fifth of white: the weight grows as the square of the darkness.
    assert light_weighting(0.1)[0] == pytest.approx(8.0)
    assert light_weighting(0.05)[0] == pytest.approx(32.0)
    assert light_weighting(0.01)[0] == light_weighting(0.0)[0] == MOST_LIGHT_WEIGHT  # a black frame
    # Relative to the curve's reference white: a PQ frame at 203 cd/m^2 is not dark.
    assert light_weighting(0.0203, TRANSFERS["pq"].reference_white)[0] == pytest.approx(2.0)
    assert TRANSFERS["hlg"].decode(np.array(0.75)) == pytest.approx(TRANSFERS["hlg"].reference_white)


@pytest.mark.parametrize("bit_depth", [8, 10])
def test_a_coding_weights_a_plane_by_its_own_mean_light(bit_depth):
    table = linearisation("bt709", bit_depth, True)
    coding = LinearLight(table)
    rng = np.random.default_rng(3)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    top = 2 ** bit_depth - 1
    dark = rng.integers(40 << (bit_depth - 8), 110 << (bit_depth - 8), (90, 120)).astype(dtype)
    bright = np.full((90, 120), 200 << (bit_depth - 8), dtype)
    mean_dark = float(np.mean(table.decode_table[dark[::4, ::4]]))
    assert mean_dark < 0.2
    assert coding.regularisation_weighting(dark)[0] == pytest.approx(min(64.0, 2.0 * (0.2 / mean_dark) ** 2), rel=1e-5)
    assert coding.regularisation_weighting(bright) == (2.0, 0.5)
    assert integer_plane(float(top)).regularisation_weighting(dark) == (1.0, 0.0)


def night_streaks(seed=0):
    """Rocket at night (scikit-image's photograph of a launch pad at dusk, at 0.7 of its light,
    a star in every 10,000 pixels at 3-12 x white), a 23 px motion blur at 130 degrees in linear
    light with shot and read noise, as 8-bit limited-range BT.709 codes; and the sharp codes."""
    from scipy.signal import fftconvolve
    from skimage import color, data

    rng = np.random.default_rng(seed)
    kernel = psf.motion(23.0, 130.0)
    coded = color.rgb2gray(data.rocket())
    light = np.where(coded < 0.081, coded / 4.5, ((coded + 0.099) / 1.099) ** (1 / 0.45)) * 0.7
    stars = rng.random(light.shape) < 1 / 10000
    light[stars] = rng.uniform(3.0, 12.0, stars.sum())
    pad = kernel.shape[0]
    blurred = fftconvolve(np.pad(light, pad, mode="reflect"), kernel, mode="same")[pad:-pad, pad:-pad]
    noisy = blurred + rng.normal(size=blurred.shape) * np.sqrt(0.003**2 + 0.0003 * np.clip(blurred, 0, 1))
    codes = np.clip(np.rint(to_codes(np.clip(noisy, 0, 1))), 0, 255).astype(np.uint8)
    return codes, np.clip(np.rint(to_codes(np.clip(light, 0, 1))), 0, 255).astype(np.uint8), kernel


def test_a_dark_frame_is_not_filled_with_ripples():
    # Fitted to the linear frame's spectrum, the regularisation of a dark frame is far too weak
    # once coded (the curve is steepest near black): the night sky fills with ripples along the
    # streak's zeros, well below the input. Weighted by the frame's light, it gains.
    codes, reference, kernel = night_streaks()
    deconvolver = FrameDeconvolver(kernel, codes.shape)
    coding = LinearLight(linearisation("bt709", 8, True))

    class FixedWeight(LinearLight):  # the weighting before it followed the frame's light
        def regularisation_weighting(self, plane):
            return (2.0, 0.5)

    weighted, fixed = np.empty_like(codes), np.empty_like(codes)
    chosen = deconvolver.restore(codes, out=weighted, coding=coding).regularisation
    deconvolver.restore(codes, out=fixed, coding=FixedWeight(coding.linearisation))
    before = luma_psnr(codes, reference, 24)
    assert luma_psnr(weighted, reference, 24) > before + 0.5
    assert luma_psnr(fixed, reference, 24) < luma_psnr(weighted, reference, 24) - 1.0
    assert chosen.weight > 0
