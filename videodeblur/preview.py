"""Frame-exact preview: one frame before and after, through the same code path as ``run``.

The frame is rendered by the same frame engine as a run (:func:`videodeblur.pipeline.engine.render_range`):
seeking to the key frame before it (with a cached index of frame timestamps), decoding the
neighbours its schedule looks at, and restoring it with the same :class:`FrameRestorer`, so the
restored planes are exactly what the encoder of a full run receives.
Only the display differs: planes are converted to RGB by FFmpeg's scaler with the stream's
colour tags, 8-bit sources to 8-bit RGB, deeper ones to 16-bit RGB.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from videodeblur import registry
from videodeblur.errors import InvalidParameterError, OutputError
from videodeblur.io import FrameItem, VideoReader
from videodeblur.io.frame_index import frame_index
from videodeblur.io.planes import frame_from_item
from videodeblur.pipeline.engine import InlineExecutor, RenderedFrame, render_range
from videodeblur.pipeline.restorer import FrameRestorer
from videodeblur.pipeline.runner import resolve_config
from videodeblur.pipeline.runtime import single_threaded_blas
from videodeblur.pipeline.schedules import TrackRow

#: How a before/after pair is composed (:data:`videodeblur.registry.PREVIEW_MODES`).
MODES = tuple(registry.PREVIEW_MODES)
#: The difference image shows (restored - original) * DIFF_GAIN around mid grey.
DIFF_GAIN = 4.0


def preview_decoder_threads() -> int:
    """Decoder threads for a preview: at least 8, more than FFmpeg's default of cores + 1.

    A preview decodes up to a GOP of frames only to reach one, so decoding speed is its latency.
    H.264 frame threads spend much of their time waiting for rows of the frames they refer to;
    with more frames in flight the cores find more work (docs/performance.md has the figures).
    """
    return max(8, (os.cpu_count() or 1) + 1)


class Previewer:
    """Preview frames of one file with one config; keeps the file open between frames.

    Parameters
    ----------
    input_path : str or os.PathLike
        The video.
    config : Config, str, os.PathLike or None
        As for :func:`videodeblur.deblur_file`.
    """

    def __init__(self, input_path, config=None):
        self.config = resolve_config(config)
        pipeline = self.config.pipeline
        self.reader = VideoReader(input_path, thread_count=preview_decoder_threads(),
                                  tolerate_decode_errors=pipeline.tolerate_decode_errors,
                                  max_frame_pixels=pipeline.max_frame_pixels)
        try:
            self.info = self.reader.info
            self.frames = frame_index(self.reader.path, self.info.stream_index)
            self.restorer = FrameRestorer(self.config, self.info)
        except BaseException:
            self.reader.close()
            raise

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> Previewer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def frame_count(self) -> int:
        return self.frames.frame_count

    def index_at_time(self, time_s: float) -> int:
        """The frame on screen ``time_s`` seconds after the start of the video."""
        if not math.isfinite(time_s) or time_s < 0:
            raise InvalidParameterError(f"time must be a number of seconds >= 0, got {time_s!r}")
        end_s = self.frames.end_s()
        if time_s >= end_s:
            raise InvalidParameterError(f"time {time_s:g} s is past the end of the clip ({end_s:.3f} s)")
        return self.frames.index_at_time(time_s)

    def rendered(self, index: int, restorer: FrameRestorer | None = None, restore: bool = True) -> RenderedFrame:
        """Frame ``index`` as decoded and as restored, with the kernel a full run restores it with.

        For estimated PSFs the neighbouring frames the temporal smoothing looks at are decoded
        and analysed too, through the same schedule and engine as a run, so the kernel is
        exactly the run's; with a ``[trim]`` that holds the frame, only frames inside it.
        ``restorer`` (for another config of the same video) replaces the previewer's own;
        ``restore=False`` decodes and decides the kernel only (``restored`` is the original).
        """
        restorer = restorer or self.restorer
        index = self.frames.check(index)
        found: list[RenderedFrame] = []

        class _Keep:
            def frame(self, rendered: RenderedFrame) -> None:
                found.append(rendered)

            def packet(self, packet) -> None:
                pass

        with single_threaded_blas():  # as in a run: the same rounding
            render_range(self.reader, self.frames, restorer.schedule(), restorer.restore if restore else None,
                         index, index, _Keep(), executor=InlineExecutor(), frames_in_flight=1,
                         context=self.context(index))
        return found[0]

    def context(self, index: int) -> tuple[int, int]:
        """The frames a run smooths over around ``index``: its [trim] range when that holds the frame."""
        trim, count = self.config.trim, self.frame_count
        if trim.start_s is not None or trim.end_s is not None:
            start = self.frames.first_at_or_after(trim.start_s) if trim.start_s is not None else 0
            end = self.frames.first_at_or_after(trim.end_s) if trim.end_s is not None else count
        else:
            start = trim.start_frame or 0
            end = min(count, trim.end_frame) if trim.end_frame is not None else count
        return (start, end) if start <= index < end else (0, count)

    def planes(self, index: int) -> tuple[FrameItem, FrameItem]:
        """(original, restored) planes of frame ``index``, as a full run would encode them."""
        rendered = self.rendered(index)
        return rendered.original, rendered.restored

    def frame_and_row(self, index: int) -> tuple[FrameItem, TrackRow]:
        """Frame ``index`` and the kernel a full run restores it with."""
        rendered = self.rendered(index)
        return rendered.original, rendered.row

    def to_rgb(self, item: FrameItem, info=None) -> np.ndarray:
        """The frame as RGB: uint8 for 8-bit sources, uint16 for deeper ones (H x W x 3).

        ``info`` describes ``item`` when it is not a whole frame of this video (a crop)."""
        info = info or self.info
        frame = frame_from_item(item, info)
        return frame.to_ndarray(format="rgb24" if info.bit_depth <= 8 else "rgb48le")

    def describe_psf(self, row: TrackRow) -> str:
        """The kernel a frame is restored with, the method, where (light) and how much (strength),
        e.g. "defocus radius 3 px, wiener, linear light (bt709, limited range)"; see
        :func:`describe_restoration`."""
        return describe_restoration(self.config, row.spec, self.restorer, row.index)

    def render(self, index: int, mode: str = "split", crop: tuple[int, int, int, int] | None = None, *,
               label: bool = True, upright: bool = False) -> np.ndarray:
        """An RGB image of frame ``index`` in ``mode`` (see :data:`MODES`).

        Labelled with the frame, its time and the kernel, except in mode ``"restored"``, which
        is the restored frame alone, exactly as the run encodes it. ``upright`` turns the image
        as a player shows a clip with a rotation tag (the crop is in stored orientation).
        """
        if mode not in MODES:
            raise InvalidParameterError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        rendered = self.rendered(index)
        row = rendered.row
        before, after = self.to_rgb(rendered.original), self.to_rgb(rendered.restored)
        if crop is not None:
            before, after = _crop(before, crop), _crop(after, crop)
        if upright:
            before, after = self.upright(before), self.upright(after)
        image = compose(before, after, mode)
        if not label or mode == "restored":
            return image
        return _label(image, f"frame {index}  t={self.frames.time_s(index):.3f}s  {self.describe_psf(row)}")

    def upright(self, image: np.ndarray) -> np.ndarray:
        """``image`` turned as the stream's rotation tag tells a player to show it."""
        quarter_turns = round(self.info.rotation_deg / 90.0) % 4
        return np.ascontiguousarray(np.rot90(image, quarter_turns)) if quarter_turns else image


