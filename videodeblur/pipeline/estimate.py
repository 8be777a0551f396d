"""``videodeblur estimate``: the blur found in every frame, raw and smoothed, as CSV (and a plot).

The rows come from the same schedule a ``run`` uses (:func:`schedule_for`), so the smoothed
columns are exactly the kernels a run with the same config restores the frames with.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from videodeblur.errors import InvalidParameterError, OutputError
from videodeblur.io import FrameItem, VideoReader
from videodeblur.io.paths import atomic_output
from videodeblur.pipeline.blur_track import TrackRow, schedule_for
from videodeblur.pipeline.runner import (
    _resolve_config,
    no_numpy_hugepages,
    result_of,
    single_threaded_blas,
    trim_arguments,
)

#: Columns of the track CSV, in order.
CSV_COLUMNS = (
    "frame", "time", "kind", "kind_raw", "confidence",
    "length_raw", "length_smoothed", "angle_raw", "angle_smoothed", "radius_raw", "radius_smoothed",
    "sigma_smoothed",
)


def estimate_track(input_path, config=None, *, progress=None) -> list[TrackRow]:
    """The kernel of every decoded frame of a video, as a run with ``config`` would use it.

    Parameters
    ----------
    input_path : str or os.PathLike
        The video.
    config : Config, str, os.PathLike or None
        Its ``[psf]``, ``[pipeline]`` and ``[trim]`` sections are used.
    progress : callable or None
        Called with no argument after each frame (e.g. a progress bar's ``update``).

    Returns
    -------
    list of TrackRow
        One per decoded frame, in order.
    """
    config = _resolve_config(config)
    pipeline, trim = config.pipeline, config.trim
    range_arguments = trim_arguments(trim)
    rows: list[TrackRow] = []
    with VideoReader(input_path, tolerate_decode_errors=pipeline.tolerate_decode_errors,
                     max_frame_pixels=pipeline.max_frame_pixels) as reader:
        info = reader.info
        schedule = schedule_for(config.psf, info, float((1 << info.bit_depth) - 1))
        workers = config.resolved_workers()
        pending: deque = deque()
        with single_threaded_blas(), no_numpy_hugepages(), ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="videodeblur-estimate") as pool:

            def push_oldest() -> None:
                item, future = pending.popleft()
                analysis = result_of(future, f"estimating the blur of frame {item.index}") if future else None
                rows.extend(schedule.push(item, analysis))
                if progress is not None:
                    progress()

            try:
                for event in reader.events(**range_arguments):
                    if not isinstance(event, FrameItem):
                        continue
                    future = pool.submit(schedule.analyse, event) if schedule.needs_analysis else None
                    pending.append((event, future))
                    while len(pending) > 2 * workers:
                        push_oldest()
                while pending:
                    push_oldest()
            finally:
                for _, future in pending:
                    if future is not None:
                        future.cancel()
        rows.extend(schedule.finish())
    if not rows:
        raise InvalidParameterError(f"input '{input_path}': no video frame decoded in the selected range")
    return rows


def _number(value) -> str:
    return "" if value is None else f"{value:.3f}"


def track_csv(rows) -> str:
    """The rows as CSV text with :data:`CSV_COLUMNS` (empty cells where a value does not apply)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        estimate, spec = row.estimate, row.spec
        writer.writerow([
            row.index, _number(row.time_s), spec.kind, estimate.kind if estimate is not None else "",
            _number(estimate.confidence) if estimate is not None else "",
            _number(_raw(row, "motion", "length_px")), _number(spec.length_px),
            _number(_raw(row, "motion", "angle_deg")), _number(spec.angle_deg),
            _number(_raw(row, "defocus", "radius_px")), _number(spec.radius_px),
            _number(spec.sigma_px),
        ])
    return buffer.getvalue()


def write_track_csv(path, rows) -> None:
    """Write :func:`track_csv` to ``path`` atomically (a temporary file renamed when complete)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"output '{path}': directory '{path.parent}' does not exist")
    with atomic_output(path) as temporary:
        try:
            Path(temporary).write_text(track_csv(rows), encoding="utf-8")
        except OSError as error:
            raise OutputError(f"output '{path}': cannot write ({error.strerror})") from None


def plot_track(path, rows, title: str = "") -> None:
    """Plot raw and smoothed parameters over time as a PNG (needs matplotlib: ``pip install videodeblur[plot]``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidParameterError(
            "--plot needs matplotlib: pip install 'videodeblur[plot]' (the CSV does not)"
        ) from None
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InvalidParameterError(f"plot '{path}' must be a .png file")
    x = [row.time_s if row.time_s is not None else row.index for row in rows]
    series = {
        "length (px)": ([_raw(row, "motion", "length_px") for row in rows], [row.spec.length_px for row in rows]),
        "angle (deg)": ([_raw(row, "motion", "angle_deg") for row in rows], [row.spec.angle_deg for row in rows]),
        "radius (px)": ([_raw(row, "defocus", "radius_px") for row in rows], [row.spec.radius_px for row in rows]),
    }
    series = {name: values for name, values in series.items() if any(v is not None for v in values[0] + values[1])}
    figure, axes = plt.subplots(max(1, len(series)) + 1, 1, sharex=True, figsize=(10, 2.2 * (len(series) + 1)))
    for axis, (name, (raw, smoothed)) in zip(axes, series.items()):
        axis.plot(x, [float("nan") if v is None else v for v in raw], ".", ms=3, color="0.6", label="raw")
        axis.plot(x, [float("nan") if v is None else v for v in smoothed], "-", color="C0", label="smoothed (used)")
        axis.set_ylabel(name)
        axis.legend(loc="upper right", fontsize="small")
    confidence = [row.estimate.confidence if row.estimate is not None else float("nan") for row in rows]
    axes[-1].plot(x, confidence, "-", color="C2")
    for row, position in zip(rows, x):
        if row.scene_cut and row is not rows[0]:
            for axis in axes:
                axis.axvline(position, color="C3", lw=0.8, ls="--")
    axes[-1].set_ylabel("confidence")
    axes[-1].set_ylim(0, 1.05)
    axes[-1].set_xlabel("time (s)")
    if title:
        axes[0].set_title(title)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(str(temporary), format="png", dpi=100)
    plt.close(figure)


def _raw(row, kind, attribute):
    """A raw parameter of a row, where the frame itself decided ``kind`` (else None)."""
    estimate = row.estimate
    if estimate is None or estimate.kind != kind:
        return None
    fit = estimate.motion if kind == "motion" else estimate.defocus
    return getattr(fit, attribute)
