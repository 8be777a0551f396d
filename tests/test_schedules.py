"""Kernel schedules (videodeblur.pipeline.blur_track): the estimated-blur tracker and keyframes.

The tracker is driven without any video: frames are plain namespaces with an index and a time,
and their analyses are made up (a signature thumbnail and a BlurEstimate), so every expected
kernel is known exactly. Smoothed parameters are quantised (radius 0.1 px, length 0.2 px,
angle 0.5 deg), so tolerances below are half a step plus what the smoother may add.
"""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from videodeblur.config import load_config
from videodeblur.config.psf_section import MAX_ESTIMATE_EVERY, MAX_SMOOTHING_FRAMES
from videodeblur.core.estimation import GAUSSIAN_ADVANTAGE, BlurEstimate, DefocusFit, GaussianFit, MotionFit
from videodeblur.core.smoothing import frame_signature
from videodeblur.errors import ConfigError, InvalidParameterError
from videodeblur.pipeline.schedules import (
    MIN_AGREEING_FRAMES,
    BlurTracker,
    FixedSchedule,
    FrameAnalysis,
    KeyframeSchedule,
    TrackRow,
    schedule_for,
)
from videodeblur.pipeline.kernels import KernelSpec, quantised_spec

FPS = 25
SHOT_A = np.zeros((18, 32), np.float32)
SHOT_B = np.ones((18, 32), np.float32)
LUMA = np.zeros((4, 4), np.uint8)  # never looked at: the analyses are given


def item(index, time_s="auto"):
    return SimpleNamespace(index=index, time_s=index / FPS if time_s == "auto" else time_s, planes=[LUMA])


def defocus(radius, confidence=1.0):
    return BlurEstimate("defocus", {"defocus": DefocusFit(radius, 0.3 * confidence)}, confidence)


def motion(length, angle, confidence=1.0):
    return BlurEstimate("motion", {"motion": MotionFit(length, angle, 0.3 * confidence)}, confidence)


def none(confidence=0.05):
    return BlurEstimate("none", {"motion": MotionFit(2.0, 10.0, 0.01), "defocus": DefocusFit(1.0, 0.01)}, confidence)


def run_tracker(estimates, smoothing_frames, signatures=None, family="auto"):
    """Push every frame in order, then finish; return (rows, rows returned per push)."""
    tracker = BlurTracker(family, smoothing_frames)
    rows, per_push = [], []
    for i, estimate in enumerate(estimates):
        signature = SHOT_A if signatures is None else signatures[i]
        out = tracker.push(item(i), FrameAnalysis(signature, estimate))
        per_push.append([row.index for row in out])
        rows.extend(out)
    rows.extend(tracker.finish())
    return rows, per_push


def check_one_row_per_frame_in_order(rows, count):
    assert [row.index for row in rows] == list(range(count))
    for row in rows:
        assert isinstance(row, TrackRow)
        assert row.time_s == pytest.approx(row.index / FPS)


def angle_distance(a, b):
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


# --------------------------------------------------------------------------------------
# BlurTracker
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("outlier_at", [0, 5, 15, 29])
def test_outlier_radius_is_removed(outlier_at):
    estimates = [defocus(4.0) for _ in range(30)]
    estimates[outlier_at] = defocus(9.0)
    rows, _ = run_tracker(estimates, 4)
    check_one_row_per_frame_in_order(rows, 30)
    for row in rows:
        assert row.spec == KernelSpec.of("defocus", radius=4.0), row
    # The raw estimate stays in the row, unsmoothed.
    assert rows[outlier_at].estimate.fit("defocus").radius_px == 9.0


@pytest.mark.parametrize("smoothing_frames", [3, 8])
def test_ramp_is_followed_without_lag_to_the_last_frame(smoothing_frames):
    truth = [2.0 + 0.05 * i for i in range(60)]
    rows, _ = run_tracker([defocus(r) for r in truth], smoothing_frames)
    check_one_row_per_frame_in_order(rows, 60)
    errors = [abs(row.spec.get("radius") - r) for row, r in zip(rows, truth)]
    # Half a quantisation step (0.05 px) and nothing more: the local line fit is exact on a ramp.
    assert max(errors) <= 0.05 + 1e-9, errors
    assert rows[-1].spec.get("radius") == pytest.approx(4.9 + 0.05, abs=0.051)  # the last frame too