def compose(before: np.ndarray, after: np.ndarray, mode: str) -> np.ndarray:
    """Combine original and restored RGB images: split, side by side, difference or restored."""
    full = np.iinfo(before.dtype).max
    if mode == "restored":
        return after.copy()
    if mode == "side":
        return np.concatenate([before, after], axis=1)
    if mode == "diff":
        difference = (after.astype(np.float32) - before.astype(np.float32)) * DIFF_GAIN + full / 2.0
        return np.clip(np.rint(difference), 0, full).astype(before.dtype)
    # split: left half original, right half restored, a thin white divider between them.
    image = before.copy()
    middle = image.shape[1] // 2
    image[:, middle:] = after[:, middle:]
    image[:, max(middle - 1, 0) : middle + 1] = full
    return image


def _crop(image: np.ndarray, crop) -> np.ndarray:
    x, y, width, height = crop
    rows, columns = image.shape[:2]
    if width <= 0 or height <= 0 or x < 0 or y < 0 or x + width > columns or y + height > rows:
        raise InvalidParameterError(f"crop {x},{y},{width},{height} does not fit in the {columns}x{rows} frame")
    return image[y : y + height, x : x + width]


#: A label covers at most this share of the image's width (it wraps, then shrinks, to fit).
LABEL_WIDTH_SHARE = 0.6
LABEL_MIN_SCALE = 0.3
#: ... and at most this share of its height.
LABEL_HEIGHT_SHARE = 0.4


def _wrap(text: str, scale: float, thickness: int, width_px: int) -> list[str]:
    """``text`` in lines no wider than ``width_px``, broken after "  " and ", "."""
    words = [part for chunk in text.split("  ") for part in _keep_commas(chunk)] or [text]
    lines: list[str] = []
    for word in words:
        candidate = f"{lines[-1]} {word}" if lines else word
        fits = cv2.getTextSize(candidate, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] <= width_px
        if lines and fits:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


