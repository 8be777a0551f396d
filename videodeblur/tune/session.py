"""What the tuning page shows: a video's frames restored with settings changed one at a time.

A :class:`TuneSession` keeps one video open with a base config (the ``--config`` file and
``--set`` overrides) and renders any frame with the page's settings applied on top, as the
``--set`` strings of the command line. It renders through the preview (the same engine and
restorer as a run), so a frame restored here is exactly the frame ``run`` writes with the saved
config; what it adds is speed: the decoded frame and its kernel are kept, and only the
restoration is redone when a restoration setting changes.

No I/O of its own beyond the video and the one file it may save; no threads (the server runs
it on one worker thread).
"""

from __future__ import annotations

import math
import shlex
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from videodeblur import registry
from videodeblur.cache import LockedLRU
from videodeblur.config import Config, DeconvolutionSection, PsfSection, config_to_toml, load_config
from videodeblur.config.models import LIGHT, PLANES
from videodeblur.config.psf_section import MAX_ESTIMATE_EVERY, MAX_SMOOTHING_FRAMES
from videodeblur.errors import InvalidParameterError, OutputError
from videodeblur.io import FrameItem
from videodeblur.io.paths import atomic_output
from videodeblur.io.planes import plane_shapes
from videodeblur.pipeline.restorer import FrameRestorer
from videodeblur.pipeline.runtime import single_threaded_blas
from videodeblur.preview import Previewer, compose, describe_restoration

#: What the page can show as its main image (the original comes on its own, for the split).
VIEWS = ("original", "restored", "diff")
#: Image formats served: JPEG for the view (small, fast), PNG for the exact frame on demand.
FORMATS = {"jpeg": ".jpg", "png": ".png"}
JPEG_QUALITY = 90
#: Decoded frames (with their kernels) and configs' restorers kept between requests.
FRAMES_KEPT = 6
RESTORERS_KEPT = 4
#: The regularisation slider covers 10**-5 .. 10**0 (log scale).
NSR_LOG10_RANGE = (-5.0, 0.0)


class Superseded(Exception):
    """A newer request for the view arrived before this one was rendered (it is dropped)."""


@dataclass(frozen=True)
class Image:
    """An encoded image and what it shows."""

    data: bytes
    media_type: str
    label: str


def controls() -> list[dict]:
    """The page's controls, each named by its config key, with the registry's bounds and steps.

    Derived from :mod:`videodeblur.registry` and the config's choices, so a new kind, method or
    parameter appears on the page without touching it. Paths (``psf.path``) are not offered:
    the page never names a file the server would read.
    """
    items: list[dict] = [{"key": "psf.kind", "type": "choice", "choices": list(registry.psf_kind_names()),
                          "description": "the blur model; auto kinds estimate it in every frame"}]
    for name, parameter in registry.all_parameters().items():  # a name means the same in every kind
        if parameter.is_path:
            continue
        low, high = parameter.typical
        bound_min = None
        if parameter.minimum is not None:
            bound_min = parameter.minimum + (parameter.step if parameter.exclusive_minimum else 0.0)
        items.append({"key": f"psf.{name}", "type": "number",
                      "kinds": [k.name for k in registry.PSF_KINDS.values()
                                if any(p.name == name for p in k.numeric_parameters)],
                      "min": max(bound_min, low) if bound_min is not None else low,
                      "max": high, "step": parameter.step, "unit": parameter.unit,
                      "bound_min": bound_min, "bound_max": parameter.maximum,
                      "default": parameter.default if parameter.default is not None else low,
                      "description": parameter.description})
    psf_defaults, defaults = _field_defaults(PsfSection), _field_defaults(DeconvolutionSection)
    items.append({"key": "psf.smoothing_frames", "type": "number", "kinds": list(registry.estimated_kinds()),
                  "min": 0, "max": MAX_SMOOTHING_FRAMES, "step": 1, "unit": "frames",
                  "default": psf_defaults["smoothing_frames"], "bound_min": 0, "bound_max": MAX_SMOOTHING_FRAMES,
                  "description": "estimates smoothed over this many frames before and after"})
    items.append({"key": "psf.estimate_every", "type": "number", "kinds": list(registry.estimated_kinds()),
                  "min": 1, "max": 5, "step": 1, "unit": "frames", "default": psf_defaults["estimate_every"],
                  "bound_min": 1, "bound_max": MAX_ESTIMATE_EVERY,
                  "description": "the blur is estimated on every this-many-th frame; 1: every frame (slower)"})
    items += [
        {"key": "deconvolution.method", "type": "choice", "choices": list(registry.METHODS),
         "description": "; ".join(f"{m.name}: {m.description}" for m in registry.METHODS.values())},
        {"key": "deconvolution.nsr", "type": "regularisation", "min": NSR_LOG10_RANGE[0],
         "max": NSR_LOG10_RANGE[1], "step": 0.05, "default": defaults["nsr"],
         "description": "the regularisation: auto (from each frame) or a value > 0, larger is gentler"},
        {"key": "deconvolution.strength", "type": "number", "min": 0.0, "max": 1.0, "step": 0.05, "unit": "",
         "bound_min": 0.0, "bound_max": 1.0, "default": defaults["strength"],
         "description": "how much of the restoration is applied: 0 the input, 1 all of it"},
        {"key": "deconvolution.edgetaper", "type": "toggle", "default": defaults["edgetaper"],
         "description": "taper the borders so that no ripples start at the frame's edges"},
        {"key": "deconvolution.guard", "type": "toggle", "default": defaults["guard"],
         "description": "restore a frame with a smaller kernel where it shows less blur than the kernel given, "
                        "a larger one where it shows more"},
        {"key": "deconvolution.point_lights", "type": "toggle", "default": defaults["point_lights"],
         "description": "in linear light, take lamps' and speculars' rings out so that they come back as points"},
        {"key": "deconvolution.light", "type": "choice", "choices": list(LIGHT),
         "description": "where the blur is undone: linear light, the encoded values, or auto from the tags"},
        {"key": "deconvolution.planes", "type": "choice", "choices": list(PLANES),
         "description": "luma only, or every plane"},
    ]
    return items