def test_noisy_track_is_smoothed():
    rng = np.random.default_rng(0)
    raw = 3.0 + rng.normal(0.0, 0.2, 40)
    rows, _ = run_tracker([defocus(r) for r in raw], 8)
    smoothed = np.array([row.spec.get("radius") for row in rows])
    assert np.abs(raw - 3.0).mean() > 0.12
    assert np.abs(smoothed[8:-8] - 3.0).max() < 0.2
    assert np.abs(smoothed - 3.0).mean() < 0.5 * np.abs(raw - 3.0).mean()


def test_motion_angles_around_the_wrap_stay_near_zero():
    angles = [179.5, 0.5, 179.0, 1.0] * 8
    rows, _ = run_tracker([motion(12.0, a) for a in angles], 4)
    check_one_row_per_frame_in_order(rows, len(angles))
    for row in rows:
        assert row.spec.kind == "motion"
        assert 0.0 <= row.spec.get("angle") < 180.0
        # Symmetric about 0: the smoothed direction is 0 up to a quantisation step (never 90,
        # and never one side of the wrap only, which would be 0.5-1 deg).
        assert angle_distance(row.spec.get("angle"), 0.0) <= 0.5, row.spec
        assert row.spec.get("length") == pytest.approx(12.0, abs=0.2), row.spec


def test_direction_jitter_across_the_wrap_is_averaged_out():
    rng = np.random.default_rng(0)
    raw = rng.normal(0.0, 0.7, 40) % 180.0  # about half just below 180, half just above 0
    rows, _ = run_tracker([motion(12.0, a) for a in raw], 8)
    raw_error = np.mean([angle_distance(a, 0.0) for a in raw])
    smoothed_error = [angle_distance(row.spec.get("angle"), 0.0) for row in rows]
    assert max(smoothed_error) <= 0.5
    assert np.mean(smoothed_error) < 0.5 * raw_error
    assert all(row.spec.get("length") == pytest.approx(12.0, abs=0.2) for row in rows)


def test_motion_direction_is_smoothed_as_a_line_angle():
    # A slow turn from 170 through 180 to 10 degrees: the smoothed angle follows the short way.
    truth = [(170.0 + 0.5 * i) % 180.0 for i in range(40)]
    rows, _ = run_tracker([motion(15.0, a) for a in truth], 6)
    for row, a in zip(rows, truth):
        assert angle_distance(row.spec.get("angle"), a) <= 0.5, (row.spec, a)
        assert row.spec.get("length") == pytest.approx(15.0, abs=0.2)


@pytest.mark.parametrize("second_radius", [6.0, 3.5], ids=["big-jump", "small-jump"])
def test_no_blending_across_a_scene_cut(second_radius):
    # The small jump is within the outlier floor (0.75 px): only the cut keeps it from being
    # smoothed into a ramp around frame 20.
    estimates = [defocus(3.0) for _ in range(20)] + [defocus(second_radius) for _ in range(20)]
    signatures = [SHOT_A] * 20 + [SHOT_B] * 20
    rows, _ = run_tracker(estimates, 8, signatures)
    check_one_row_per_frame_in_order(rows, 40)
    assert rows[19].spec.get("radius") == pytest.approx(3.0)
    assert rows[20].spec.get("radius") == pytest.approx(second_radius)
    assert all(row.spec.get("radius") == pytest.approx(3.0) for row in rows[:20])
    assert all(row.spec.get("radius") == pytest.approx(second_radius) for row in rows[20:])
    assert [row.index for row in rows if row.scene_cut] == [0, 20]


def test_without_a_cut_a_small_step_is_smoothed():
    # The control: the same track in one shot is blended around the step.
    estimates = [defocus(3.0) for _ in range(20)] + [defocus(3.5) for _ in range(20)]
    rows, _ = run_tracker(estimates, 8)
    assert [row.index for row in rows if row.scene_cut] == [0]
    assert 3.0 < rows[19].spec.get("radius") < 3.5 or 3.0 < rows[20].spec.get("radius") < 3.5