def _keep_commas(chunk: str) -> list[str]:
    parts = chunk.split(", ")
    return [part + ("," if n < len(parts) - 1 else "") for n, part in enumerate(parts)]


def describe_restoration(config, spec, restorer: FrameRestorer, frame_index: int) -> str:
    """What frame ``frame_index`` was restored with, as a label says it: the kernel (and whether
    it was estimated), the method, a fixed regularisation, the strength, where (light), and the
    guard's kernel scale where it held the frame back or grew the kernel (after ``restorer``
    restored it)."""
    settings = config.deconvolution
    found = " (estimated)" if config.psf.kind in registry.estimated_kinds() else ""
    nsr = "" if settings.nsr == "auto" else f", nsr {settings.nsr:g}"
    strength = f", strength {settings.strength:g}" if settings.strength != 1.0 else ""
    scale = restorer.guard_scale(frame_index)
    held = (f", held back to {scale:g} x the kernel (the frame shows less blur)" if scale < 1.0 else
            f", grown to {scale:g} x the kernel (the frame shows more blur)" if scale > 1.0 else "")
    return f"{spec.describe()}{found}, {settings.method}{nsr}{strength}, {restorer.light.description}{held}"


def _label(image: np.ndarray, text: str) -> np.ndarray:
    """Draw ``text`` in the top-left corner on a dark band, readable on any picture.

    The text is sized to the image and wrapped so that it covers at most
    :data:`LABEL_WIDTH_SHARE` of its width and :data:`LABEL_HEIGHT_SHARE` of its height. OpenCV draws text on 8-bit images only, so it is
    drawn as an 8-bit coverage mask and blended in: the same for 8- and 16-bit images.
    """
    full = float(np.iinfo(image.dtype).max)
    width_px = max(1, int(image.shape[1] * LABEL_WIDTH_SHARE))
    height_px = max(1, int(image.shape[0] * LABEL_HEIGHT_SHARE))
    scale = max(0.35, image.shape[1] / 1600.0)
    while True:
        thickness = max(1, int(round(scale * 1.5)))
        lines = _wrap(text, scale, thickness, width_px)
        (_, line_px), baseline = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        step = line_px + baseline + 4
        widest = max(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for line in lines)
        if (widest <= width_px and step * len(lines) + 6 <= height_px) or scale <= LABEL_MIN_SCALE:
            break
        scale = max(LABEL_MIN_SCALE, scale * 0.85)
    # On a tiny image, the first lines (frame, time, kernel) are kept and the rest dropped.
    lines = lines[: max(1, (height_px - 6) // step)]
    widest = min(image.shape[1] - 8, widest)
    image = np.ascontiguousarray(image)
    band = image[: step * len(lines) + 6, : widest + 8]
    mask = np.zeros(band.shape[:2], dtype=np.uint8)
    for n, line in enumerate(lines):
        cv2.putText(mask, line, (4, line_px + 4 + n * step), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness,
                    cv2.LINE_AA)
    coverage = (mask.astype(np.float32) / 255.0)[:, :, None]
    darkened = band.astype(np.float32) * 0.35
    band[...] = np.rint(darkened * (1.0 - coverage) + full * coverage).astype(image.dtype)
    return image


def write_png(path, rgb: np.ndarray) -> None:
    """Write an RGB image (uint8 or uint16) as PNG, through a temporary file next to it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InvalidParameterError(f"preview output '{path}' must be a .png file")
    if not path.parent.is_dir():
        raise OutputError(f"output '{path}': directory '{path.parent}' does not exist")
    temporary = path.with_name(f".{path.stem}.partial.png")
    ok = cv2.imwrite(str(temporary), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        temporary.unlink(missing_ok=True)
        raise OutputError(f"output '{path}': cannot write the PNG")
    temporary.replace(path)


#: A contact sheet's before/after pair is at most this wide (each frame half of it).
SHEET_PAIR_WIDTH_PX = 1280


def contact_sheet(previewer: Previewer, count: int, pair_width_px: int | None = None, *, label: bool = True,
                  upright: bool = False) -> np.ndarray:
    """``count`` frames evenly spaced over the clip, each as a before/after pair with its kernel.

    Each pair is shown at the frame's own size up to :data:`SHEET_PAIR_WIDTH_PX` wide, so the
    sharpening can be judged; pairs are laid out two per row.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidParameterError(f"sheet needs a positive number of frames, got {count!r}")
    count = min(count, previewer.frame_count)
    indexes = np.linspace(0, previewer.frame_count - 1, count).round().astype(int)
    tiles = []
    for index in indexes:
        rendered = previewer.rendered(int(index))
        before, after = previewer.to_rgb(rendered.original), previewer.to_rgb(rendered.restored)
        if upright:
            before, after = previewer.upright(before), previewer.upright(after)
        pair = compose(before, after, "side")
        width = min(pair.shape[1], pair_width_px or SHEET_PAIR_WIDTH_PX)
        height = max(1, round(pair.shape[0] * width / pair.shape[1]))
        tile = pair if width == pair.shape[1] else cv2.resize(pair, (width, height), interpolation=cv2.INTER_AREA)
        if label:
            tile = _label(tile, f"frame {index}  t={previewer.frames.time_s(int(index)):.2f}s  "
                                f"{previewer.describe_psf(rendered.row)}")
        tiles.append(tile)
    columns = min(2, count)
    rows = math.ceil(count / columns)
    blank = np.zeros_like(tiles[0])
    grid = [np.concatenate(tiles[r * columns : (r + 1) * columns] + [blank] * max(0, (r + 1) * columns - count),
                           axis=1) for r in range(rows)]
    return np.concatenate(grid, axis=0)


#: Variants a sweep may draw, and the region it shows when none is given.
MAX_SWEEP_VARIANTS = 12
SWEEP_REGION_PX = (480, 270)


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """``"psf.radius=2:4:0.5"`` (from, to inclusive, step) or ``"psf.radius=2,2.5,3"``."""
    key, separator, values = (part.strip() for part in str(text).partition("="))
    if not separator or "." not in key or not values:
        raise InvalidParameterError(f"--sweep must be KEY=FROM:TO:STEP or KEY=A,B,C, e.g. psf.radius=2:4:0.5, "
                                    f"got {text!r}")
    try:
        if ":" in values:
            start, stop, step = (float(v) for v in values.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            numbers = [round(start + n * step, 6) for n in range(count)]
        else:
            numbers = [float(v) for v in values.split(",")]
    except ValueError:
        raise InvalidParameterError(f"--sweep {text}: the values must be FROM:TO:STEP with STEP > 0 and "
                                    "TO >= FROM, or numbers separated by commas") from None
    if not 1 <= len(numbers) <= MAX_SWEEP_VARIANTS:
        raise InvalidParameterError(f"--sweep {text}: {len(numbers)} values; at most {MAX_SWEEP_VARIANTS}")
    return key, numbers


def sweep(input_path, index: int, config_path, overrides, sweep_text: str, crop=None, *,
          label: bool = True, upright: bool = False) -> np.ndarray:
    """Frame ``index`` restored with each value of one config key, side by side, each labelled.

    The first tile is the original. Every tile shows ``crop`` (X, Y, W, H), or a region of
    :data:`SWEEP_REGION_PX` in the frame's centre, so that the variants are seen at 1:1.
    """
    from videodeblur.config import load_config

    key, values = parse_sweep(sweep_text)
    configs = [load_config(config_path, [*overrides, f"{key}={value:g}"]) for value in values]
    tiles = []
    for n, (value, config) in enumerate(zip(values, configs)):
        with Previewer(input_path, config) as previewer:
            if crop is None:
                width, height = (min(a, b) for a, b in zip(SWEEP_REGION_PX, (previewer.info.width, previewer.info.height)))
                crop = ((previewer.info.width - width) // 2, (previewer.info.height - height) // 2, width, height)
            rendered = previewer.rendered(index)
            if n == 0:
                original = _crop(previewer.to_rgb(rendered.original), crop)
                original = previewer.upright(original) if upright else original
                tiles.append(_label(original, "original") if label else original)
            tile = _crop(previewer.to_rgb(rendered.restored), crop)
            tile = previewer.upright(tile) if upright else tile
            tiles.append(_label(tile, f"{key}={value:g}") if label else tile)
    columns = min(4, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    gap = np.zeros((tiles[0].shape[0], 4, 3), tiles[0].dtype)
    blank = np.zeros_like(tiles[0])
    lines = []
    for r in range(rows):
        row = tiles[r * columns : (r + 1) * columns]
        row += [blank] * (columns - len(row))
        parts = [row[0]]
        for tile in row[1:]:
            parts += [gap, tile]
        lines.append(np.concatenate(parts, axis=1))
    return np.concatenate(lines, axis=0)


def preview_frame(input_path, index: int, config=None) -> tuple[np.ndarray, np.ndarray]:
    """Original and restored frame ``index`` as RGB arrays (uint8, or uint16 for deeper sources).

    Examples
    --------
    >>> original, restored = preview_frame("shot.mov", 1432, "defocus")  # doctest: +SKIP
    """
    with Previewer(input_path, config) as previewer:
        original, restored = previewer.planes(index)
        return previewer.to_rgb(original), previewer.to_rgb(restored)