def _field_defaults(section) -> dict[str, object]:
    """A config section's declared fields and their defaults, by name."""
    return {name: field.default for name, field in section.model_fields.items()}


def control_values(config: Config) -> dict[str, object]:
    """The value of every control in ``config`` (unset parameters as their control's default)."""
    values: dict[str, object] = {"psf.kind": config.psf.kind, "psf.smoothing_frames": config.psf.smoothing_frames,
                                 "psf.estimate_every": config.psf.estimate_every}
    for name in registry.all_parameters():
        value = config.psf.value(name)
        if value is not None and not isinstance(value, str):
            values[f"psf.{name}"] = value
    settings = config.deconvolution
    values.update({"deconvolution.method": settings.method, "deconvolution.nsr": settings.nsr,
                   "deconvolution.strength": settings.strength, "deconvolution.edgetaper": settings.edgetaper,
                   "deconvolution.guard": settings.guard, "deconvolution.point_lights": settings.point_lights,
                   "deconvolution.light": settings.light,
                   "deconvolution.planes": settings.planes})
    return values


def parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    """``"X,Y,W,H"`` in pixels (None or empty: the whole frame)."""
    if not text:
        return None
    try:
        x, y, width, height = (int(part) for part in text.split(","))
    except ValueError:
        raise InvalidParameterError(f"crop must be X,Y,W,H in whole pixels, got {text!r}") from None
    return x, y, width, height