def test_none_frame_inside_a_defocus_shot_takes_the_neighbours_kernel():
    estimates = [defocus(4.0) for _ in range(21)]
    estimates[10] = none()
    estimates[11] = none()
    rows, _ = run_tracker(estimates, 5)
    assert rows[10].spec == KernelSpec.of("defocus", radius=4.0)
    assert rows[11].spec == KernelSpec.of("defocus", radius=4.0)
    assert rows[10].estimate.kind == "none"  # the raw estimate is kept as found


def test_low_confidence_disagreeing_frame_barely_moves_the_kernel():
    estimates = [defocus(4.0) for _ in range(21)]
    estimates[10] = defocus(4.6, confidence=0.01)  # within the outlier floor, but doubtful
    rows, _ = run_tracker(estimates, 5)
    assert rows[10].spec.get("radius") == pytest.approx(4.0)


def test_all_none_frames_give_none():
    rows, _ = run_tracker([none() for _ in range(12)], 3)
    check_one_row_per_frame_in_order(rows, 12)
    assert all(row.spec == KernelSpec("none") for row in rows)


def test_smoothed_blur_below_the_minimum_is_none():
    rows, _ = run_tracker([defocus(1.0) for _ in range(6)], 2)
    assert all(row.spec.kind == "none" for row in rows)
    rows, _ = run_tracker([motion(2.5, 30.0) for _ in range(6)], 2)
    assert all(row.spec.kind == "none" for row in rows)


def test_kind_follows_the_majority_of_the_window():
    # A motion shot with one stray defocus decision: every frame stays motion.
    estimates = [motion(10.0, 40.0) for _ in range(15)]
    estimates[7] = defocus(5.0)
    rows, _ = run_tracker(estimates, 4)
    assert all(row.spec == KernelSpec.of("motion", length=10.0, angle=40.0) for row in rows)


@pytest.mark.parametrize("smoothing_frames", [0, 1, 3, 6])
def test_rows_come_out_after_w_later_frames_and_finish_flushes(smoothing_frames):
    w = smoothing_frames
    count = 15
    rows, per_push = run_tracker([defocus(3.0) for _ in range(count)], w)
    check_one_row_per_frame_in_order(rows, count)
    for i, emitted in enumerate(per_push):
        assert emitted == ([i - w] if i >= w else []), (i, emitted)
    tracker = BlurTracker("auto", w)
    for i in range(count):
        tracker.push(item(i), FrameAnalysis(SHOT_A, defocus(3.0)))
    assert [row.index for row in tracker.finish()] == list(range(count - w, count))
    assert tracker.finish() == []


def test_a_scene_cut_releases_the_previous_shot_at_once():
    estimates = [defocus(3.0)] * 10 + [defocus(5.0)] * 4
    signatures = [SHOT_A] * 10 + [SHOT_B] * 4
    rows, per_push = run_tracker(estimates, 5, signatures)
    check_one_row_per_frame_in_order(rows, 14)
    assert per_push[9] == [4]
    assert per_push[10] == [5, 6, 7, 8, 9]  # the cut ends shot A: nothing more can change them
    assert per_push[11:] == [[], [], []]


def test_windowed_replay_gives_the_full_run_rows():
    # What a preview does: push only frames i-W-1 .. i+W into a fresh tracker. The row of
    # frame i must equal the one of a full pass (finite support, cuts seen the same way).
    rng = np.random.default_rng(3)
    count, w = 40, 4
    estimates = []
    for i in range(count):
        if i % 11 == 5:
            estimates.append(none())
        elif i < 25:
            estimates.append(defocus(float(rng.uniform(2.5, 3.5)), float(rng.uniform(0.3, 1.0))))
        else:
            estimates.append(motion(float(rng.uniform(9, 11)), float(rng.uniform(170, 190) % 180),
                                    float(rng.uniform(0.3, 1.0))))
    signatures = [SHOT_A if i < 17 else SHOT_B if i < 25 else SHOT_A for i in range(count)]
    full, _ = run_tracker(estimates, w, signatures)
    for i in range(count):
        first, last = max(0, i - w - 1), min(count - 1, i + w)
        tracker = BlurTracker("auto", w)
        rows = []
        for j in range(first, last + 1):
            rows.extend(tracker.push(item(j), FrameAnalysis(signatures[j], estimates[j])))
        rows.extend(tracker.finish())
        row = next(r for r in rows if r.index == i)
        assert row.spec == full[i].spec, i
        assert row.estimate == full[i].estimate
        if i > 0:
            assert row.scene_cut == full[i].scene_cut, i
    assert sum(r.scene_cut for r in full) == 3  # frames 0, 17, 25


