"""``videodeblur estimate``: the blur found in every frame, raw and smoothed, as CSV (and a plot).

The rows come from the same schedule a ``run`` uses (:func:`schedule_for`), so the smoothed
columns are exactly the kernels a run with the same config restores the frames with.
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from videodeblur import registry
from videodeblur.core import estimation
from videodeblur.errors import InputError, InvalidParameterError, OutputError
from videodeblur.io import VideoReader
from videodeblur.io.paths import atomic_output
from videodeblur.pipeline.engine import FrameEngine, RenderedFrame, decoded_in_background
from videodeblur.pipeline.runner import resolve_config, trim_arguments
from videodeblur.pipeline.runtime import run_as_background_worker, run_settings
from videodeblur.pipeline.restorer import FrameRestorer
from videodeblur.pipeline.schedules import TrackRow


def _csv_columns() -> tuple[str, ...]:
    """frame, time, kind, kind_raw, confidence, then the raw and smoothed value of every estimated
    parameter (in the estimator's family order), then the smoothed value of the other keyframeable
    parameters."""
    columns, seen = ["frame", "time", "kind", "kind_raw", "confidence"], set()
    for family in registry.estimator_families():
        for parameter in registry.kind_for_family(family).numeric_parameters:
            columns += [f"{parameter.name}_raw", f"{parameter.name}_smoothed"]
            seen.add(parameter.name)
    for kind in registry.PSF_KINDS.values():
        if kind.keyframeable:
            columns += [f"{p.name}_smoothed" for p in kind.numeric_parameters if p.name not in seen]
    return tuple(columns)


#: Columns of the track CSV, in order.
CSV_COLUMNS = _csv_columns()


class _TrackSink:
    """The engine's sink for ``estimate``: one row per frame (and a progress callback)."""

    def __init__(self, progress):
        self.rows: list[TrackRow] = []
        self.progress = progress

    def frame(self, rendered: RenderedFrame) -> None:
        self.rows.append(rendered.row)
        if self.progress is not None:
            self.progress()

    def packet(self, packet) -> None:
        pass


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
    config = resolve_config(config)
    pipeline = config.pipeline
    sink = _TrackSink(progress)
    with VideoReader(input_path, tolerate_decode_errors=pipeline.tolerate_decode_errors,
                     max_frame_pixels=pipeline.max_frame_pixels) as reader:
        # The schedule a run uses: estimated in the light the run restores in.
        schedule = FrameRestorer(config, reader.info).schedule()
        workers = config.resolved_workers()
        with run_settings(), ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="videodeblur-estimate",
                initializer=run_as_background_worker) as pool:
            frames = (event for event in reader.events(**trim_arguments(config.trim)) if not _is_packet(event))
            with decoded_in_background(frames) as decoded:
                FrameEngine(schedule, None, pool, 2 * workers).run(decoded, sink)
    if not sink.rows:
        raise InputError(f"input '{input_path}': no video frame decoded in the selected range")
    return sink.rows


def _is_packet(event) -> bool:
    return not hasattr(event, "planes")


def _number(value) -> str:
    return "" if value is None else f"{value:.3f}"


def track_csv(rows) -> str:
    """The rows as CSV text with :data:`CSV_COLUMNS` (empty cells where a value does not apply)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        estimate, spec = row.estimate, row.spec
        cells = {
            "frame": row.index, "time": _number(row.time_s), "kind": spec.kind,
            "kind_raw": estimate.kind if estimate is not None else "",
            "confidence": _number(estimate.confidence) if estimate is not None else "",
        }
        for column in CSV_COLUMNS[5:]:
            name, _, which = column.rpartition("_")
            cells[column] = _number(spec.get(name) if which == "smoothed" else raw_value(row, name))
        writer.writerow([cells[column] for column in CSV_COLUMNS])
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
    series = {}
    for parameter in registry.all_parameters().values():
        if not parameter.is_path:
            label = f"{parameter.name} ({parameter.unit})" if parameter.unit else parameter.name
            series[label] = ([raw_value(row, parameter.name) for row in rows],
                             [row.spec.get(parameter.name) for row in rows])
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


def raw_value(row, name: str):
    """A frame's own (raw) value of parameter ``name``, where the frame itself decided a kind
    that has it (else None)."""
    estimate = row.estimate
    if estimate is None or estimate.kind not in estimation.FAMILIES:
        return None
    return estimate.fit(estimate.kind).values.get(name)
