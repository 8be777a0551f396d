"""The restoration shell: validate, copy/pad/taper into an FFT buffer, run a method, convert the output.

:class:`FrameDeconvolver` is what the video pipeline calls for every plane; the method itself
(Wiener, Tikhonov, total variation) is an object from :mod:`videodeblur.restoration.methods`,
chosen through :mod:`videodeblur.registry`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import cv2
import numpy as np

from videodeblur import registry
from videodeblur.cache import LockedLRU
from videodeblur.core import psf as psf_models
from videodeblur.core.edgetaper import edgetaper_inplace, taper_plan
from videodeblur.core.fourier import fast_shape, psf2otf
from videodeblur.errors import InvalidParameterError
from videodeblur.fft.plans import frame_transform
from videodeblur.restoration import highlights
from videodeblur.restoration.coding import Coding, Scaled
from videodeblur.restoration.guard import GROWN_SCALES, KernelGuard
from videodeblur.restoration.methods import Regularisation


def validate_strength(strength) -> float:
    """A strength from 0 (the input) to 1 (the full restoration), else :class:`InvalidParameterError`."""
    if not isinstance(strength, bool) and isinstance(strength, (int, float, np.integer, np.floating)):
        if 0.0 <= float(strength) <= 1.0:
            return float(strength)
    raise InvalidParameterError(f"strength must be a number from 0 (the input) to 1 (the full restoration), got {strength!r}")


def validate_nsr(nsr):
    """``"auto"`` or a positive finite float, else :class:`InvalidParameterError`."""
    if isinstance(nsr, str) and nsr == "auto":
        return nsr
    if not isinstance(nsr, (bool, str)):
        try:
            value = float(nsr)
        except (TypeError, ValueError):
            value = float("nan")
        if np.isfinite(value) and value > 0:
            return value
    raise InvalidParameterError(f'nsr must be "auto" or a positive number, got {nsr!r}')


#: Clipped pixels are grouped into regions on a grid of cells this many pixels wide (even); at
#: most :data:`MAX_CLIPPED_REGIONS` regions (more: one around them all), and a region covering
#: this share of the frame in one direction takes the whole of it (no wrapped copy).
CLIPPED_GRID_PX, MAX_CLIPPED_REGIONS, CLIPPED_WHOLE_SHARE = 8, 16, 0.75
#: The margin of a region around its group, in kernel widths: the restoration's reach (with
#: less, a group's estimate changes with the region's extent).
CLIPPED_MARGIN_KERNELS = 3


class Restored(NamedTuple):
    """A restored frame, the regularisation its method chose for it, the point lights taken
    back to points and the groups of clipped pixels whose light was estimated
    (:mod:`videodeblur.restoration.highlights`)."""

    image: np.ndarray
    regularisation: Regularisation
    point_lights: int = 0
    clipped_groups: int = 0


class FrameDeconvolver:
    """Restores 2-D frames of one shape blurred by one kernel.

    Everything that depends only on (shape, kernel, settings) is computed once here and in the
    method object: the OTF, the edgetaper weights, the noise-fit frequencies and, per
    regularisation value, the filter itself. One instance may be shared by many threads: each
    thread uses its own FFT buffer, and the method keeps no per-frame state.

    Parameters
    ----------
    kernel : array_like
        The PSF (normalised here).
    frame_shape : tuple of int
        (rows, columns) of the frames to restore.
    method : str
        A registered restoration method (:mod:`videodeblur.registry`): ``"wiener"`` (Wiener
        with a power-law image spectrum, frequency-dependent NSR), ``"tikhonov"`` (gradient
        regulariser) or ``"tv"`` (total variation: sharper and cleaner, about 15 times slower).
    nsr : "auto" or float
        ``"auto"`` estimates noise and image spectrum per frame (see :mod:`videodeblur.core.noise`);
        a number is the NSR (Wiener, constant over frequency), lambda (Tikhonov) or the weight
        of the total variation (tv).
    edgetaper : bool
        Taper the borders before the circular deconvolution (strongly recommended).
    strength : float
        0 gives the input back, 1 (default) the full restoration, in between a blend (folded
        into the filter of a linear method).
    guard : bool
        With a linear method and ``nsr = "auto"``: where a frame shows that the kernel is larger
        than its blur, restore it with a smaller copy of the kernel instead, and (given
        ``kernel_at_scale``) where it shows a larger blur, with a larger copy
        (:mod:`videodeblur.restoration.guard`; the scale is reported in ``regularisation``).
    point_lights : bool
        In linear light, with a linear method: take point lights' rings out of the restored
        frame (:func:`videodeblur.restoration.highlights.clean_points`).
    kernel_at_scale : callable, optional
        ``kernel_at_scale(scale)``: the guard's copy of the kernel ``scale`` times as large
        (e.g. :meth:`videodeblur.pipeline.kernels.KernelSpec.kernel_at_scale`, a model's own
        sizes scaled). Default: the kernel resampled (:func:`videodeblur.core.psf.rescaled`),
        and then the guard only shrinks it.

    Attributes
    ----------
    method : RestorationMethod
        The prepared method (:mod:`videodeblur.restoration.methods`).
    """

    def __init__(self, kernel, frame_shape, method="wiener", nsr="auto", edgetaper=True, strength=1.0, guard=True,
                 point_lights=True, kernel_at_scale: Callable[[float], np.ndarray] | None = None):
        entry = registry.method(method)
        nsr = validate_nsr(nsr)
        self.strength = validate_strength(strength)
        self.method_name = entry.name
        self.edgetaper = bool(edgetaper)
        self.kernel = psf_models.normalise(kernel)
        self._kernel_at_scale = kernel_at_scale or (lambda scale: psf_models.rescaled(self.kernel, scale))
        rows, columns = (int(n) for n in frame_shape)
        if self.kernel.shape[0] > rows or self.kernel.shape[1] > columns:
            raise InvalidParameterError(
                f"the PSF ({self.kernel.shape[1]}x{self.kernel.shape[0]} px) is larger than the frame "
                f"({columns}x{rows} px)"
            )
        if rows < 3 or columns < 3:
            raise InvalidParameterError(f"frames must be at least 3x3 pixels, got {columns}x{rows}")
        self.frame_shape = (rows, columns)
        self.padded_shape = fast_shape(self.frame_shape)
        self.otf = psf2otf(self.kernel, self.padded_shape)
        self.taper_plan = taper_plan(self.padded_shape, self.kernel) if self.edgetaper else None
        implementation = registry.resolve(entry.implementation)
        self.method = implementation(self.otf, self.padded_shape, nsr, self.strength)
        self.guard = bool(guard)
        self.point_lights = bool(point_lights)
        noise = getattr(self.method, "noise", None)
        if self.guard and hasattr(self.method, "guard") and noise is not None and not noise.needs_spatial_noise:
            def rescaled_method(scale: float):
                otf = psf2otf(self._kernel_at(scale), self.padded_shape)
                return implementation(otf, self.padded_shape, nsr, self.strength)

            # A resampled kernel grown is softer than the blur it stands for (a streak's width
            # grows with its length): only a model's own larger sizes are tried.
            self.method.guard = KernelGuard(self.method, self.kernel, rescaled_method,
                                            GROWN_SCALES if kernel_at_scale is not None else ())
        self._spreads: LockedLRU[np.ndarray] = LockedLRU(8)
        self._taper_plans: LockedLRU[object] = LockedLRU(len(GROWN_SCALES))
        self._clipped_filter_cache: LockedLRU[tuple] = LockedLRU(32)

    def restore(self, frame: np.ndarray, out: np.ndarray | None = None, input_scale: float = 1.0,
                output_scale: float = 1.0, output_offset: float = 0.0,
                clip: tuple[float, float] | None = None, coding: Coding | None = None) -> Restored:
        """Restore one 2-D frame of ``frame_shape``.

        The result is ``restored * output_scale + output_offset``, where ``restored`` is the
        restoration of ``frame * input_scale``. For the linear methods the scales and the offset
        cost nothing: they are folded into the cached filter and the spectrum's DC bin.

        Parameters
        ----------
        frame : numpy.ndarray
            2-D frame; ``frame * input_scale`` should be in [0, 1]. Integer planes (uint8,
            uint16) are converted while being copied into the FFT buffer, with no temporary.
        out : numpy.ndarray, optional
            Array of ``frame_shape`` to write the result into, of any real dtype: an integer
            array receives the result truncated (with ``clip`` and ``output_offset = 0.5``,
            rounded into range), converted in the same pass that reads the FFT buffer.
        input_scale : float
            Factor applied to ``frame`` first, e.g. ``1 / 255`` for 8-bit planes.
        output_scale, output_offset : float
            Applied to the restored frame, e.g. ``255`` and ``0.5`` to round to 8 bits by
            truncation.
        clip : tuple of float, optional
            ``(low, high)``: clip the result to this range (after scale and offset). Not
            clipped by default: overshoot is information a float caller may want.
        coding : Coding, optional
            How values enter and leave the transform (:mod:`videodeblur.restoration.coding`),
            e.g. as linear light; replaces the four arguments above.

        Returns
        -------
        Restored
            ``image`` (``out``, or a new float32 array) and the ``regularisation`` chosen
            (with the guard's kernel scale).
        """
        if frame.shape != self.frame_shape:
            raise InvalidParameterError(f"frame shape {frame.shape} does not match {self.frame_shape}")
        if out is not None and (out.shape != self.frame_shape or out.dtype.kind not in "uif"
                                or not out.flags.writeable):
            raise InvalidParameterError(
                f"out must be a writeable real array of shape {self.frame_shape}, got {out.dtype} {out.shape}")
        if coding is None:
            coding = Scaled(input_scale, output_scale, output_offset, clip)
        if out is None:
            out = np.empty(self.frame_shape, dtype=np.float32)
        rows, columns = self.frame_shape
        pair = frame_transform(self.padded_shape)
        buffer = pair.frame
        coding.load(frame, buffer[:rows, :columns])
        if self.strength == 0.0:  # the input as it is, without a round trip through the FFTs
            scaling = coding.scaling()
            kept = buffer[:rows, :columns]
            kept *= np.float32(scaling.input_scale * scaling.output_scale)
            kept += np.float32(scaling.output_offset)
            coding.store(kept, out)
            return Restored(out, Regularisation(0.0, 0.0))
        linear_light = coding.linear and hasattr(self.method, "resolution")
        restored, regularisation, taper_changes, clipped_regions = self._restore_pass(
            frame, coding, pair, self.method, self.taper_plan, linear_light)
        if regularisation.kernel_scale > 1.0 and self.edgetaper:
            # A larger copy reaches further across the borders than the taper made for the
            # kernel given (which rings there): taper for it and restore again, with its method.
            scale = regularisation.kernel_scale
            coding.load(frame, buffer[:rows, :columns])
            restored, regularisation, taper_changes, clipped_regions = self._restore_pass(
                frame, coding, pair, self.method.guard.method_at(scale), self._taper_plan_at(scale), linear_light)
            regularisation = regularisation._replace(kernel_scale=scale)
        points = 0
        if linear_light:
            scaling = coding.scaling()
            scale = scaling.input_scale * scaling.output_scale
            for index, mask, own, light in clipped_regions:
                self._restore_clipped_light(pair.frame, index, mask, own, light, regularisation, scale)
            if self.point_lights:
                points = highlights.clean_points(restored, self.point_spread(regularisation), scale)
        if taper_changes:
            self._untaper(restored, taper_changes, coding)
        coding.store(restored, out)
        return Restored(out, regularisation, points, len(clipped_regions))

    def _restore_pass(self, frame: np.ndarray, coding: Coding, pair, method, plan, linear_light: bool):
        """Pad and taper the loaded buffer of ``pair`` (by ``plan``), keep the clipped regions'
        light, and restore it with ``method``: (restored view, regularisation, the taper's changes
        where they are taken back, clipped regions)."""
        rows, columns = self.frame_shape
        if self.padded_shape != self.frame_shape:
            reflect_pad_inplace(pair.frame, rows, columns)
        taper_changes = [] if self.edgetaper and self.strength != 1.0 else None
        if self.edgetaper:
            edgetaper_inplace(pair.frame, plan, taper_changes)
        # (the forward transform overwrites the light: the clipped regions' is kept first)
        clipped_regions = self._clipped_light_regions(frame, coding, pair.frame) if linear_light else []
        restored, regularisation = method.restore(pair, self.frame_shape, coding, coding.regularisation_weighting(frame))
        return restored, regularisation, taper_changes, clipped_regions

    def _taper_plan_at(self, scale: float):
        """The edgetaper plan of the guard's copy of the kernel at ``scale`` (cached)."""
        return self._taper_plans.get(scale, lambda: taper_plan(self.padded_shape, self._kernel_at(scale)))

    def point_spread(self, regularisation: Regularisation) -> np.ndarray:
        """The restored point spread patch of a linear method at a regularisation (cached),
        times the strength (:func:`videodeblur.restoration.highlights.point_spread_patch`)."""

        def build() -> np.ndarray:
            kernel = self._kernel_at(regularisation.kernel_scale)
            radius = highlights.patch_radius(kernel.shape)
            size = cv2.getOptimalDFTSize(max(64, 4 * radius + 1))
            spectrum = self.method.resolution(psf2otf(kernel, (size, size)), (size, size), regularisation)
            return highlights.point_spread_patch(spectrum, radius) * np.float32(self.strength)

        return self._spreads.get(tuple(regularisation), build)

    def _kernel_at(self, scale: float) -> np.ndarray:
        """The kernel, or the guard's copy of it ``scale`` times as large."""
        return self.kernel if scale == 1.0 else psf_models.normalise(self._kernel_at_scale(scale))

    def _clipped_light_regions(self, frame: np.ndarray, coding: Coding, buffer: np.ndarray) -> list[tuple]:
        """(indexes, clipped blocks, own group's blocks, block means of the light) of each region
        whose clipped light :meth:`_restore_clipped_light` restores (none where ``coding`` knows
        of no clipped group), read from the loaded, tapered ``buffer`` before it is transformed."""
        clipped = coding.clipped(frame)
        if clipped is None:
            return []
        # On an odd axis the blocks leave its last line out, and a region wrapping around it
        # is periodic over one line less than the frame's transform: close enough for blurred light.
        half_shape = (self.padded_shape[0] // 2, self.padded_shape[1] // 2)
        regions = self._clipped_regions(clipped, half_shape)
        if not regions:
            return []
        means = cv2.resize(buffer[: 2 * half_shape[0], : 2 * half_shape[1]], half_shape[::-1],
                           interpolation=cv2.INTER_AREA)
        return [(index, mask, own, means[_grid(index)]) for index, mask, own in regions]

    def _clipped_regions(self, clipped: np.ndarray,
                         half_shape: tuple[int, int]) -> list[tuple[tuple, np.ndarray, np.ndarray]]:
        """The regions :func:`~videodeblur.restoration.highlights.restored_clipped_light` works
        on, on the grid of 2 x 2 block means of the padded frame (``half_shape``): each group of
        at least :data:`~videodeblur.restoration.highlights.MIN_CLIPPED_GROUP_PX` clipped pixels
        with a margin of :data:`CLIPPED_MARGIN_KERNELS` kernel widths around it (see
        :func:`_region_index`). Returns, per region, its indexes into that grid (a slice or an
        index array per axis), its clipped blocks (any pixel clipped) and its own group's."""
        rows, columns = self.frame_shape
        if self.kernel.shape[0] > 2 * half_shape[0] or self.kernel.shape[1] > 2 * half_shape[1]:
            return []  # (a kernel as large as an odd frame: no grid of blocks holds it)
        step = CLIPPED_GRID_PX
        margin = max(8, CLIPPED_MARGIN_KERNELS * max(self.kernel.shape))
        cells = cv2.resize(clipped, (-(-columns // step), -(-rows // step)), interpolation=cv2.INTER_AREA)
        reach = 2 * -(-margin // step) + 1
        grown = cv2.dilate(cells, cv2.getStructuringElement(cv2.MORPH_RECT, (reach, reach)))
        count, labels = cv2.connectedComponents((grown > 0).astype(np.uint8), connectivity=8)
        if count - 1 > MAX_CLIPPED_REGIONS:  # many small groups: one region around them all
            count, labels = 2, (labels > 0).astype(np.int32)
        # Clipped pixels per group, from the cells' shares (255: a whole cell).
        sizes = np.bincount(labels.ravel(), weights=cells.ravel(), minlength=count) * (step * step / 255.0)
        # Each clipped block's group (0: none), on the grid of blocks (MAX_CLIPPED_REGIONS < 256).
        blocks = np.zeros((2 * half_shape[0], 2 * half_shape[1]), np.uint8)
        blocks[:rows, :columns] = clipped[: 2 * half_shape[0], : 2 * half_shape[1]]
        blocks = cv2.resize(blocks, half_shape[::-1], interpolation=cv2.INTER_AREA)
        grid_step = step // 2
        groups = np.zeros((max(half_shape[0], grid_step * labels.shape[0]),
                           max(half_shape[1], grid_step * labels.shape[1])), np.uint8)
        groups[: grid_step * labels.shape[0], : grid_step * labels.shape[1]] = np.repeat(
            np.repeat(labels.astype(np.uint8), grid_step, axis=0), grid_step, axis=1)
        groups = np.where(blocks > 0, groups[: half_shape[0], : half_shape[1]], 0)
        regions = []
        for label in range(1, count):
            if sizes[label] < highlights.MIN_CLIPPED_GROUP_PX:
                continue
            # The group's clipped cells' box and the margin, which may reach beyond the frame's
            # edge (the region then wraps around, as the transform does).
            own = (labels == label) & (cells > 0)
            index = tuple(_region_index(int(span[0]) * grid_step - margin // 2,
                                        int(span[-1] + 1 - span[0]) * grid_step + margin, length)
                          for span, length in zip((np.flatnonzero(own.any(axis=1)), np.flatnonzero(own.any(axis=0))),
                                                  half_shape))
            region_groups = groups[_grid(index)]
            regions.append((index, region_groups > 0, region_groups == label))
        return regions

    def _restore_clipped_light(self, padded_restored: np.ndarray, index: tuple, clipped: np.ndarray, own: np.ndarray,
                               light: np.ndarray, regularisation: Regularisation, scale: float) -> None:
        """Add to the restored (padded) frame, in one region of the block grid, the restoration
        of the light its own group's clipped pixels lacked
        (:func:`~videodeblur.restoration.highlights.restored_clipped_light`), interpolated to the
        frame, times the strength and ``scale`` (the buffer's units): the result is
        ``x + s (G (y + d) - x)``, the strength's blend of the input with the restoration of the
        input completed at its clipped pixels."""
        resolution, response = self._clipped_filters(regularisation, light.shape)
        change = highlights.restored_clipped_light(light, clipped, own, resolution, response)
        change *= np.float32(self.strength * scale)
        rows, columns = change.shape
        change = cv2.resize(change, (2 * columns, 2 * rows), interpolation=cv2.INTER_LINEAR)
        # Added block by block: a region wrapping around the frame's edge is up to four
        # rectangles of it (fancy indexing would copy the region twice more).
        for target_rows, source_rows in _pieces(_doubled(index[0])):
            for target_columns, source_columns in _pieces(_doubled(index[1])):
                padded_restored[target_rows, target_columns] += change[source_rows, source_columns]

    def _clipped_filters(self, regularisation: Regularisation, shape: tuple[int, int]):
        """(``H G``, ``G``) at a regularisation on a region of ``shape`` of the block grid: the
        frame's frequencies that grid holds (cached: a shot's frames share a few)."""

        def build():
            full = (2 * shape[0], 2 * shape[1])
            otf = psf2otf(self._kernel_at(regularisation.kernel_scale), full)
            response = self.method.response(otf, full, regularisation)
            low_rows = np.r_[0:shape[0] - shape[0] // 2, full[0] - shape[0] // 2:full[0]]
            otf, response = (a[low_rows, : shape[1] // 2 + 1] for a in (otf, response))
            return (otf.astype(np.complex128) * response).real, response

        return self._clipped_filter_cache.get((tuple(regularisation), shape), build)

    def _untaper(self, restored: np.ndarray, changes: list, coding: Coding) -> None:
        """Take back what tapering changed, in the share (1 - strength) of the input the
        result holds: a strength of 0 gives the input exactly, borders included."""
        scaling = coding.scaling()
        factor = np.float32((1.0 - self.strength) * scaling.input_scale * scaling.output_scale)
        rows, columns = self.frame_shape
        for (row_slice, column_slice), change in changes:
            rs, cs = range(*row_slice.indices(self.padded_shape[0])), range(*column_slice.indices(self.padded_shape[1]))
            r1, c1 = min(rs.stop, rows), min(cs.stop, columns)
            if rs.start < r1 and cs.start < c1:
                restored[rs.start:r1, cs.start:c1] -= factor * change[: r1 - rs.start, : c1 - cs.start]


def _region_index(start: int, length: int, size_of_axis: int):
    """Indexes along one axis of a region from ``start``, at least ``length`` long, of a fast
    transform size: a slice, an index array where it wraps around the axis, the whole axis
    where the region would cover most of it."""
    size = cv2.getOptimalDFTSize(-(-max(length, 16) // 16) * 16)  # (few sizes: their filters are cached)
    if size >= size_of_axis * CLIPPED_WHOLE_SHARE:
        return slice(0, size_of_axis)
    start -= (size - length) // 2
    if 0 <= start and start + size <= size_of_axis:
        return slice(start, start + size)
    return (start + np.arange(size)) % size_of_axis


def _doubled(axis):
    """An index along an axis of the block grid (a slice or an index array) as the index of
    its pixels along the frame's axis."""
    if isinstance(axis, slice):
        return slice(2 * axis.start, 2 * axis.stop)
    return (2 * axis[:, None] + np.arange(2)).ravel()


def _pieces(axis) -> list[tuple[slice, slice]]:
    """An index along one axis (a slice, or an index array that runs up by one and wraps
    around once) as (frame slice, region slice) pairs of contiguous runs."""
    if isinstance(axis, slice):
        return [(axis, slice(0, axis.stop - axis.start))]
    breaks = np.flatnonzero(np.diff(axis) != 1) + 1
    starts, stops = np.r_[0, breaks], np.r_[breaks, len(axis)]
    return [(slice(int(axis[a]), int(axis[b - 1]) + 1), slice(int(a), int(b))) for a, b in zip(starts, stops)]


def _grid(index: tuple):
    """``index`` (a slice or an index array per axis) as a NumPy index of the 2-D region."""
    if isinstance(index[0], slice) and isinstance(index[1], slice):
        return index
    rows, columns = (np.arange(axis.stop)[axis] if isinstance(axis, slice) else axis for axis in index)
    return np.ix_(rows, columns)


def reflect_pad_inplace(buffer: np.ndarray, rows: int, columns: int) -> None:
    """Fill buffer beyond [:rows, :columns] with a mirror image of the frame (no jump at the seam)."""
    padded_rows, padded_columns = buffer.shape
    extra_columns = padded_columns - columns
    if extra_columns:
        source = np.arange(columns - 1, columns - 1 - extra_columns, -1) % columns
        buffer[:rows, columns:] = buffer[:rows, source]
    extra_rows = padded_rows - rows
    if extra_rows:
        source = np.arange(rows - 1, rows - 1 - extra_rows, -1) % rows
        buffer[rows:, :] = buffer[source, :]