def test_tracker_lookahead_and_lookbehind():
    tracker = BlurTracker("defocus", 6)
    assert tracker.needs_analysis
    assert tracker.lookahead_frames == 6
    assert tracker.lookbehind_frames == 7


def test_tracker_analyse_estimates_a_real_frame(camera):
    from scipy.signal import fftconvolve

    from videodeblur.core import psf

    blurred = fftconvolve(camera, psf.disk(4.0).astype(float), mode="valid")
    luma = np.round(blurred * 255).astype(np.uint8)
    analysis = BlurTracker("auto", 2).analyse(SimpleNamespace(index=0, time_s=0.0, planes=[luma]))
    assert analysis.estimate.kind == "defocus"
    assert abs(analysis.estimate.fit("defocus").radius_px - 4.0) <= 0.5
    assert analysis.signature.shape == (18, 32)
    np.testing.assert_allclose(analysis.signature.mean(), luma.mean() / 255.0, atol=0.01)


def test_tracker_rejects_unknown_family():
    with pytest.raises(InvalidParameterError):
        BlurTracker("auto-motion", 3)


# --------------------------------------------------------------------------------------
# Quantised specs
# --------------------------------------------------------------------------------------


def test_quantised_spec_steps_and_angle_range():
    assert quantised_spec("defocus", {"radius": 3.14}) == KernelSpec.of("defocus", radius=3.15)
    assert quantised_spec("defocus", {"radius": 3.12}) == KernelSpec.of("defocus", radius=3.1)
    assert quantised_spec("defocus", {"radius": 0.01}).get("radius") == 0.05
    spec = quantised_spec("motion", {"length": 12.29, "angle": -0.2})
    assert spec == KernelSpec.of("motion", length=12.3, angle=0.0)
    assert quantised_spec("motion", {"length": 12.24, "angle": 1.0}).get("length") == 12.2
    assert quantised_spec("motion", {"length": 9.0, "angle": 179.8}).get("angle") == 0.0
    assert quantised_spec("motion", {"length": 9.0, "angle": 370.26}).get("angle") == 10.5
    assert quantised_spec("motion", {"length": 0.3, "angle": 5.0}).get("length") == 1.0
    assert quantised_spec("gaussian", {"sigma": 1.23}).get("sigma") == pytest.approx(1.25)
    assert quantised_spec("none", {}) == KernelSpec("none")
    with pytest.raises(InvalidParameterError):
        quantised_spec("file", {})
    # Equal specs hash equal: a steady blur reuses one cached deconvolver.
    assert hash(quantised_spec("defocus", {"radius": 3.02})) == hash(quantised_spec("defocus", {"radius": 2.98}))


# --------------------------------------------------------------------------------------
# Keyframes
# --------------------------------------------------------------------------------------


def keyframe_schedule(*overrides, frame_rate=Fraction(FPS)):
    config = load_config(None, list(overrides))
    schedule = schedule_for(config.psf, SimpleNamespace(average_rate=frame_rate))
    assert isinstance(schedule, KeyframeSchedule)
    return schedule


def specs(schedule, indexes, times=None):
    out = []
    for n, i in enumerate(indexes):
        rows = schedule.push(item(i, "auto" if times is None else times[n]))
        assert len(rows) == 1 and rows[0].index == i
        out.append(rows[0].spec)
    assert schedule.finish() == []
    return out


