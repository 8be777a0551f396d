"""Tests of the per-thread transform pairs and FFTW plans, the wisdom cache and FrameDeconvolver's caches.

The wisdom round trip runs in fresh interpreters (``python -c``) with ``VIDEODEBLUR_CACHE_DIR``
pointing into ``tmp_path``: FFTW wisdom is process-global, so only a new process shows what a
second run of the program really finds on disk.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyfftw
import pytest

from videodeblur import FrameDeconvolver, psf
from videodeblur.core.edgetaper import edgetaper_inplace
from videodeblur.core.fourier import psf2otf
from videodeblur.errors import InvalidParameterError
from videodeblur.fft import plans
from videodeblur.restoration import FILTER_CACHE_SIZE

REPO_ROOT = Path(__file__).resolve().parents[1]


def _plan_in_thread(shape):
    """frame_transform(shape) called twice in a new thread: (first, second) results."""
    found = {}

    def work():
        found["first"] = plans.frame_transform(shape)
        found["second"] = plans.frame_transform(shape)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return found["first"], found["second"]


# --------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------
def test_frame_transform_is_reused_within_a_thread():
    shape = (36, 52)
    first = plans.frame_transform(shape)
    built = plans.transforms_built
    for _ in range(3):
        assert plans.frame_transform(shape) is first
    assert plans.transforms_built == built
    # A different shape is a different pair.
    other = plans.frame_transform((36, 54))
    assert other is not first and plans.transforms_built == built + 1
    assert plans.frame_transform(shape) is first


@pytest.mark.parametrize("shape", [(30, 42), (31, 45), (31, 42), (30, 45), (1, 8), (8, 1), (64, 3), (2, 2)])
def test_frame_transform_transforms_correctly(shape):
    """The spectrum is numpy's rfft2, the unpacked zero-frequency and Nyquist columns
    included (even and odd heights and widths: only even widths have a Nyquist column, and
    only even heights a real middle row in them), and the inverse gets the frame back."""
    pair = plans.frame_transform(shape)
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    pair.frame[...] = image
    spectrum = pair.forward()
    assert spectrum.dtype == np.complex64 and spectrum.shape == (shape[0], shape[1] // 2 + 1)
    np.testing.assert_allclose(spectrum, np.fft.rfft2(image), rtol=0, atol=1e-4)
    # The inverse is unnormalised: it returns N times the frame.
    np.testing.assert_allclose(pair.inverse() / image.size, image, rtol=0, atol=1e-5)
    # A spectrum that is not the transform of a real frame: the inverse drops the same
    # imaginary parts numpy's irfft2 drops.
    rng = np.random.default_rng(1)
    arbitrary = (rng.normal(size=spectrum.shape) + 1j * rng.normal(size=spectrum.shape)).astype(np.complex64)
    pair.spectrum[...] = arbitrary
    np.testing.assert_allclose(pair.inverse() / image.size, np.fft.irfft2(arbitrary, s=shape), rtol=0, atol=1e-5)


def test_each_thread_gets_its_own_plans():
    shape = (40, 44)
    main = plans.frame_transform(shape)
    built = plans.transforms_built
    results = [_plan_in_thread(shape) for _ in range(3)]
    for first, second in results:
        assert first is second  # reused within the thread
        assert first is not main
        assert not np.shares_memory(first.frame, main.frame)
        assert not np.shares_memory(first.spectrum, main.spectrum)
    firsts = [first for first, _ in results]
    assert len({id(pair) for pair in firsts}) == 3  # all kept alive, so ids are distinct
    assert plans.transforms_built == built + 3


def _frames(camera, shape, count, seed):
    rng = np.random.default_rng(seed)
    rows, columns = shape
    frames = []
    for _ in range(count):
        top, left = rng.integers(0, 512 - rows), rng.integers(0, 512 - columns)
        frame = camera[top : top + rows, left : left + columns] + rng.normal(0, 0.01, shape)
        frames.append(frame.astype(np.float32))
    return frames


@pytest.mark.parametrize("shape", [(96, 128), (97, 131)])
@pytest.mark.parametrize("nsr", ["auto", 0.01])
def test_concurrent_restoration_equals_sequential(camera, shape, nsr):
    frames = _frames(camera, shape, 24, seed=shape[0])
    deconvolver = FrameDeconvolver(psf.motion(9, 30), shape, nsr=nsr)
    sequential = [deconvolver.restore(frame).image for frame in frames]
    barrier = threading.Barrier(4, timeout=60)  # fails instead of hanging

    def restore(frame):
        return deconvolver.restore(frame).image

    def start_together():
        barrier.wait()  # all four workers then plan and restore at the same time

    with ThreadPoolExecutor(4, initializer=start_together) as pool:
        concurrent = list(pool.map(restore, frames))
    for expected, got in zip(sequential, concurrent):
        np.testing.assert_array_equal(got, expected)
    # Distinct frames give distinct results (no result was overwritten by another thread's frame).
    assert len({result.tobytes() for result in concurrent}) == len(frames)


def test_concurrent_restoration_into_out_arrays(camera):
    shape = (64, 96)
    frames = _frames(camera, shape, 16, seed=3)
    deconvolver = FrameDeconvolver(psf.disk(3), shape, nsr="auto")
    sequential = [deconvolver.restore(frame).image for frame in frames]
    outs = [np.empty(shape, np.float32) for _ in frames]
    with ThreadPoolExecutor(4) as pool:
        returned = list(pool.map(lambda i: deconvolver.restore(frames[i], out=outs[i]).image, range(len(frames))))
    for out, got, expected in zip(outs, returned, sequential):
        assert got is out
        np.testing.assert_array_equal(out, expected)


# --------------------------------------------------------------------------------------------
# Wisdom on disk
# --------------------------------------------------------------------------------------------
PLAN_SCRIPT = """
import pickle, sys
import pyfftw
from videodeblur.fft import plans
loaded = plans.load_wisdom()
after_import = pyfftw.export_wisdom()
plans.tile_transform(4, 96)  # the FFTW plans (the estimator's tiles)
after_plan = pyfftw.export_wisdom()
with open(sys.argv[1], "wb") as handle:
    pickle.dump({"loaded": loaded, "after_import": after_import, "after_plan": after_plan,
                 "path": str(plans.wisdom_path()), "built": plans.transforms_built}, handle)
