"""Which kernel restores a frame (:class:`KernelSpec`), and kernels resampled per image plane."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from videodeblur import registry
from videodeblur.core import psf as psf_models
from videodeblur.errors import InvalidParameterError

#: The kind of a spec that leaves the frame as it is.
NONE = "none"


@dataclass(frozen=True)
class KernelSpec:
    """Which kernel to restore a frame with: hashable, so restorers cache one filter per spec.

    Build one with :meth:`of`. Parameters are named as in the config (``radius``, ``length``,
    ``angle``, ``sigma``, ``path``, ...; units in :mod:`videodeblur.registry`).

    Attributes
    ----------
    kind : str
        A registered PSF kind, or ``"none"``: leave the frame as it is.
    values : tuple of (str, float or str)
        The parameters, sorted by name.
    """

    kind: str
    values: tuple[tuple[str, float | str], ...] = ()

    @classmethod
    def of(cls, kind: str, **values) -> KernelSpec:
        """``KernelSpec.of("defocus", radius=3.0)``; parameters given as None are left out."""
        return cls(kind, tuple(sorted((k, v) for k, v in values.items() if v is not None)))

    def get(self, name: str, default=None):
        """The value of parameter ``name`` (``default`` when the spec has none)."""
        for key, value in self.values:
            if key == name:
                return value
        return default

    @property
    def parameters(self) -> dict[str, float | str]:
        """The parameters as a dict."""
        return dict(self.values)

    def kernel(self) -> np.ndarray:
        """The luma-resolution kernel (float32, sums to 1)."""
        if self.kind == NONE:
            raise InvalidParameterError("a frame left as it is has no kernel")
        return registry.psf_kind(self.kind).kernel(self.parameters)

    def kernel_at_scale(self, scale: float) -> np.ndarray:
        """The kernel of the same blur ``scale`` times as large: the model's sizes scaled (a
        streak of ``scale`` times the length stays as sharp as the streak).

        A kind without sizes (a file), or a size scaled out of its bounds, is resampled
        (:func:`videodeblur.core.psf.rescaled`) to shrink it, and cannot be grown: resampled
        larger, a kernel is softer than the blur it would stand for.

        Raises
        ------
        InvalidParameterError
            ``scale > 1`` where the model's sizes cannot be scaled.
        """
        entry = registry.psf_kind(self.kind) if self.kind != NONE else None
        scaled = entry.rescaled(self.parameters, scale) if entry is not None else None
        if scaled is not None:
            return entry.kernel(scaled)
        if scale > 1.0:
            raise InvalidParameterError(f"{self.describe()} cannot be grown by {scale:g}: it has no model to scale")
        return psf_models.rescaled(self.kernel(), scale)

    def describe(self) -> str:
        """A short human-readable description, e.g. ``"defocus radius 3.2 px"``."""
        if self.kind == NONE:
            return "none (left as is)"
        return registry.psf_kind(self.kind).describe(self.parameters)


def quantised_spec(kind: str, values: Mapping[str, float]) -> KernelSpec:
    """A KernelSpec whose numeric parameters are rounded to their registry steps (angles wrapped)."""
    if kind == NONE:
        return KernelSpec(NONE)
    entry = registry.psf_kind(kind)
    if len(entry.numeric_parameters) != len(entry.parameters):
        raise InvalidParameterError(f"cannot quantise PSF kind {kind!r}: not all its parameters are numbers")
    return KernelSpec.of(kind, **{p.name: p.quantise(float(values[p.name])) for p in entry.numeric_parameters})


def spec_from_config(psf_section) -> KernelSpec:
    """The fixed KernelSpec of a ``[psf]`` section of a registered (not estimated) kind."""
    if psf_section.kind not in registry.PSF_KINDS:
        raise InvalidParameterError(f"psf.kind {psf_section.kind!r} has no fixed kernel")
    return KernelSpec.of(psf_section.kind, **psf_section.parameters)


def kernel_for_plane(kernel: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """Resample a luma kernel to a subsampled plane (chroma of 4:2:0 is scale 0.5 x 0.5).

    The kernel is resized by area averaging, padded to odd sides so that its centre stays a
    pixel, and normalised. One mechanism for every kernel kind, including anisotropic
    subsampling (4:2:2) and kernels loaded from files.
    """
    if scale_x == 1.0 and scale_y == 1.0:
        return kernel
    rows, columns = kernel.shape
    # Keep the kernel centred: resample about the centre by making the target size odd.
    target_columns = max(1, 2 * math.ceil((columns * scale_x - 1) / 2) + 1)
    target_rows = max(1, 2 * math.ceil((rows * scale_y - 1) / 2) + 1)
    resized = cv2.resize(kernel.astype(np.float32), (target_columns, target_rows), interpolation=cv2.INTER_AREA)
    return psf_models.normalise(np.maximum(resized, 0.0))