def test_keyframes_interpolate_linearly_and_hold_outside():
    schedule = keyframe_schedule("psf.kind=defocus",
                                 "psf.keyframes=[{frame=4, radius=2.0}, {frame=14, radius=4.0}, {frame=20, radius=1.0}]")
    radii = [s.get("radius") for s in specs(schedule, range(25))]
    expected = [2.0] * 5 + [2.0 + 0.2 * k for k in range(1, 11)] + [4.0 - 0.5 * k for k in range(1, 7)] + [1.0] * 4
    np.testing.assert_allclose(radii, expected, atol=1e-9)
    assert specs(keyframe_schedule("psf.kind=defocus",
                                   "psf.keyframes=[{frame=0, radius=2.0}, {frame=10, radius=4.0}]"), [5])[0] \
        == KernelSpec.of("defocus", radius=3.0)


def test_keyframes_by_time_use_the_frame_time():
    schedule = keyframe_schedule("psf.kind=defocus",
                                 "psf.keyframes=[{time_s=1.0, radius=2.0}, {time_s=2.0, radius=4.0}]")
    # Times that are not index / fps: the schedule must read item.time_s.
    out = specs(schedule, [0, 1, 2, 3, 4], times=[0.5, 1.25, 1.5, 2.0, 7.0])
    assert [s.get("radius") for s in out] == pytest.approx([2.0, 2.5, 3.0, 4.0, 4.0])


def test_keyframes_by_time_without_timestamps_use_the_frame_rate():
    schedule = keyframe_schedule("psf.kind=defocus",
                                 "psf.keyframes=[{time_s=0.0, radius=2.0}, {time_s=1.0, radius=4.0}]",
                                 frame_rate=Fraction(10))
    out = specs(schedule, [0, 5, 10], times=[None, None, None])
    assert [s.get("radius") for s in out] == pytest.approx([2.0, 3.0, 4.0])
    no_rate = keyframe_schedule("psf.kind=defocus",
                                "psf.keyframes=[{time_s=0.0, radius=2.0}, {time_s=1.0, radius=4.0}]",
                                frame_rate=None)
    with pytest.raises(InvalidParameterError):
        no_rate.push(item(3, None))


def test_motion_keyframes_turn_the_short_way_round():
    schedule = keyframe_schedule("psf.kind=motion", "psf.length=10", "psf.angle=0",
                                 "psf.keyframes=[{frame=0, length=8.0, angle=170}, {frame=10, length=12.0, angle=10}]")
    out = specs(schedule, [0, 5, 10, 15, 2, 8])
    assert [s.get("length") for s in out] == pytest.approx([8.0, 10.0, 12.0, 12.0, 8.8, 11.2])
    angles = [s.get("angle") for s in out]
    assert angle_distance(angles[1], 0.0) <= 0.5, angles  # midway is 180 = 0, not 90
    assert angles[0] == pytest.approx(170.0) and angles[2] == pytest.approx(10.0)
    assert angles[4] == pytest.approx(174.0) and angles[5] == pytest.approx(6.0)
    assert all(0.0 <= a < 180.0 for a in angles)


def test_motion_keyframes_fall_back_on_the_section_values():
    schedule = keyframe_schedule("psf.kind=motion", "psf.length=10", "psf.angle=30",
                                 "psf.keyframes=[{frame=0, length=4.0}, {frame=10, length=8.0}]")
    out = specs(schedule, [0, 5, 10])
    assert out == [KernelSpec.of("motion", length=4.0, angle=30.0),
                   KernelSpec.of("motion", length=6.0, angle=30.0),
                   KernelSpec.of("motion", length=8.0, angle=30.0)]


def test_gaussian_keyframes():
    schedule = keyframe_schedule("psf.kind=gaussian", "psf.sigma=5.0",
                                 "psf.keyframes=[{frame=0, sigma=1.0}, {frame=4, sigma=2.0}]")
    assert [s.get("sigma") for s in specs(schedule, [0, 1, 2, 6])] == pytest.approx([1.0, 1.25, 1.5, 2.0])