"""


def _run_fresh_process(cache_dir: Path, report: Path) -> dict:
    env = dict(os.environ, VIDEODEBLUR_CACHE_DIR=str(cache_dir))
    completed = subprocess.run([sys.executable, "-c", PLAN_SCRIPT, str(report)], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return pickle.loads(report.read_bytes())


def _wisdom_lines(wisdom: bytes) -> set[bytes]:
    return {line.strip() for line in wisdom.splitlines() if line.strip()}


def test_wisdom_round_trip_between_processes(tmp_path):
    cache_dir = tmp_path / "cache"
    wisdom_file = cache_dir / f"fftw-wisdom-{pyfftw.__version__}.pickle"

    first = _run_fresh_process(cache_dir, tmp_path / "first.pickle")
    assert first["loaded"] is False  # nothing on disk yet
    assert Path(first["path"]) == wisdom_file
    assert wisdom_file.is_file()
    saved_bytes = wisdom_file.read_bytes()
    saved = pickle.loads(saved_bytes)
    assert saved == first["after_plan"]  # what the first run learned is what it saved
    single_precision = saved[1]  # (double, single, long double): plans are float32
    assert len(_wisdom_lines(single_precision)) > 2  # header, footer and real entries
    assert _wisdom_lines(single_precision) - _wisdom_lines(first["after_import"][1])  # learned

    second = _run_fresh_process(cache_dir, tmp_path / "second.pickle")
    assert second["loaded"] is True
    # After import the process already holds every line the first run saved ...
    for precision in range(3):
        assert _wisdom_lines(saved[precision]) <= _wisdom_lines(second["after_import"][precision])
    # ... so planning the same shape learns nothing new and rewrites nothing.
    assert second["after_plan"] == second["after_import"]
    assert wisdom_file.read_bytes() == saved_bytes
    assert sorted(p.name for p in cache_dir.iterdir()) == [wisdom_file.name]  # no temp files left


def test_corrupt_wisdom_file_is_ignored(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    wisdom_file = cache_dir / f"fftw-wisdom-{pyfftw.__version__}.pickle"
    wisdom_file.write_bytes(b"not a pickle")
    report = _run_fresh_process(cache_dir, tmp_path / "report.pickle")
    assert report["loaded"] is False
    assert report["built"] == 1
    # The planner measured again and replaced the corrupt file with valid wisdom.
    assert pickle.loads(wisdom_file.read_bytes()) == report["after_plan"]


def test_tests_do_not_use_the_user_cache(isolated_cache_dir):
    assert plans.wisdom_path().parent == isolated_cache_dir


# --------------------------------------------------------------------------------------------
# FrameDeconvolver caches and output arrays
# --------------------------------------------------------------------------------------------
def _expected_filter(deconvolver, lam, alpha):
    h = deconvolver.otf.astype(np.complex128)
    rows, columns = deconvolver.padded_shape
    ky = np.arange(rows)[:, None] / rows
    kx = np.arange(columns // 2 + 1)[None, :] / columns
    p2 = 4 * np.sin(np.pi * ky) ** 2 + 4 * np.sin(np.pi * kx) ** 2
    nsr = lam * p2**alpha if alpha else np.where(p2 > 0, lam, 0.0)  # constant NSR spares DC
    return np.conj(h) / (np.abs(h) ** 2 + nsr) / (rows * columns)


def test_filter_for_caches_and_matches_the_formula():
    kernel = psf.motion(11, 60)
    deconvolver = FrameDeconvolver(kernel, (48, 64), nsr="auto")
    np.testing.assert_allclose(deconvolver.otf, psf2otf(kernel, (48, 64)))
    first = deconvolver.method.filter_for(0.01, 1.2)
    assert deconvolver.method.filter_for(0.01, 1.2) is first
    scale = np.abs(_expected_filter(deconvolver, 0.01, 1.2)).max()
    np.testing.assert_allclose(first, _expected_filter(deconvolver, 0.01, 1.2), rtol=0, atol=1e-5 * scale)
    constant = deconvolver.method.filter_for(0.01, 0.0)
    assert constant is not first
    np.testing.assert_allclose(constant, _expected_filter(deconvolver, 0.01, 0.0), rtol=0, atol=1e-5 * scale)
    # Least recently used filters are evicted beyond FILTER_CACHE_SIZE.
    deconvolver.method.filter_for(0.01, 1.2)  # most recently used again
    for i in range(FILTER_CACHE_SIZE - 1):
        deconvolver.method.filter_for(0.1 + i, 1.0)
    assert deconvolver.method.filter_for(0.01, 1.2) is first
    rebuilt = deconvolver.method.filter_for(0.01, 0.0)  # was evicted
    assert rebuilt is not constant
    np.testing.assert_array_equal(rebuilt, constant)


def test_restore_reuses_the_filter_for_the_same_regularisation(camera):
    deconvolver = FrameDeconvolver(psf.disk(2), (64, 64), nsr=0.02)
    assert deconvolver.restore(camera[:64, :64].astype(np.float32)).regularisation == (0.02, 0.0, 1.0)
    response = deconvolver.method.filter_for(0.02, 0.0)
    deconvolver.restore(camera[64:128, :64].astype(np.float32))
    assert deconvolver.method.filter_for(0.02, 0.0) is response


@pytest.mark.parametrize("shape", [(96, 128), (97, 131)])
def test_restore_into_out_equals_restore(camera, shape):
    deconvolver = FrameDeconvolver(psf.gaussian(1.5), shape, nsr="auto")
    frame, other = _frames(camera, shape, 2, seed=9)
    expected = deconvolver.restore(frame).image
    aligned = np.empty(shape, np.float32)
    assert deconvolver.restore(frame, out=aligned).image is aligned
    np.testing.assert_array_equal(aligned, expected)
    # An unaligned out array works too.
    storage = np.empty(shape[0] * shape[1] + 1, np.float32)
    unaligned = storage[1:].reshape(shape)
    assert deconvolver.restore(frame, out=unaligned).image is unaligned
    np.testing.assert_array_equal(unaligned, expected)
    # Results are not aliased with internal buffers: later restores leave them untouched.
    kept = aligned.copy()
    returned = deconvolver.restore(frame).image
    deconvolver.restore(other)
    np.testing.assert_array_equal(aligned, kept)
    np.testing.assert_array_equal(returned, expected)
    deconvolver.restore(other, out=aligned)
    np.testing.assert_array_equal(returned, expected)
    assert not np.array_equal(aligned, kept)


@pytest.mark.parametrize("method", ["wiener", "tikhonov", "tv"])
@pytest.mark.parametrize("dtype, scale", [(np.uint8, 1 / 255), (np.uint16, 1 / 65535), (np.float64, 0.5)])
def test_restore_with_input_scale_equals_restoring_the_scaled_frame(camera, dtype, scale, method):
    """Wiener and Tikhonov restore the frame in its own units with the scale folded into the
    filter (the automatic regularisation must not depend on the units); TV scales first."""
    shape = (64, 80)
    frame = (camera[:64, :80] / scale).round().astype(dtype) if dtype != np.float64 else camera[:64, :80] * 2
    deconvolver = FrameDeconvolver(psf.disk(2), shape, method=method, nsr="auto")
    scaled, scaled_regularisation = deconvolver.restore(frame, input_scale=scale)[:2]
    expected, regularisation = deconvolver.restore((frame * np.float32(scale)).astype(np.float32))[:2]
    assert scaled_regularisation == pytest.approx(regularisation, rel=1e-4)
    np.testing.assert_allclose(scaled, expected, rtol=0, atol=1e-5)
    assert abs(float(scaled.mean()) - camera[:64, :80].mean()) < 0.01  # really in [0, 1] units


@pytest.mark.parametrize("method", ["wiener", "tikhonov", "tv"])
def test_output_scale_and_offset_are_applied_exactly_once(camera, method):
    """The scale is folded into the filter and the offset into the DC bin: the result must be
    the plain restoration times the scale plus the offset, with a padded shape too."""
    for shape in [(64, 80), (61, 79)]:
        frame = camera[100 : 100 + shape[0], 50 : 50 + shape[1]].astype(np.float32)
        deconvolver = FrameDeconvolver(psf.motion(7, 30), shape, method=method, nsr="auto")
        plain = deconvolver.restore(frame).image
        scaled = deconvolver.restore(frame, output_scale=1023.0, output_offset=0.5).image
        np.testing.assert_allclose(scaled, plain * 1023.0 + 0.5, rtol=0, atol=2e-3)
        assert not np.allclose(plain, 0.0)
        # The plain filter is still the one cached under scale 1.
        np.testing.assert_array_equal(deconvolver.restore(frame).image, plain)


def test_both_transforms_are_in_place():
    """frame and spectrum share one buffer, and the inverse writes the frame back into it:
    a restoration's working set is that one buffer (and it is overwritten by the next
    forward transform)."""
    shape = (30, 42)
    pair = plans.frame_transform(shape)
    assert np.shares_memory(pair.frame, pair.spectrum)
    image = np.random.default_rng(1).random(shape).astype(np.float32)
    pair.frame[...] = image
    pair.forward()
    restored = pair.inverse()
    assert restored is pair.frame
    np.testing.assert_allclose(restored / image.size, image, rtol=0, atol=1e-5)
    pair.frame[...] = 0.0
    pair.forward()
    assert not restored.any()


def test_restore_rounds_and_clips_into_an_integer_output(camera):
    """An integer ``out`` receives the clipped result truncated: with offset 0.5 and the clip
    range [0.5, max + 0.5], the nearest legal value, exactly as rounding the float result."""
    shape = (61, 79)  # a padded shape too
    frame = camera[:61, :79].astype(np.float32)
    frame[:, 40:] = 1.0 - frame[:, 40:]  # a hard edge: the deconvolution overshoots both ways
    deconvolver = FrameDeconvolver(psf.disk(3), shape, nsr=1e-4)
    reference = deconvolver.restore(frame, output_scale=1023.0).image
    assert reference.min() < 0 and reference.max() > 1023  # both ends get clipped
    expected = np.floor(np.clip(reference + 0.5, 0.5, 1023.5)).astype(np.uint16)
    out = np.empty(shape, np.uint16)
    returned = deconvolver.restore(frame, out=out, output_scale=1023.0, output_offset=0.5, clip=(0.5, 1023.5)).image
    assert returned is out
    # (float rounding may move a value that lies within 1e-4 of a half step)
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert np.mean(out != expected) < 1e-3
    assert out.min() == 0 and out.max() == 1023


def test_restore_rejects_an_unusable_output():
    deconvolver = FrameDeconvolver(psf.disk(2), (32, 40), nsr=0.01)
    read_only = np.empty((32, 40), np.float32)
    read_only.flags.writeable = False
    for out in (np.empty((40, 32), np.float32), np.empty((32, 40), np.complex64), read_only):
        with pytest.raises(InvalidParameterError, match="out must be a writeable real array"):
            deconvolver.restore(np.zeros((32, 40), np.float32), out=out)


def test_tiny_kernels_measure_the_noise_on_the_frame_before_the_in_place_transform(camera):
    """A kernel that erases no frequency has no spectral noise estimate: the noise comes from
    the tapered frame, which the in-place forward transform overwrites, so it must be
    measured first. The result equals the regularisation chosen from an untouched copy."""
    from videodeblur.core.noise import NoiseModel, estimate_noise_sigma

    shape = (96, 128)
    frame = (camera[:96, :128] + np.random.default_rng(3).normal(0, 0.02, shape)).astype(np.float32)
    deconvolver = FrameDeconvolver(psf.gaussian(0.5), shape, nsr="auto")
    assert deconvolver.method.noise.needs_spatial_noise
    regularisation = deconvolver.restore(frame).regularisation
    pair = plans.frame_transform(shape)
    pair.frame[...] = frame
    edgetaper_inplace(pair.frame, deconvolver.taper_plan)
    tapered = pair.frame.copy()
    spectrum = pair.forward()
    sigma = estimate_noise_sigma(tapered)
    assert 0.015 < sigma < 0.025
    assert deconvolver.method.noise.noise_for(tapered, None) == NoiseModel(sigma**2)
    assert regularisation == deconvolver.method.regularisation_for(spectrum, NoiseModel(sigma**2))
    with pytest.raises(InvalidParameterError, match="needs the frame"):
        deconvolver.method.regularisation_for(spectrum)
