"""Temporal smoothing of per-frame blur parameters, and scene-cut detection.

The smoother has a finite support: the smoothed value of frame ``i`` depends only on the raw
estimates of frames ``i - W .. i + W`` of the same scene. That is what lets a preview of one
frame reproduce a full run exactly from a few neighbouring frames (a Kalman filter's state
would depend on every earlier frame). Within that window it is

1. robust: a confidence-weighted median and the spread of the residuals reject outliers
   (a frame whose estimate jumped on a flash or a cut-away);
2. lag-free on ramps: a weighted local linear fit (tricube weights in time times each frame's
   confidence) evaluated at the frame itself follows a focus pull or an accelerating pan
   without the delay of a moving average;
3. confidence-aware: a low-confidence frame has little weight in every window, its own
   included, so it takes its value from its neighbours.

Pure functions on arrays: no I/O, no threads.
"""

from __future__ import annotations

import numpy as np

from videodeblur.errors import InvalidParameterError

#: Residuals beyond this many robust standard deviations are outliers; the deviation is read
#: from the 75th percentile of the residuals (1.15 sigma for normal ones) rather than their
#: median, which is 0 when half of a window agrees exactly and would then reject the other half ...
OUTLIER_SIGMAS = 3.0
#: ... but never below this distance in parameter units (px): estimates that agree to within
#: it are never rejected, however steady the rest of the window is.
OUTLIER_FLOOR = 0.75
#: Weight every frame keeps however low its confidence, so a window of low-confidence frames
#: still averages them instead of dividing by zero.
MIN_WEIGHT = 1e-3
#: Scene cut: mean absolute difference of consecutive frame signatures (values in [0, 1]).
SCENE_CUT_THRESHOLD = 0.12
#: Frame signatures are thumbnails of this size (columns, rows).
SIGNATURE_SHAPE = (32, 18)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The lower weighted ``q``-quantile of ``values`` (non-negative ``weights``)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    k = int(np.searchsorted(cumulative, q * cumulative[-1]))
    return float(values[order][min(k, len(values) - 1)])


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Median of ``values`` with non-negative ``weights`` (the lower weighted median)."""
    return weighted_quantile(values, weights, 0.5)


def smooth_at(offsets, values, confidences, half_window: int, follow_ramp: bool = True) -> np.ndarray:
    """Robust local-linear estimate of a parameter track at offset 0.

    Parameters
    ----------
    offsets : array_like of int
        Frame offsets of the samples relative to the frame being smoothed (0 is that frame);
        only samples of the same scene should be given.
    values : array_like, shape (n,) or (n, d)
        The raw parameter(s) of each sample (e.g. ``radius``, or ``(L cos 2a, L sin 2a)``).
    confidences : array_like, shape (n,)
        0..1 per sample.
    half_window : int
        ``W``: samples farther than ``W`` frames get no weight.
    follow_ramp : bool
        Fit a line and read it at offset 0 (the default). False: the robust weighted mean, for
        a frame the samples do not surround where no ramp is known to go on (see
        :func:`videodeblur.pipeline.schedules.smoothed_spec`).

    Returns
    -------
    numpy.ndarray
        Shape ``(d,)``: the smoothed value at offset 0.
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    confidences = np.asarray(confidences, dtype=np.float64)
    if len(offsets) == 0 or len(offsets) != len(values) or len(offsets) != len(confidences):
        raise InvalidParameterError("smooth_at needs equally many offsets, values and confidences (at least one)")
    if half_window < 0:
        raise InvalidParameterError(f"half_window must be >= 0, got {half_window}")
    distance = np.abs(offsets) / (half_window + 1.0)
    tricube = np.clip(1.0 - distance**3, 0.0, None) ** 3
    weights = tricube * np.maximum(np.clip(confidences, 0.0, 1.0), MIN_WEIGHT)
    if not np.any(weights > 0):
        return values[np.argmin(np.abs(offsets))]
    # 1. Outliers: far from the weighted median by more than a few robust deviations.
    centre = np.array([weighted_median(values[:, j], weights) for j in range(values.shape[1])])
    residual = np.linalg.norm(values - centre, axis=1)
    # The spread counts every sample of the window alike (confidence only, not distance): at
    # the start of a shot the frame itself has most of the tricube weight, and an outlier there
    # must not widen the spread that is meant to reject it.
    spread = weighted_quantile(residual, np.maximum(np.clip(confidences, 0.0, 1.0), MIN_WEIGHT) * (tricube > 0), 0.75) / 1.15
    inlier = residual <= max(OUTLIER_SIGMAS * spread, OUTLIER_FLOOR)
    weights = np.where(inlier, weights, 0.0)
    # 2. Weighted least-squares line through the inliers, read at offset 0 (also at the end of
    #    a shot, where all samples are on one side: a ramp is followed to its last frame). With
    #    fewer than 3 inliers or offsets that hardly spread, the weighted mean.
    total = weights.sum()
    mean_offset = float(weights @ offsets) / total
    spread_offset = float(weights @ (offsets - mean_offset) ** 2) / total
    mean_value = (weights @ values) / total
    if not follow_ramp or spread_offset < 0.25 or np.count_nonzero(weights) < 3:
        return mean_value
    slope = (weights * (offsets - mean_offset)) @ (values - mean_value) / (total * spread_offset)
    return mean_value + slope * (0.0 - mean_offset)


def frame_signature(luma: np.ndarray, max_value: float) -> np.ndarray:
    """A small float32 thumbnail of a luma plane in [0, 1], for scene-cut detection."""
    import cv2

    luma = np.asarray(luma)
    # Every 4th pixel is plenty for a 32x18 thumbnail, and 16 times cheaper than the full plane.
    step = max(1, min(luma.shape[0] // (4 * SIGNATURE_SHAPE[1]), luma.shape[1] // (4 * SIGNATURE_SHAPE[0]), 4))
    plane = luma[::step, ::step].astype(np.float32) * np.float32(1.0 / max_value)
    return cv2.resize(plane, SIGNATURE_SHAPE, interpolation=cv2.INTER_AREA)


def is_scene_cut(previous: np.ndarray | None, current: np.ndarray, threshold: float = SCENE_CUT_THRESHOLD) -> bool:
    """Whether ``current`` starts a new shot after ``previous`` (True for the first frame)."""
    if previous is None:
        return True
    return float(np.mean(np.abs(current - previous))) > threshold