@pytest.mark.parametrize(
    "overrides",
    [
        ["psf.kind=motion", "psf.keyframes=[{frame=0, length=8.0, angle=170}, {frame=10, length=12.0, angle=10}]"],
        ["psf.kind=gaussian", "psf.keyframes=[{frame=0, sigma=1.0}, {frame=4, sigma=2.0}]"],
    ],
    ids=["motion", "gaussian"],
)
def test_keyframes_that_give_every_parameter_need_no_section_value(overrides):
    config = load_config(None, overrides)
    assert isinstance(schedule_for(config.psf), KeyframeSchedule)


def test_schedule_for_picks_the_schedule():
    assert isinstance(schedule_for(load_config(None, ["psf.kind=auto"]).psf), BlurTracker)
    tracker = schedule_for(load_config(None, ["psf.kind=auto-motion", "psf.smoothing_frames=5"]).psf)
    assert isinstance(tracker, BlurTracker) and tracker.family == "motion" and tracker.lookahead_frames == 5
    assert schedule_for(load_config(None, ["psf.kind=auto-defocus"]).psf).family == "defocus"
    fixed = schedule_for(load_config(None, ["psf.kind=defocus", "psf.radius=2.5"]).psf)
    assert isinstance(fixed, FixedSchedule)
    assert fixed.push(item(3))[0].spec == KernelSpec.of("defocus", radius=2.5)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["psf.kind=auto", "psf.keyframes=[{frame=0, radius=2.0}, {frame=10, radius=4.0}]"],
         "psf.keyframes: only for"),
        (["psf.kind=defocus", "psf.keyframes=[{frame=0, radius=2.0}, {time_s=1.0, radius=4.0}]"],
         "psf.keyframes: use frame numbers or times"),
        (["psf.kind=defocus", "psf.keyframes=[{frame=10, radius=2.0}, {frame=5, radius=4.0}]"],
         "psf.keyframes: must be in increasing order"),
        (["psf.kind=defocus", "psf.keyframes=[{frame=5, radius=2.0}, {frame=5, radius=4.0}]"],
         "psf.keyframes: must be in increasing order"),
        (["psf.kind=defocus", "psf.keyframes=[{frame=0, time_s=0.0, radius=2.0}, {frame=5, radius=4.0}]"],
         "psf.keyframes.0: needs exactly one of frame or time_s"),
        (["psf.kind=defocus", "psf.keyframes=[{radius=2.0}]"],
         "psf.keyframes.0: needs exactly one of frame or time_s"),
        (["psf.kind=defocus", "psf.keyframes=[{frame=0, length=2.0}]"],
         "psf.keyframes.0.length: does not apply"),
    ],
)
def test_keyframe_config_errors(overrides, expected):
    with pytest.raises(ConfigError) as raised:
        load_config(None, overrides)
    problems = raised.value.problems
    assert any(p.startswith(expected) for p in problems), problems
    assert all(p.startswith("psf.") for p in problems), problems


# -- never confidently wrong ----------------------------------------------------------------------


def radial(margin, sigma=2.0, radius=3.1, confidence=0.7):
    """An "auto" frame's estimate with a Gaussian fit whose gain beats the disk's by ``margin``
    (its own verdict the Gaussian only past the per-frame advantage)."""
    disk_score = 0.3 * confidence
    kind = "gaussian" if margin > GAUSSIAN_ADVANTAGE else "defocus"
    return BlurEstimate(kind, {"defocus": DefocusFit(radius, disk_score),
                               "gaussian": GaussianFit(sigma, disk_score * (1 + margin))}, confidence)


def test_a_gaussian_shot_whose_first_frames_fall_short_of_the_margin_stays_gaussian():
    # A Gaussian blur's per-frame margin over the disk scatters about the per-frame threshold:
    # the shot's first frames (+3 %) are disks on their own, the rest (+6 %) Gaussians. Decided
    # by the window's summed fits, every frame takes the Gaussian and the kind never switches.
    estimates = [radial(0.03)] * 5 + [radial(0.06)] * 20
    rows, _ = run_tracker(estimates, 8)
    assert {row.spec for row in rows} == {KernelSpec.of("gaussian", sigma=2.0)}