class TuneSession:
    """One video and a base config, rendered with the page's settings on top.

    Parameters
    ----------
    input_path : str or os.PathLike
        The video (only read).
    config_path : str, os.PathLike or None
        The ``--config`` file the settings start from (and may be saved back to).
    overrides : sequence of str
        ``--set`` strings applied after the file.
    save_path : str, os.PathLike or None
        Where "Save config" writes (``--save``).
    """

    def __init__(self, input_path, config_path=None, overrides=(), save_path=None):
        self.input_path = Path(input_path)
        self.config_path = Path(config_path) if config_path is not None else None
        self.base_overrides = list(overrides)
        self.save_path = Path(save_path) if save_path is not None else None
        if self.save_path is not None and self.save_path.suffix.lower() != ".toml":
            raise InvalidParameterError(f"--save '{self.save_path}' must be a .toml file")
        self.base_config = load_config(self.config_path, self.base_overrides)
        self.previewer = Previewer(self.input_path, self.base_config)
        self.info = self.previewer.info
        self._frames: LockedLRU[tuple[FrameItem, object]] = LockedLRU(FRAMES_KEPT)
        self._restorers: LockedLRU[FrameRestorer] = LockedLRU(RESTORERS_KEPT)
        self._newest: dict[str, int] = {}
        self._newest_lock = threading.Lock()

    def close(self) -> None:
        self.previewer.close()

    # -- what the page needs to draw itself ---------------------------------------------

    def description(self) -> dict:
        """The clip, the controls and their starting values, for the page."""
        frames = self.previewer.frames
        rate = self.info.average_rate
        return {
            "input": self.input_path.name,
            "width": self.info.width, "height": self.info.height,
            "frame_count": frames.frame_count,
            "fps": float(rate) if rate else None,
            "duration_s": frames.end_s(),
            "controls": controls(),
            "values": control_values(self.base_config),
            "keyframes": len(self.base_config.psf.keyframes),
            "save_path": str(self.save_path) if self.save_path else None,
            "config_path": str(self.config_path) if self.config_path else None,
            "views": list(VIEWS),
        }

    def time_s(self, index: int) -> float:
        return self.previewer.frames.time_s(self.previewer.frames.check(index))

    # -- settings ----------------------------------------------------------------------------

    def config(self, settings=()) -> Config:
        """The base config with the page's ``settings`` (``KEY=VALUE`` strings) applied.

        Raises ConfigError naming every bad key, exactly as ``--set`` would.
        """
        for text in settings:
            key = str(text).partition("=")[0].strip()
            if key == "psf.path" or key.startswith("output.") or key.startswith("pipeline."):
                raise InvalidParameterError(f"{key} cannot be set from the tuning page")
        return load_config(self.config_path, [*self.base_overrides, *settings])

    def claim(self, slot: str, sequence: int) -> None:
        """Note that request number ``sequence`` for one of the page's images (``slot``) arrived."""
        with self._newest_lock:
            self._newest[slot] = max(self._newest.get(slot, 0), sequence)

    def _check_current(self, slot: str, sequence: int | None) -> None:
        """Drop a request once a newer one for the same image has arrived (the newest wins)."""
        if sequence and sequence < self._newest.get(slot, 0):
            raise Superseded(sequence)

    # -- rendering ---------------------------------------------------------------------------

    def _restorer(self, config: Config, info=None) -> FrameRestorer:
        info = info or self.info
        key = (config_to_toml(config), info.width, info.height)
        return self._restorers.get(key, lambda: FrameRestorer(config, info))

    def _decoded(self, index: int, config: Config) -> tuple[FrameItem, object]:
        """Frame ``index`` as decoded and the kernel a run with ``config`` restores it with.

        A fixed kernel does not depend on the frame, so the decoded frame is kept whatever the
        settings; an estimated or keyframed one is kept per ``[psf]`` (and [trim], the light).
        """
        restorer = self._restorer(config)
        if restorer.fixed_spec is not None:
            item, _ = self._frames.get(("decoded", index), lambda: self._render(index, restorer))
            return item, restorer.fixed_spec
        psf_key = (index, repr(config.psf), repr(config.trim), restorer.light.description)
        item, row = self._frames.get(psf_key, lambda: self._render(index, restorer))
        return item, row.spec

    def _render(self, index: int, restorer: FrameRestorer) -> tuple[FrameItem, object]:
        rendered = self.previewer.rendered(index, restorer, restore=False)
        return rendered.original, rendered.row

    def restored(self, index: int, settings=(), crop=None, sequence: int | None = None, slot: str = "view"):
        """(original, restored, label, info) of frame ``index``, on ``crop`` if given.

        On a crop only that rectangle is restored (fast tuning of a 4K frame); its borders are
        tapered as a frame's are, so its edges differ from the same pixels of the whole frame.
        The kernel is still the whole frame's.
        """
        config = self.config(settings)
        self._check_current(slot, sequence)
        item, spec = self._decoded(index, config)
        info = self.info
        if crop is not None:
            item, info = self._cropped(item, crop)
        self._check_current(slot, sequence)
        restorer = self._restorer(config, info)
        with single_threaded_blas():  # as in a run: the same rounding
            restored = restorer.restore(item, spec)
        label = describe_restoration(config, spec, restorer, item.index)
        return item, restored, label, info

    def _cropped(self, item: FrameItem, crop) -> tuple[FrameItem, object]:
        x, y, width, height = crop
        info = self.info
        if width <= 0 or height <= 0 or x < 0 or y < 0 or x + width > info.width or y + height > info.height:
            raise InvalidParameterError(f"crop {x},{y},{width},{height} does not fit in the "
                                        f"{info.width}x{info.height} frame")
        shapes = plane_shapes(item.pix_fmt, info.width, info.height)
        # Chroma subsampling: the crop starts and ends on whole chroma samples.
        step_x = max(1, round(info.width / min(s[1] for s in shapes)))
        step_y = max(1, round(info.height / min(s[0] for s in shapes)))
        x0, y0 = x - x % step_x, y - y % step_y
        x1 = min(info.width, math.ceil((x + width) / step_x) * step_x)
        y1 = min(info.height, math.ceil((y + height) / step_y) * step_y)
        planes = []
        for plane, (rows, columns) in zip(item.planes, shapes):
            sx, sy = info.width // columns, info.height // rows
            planes.append(np.ascontiguousarray(plane[y0 // sy : -(-y1 // sy), x0 // sx : -(-x1 // sx)]))
        return replace(item, planes=planes), replace(info, width=x1 - x0, height=y1 - y0)

    def image(self, index: int, view: str = "restored", settings=(), crop=None, image_format: str = "jpeg",
              sequence: int | None = None, slot: str = "view") -> Image:
        """Frame ``index`` as an encoded image: the original, the restored frame or their difference."""
        if view not in VIEWS:
            raise InvalidParameterError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
        if image_format not in FORMATS:
            raise InvalidParameterError(f"format must be one of {', '.join(FORMATS)}, got {image_format!r}")
        if view == "original":
            config = self.config(settings)
            item, _ = self._decoded(index, config)
            info = self.info
            if crop is not None:
                item, info = self._cropped(item, crop)
            rgb, label = self.to_rgb(item, info), "original"
        else:
            original, restored, label, info = self.restored(index, settings, crop, sequence, slot)
            rgb = self.to_rgb(restored, info)
            if view == "diff":
                rgb = compose(self.to_rgb(original, info), rgb, "diff")
        self._check_current(slot, sequence)
        return encode(rgb, image_format, f"frame {index}  t={self.time_s(index):.3f}s  {label}")

    def to_rgb(self, item: FrameItem, info) -> np.ndarray:
        return self.previewer.to_rgb(item, info)

    # -- the estimated track ---------------------------------------------------------------

    def track(self, settings=(), progress=None) -> list[dict]:
        """The blur of every frame with these settings, as a run decides it (estimated kinds).

        One dict per frame: ``frame``, ``time_s``, ``kind`` (the kernel applied), ``value`` (its
        first parameter, the smoothed kernel), ``raw`` (the frame's own estimate of that
        parameter, or None), ``raw_kind``, ``confidence``.
        """
        from videodeblur.pipeline.estimate import estimate_track, raw_value

        config = self.config(settings)
        rows = []
        for row in estimate_track(self.input_path, config, progress=progress):
            spec, estimate = row.spec, row.estimate
            found = estimate.kind if estimate is not None else None
            first = _first_parameter(found) if found else None
            rows.append({
                "frame": row.index, "time_s": row.time_s, "kind": spec.kind,
                "value": _float(spec.get(_first_parameter(spec.kind))) if _first_parameter(spec.kind) else None,
                "raw_kind": found, "raw": _float(raw_value(row, first)) if first else None,
                "confidence": float(estimate.confidence) if estimate is not None else None,
                "scene_cut": bool(row.scene_cut),
            })
        return rows

    # -- saving --------------------------------------------------------------------------------

    def save(self, settings=(), to_config: bool = False) -> dict:
        """Write the effective config with these settings as TOML; return where and the command.

        Only to the ``--save`` path, or with ``to_config`` (the page asked the user first) to
        the ``--config`` file itself. Written through a temporary file and renamed.
        """
        config = self.config(settings)
        if to_config:
            if self.config_path is None:
                raise InvalidParameterError("there is no --config file to save to; start tune with --save FILE.toml")
            target = self.config_path
        elif self.save_path is not None:
            target = self.save_path
        else:
            raise InvalidParameterError("nowhere to save: start tune with --save FILE.toml (or --config FILE)")
        if not target.parent.is_dir():
            raise OutputError(f"cannot save '{target}': directory '{target.parent}' does not exist")
        with atomic_output(target) as temporary:
            Path(temporary).write_text(config_to_toml(config), encoding="utf-8")
        output = self.input_path.with_name(f"{self.input_path.stem}.restored{self.input_path.suffix or '.mp4'}")
        command = shlex.join(["videodeblur", "run", str(self.input_path), "-o", str(output), "--config", str(target)])
        return {"path": str(target), "command": command}


def _first_parameter(kind: str | None) -> str | None:
    entry = registry.PSF_KINDS.get(kind) if kind else None
    return entry.numeric_parameters[0].name if entry is not None and entry.numeric_parameters else None


def _float(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def encode(rgb: np.ndarray, image_format: str, label: str) -> Image:
    """RGB (uint8 or uint16) as JPEG (8-bit) or PNG (the exact values)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    if image_format == "jpeg":
        if bgr.dtype != np.uint8:
            bgr = (bgr >> 8).astype(np.uint8)  # the view is 8-bit; PNG keeps all the bits
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        media_type = "image/jpeg"
    else:
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        media_type = "image/png"
    if not ok:
        raise OutputError(f"cannot encode the frame as {image_format}")
    return Image(data.tobytes(), media_type, label)
