"""The averaged power spectrum of a frame's windowed tiles, where a blur's zeros show.

:func:`blur_spectrum` averages the power spectra of Hann-windowed tiles of the luma plane
(Welch's method): the window removes the border discontinuities that would otherwise draw a
bright cross through the spectrum, and averaging tiles tames the periodogram's variance.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from videodeblur.core.blocks import block_means
from videodeblur.errors import InvalidParameterError

#: Side of the square tiles whose spectra are averaged, in pixels (smaller for small frames,
#: down to MIN_TILE_PX; smaller frames cannot be analysed).
TILE_PX = 256

MIN_TILE_PX = 64

#: At most this many tiles per frame, evenly spread (a 1080p frame gives 3 x 5).
MAX_TILES = 16

#: Linear light at or above this (the sensor's white: 1.0 in the light tables' units) is clipped.
CLIPPED_LIGHT = 1.0


@dataclass(frozen=True)
class BlurSpectrum:
    """Average power spectrum of a frame's windowed tiles.

    Attributes
    ----------
    power : numpy.ndarray
        float64 array ``(tile_px, tile_px // 2 + 1)``, the one-sided 2-D power spectrum
        (rows: vertical frequency in FFT order; columns: horizontal frequency >= 0).
    tile_px : int
        Tile side in pixels (the frequency resolution is ``1 / tile_px`` cycles per pixel).
    tiles : int
        Number of tiles averaged (more is steadier).
    linear_light : bool
        Taken from a frame in linear light (else from coded values): the estimators' small
        systematic errors differ between the two.
    clipped_share : float
        Share of the tiles' pixels at or above the sensor's white (:data:`CLIPPED_LIGHT`; known
        only in linear light, else 0). Clipped areas fill in a blur's zeros.
    """

    power: np.ndarray
    tile_px: int
    tiles: int
    linear_light: bool = False
    clipped_share: float = 0.0


@functools.lru_cache(maxsize=8)
def _hann_2d(tile_px: int) -> np.ndarray:
    window = np.hanning(tile_px + 2)[1:-1].astype(np.float32)
    return np.outer(window, window)


def tile_side(most_px: int) -> int:
    """The largest even side <= ``most_px`` with no prime factor above 5 (a fast FFT size).

    Frames smaller than a tile get tiles as large as they allow: the spectrum's zeros of a long
    blur (1 / length apart) must stay several bins apart after the window's smoothing.
    """
    for side in range(most_px - most_px % 2, MIN_TILE_PX - 1, -2):
        rest = side
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return side
    return MIN_TILE_PX


def blur_spectrum(luma: np.ndarray, tile_px: int = TILE_PX, max_tiles: int = MAX_TILES,
                  transforms=None, linear_light: bool = False,
                  light_table: np.ndarray | None = None) -> BlurSpectrum:
    """Average power spectrum of Hann-windowed tiles of a luma plane (Welch's method).

    Parameters
    ----------
    luma : numpy.ndarray
        2-D frame, any real dtype and scale (the estimate does not depend on scale).
    tile_px : int
        Most tile side; a frame smaller than that gets the largest fast FFT size it holds
        (:func:`tile_side`, at least 64).
    max_tiles : int
        Most tiles used; they are spread evenly over the frame, overlapping when the frame is
        small.
    transforms : callable or None
        ``(count, tile_px) -> object`` with ``tiles()`` (a float32 buffer to fill) and
        ``forward()`` (its complex spectra), e.g. :func:`videodeblur.fft.plans.tile_transform`
        (planned FFTW with reused buffers); None: NumPy buffers and ``scipy.fft``.
    linear_light : bool
        ``luma`` is linear light (see :attr:`BlurSpectrum.linear_light`).
    light_table : numpy.ndarray or None
        For an integer ``luma`` of codes: the linear light of each code. The spectrum is then
        that of the frame in linear light (``linear_light`` is implied), and only the pixels it
        reads are looked up: a 1080p frame's tiles cover half of it.

    Returns
    -------
    BlurSpectrum
    """
    luma = np.asarray(luma)
    if luma.ndim != 2:
        raise InvalidParameterError(f"blur estimation needs a 2-D luma plane, got shape {luma.shape}")
    rows, columns = luma.shape
    if min(rows, columns) < MIN_TILE_PX:
        raise InvalidParameterError(
            f"frame {columns}x{rows} is too small to estimate blur (needs {MIN_TILE_PX}x{MIN_TILE_PX})")
    tile_px = tile_side(min(tile_px, rows, columns))
    # A grid of up to max_tiles, evenly spread, overlapping by at most three quarters (small
    # frames): overlapping Hann tiles still add information.
    fit_rows = math.ceil((rows - tile_px) / (tile_px // 4)) + 1
    fit_columns = math.ceil((columns - tile_px) / (tile_px // 4)) + 1
    grid_rows = max(1, min(fit_rows, int(math.sqrt(max_tiles * rows / columns))))
    grid_columns = max(1, min(fit_columns, max_tiles // grid_rows))
    places = _textured_places(luma, tile_px, grid_rows, grid_columns, light_table)
    count = len(places)
    transform = transforms(count, tile_px) if transforms is not None else None
    tiles = transform.tiles() if transform is not None else np.empty((count, tile_px, tile_px), dtype=np.float32)
    window = _hann_2d(tile_px)
    clipped = 0
    # Tile by tile, each step on a tile still in the cache: loaded (looked up), its clipped
    # pixels counted, its mean taken out and the window applied in two passes,
    # window * (tile - mean) = window * tile - mean * window.
    for tile, (top, left) in zip(tiles, places):
        part = luma[top : top + tile_px, left : left + tile_px]
        if light_table is None:
            tile[...] = part
        else:
            _look_up(light_table, part, tile)
            clipped += cv2.countNonZero(cv2.compare(tile, CLIPPED_LIGHT, cv2.CMP_GE))
        mean = cv2.mean(tile)[0]
        cv2.multiply(tile, window, dst=tile)
        cv2.scaleAdd(window, -mean, tile, dst=tile)
    clipped_share = clipped / tiles.size
    if transform is not None:
        spectra = transform.forward()
    else:
        import scipy.fft  # (on first use: a third of the program's start-up, rarely needed)

        spectra = scipy.fft.rfft2(tiles, workers=1)
    # Sum of |F|^2 over the tiles without a temporary per tile (float32 is ample for a mean of
    # a few dozen positive terms): squares of the interleaved (re, im) floats summed over the
    # tiles in one contiguous pass (strided real and imaginary views are much slower), then
    # each pair added.
    interleaved = spectra.view(spectra.real.dtype)
    squares = np.einsum("ijk,ijk->jk", interleaved, interleaved)
    power = (squares[:, 0::2] + squares[:, 1::2]).astype(np.float64) / len(tiles)
    return BlurSpectrum(power, tile_px, len(tiles), linear_light or light_table is not None, clipped_share)


def _look_up(table: np.ndarray, codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``table[codes]`` (float32), codes beyond the table clipped to its ends; OpenCV's lookup
    for 8-bit codes."""
    if codes.dtype == np.uint8 and table.size == 256 and table.dtype == np.float32:
        return cv2.LUT(codes, table, dst=out)
    return np.take(table.astype(np.float32, copy=False), codes, out=out, mode="clip")


#: A tile with less than this share of the most textured tile's texture is left out (a flat
#: wall, the sky, a letterbox bar: its spectrum is noise, which fills in the blur's zeros).
MIN_TEXTURE_SHARE = 0.1


def _textured_places(luma, tile_px, grid_rows, grid_columns, light_table=None) -> list[tuple[int, int]]:
    """Where the tiles go: the evenly spread grid, less the tiles that show almost nothing.

    Texture is the tile's squared gradient of 4 x 4 block means: the picture's structure at
    the scales a blur leaves, with the noise averaged away (pixel by pixel, the shot noise of a
    bright flat wall looks as textured as a picture, and the wall's tiles, which show no blur,
    were kept). A frame textured all over keeps every tile; on a cyclist crossing a white board,
    or a picture between letterbox bars, only the tiles that show something are averaged.
    """
    rows, columns = luma.shape
    tops = np.linspace(0, rows - tile_px, grid_rows).round().astype(int)
    lefts = np.linspace(0, columns - tile_px, grid_columns).round().astype(int)
    places = [(int(t), int(l)) for t in tops for l in lefts]
    if len(places) == 1:
        return places
    step = 4
    # OpenCV's area resize takes these dtypes; codes stay integers for the light table.
    if np.issubdtype(luma.dtype, np.integer) and luma.dtype not in (np.uint8, np.uint16):
        luma = np.clip(luma, 0, np.iinfo(np.uint16).max).astype(np.uint16)
    elif luma.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        luma = luma.astype(np.float32)
    small = block_means(luma, step)
    small = np.asarray(small, dtype=np.float32) if light_table is None else _look_up(light_table, small)
    energy = np.zeros_like(small)
    energy[:, 1:] += np.square(np.diff(small, axis=1))
    energy[1:, :] += np.square(np.diff(small, axis=0))
    side = tile_px // step
    texture = [float(energy[top // step : top // step + side, left // step : left // step + side].sum(dtype=np.float64))
               for top, left in places]
    best = max(texture)
    return [place for place, value in zip(places, texture) if value >= MIN_TEXTURE_SHARE * best]


def average_spectra(spectra) -> BlurSpectrum:
    """Mean of several frames' spectra (same tile size): steadier estimates for a steady blur."""
    spectra = list(spectra)
    if not spectra:
        raise InvalidParameterError("average_spectra needs at least one spectrum")
    tile_px = spectra[0].tile_px
    if any(s.tile_px != tile_px for s in spectra):
        raise InvalidParameterError("spectra to average must share a tile size")
    power = np.mean([s.power for s in spectra], axis=0)
    clipped_share = float(np.mean([s.clipped_share for s in spectra]))
    return BlurSpectrum(power, tile_px, sum(s.tiles for s in spectra), spectra[0].linear_light, clipped_share)
