"""Restore the planes of a frame with the kernel its schedule decided."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from videodeblur.cache import LockedLRU
from videodeblur.config import Config
from videodeblur.errors import ProcessingError
from videodeblur.io import FrameItem, VideoInfo
from videodeblur.io.planes import plane_shapes
from videodeblur.pipeline.kernels import NONE, KernelSpec, kernel_for_plane
from videodeblur.pipeline.light import light_for
from videodeblur.pipeline.schedules import FixedSchedule, schedule_for
from videodeblur.restoration import FrameDeconvolver
from videodeblur.restoration.coding import LinearLight, integer_plane

#: Kernels whose deconvolvers a FrameRestorer keeps (estimated and keyframed blurs change).
DECONVOLVER_CACHE_SIZE = 4
#: Frames whose guard-chosen kernel scale a FrameRestorer remembers (for a preview's label).
GUARD_SCALES_KEPT = 64


class FrameRestorer:
    """Restores the planes of :class:`FrameItem` objects; shared by worker threads.

    Parameters
    ----------
    config : Config
        Uses ``psf``, ``deconvolution.method/nsr/edgetaper/planes/strength/light/guard/point_lights``.
    info : VideoInfo
        Frame size, pixel format, bit depth and colour tags of the stream.

    Attributes
    ----------
    light : LightChoice
        Where the light planes are restored (:mod:`videodeblur.pipeline.light`).

    Notes
    -----
    Deconvolvers (each with its OTF, taper weights and cached filters) are kept per
    :class:`KernelSpec`, the most recently used :data:`DECONVOLVER_CACHE_SIZE` of them, so a
    steady estimated or keyframed blur builds its filters once.
    """

    def __init__(self, config: Config, info: VideoInfo):
        self.config = config
        self.info = info
        self.max_value = float((1 << info.bit_depth) - 1)
        self.scale = 1.0 / self.max_value
        shapes = plane_shapes(info.pix_fmt, info.width, info.height)
        # Y only, or Y, U and V; an alpha plane is never touched.
        restored_planes = 1 if config.deconvolution.planes == "luma" else min(3, len(shapes))
        self._plane_shapes = shapes[:restored_planes]
        self.light = light_for(config.deconvolution.light, info)
        coded = integer_plane(self.max_value)
        # The planes that carry light (luma; every colour plane of RGB formats) are restored in
        # linear light when the choice says so; chroma always as coded values.
        light_planes = range(len(shapes)) if info.pix_fmt.startswith("gbr") else range(1)
        linear = LinearLight(self.light.linearisation(info.bit_depth)) if self.light.linear else None
        self._codings = [linear if linear is not None and plane in light_planes else coded
                         for plane in range(restored_planes)]
        self._deconvolvers: LockedLRU[dict[int, FrameDeconvolver]] = LockedLRU(DECONVOLVER_CACHE_SIZE)
        #: Point lights taken back to points, over every frame restored (any thread).
        self.point_lights = 0
        #: Frames whose light plane had clipped areas, the light they lacked estimated.
        self.clipped_frames = 0
        #: Frames the guard held back to a smaller kernel or restored with a larger one (their
        #: light plane), and the scale of the most recent ones by frame index
        #: (:mod:`videodeblur.restoration.guard`).
        self.held_back = 0
        self.grown = 0
        self._guard_scales: dict[int, float] = {}
        self._count_lock = threading.Lock()
        # (the codings above come first: the schedule estimates in the same light)
        # The schedule decides which kind of kernel this config has (and refuses, here and
        # before any output exists, a video too small to estimate on).
        schedule = self.schedule()
        self.fixed_spec = schedule.spec if isinstance(schedule, FixedSchedule) else None
        if self.fixed_spec is not None:
            self.deconvolvers_for(self.fixed_spec)  # a bad kernel fails here, before any frame is decoded

    def schedule(self):
        """A fresh schedule deciding each frame's kernel for one pass over the video (estimated
        blur is found in the light the frames are restored in)."""
        table = self._codings[0].linearisation.decode_table if self._codings[0].linear else None
        return schedule_for(self.config.psf, self.info, self.max_value, table)

    def deconvolvers_for(self, spec: KernelSpec) -> dict[int, FrameDeconvolver]:
        """The per-plane deconvolvers of one kernel (built once, then cached)."""
        return self._deconvolvers.get(spec, lambda: self._build_deconvolvers(spec))

    def _build_deconvolvers(self, spec: KernelSpec) -> dict[int, FrameDeconvolver]:
        kernel = spec.kernel()
        settings = self.config.deconvolution
        deconvolvers = {}
        for plane, (rows, columns) in enumerate(self._plane_shapes):
            scales = (columns / self.info.width, rows / self.info.height)
            plane_kernel = kernel_for_plane(kernel, *scales)
            deconvolvers[plane] = FrameDeconvolver(
                plane_kernel, (rows, columns), method=settings.method, nsr=settings.nsr, edgetaper=settings.edgetaper,
                strength=settings.strength, guard=settings.guard, point_lights=settings.point_lights,
                kernel_at_scale=lambda scale, scales=scales: kernel_for_plane(spec.kernel_at_scale(scale), *scales))
        return deconvolvers

    def restore_plane(self, deconvolver: FrameDeconvolver, plane: np.ndarray, index: int = 0,
                      frame_index: int | None = None) -> np.ndarray:
        """Restore plane ``index`` of a frame and return it in the same dtype, rounded and clipped."""
        restored = np.empty(plane.shape, dtype=plane.dtype)
        result = deconvolver.restore(plane, out=restored, coding=self._codings[index])
        scale = result.regularisation.kernel_scale if index == 0 else 1.0
        clipped = index == 0 and result.clipped_groups > 0
        if result.point_lights or scale != 1.0 or clipped:
            with self._count_lock:
                self.point_lights += result.point_lights
                self.clipped_frames += clipped
                if scale != 1.0:
                    if scale < 1.0:
                        self.held_back += 1
                    else:
                        self.grown += 1
                    if frame_index is not None:
                        self._guard_scales[frame_index] = scale
                        while len(self._guard_scales) > GUARD_SCALES_KEPT:
                            del self._guard_scales[next(iter(self._guard_scales))]
        return result.image

    def guard_scale(self, frame_index: int) -> float:
        """The kernel scale the guard restored a recent frame's light plane with (1.0: the
        kernel as given)."""
        with self._count_lock:
            return self._guard_scales.get(frame_index, 1.0)

    def restore(self, item: FrameItem, spec: KernelSpec | None = None) -> FrameItem:
        """A new FrameItem with the configured planes restored; timing fields unchanged.

        ``spec`` is the frame's kernel (from the schedule); None means the fixed ``[psf]``
        kernel. A spec of kind ``"none"`` returns the frame unchanged.
        """
        spec = spec if spec is not None else self.fixed_spec
        if spec is None:
            raise ProcessingError(f"frame {item.index}: no kernel decided (psf.kind = {self.config.psf.kind!r})")
        if spec.kind == NONE:
            return item
        planes = list(item.planes)
        for plane_index, deconvolver in self.deconvolvers_for(spec).items():
            planes[plane_index] = self.restore_plane(deconvolver, planes[plane_index], plane_index, item.index)
        return replace(item, planes=planes)