def test_a_disk_shot_with_a_few_gaussian_verdicts_stays_a_disk():
    # Disks of radius 3: margins about 0, a few frames past the per-frame threshold (+5 %).
    margins = [0.0, -0.02, 0.05, 0.01, -0.03, 0.05, 0.0, -0.01] * 3
    rows, _ = run_tracker([radial(m) for m in margins], 8)
    assert {row.spec for row in rows} == {KernelSpec.of("defocus", radius=3.1)}


def test_a_lone_confident_estimate_is_applied_neither_to_its_frame_nor_to_its_neighbours():
    # A flat stretch (no blur seen, low confidence) with one frame that found a long vertical
    # streak at full confidence: nothing agrees with it, so nothing is applied.
    estimates = [none(0.05)] * 10 + [motion(30.0, 90.0, 1.0)] + [none(0.05)] * 10
    rows, _ = run_tracker(estimates, 8)
    assert {row.spec.kind for row in rows} == {"none"}


def test_frames_that_show_nothing_take_their_neighbours_kernel():
    # Frames 8-11 see nothing (low confidence "none") inside a steadily defocused shot.
    estimates = [defocus(3.0, 0.6)] * 8 + [none(0.03)] * 4 + [defocus(3.0, 0.6)] * 8
    rows, _ = run_tracker(estimates, 8)
    assert all(row.spec.kind == "defocus" and abs(row.spec.get("radius") - 3.0) <= 0.05 for row in rows)


def test_sharp_frames_vote_none_firmly():
    # Sharp frames (a short streak fits them well: high confidence "none") around three
    # weak defocus estimates: left alone.
    estimates = [none(0.8)] * 8 + [defocus(3.0, 0.3)] * 3 + [none(0.8)] * 8
    rows, _ = run_tracker(estimates, 8)
    assert {row.spec.kind for row in rows} == {"none"}


def test_estimates_that_disagree_are_not_averaged_into_a_kernel():
    # Scattered motion estimates (texture, not blur): no three agree, nothing is applied.
    rng = np.random.default_rng(3)
    estimates = [motion(float(rng.uniform(6, 40)), float(rng.uniform(0, 180)), 0.5) for _ in range(20)]
    rows, _ = run_tracker(estimates, 8)
    assert sum(row.spec.kind != "none" for row in rows) <= 1


def test_a_blur_coming_into_view_is_not_extrapolated_beyond_its_estimates():
    # A pan from a flat wall onto a picture, one shot: frames 0-7 see nothing; from frame 8 the
    # 13 px blur shows, and its first frames, which show the least, estimate it too long (14.2
    # falling to 13 px). A line through them would carry that slope back to the frames before
    # (15.7 px at frame 4); the mean of what the window saw stays within the estimates.
    estimates = ([none(0.02)] * 8 + [motion(length, 30.0, 0.5) for length in (14.2, 13.8, 13.4)]
                 + [motion(13.0, 30.0, 0.5)] * 15)
    rows, _ = run_tracker(estimates, 8)
    taken = [row for row in rows[:8] if row.spec.kind != "none"]
    assert len(taken) >= 4  # the frames before take the shot's kernel ...
    for row in taken:
        assert row.spec.kind == "motion" and 13.0 <= row.spec.get("length") <= 14.2, row  # ... within what was seen


def test_a_focus_pull_that_starts_on_sharp_frames_is_followed_after_its_first_frame():
    # Sharp frames (a firm "none"), then a radius growing 0.1 px per frame: the first blurred
    # frame takes its window's mean (the kernel's frames all lie after it), the rest the line.
    truth = [None] * 10 + [1.5 + 0.1 * i for i in range(30)]
    rows, _ = run_tracker([none(0.6) if t is None else defocus(t, 0.6) for t in truth], 8)
    assert {row.spec.kind for row in rows[:10]} == {"none"}
    errors = [row.spec.get("radius") - t for row, t in zip(rows[10:], truth[10:])]
    assert 0.0 < errors[0] <= 0.3
    assert max(abs(e) for e in errors[1:]) <= 0.05 + 1e-9


