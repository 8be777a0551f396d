"""How a plane's values enter the FFT buffer and leave it: the stage around a restoration method.

A :class:`Coding` loads a plane into the transform's buffer (as linear light, or as the values
themselves), tells the method which :class:`~videodeblur.restoration.methods.Scaling` to fold
into its filter, and stores the restored buffer into the output array. Colour management is
this stage, driven by the stream's tags (:class:`LinearLight`), not a branch inside a method.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from videodeblur.core.colour import Linearisation, Transfer
from videodeblur.fft.plans import scratch
from videodeblur.restoration.highlights import CLIPPED_CODED, MIN_CLIPPED_GROUP_PX
from videodeblur.restoration.methods import Scaling


class Coding:
    """The identity: the plane's values are restored as they are (the float API)."""

    #: Restored in linear light (highlights above white are meaningful there).
    linear = False

    def regularisation_weighting(self, plane: np.ndarray) -> tuple[float, float]:
        """(factor, exponent shift) applied to the automatic regularisation of ``plane``
        (none here: the values' noise is the noise the regularisation is fitted to)."""
        return (1.0, 0.0)

    def scaling(self) -> Scaling:
        """The scales the method folds into its filter."""
        return Scaling()

    def load(self, plane: np.ndarray, target: np.ndarray) -> None:
        """Write ``plane`` into the buffer view ``target`` (same shape)."""
        np.copyto(target, plane, casting="unsafe")

    def store(self, restored: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write the restored buffer view into ``out``; returns ``out``."""
        np.copyto(out, restored, casting="unsafe")
        return out

    def white(self) -> float | None:
        """The value of nominal white in the buffer's units, where that is known."""
        return None

    def clipped(self, plane: np.ndarray) -> np.ndarray | None:
        """A uint8 mask (nonzero: clipped at the sensor's white) of ``plane``, or None where
        fewer than :data:`~videodeblur.restoration.highlights.MIN_CLIPPED_GROUP_PX` pixels are,
        or where clipping is not known (the values restored as they are)."""
        return None


class Scaled(Coding):
    """Values times ``input_scale`` are restored; the result is written times ``output_scale``
    plus ``output_offset``, optionally clipped (an integer ``out`` receives it truncated, so an
    offset of 0.5 and a clip to ``[0.5, max + 0.5]`` round into range)."""

    def __init__(self, input_scale: float = 1.0, output_scale: float = 1.0, output_offset: float = 0.0,
                 clip: tuple[float, float] | None = None):
        self._scaling = Scaling(input_scale, output_scale, output_offset)
        self.clip = clip

    def scaling(self) -> Scaling:
        return self._scaling

    def store(self, restored, out):
        if self.clip is None:
            np.copyto(out, restored, casting="unsafe")
        else:
            np.clip(restored, np.float32(self.clip[0]), np.float32(self.clip[1]), out=out, casting="unsafe")
        return out


#: The mean light of a frame is read on every 4th pixel of every 4th row.
WEIGHTING_STEP = 4
#: The factor of a frame at least :data:`DARK_LIGHT` bright (relative to reference white), and
#: the most :func:`light_weighting` gives a darker one.
LIGHT_WEIGHT, MOST_LIGHT_WEIGHT = 2.0, 64.0
#: Mean light below which a frame counts as dark (a fifth of reference white).
DARK_LIGHT = 0.2
#: The exponent shift of linear light's regularisation (half a power of |P|^2).
LIGHT_EXPONENT_SHIFT = 0.5


def light_weighting(mean_light: float, reference_white: float = 1.0) -> tuple[float, float]:
    """(factor, exponent shift) of an automatic regularisation fitted in linear light.

    In linear light the noise is not uniform: dark areas hold little of the frame's power but,
    once coded, as much of the picture, since the curve's slope (how much an error in light
    moves the codes) is steepest near black. A regularisation fitted to the linear frame's
    spectrum under-regularises them: twice the weight and a frequency law half a power of
    |P|^2 steeper restore the balance in a frame of ordinary brightness. A dark frame is
    under-regularised far more (a night sky restored with that weight fills with ripples along
    a long streak's zeros), so below a mean light of :data:`DARK_LIGHT` (relative to
    ``reference_white``) the weight grows as ``(DARK_LIGHT / mean light)^2``, up to
    :data:`MOST_LIGHT_WEIGHT`.
    """
    relative = mean_light / reference_white
    darkness = DARK_LIGHT / relative if relative > 0 else math.inf
    return (min(MOST_LIGHT_WEIGHT, LIGHT_WEIGHT * max(1.0, darkness) ** 2), LIGHT_EXPONENT_SHIFT)


def integer_plane(max_value: float) -> Scaled:
    """The coding of an integer plane restored as coded values: scaled to [0, 1] and back,
    rounded and clipped to ``[0, max_value]``."""
    return Scaled(1.0 / max_value, max_value, 0.5, (0.5, max_value + 0.5))


#: Rows of a frame looked up in a table at a time (:func:`table_lookup`).
LOOKUP_BAND_ROWS = 32


def table_lookup(table: np.ndarray, values: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = table[values]`` for a 2-D plane, float values truncated to integers, all clipped
    to the table's indexes; returns ``out``.

    ``np.take`` converts indexes of any type but intp to a whole frame of intp first (16 MB for
    1080p), which goes to memory and back and pushes the frame out of the cache; converting a
    band of :data:`LOOKUP_BAND_ROWS` rows at a time keeps the indexes in the cache between the
    conversion and the look-up (docs/performance.md). Float values are converted by OpenCV,
    which rounds and saturates in one vectorised pass: ``values - 0.5`` rounded is the integer
    part (a value exactly on an odd integer reads the entry below, the neighbouring interval's
    code), and anything beyond the index type's range (infinities included) reads the table's
    last entry, anything below 0 its first. A NaN reads an arbitrary entry.
    """
    rows = values.shape[0]
    floating = values.dtype.kind == "f"
    if floating:  # the narrowest index type that holds every index
        depth, dtype = (cv2.CV_16U, np.uint16) if table.size <= 1 << 16 else (cv2.CV_32S, np.int32)
    else:
        depth, dtype = None, np.intp
    index = scratch((LOOKUP_BAND_ROWS, values.shape[1]), dtype, "table index")
    for top in range(0, rows, LOOKUP_BAND_ROWS):
        band = index[: min(LOOKUP_BAND_ROWS, rows - top)]
        if floating:
            cv2.add(values[top:top + len(band)], -0.5, dst=band, dtype=depth)
        else:
            np.copyto(band, values[top:top + len(band)], casting="unsafe")
        np.take(table, band, out=out[top:top + len(band)], mode="clip")
    return out


class LinearLight(Coding):
    """An integer plane restored in linear light: codes -> light by table, light -> codes by table.

    Parameters
    ----------
    linearisation : Linearisation
        The stream's curve, range and depth (:mod:`videodeblur.core.colour`).

    Notes
    -----
    The input is one table lookup (OpenCV's for 8-bit planes). The output's table index
    ``(L * scale) ** exponent``: the scale is folded into the filter; steep curves take two
    square roots of the scaled light (see :class:`~videodeblur.core.colour.Linearisation`).
    """

    linear = True

    def __init__(self, linearisation: Linearisation):
        self.linearisation = linearisation
        self._eight_bit = linearisation.coded_range.bit_depth <= 8
        self._output_scale = float(linearisation.scale)
        #: The least code counted as clipped (:data:`~videodeblur.restoration.highlights.CLIPPED_CODED`).
        self.clipped_code = int(math.ceil(linearisation.coded_range.to_codes(CLIPPED_CODED) - 1e-9))

    def scaling(self) -> Scaling:
        return Scaling(1.0, self._output_scale, 0.0)

    def regularisation_weighting(self, plane):
        return light_weighting(self._mean_light(plane), self.linearisation.transfer.reference_white)

    def _mean_light(self, plane) -> float:
        sample = plane[::WEIGHTING_STEP, ::WEIGHTING_STEP]
        table = self.linearisation.decode_table
        light = cv2.LUT(sample, table) if self._eight_bit else np.take(table, sample, mode="clip")
        return float(np.mean(light, dtype=np.float64))

    def load(self, plane, target):
        if self._eight_bit:
            cv2.LUT(plane, self.linearisation.decode_table, dst=target)
        else:
            table_lookup(self.linearisation.decode_table, plane, target)

    def store(self, restored, out):
        # In place: the buffer is the FFT buffer, rewritten by the next frame anyway. Below 0
        # before the roots of a steep curve (a root of a negative is NaN); the look-up's
        # conversion clips the rest.
        if self.linearisation.exponent != 1.0:
            cv2.max(restored, 0.0, dst=restored)
            cv2.sqrt(restored, dst=restored)
            cv2.sqrt(restored, dst=restored)
        return table_lookup(self.linearisation.encode_table, restored, out)

    def white(self) -> float:
        return 1.0

    def clipped(self, plane):
        # Most frames have nothing near white: their maximum, a fifth of the mask's cost, says so.
        if cv2.minMaxLoc(plane)[1] < self.clipped_code:
            return None
        mask = cv2.compare(plane, self.clipped_code, cv2.CMP_GE)
        return mask if cv2.countNonZero(mask) >= MIN_CLIPPED_GROUP_PX else None


class FloatLinearLight(Coding):
    """A float image of coded values (1.0 = white) restored in linear light through ``transfer``'s
    exact formulas (the Python API's ``transfer=`` argument); the result is coded again, black
    clipped at 0, not clipped at white."""

    linear = True

    def __init__(self, transfer: Transfer):
        self.transfer = transfer

    def regularisation_weighting(self, plane):
        light = self.transfer.decode(plane[::WEIGHTING_STEP, ::WEIGHTING_STEP])
        return light_weighting(float(np.mean(light)), self.transfer.reference_white)

    def load(self, plane, target):
        np.copyto(target, self.transfer.decode(plane), casting="unsafe")

    def store(self, restored, out):
        np.copyto(out, self.transfer.encode(np.maximum(restored, 0.0)), casting="unsafe")
        return out

    def white(self) -> float:
        return 1.0