# --------------------------------------------------------------------------------------
# psf.estimate_every: the blur estimated on every n-th frame
# --------------------------------------------------------------------------------------


def test_analyse_estimates_only_every_nth_frame_by_number(monkeypatch):
    calls = []

    def fake_analyse_frame(luma, max_value, family, light_table=None):
        calls.append(family)
        return FrameAnalysis(luma, defocus(3.0))

    monkeypatch.setattr("videodeblur.pipeline.schedules.analyse_frame", fake_analyse_frame)
    tracker = BlurTracker("defocus", 8, estimate_every=3)
    analyses = {i: tracker.analyse(item(i)) for i in range(10, 20)}
    # By frame number, not by order of arrival: a preview or a segment that starts at frame 10
    # estimates the frames a whole run does.
    assert [i for i, a in analyses.items() if a.estimate is not None] == [12, 15, 18]
    assert len(calls) == 3
    # The frames between still get their scene-cut signature.
    signature = frame_signature(LUMA, 255.0)
    assert all(np.array_equal(a.signature, signature) for a in analyses.values() if a.estimate is None)


@pytest.mark.parametrize("smoothing_frames, asked, used",
                         [(8, 2, 2), (8, 5, 5), (8, 17, 5), (3, 3, 2), (2, 2, 1), (0, 2, 1)])
def test_estimate_every_leaves_three_estimates_in_a_window(smoothing_frames, asked, used):
    # A window of 2 W + 1 frames must hold the three estimates that have to agree on a kernel
    # (MIN_AGREEING_FRAMES), or one frame's estimate would be applied with no one to disagree.
    assert BlurTracker("auto", smoothing_frames, estimate_every=asked).estimate_every == used


def run_sparse_tracker(estimate_of, count, smoothing_frames, every, signatures=None):
    """Like run_tracker, with only every ``every``-th frame estimated (the others None)."""
    tracker = BlurTracker("auto", smoothing_frames, estimate_every=every)
    rows = []
    for i in range(count):
        signature = SHOT_A if signatures is None else signatures[i]
        estimate = estimate_of(i) if tracker.estimates(i) else None
        rows.extend(tracker.push(item(i), FrameAnalysis(signature, estimate)))
    return rows + tracker.finish()


def test_frames_between_estimates_get_the_smoothed_kernel():
    rows = run_sparse_tracker(lambda i: defocus(3.0), 30, 8, 2)
    check_one_row_per_frame_in_order(rows, 30)
    assert all(row.spec == quantised_spec("defocus", {"radius": 3.0}) for row in rows)
    assert [row.estimate is not None for row in rows] == [i % 2 == 0 for i in range(30)]


def test_a_ramp_is_followed_between_estimates():
    truth = np.linspace(2.0, 6.0, 40)
    rows = run_sparse_tracker(lambda i: defocus(truth[i]), 40, 8, 2)
    used = np.array([row.spec.get("radius") for row in rows])
    # The odd frames' radii lie on the ramp as closely as the estimated frames' (quantised to 0.1).
    assert np.abs(used - truth).max() <= 0.1


def test_a_shot_whose_frames_were_not_estimated_is_left_alone():
    # A one-frame shot at an odd frame number has no estimate of its own shot: it is left as
    # decoded, not given the neighbouring shot's kernel.
    signatures = [SHOT_A] * 5 + [SHOT_B] + [SHOT_A] * 6
    rows = run_sparse_tracker(lambda i: defocus(3.0), 12, 8, 2, signatures)
    assert rows[5].scene_cut and rows[5].spec == KernelSpec("none")
    assert rows[4].spec.kind == rows[7].spec.kind == "defocus"


def test_estimate_every_is_a_config_key():
    assert MAX_ESTIMATE_EVERY == (2 * MAX_SMOOTHING_FRAMES + 1) // MIN_AGREEING_FRAMES
    assert load_config(None).psf.estimate_every == 2
    assert schedule_for(load_config(None, ["psf.kind=auto", "psf.estimate_every=1"]).psf).estimate_every == 1
    with pytest.raises(ConfigError, match="psf.estimate_every: must be an integer from 1"):
        load_config(None, ["psf.estimate_every=0"])
