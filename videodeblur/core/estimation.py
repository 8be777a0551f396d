"""Blind blur estimation: find a frame's motion or defocus kernel from its power spectrum.

Method
------
A blur multiplies the frame's spectrum by the kernel's transfer function ``H``, so the power
spectrum of a blurred frame carries the zeros of ``H``:

* linear motion of length ``L`` along direction ``theta``: ``H = sinc(L u)`` with
  ``u = f . (cos theta, -sin theta)``, dark lines perpendicular to the motion, ``1/L`` apart;
* defocus by a disk of radius ``R``: ``H = 2 J1(2 pi R rho) / (2 pi R rho)``, dark rings.

1. :func:`blur_spectrum` averages the power spectra of Hann-windowed tiles of the luma plane
   (Welch's method): the window removes the border discontinuities that would otherwise draw
   a bright cross through the spectrum, and averaging tiles tames the periodogram's variance.
2. Coarse search on 1-D profiles of the log spectrum: for motion, the profile along each
   candidate direction (averaging along the dark lines keeps them sharp only at the right
   angle); for defocus, the radial profile. Each profile, with a smooth trend in ``log rho``
   projected out, is correlated with the same-detrended templates ``log(|H|^2 + eps)`` over a
   fine grid of lengths or radii.
3. Verification in 2-D: the few best candidates of each family are scored by how much of the
   2-D log spectrum's variance their template explains on top of a smooth radial trend (an
   R^2 gain). This settles near-ties of the 1-D search, makes motion and defocus comparable
   (both are scored on the same bins with the same trend basis), and is the confidence.
4. Refinement: the winning motion angle is refined on a fine grid around the coarse one.
5. Decision: the family with the larger R^2 gain wins; a frame whose best gain is below
   :data:`MOTION_MIN_SCORE` / :data:`DEFOCUS_MIN_SCORE` or whose blur is below :data:`MIN_LENGTH_PX` /
   :data:`MIN_RADIUS_PX` is reported as ``"none"`` (sharp enough: leave it).

Everything here is a pure function of arrays: no I/O, no threads. Templates depend only on the
tile size and are cached.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from videodeblur.errors import InvalidParameterError

#: Side of the square tiles whose spectra are averaged, in pixels (smaller for small frames,
#: down to MIN_TILE_PX; smaller frames cannot be analysed).
TILE_PX = 256
MIN_TILE_PX = 64
#: At most this many tiles per frame, evenly spread (a 1080p frame gives 3 x 5).
MAX_TILES = 16
#: Candidate motion lengths and disk radii searched, in pixels.
MOTION_LENGTHS_PX = np.round(np.arange(2.0, 64.0 + 1e-9, 0.05), 4)
DEFOCUS_RADII_PX = np.round(np.arange(1.0, 24.0 + 1e-9, 0.05), 4)
#: ``eps`` of the templates ``log(|H|^2 + eps)``: how deep a zero of H looks once noise and
#: the window's leakage have filled it in.
TEMPLATE_EPS = 0.02
#: Defocus tries several depths and keeps the best 2-D fit: a ring's depth depends on the
#: noise, and a wrong depth biases the radius (by up to +0.4 px at 2 % noise with one eps).
DEFOCUS_TEMPLATE_EPS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
#: Candidates per depth for defocus.
DEFOCUS_CANDIDATES = 3
#: Frequencies used, in cycles per pixel: below LOW, the window's own spectrum dominates
#: (in bins of the tile); above HIGH, the noise floor and what compression removed (on the
#: H.264 track of benchmarks/estimation.py, 0.45 gave a median angle error of 1.65 degrees,
#: 0.40 gives 0.78, with no loss on the other tracks).
LOW_FREQUENCY_BINS = 3
HIGH_FREQUENCY = 0.40
#: Coarse and fine angle steps of the motion search, in degrees.
COARSE_ANGLE_STEP_DEG = 3.0
FINE_ANGLE_STEPS_DEG = (0.5, 0.1)
#: The coarse scan scores every 4th length (0.2 px); the angle refinement only lengths
#: within 40 grid steps (2 px) of the best.
COARSE_LENGTH_STRIDE = 4
REFINE_LENGTH_SPAN = 40
#: Candidates of the 1-D search re-scored in 2-D, each with its coarse scan's best length. On
#: three independent draws of the estimation benchmark (64 footage frames x 4 tracks each)
#: the frames whose length missed by over 1 px were 14, 22 and 16 with four candidates (and
#: full-resolution lengths), 12, 14 and 8 with six, at the same cost.
CANDIDATES = 6
#: Below these R^2 gains a model does not explain the spectrum. Sharp photographs score up
#: to 0.12 for motion, but always at lengths under 5 px (a periodic texture such as a brick
#: wall looks like a short streak), and under 0.01 for defocus; blurred footage scores from
#: 0.09 (motion at 2 % noise or after H.264) and 0.04 (defocus) up.
MOTION_MIN_SCORE = 0.09
DEFOCUS_MIN_SCORE = 0.04
DECISIVE_DEFOCUS_SCORE = 0.25
#: Systematic errors measured by benchmarks/estimation.py (median signed error over photographs
#: and footage, noise 0.5-2 % and H.264, radii 3-8 px, lengths 5-31 px) and added back: the
#: window's leakage fills a zero more from its brighter, lower-frequency side, which moves the
#: apparent zero outwards, i.e. the blur looks slightly smaller.
DEFOCUS_RADIUS_BIAS_PX = -0.12
MOTION_LENGTH_BIAS_PX = -0.07
#: Smaller blurs are left alone: below 5 px a motion fit cannot be told from texture (see
#: above), and such mild blurs are better given explicitly (psf.kind = "motion").
MIN_LENGTH_PX = 5.0
MIN_RADIUS_PX = 1.2
#: R^2 gain at which the confidence reaches 1.
FULL_CONFIDENCE_SCORE = 0.3

KINDS = ("auto", "motion", "defocus")


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
    """

    power: np.ndarray
    tile_px: int
    tiles: int


@dataclass(frozen=True)
class MotionFit:
    """Best linear-motion kernel for a spectrum: ``length_px`` along ``angle_deg`` (0..180)."""

    length_px: float
    angle_deg: float
    score: float


@dataclass(frozen=True)
class DefocusFit:
    """Best defocus disk for a spectrum."""

    radius_px: float
    score: float


@dataclass(frozen=True)
class BlurEstimate:
    """The blur found in one frame.

    Attributes
    ----------
    kind : {"motion", "defocus", "none"}
        ``"none"``: no blur worth restoring was found (sharp enough, leave the frame as is).
    motion, defocus : MotionFit or None
        The best fit of each family that was searched (both for ``kind="auto"``, unless the
        defocus fit alone is decisive: :data:`DECISIVE_DEFOCUS_SCORE`).
    confidence : float
        0 (no evidence) to 1: the winning family's R^2 gain, scaled by
        :data:`FULL_CONFIDENCE_SCORE`.
    """

    kind: str
    motion: MotionFit | None
    defocus: DefocusFit | None
    confidence: float


# --------------------------------------------------------------------------------------
# Spectrum
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _hann_2d(tile_px: int) -> np.ndarray:
    window = np.hanning(tile_px + 2)[1:-1].astype(np.float32)
    return np.outer(window, window)


def _tile_side(most_px: int) -> int:
    """The largest even side <= ``most_px`` with no prime factor above 5 (a fast FFT size).

    Frames smaller than a tile get tiles as large as they allow: the spectrum's zeros of a long
    blur (1 / length apart) must stay several bins apart after the window's smoothing, and
    halving the tile (the earlier rule) lost 25-30 px streaks on 240-row frames.
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
                  transforms=None) -> BlurSpectrum:
    """Average power spectrum of Hann-windowed tiles of a luma plane (Welch's method).

    Parameters
    ----------
    luma : numpy.ndarray
        2-D frame, any real dtype and scale (the estimate does not depend on scale).
    tile_px : int
        Most tile side; a frame smaller than that gets the largest fast FFT size it holds
        (:func:`_tile_side`, at least 64).
    max_tiles : int
        Most tiles used; they are spread evenly over the frame, overlapping when the frame is
        small.
    transforms : callable or None
        ``(count, tile_px) -> object`` with ``tiles()`` (a float32 buffer to fill) and
        ``forward()`` (its complex spectra), e.g. :func:`videodeblur.fft.plans.tile_transform`
        (planned FFTW with reused buffers); None: NumPy buffers and ``scipy.fft``.

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
    tile_px = _tile_side(min(tile_px, rows, columns))
    # A grid of up to max_tiles, evenly spread, overlapping by at most three quarters (small
    # frames): overlapping Hann tiles still add information.
    fit_rows = math.ceil((rows - tile_px) / (tile_px // 4)) + 1
    fit_columns = math.ceil((columns - tile_px) / (tile_px // 4)) + 1
    grid_rows = max(1, min(fit_rows, int(math.sqrt(max_tiles * rows / columns))))
    grid_columns = max(1, min(fit_columns, max_tiles // grid_rows))
    tops = np.linspace(0, rows - tile_px, grid_rows).round().astype(int)
    lefts = np.linspace(0, columns - tile_px, grid_columns).round().astype(int)
    count = grid_rows * grid_columns
    transform = transforms(count, tile_px) if transforms is not None else None
    tiles = transform.tiles() if transform is not None else np.empty((count, tile_px, tile_px), dtype=np.float32)
    for n, (top, left) in enumerate((t, l) for t in tops for l in lefts):
        tiles[n] = luma[top : top + tile_px, left : left + tile_px]
    tiles -= tiles.mean(axis=(1, 2), keepdims=True)
    tiles *= _hann_2d(tile_px)
    if transform is not None:
        spectra = transform.forward()
    else:
        import scipy.fft  # (on first use: a third of the program's start-up, rarely needed)

        spectra = scipy.fft.rfft2(tiles, workers=1)
    # Sum of |F|^2 over the tiles without a temporary per tile (float32 is ample for a mean of
    # a few dozen positive terms): squares of the interleaved (re, im) floats summed over the
    # tiles in one contiguous pass (3x faster than strided real and imaginary views), then
    # each pair added.
    interleaved = spectra.view(spectra.real.dtype)
    squares = np.einsum("ijk,ijk->jk", interleaved, interleaved)
    power = (squares[:, 0::2] + squares[:, 1::2]).astype(np.float64) / len(tiles)
    return BlurSpectrum(power, tile_px, len(tiles))


def average_spectra(spectra) -> BlurSpectrum:
    """Mean of several frames' spectra (same tile size): steadier estimates for a steady blur."""
    spectra = list(spectra)
    if not spectra:
        raise InvalidParameterError("average_spectra needs at least one spectrum")
    tile_px = spectra[0].tile_px
    if any(s.tile_px != tile_px for s in spectra):
        raise InvalidParameterError("spectra to average must share a tile size")
    power = np.mean([s.power for s in spectra], axis=0)
    return BlurSpectrum(power, tile_px, sum(s.tiles for s in spectra))


# --------------------------------------------------------------------------------------
# Frequency geometry and templates (cached per tile size)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ProfileGrid:
    """Bins of a 1-D profile (along a direction, or radial): ``width`` cycles/px each.

    A frequency ``u`` goes to bin ``floor(u / width)``; bins are half the spectrum's spacing,
    so along the axes some are empty and are filled by interpolation (:func:`_fill_empty`).
    """

    width: float
    bins: int
    used: slice  # the bins correlated with templates (LOW_FREQUENCY_BINS / tile_px .. HIGH_FREQUENCY)
    u: np.ndarray  # centre frequency of the used bins
    trend: np.ndarray  # orthonormal trend basis over the used bins


def _profile_grid(tile_px: int) -> _ProfileGrid:
    width = 0.5 / tile_px
    bins = int(0.75 / width) + 2  # up to the corner of the spectrum
    low, high = LOW_FREQUENCY_BINS, int(HIGH_FREQUENCY / width)
    u = (np.arange(low, high) + 0.5) * width
    return _ProfileGrid(width, bins, slice(low, high), u, _orthonormal_log_trend(u))


def _fill_empty(profiles: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Replace the value of empty profile bins by linear interpolation between filled ones.

    Along the axes (0 and 90 degrees) the 2-D bins line up, so some profile bins get no sample;
    left at 0 they would draw a comb that hides the blur's zeros.
    """
    empty = counts == 0
    for row in np.flatnonzero(empty.any(axis=1)):
        filled = ~empty[row]
        if filled.sum() >= 2:
            positions = np.arange(profiles.shape[1])
            profiles[row, ~filled] = np.interp(positions[~filled], positions[filled], profiles[row, filled])
    return profiles


@dataclass(frozen=True)
class _Geometry:
    tile_px: int
    selected: np.ndarray  # boolean mask over the one-sided spectrum
    fx: np.ndarray  # horizontal frequency of each selected bin (cycles/px)
    fy: np.ndarray  # vertical frequency, positive downwards (rows)
    rho: np.ndarray
    trend_basis: np.ndarray  # orthonormal columns: 1, log rho, log^2, log^3 over the bins
    grid: _ProfileGrid  # profiles of all selected bins and of the coarse quarter alike
    radial_index: np.ndarray  # profile bin of each selected bin's rho
    coarse_selected: np.ndarray  # every other bin in each direction: the coarse angle scan
    coarse_trend_basis: np.ndarray  # the trend basis orthonormalised over the coarse bins


@functools.lru_cache(maxsize=4)
def _geometry(tile_px: int) -> _Geometry:
    fy = np.fft.fftfreq(tile_px)[:, None]
    fx = np.fft.rfftfreq(tile_px)[None, :]
    fy, fx = np.broadcast_arrays(fy, fx)
    rho = np.hypot(fx, fy)
    selected = (rho >= LOW_FREQUENCY_BINS / tile_px) & (rho <= HIGH_FREQUENCY)
    r = rho[selected]
    grid = _profile_grid(tile_px)
    coarse = np.zeros_like(selected)
    coarse[::2, ::2] = True
    return _Geometry(
        tile_px=tile_px, selected=selected, fx=fx[selected].astype(np.float32), fy=fy[selected].astype(np.float32),
        rho=r, trend_basis=_orthonormal_log_trend(r), grid=grid,
        radial_index=np.minimum((r / grid.width).astype(np.int64), grid.bins - 1),
        coarse_selected=coarse[selected], coarse_trend_basis=_orthonormal_log_trend(r[coarse[selected]]),
    )


def _orthonormal_log_trend(frequency: np.ndarray) -> np.ndarray:
    # A cubic in log frequency: the smooth fall-off of a natural image's spectrum, which the
    # blur's zeros must stand out from.
    log_f = np.log(frequency)
    basis = np.stack([np.ones_like(log_f), log_f, log_f**2, log_f**3], axis=1)
    q, _ = np.linalg.qr(basis)
    return q


def _detrend_normalise(values: np.ndarray, trend: np.ndarray) -> np.ndarray:
    """Project the trend out of the last axis and scale each row to unit norm."""
    residual = values - (values @ trend) @ trend.T
    norm = np.linalg.norm(residual, axis=-1, keepdims=True)
    return residual / np.maximum(norm, 1e-12)


def _motion_transfer(length_px, u):
    return np.sinc(np.multiply.outer(length_px, u))


def _disk_transfer(radius_px, rho):
    import scipy.special  # (on first use: a third of the program's start-up; only estimation needs it)

    x = 2.0 * np.pi * np.multiply.outer(radius_px, rho)
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, 2.0 * scipy.special.j1(safe) / safe)


#: ``log(jinc^2 + eps)`` tabulated over ``x = R rho``: candidates are scored in 2-D many times
#: per frame, and interpolating this table is several times cheaper than Bessel functions.
_JINC_TABLE_STEP = 1e-3
_JINC_TABLE_X = np.arange(0.0, 64.0 * 0.75 + 1.0, _JINC_TABLE_STEP)


@functools.lru_cache(maxsize=16)
def _log_disk_table(eps: float) -> np.ndarray:
    return np.log(_disk_transfer(1.0, _JINC_TABLE_X) ** 2 + eps)


def _log_disk_template(radius_px: float, rho: np.ndarray, eps: float) -> np.ndarray:
    """``log(|H_disk(rho)|^2 + eps)`` for one radius, from the table."""
    table = _log_disk_table(eps)
    position = np.minimum(radius_px * rho, _JINC_TABLE_X[-2]) * (1.0 / _JINC_TABLE_STEP)
    index = position.astype(np.int64)
    fraction = position - index
    return table[index] * (1.0 - fraction) + table[index + 1] * fraction


@functools.lru_cache(maxsize=8)
def _motion_templates(tile_px: int, stride: int = 1) -> np.ndarray:
    geometry = _geometry(tile_px)
    lengths = MOTION_LENGTHS_PX[::stride]
    transfer = _motion_transfer(lengths, geometry.grid.u)
    return _detrend_normalise(np.log(transfer**2 + TEMPLATE_EPS), geometry.grid.trend)


@functools.lru_cache(maxsize=4)
def _radial_bin_rho(tile_px: int) -> np.ndarray:
    """Mean frequency of the 2-D bins in each used radial bin (the centre where none falls)."""
    geometry = _geometry(tile_px)
    grid = geometry.grid
    sums = np.bincount(geometry.radial_index, geometry.rho, minlength=grid.bins)[: grid.bins][grid.used]
    counts = np.bincount(geometry.radial_index, minlength=grid.bins)[: grid.bins][grid.used]
    return np.where(counts > 0, sums / np.maximum(counts, 1), grid.u)


@functools.lru_cache(maxsize=4)
def _defocus_transfer_squared(tile_px: int) -> np.ndarray:
    # Evaluated where the bins' frequencies really are: at low frequencies a radial bin holds
    # few 2-D bins, off its centre, and the centre would bias the radius.
    return _disk_transfer(DEFOCUS_RADII_PX, _radial_bin_rho(tile_px)) ** 2


@functools.lru_cache(maxsize=32)
def _defocus_templates(tile_px: int, eps: float) -> np.ndarray:
    geometry = _geometry(tile_px)
    return _detrend_normalise(np.log(_defocus_transfer_squared(tile_px) + eps), geometry.grid.trend)


# --------------------------------------------------------------------------------------
# Searches
# --------------------------------------------------------------------------------------


def _log_power(spectrum: BlurSpectrum, geometry: _Geometry) -> np.ndarray:
    power = spectrum.power[geometry.selected]
    floor = max(float(power.max()), 1e-30) * 1e-12  # a zero tile (black frame) stays finite
    return np.log(power + floor)


def _radial_profile(values: np.ndarray, index: np.ndarray, grid: _ProfileGrid) -> np.ndarray:
    """Mean of ``values`` per radial bin over the used range (empty bins interpolated)."""
    sums = np.bincount(index, values, minlength=grid.bins)[: grid.bins][grid.used]
    counts = np.bincount(index, minlength=grid.bins)[: grid.bins][grid.used]
    return _fill_empty((sums / np.maximum(counts, 1))[None, :], counts[None, :])[0]


def _direction_u(fx: np.ndarray, fy: np.ndarray, angle_deg: float) -> np.ndarray:
    # Frequencies along the motion direction (cos theta, -sin theta) in (x, row) coordinates:
    # angles are counter-clockwise as displayed, and rows grow downwards.
    theta = math.radians(angle_deg)
    return np.abs(fx * math.cos(theta) - fy * math.sin(theta))


@dataclass(frozen=True)
class _Bins:
    """The frequency bins a motion search profiles, with their log power and profile grid."""

    fx: np.ndarray
    fy: np.ndarray
    log_power: np.ndarray
    grid: _ProfileGrid


def _bins(geometry: _Geometry, log_power: np.ndarray, coarse: bool = False) -> _Bins:
    if not coarse:
        return _Bins(geometry.fx, geometry.fy, log_power, geometry.grid)
    subset = geometry.coarse_selected
    return _Bins(geometry.fx[subset], geometry.fy[subset], log_power[subset], geometry.grid)


def _profile_index(fx, fy, grid: _ProfileGrid, angles_deg) -> tuple[np.ndarray, np.ndarray]:
    """Flat profile-bin index of every (angle, frequency bin) pair, and the count per profile bin."""
    theta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    # Exact zeros along the axes: cos(90 deg) is 6e-17 (-4e-8 in float32), and that sliver of
    # the horizontal frequency would send vertical frequencies of either sign to alternate
    # bins, a comb that made vertical motion blurs unrecognisable.
    cos, sin = (np.where(np.abs(v) < 1e-9, 0.0, v).astype(np.float32) for v in (np.cos(theta), np.sin(theta)))
    u = np.abs(np.multiply.outer(cos, fx) - np.multiply.outer(sin, fy))
    index = np.minimum((u * np.float32(1.0 / grid.width)).astype(np.int64), grid.bins - 1)
    index += (np.arange(len(theta)) * grid.bins)[:, None]
    index = index.ravel()
    return index, np.bincount(index, minlength=len(theta) * grid.bins)


@functools.lru_cache(maxsize=4)
def _coarse_scan_index(tile_px: int) -> tuple[np.ndarray, np.ndarray]:
    # The coarse scan always uses the same angles and bins: its binning is computed once.
    geometry = _geometry(tile_px)
    subset = geometry.coarse_selected
    return _profile_index(geometry.fx[subset], geometry.fy[subset], geometry.grid, _coarse_angles())


def _coarse_angles() -> np.ndarray:
    return np.arange(0.0, 180.0, COARSE_ANGLE_STEP_DEG)


def _motion_profiles(bins: _Bins, angles_deg, binning=None) -> np.ndarray:
    """Detrended, unit-norm profiles of the log spectrum along each direction, one row per angle.

    All directions in one ``bincount`` (profile bin + angle offset): a few large NumPy calls
    instead of one small call per angle, which keeps the GIL free for the other workers.
    ``binning`` is a precomputed :func:`_profile_index` for these bins and angles.
    """
    count = len(angles_deg)
    grid = bins.grid
    index, counts = binning if binning is not None else _profile_index(bins.fx, bins.fy, grid, angles_deg)
    sums = np.bincount(index, np.tile(bins.log_power, count), minlength=count * grid.bins)
    counts = counts.reshape(count, grid.bins)[:, grid.used]
    profiles = sums.reshape(count, grid.bins)[:, grid.used] / np.maximum(counts, 1)
    return _detrend_normalise(_fill_empty(profiles, counts), grid.trend)


@dataclass(frozen=True)
class _Target:
    """A frame's log spectrum on one set of bins with its trend removed, to score templates
    against: detrended once per frame, not once per candidate."""

    values: np.ndarray
    energy: float
    trend: np.ndarray


def _target(log_power: np.ndarray, trend: np.ndarray) -> _Target:
    """``log_power`` minus its projection on the orthonormal ``trend`` columns (same bins)."""
    values = log_power - trend @ (trend.T @ log_power)
    return _Target(values, float(values @ values), trend)


def _r2_gain(target: _Target, template: np.ndarray) -> float:
    """Fraction of the detrended 2-D log spectrum's variance that ``template`` explains."""
    t = template - target.trend @ (target.trend.T @ template)
    tt, ty = float(t @ t), float(t @ target.values)
    if tt <= 0.0 or target.energy <= 0.0 or ty <= 0.0:
        return 0.0
    return ty**2 / (tt * target.energy)


def _motion_r2(target: _Target, fx: np.ndarray, fy: np.ndarray, length_px, angle_deg) -> float:
    """R^2 gain of a motion kernel on the bins at frequencies (fx, fy) that ``target`` covers."""
    u = _direction_u(fx, fy, angle_deg)
    template = np.log(_motion_transfer(length_px, u) ** 2 + TEMPLATE_EPS)
    return _r2_gain(target, template)


def _local_maxima(scores: np.ndarray, count: int, circular: bool) -> list[int]:
    """Indexes of the ``count`` highest local maxima of a 1-D score array."""
    left = np.roll(scores, 1) if circular else np.concatenate([[-np.inf], scores[:-1]])
    right = np.roll(scores, -1) if circular else np.concatenate([scores[1:], [-np.inf]])
    peaks = np.flatnonzero((scores >= left) & (scores >= right))
    return list(peaks[np.argsort(scores[peaks])[::-1][:count]])


def _parabolic_peak(values: np.ndarray, k: int) -> float:
    """Sub-sample offset of a peak at ``k`` from a parabola through its neighbours."""
    if k <= 0 or k >= len(values) - 1:
        return 0.0
    a, b, c = values[k - 1], values[k], values[k + 1]
    curvature = a - 2 * b + c
    return float(0.5 * (a - c) / curvature) if curvature < 0 else 0.0


def estimate_motion(spectrum: BlurSpectrum) -> MotionFit:
    """Linear motion blur that best explains a spectrum.

    Parameters
    ----------
    spectrum : BlurSpectrum
        From :func:`blur_spectrum` (or :func:`average_spectra`).

    Returns
    -------
    MotionFit
        Length in pixels, angle in degrees in [0, 180) (counter-clockwise from +x as
        displayed), and the R^2 gain that scores it.
    """
    geometry = _geometry(spectrum.tile_px)
    log_power = _log_power(spectrum, geometry)
    lengths = MOTION_LENGTHS_PX
    templates = _motion_templates(spectrum.tile_px)
    full = _bins(geometry, log_power)
    # 1. Coarse scan of directions, on a quarter of the bins and every fourth length: the
    #    best length per direction.
    coarse_bins = _bins(geometry, log_power, coarse=True)
    coarse_templates = _motion_templates(spectrum.tile_px, COARSE_LENGTH_STRIDE)
    angles = _coarse_angles()
    coarse_profiles = _motion_profiles(coarse_bins, angles, _coarse_scan_index(spectrum.tile_px))
    coarse_scores = coarse_profiles @ coarse_templates.T
    coarse = coarse_scores.max(axis=1)
    # 2. The best few directions, with their coarse scan's best length, re-scored by their
    #    2-D R^2 gain (the winner's length is refined at full resolution below).
    peaks = _local_maxima(coarse, CANDIDATES, circular=True)
    length_indexes = np.argmax(coarse_scores[peaks], axis=1) * COARSE_LENGTH_STRIDE
    # Candidates ranked on the coarse quarter of the bins; the winner scored on all of them.
    coarse_target = _target(coarse_bins.log_power, geometry.coarse_trend_basis)
    best = None
    for k, length_index in zip(peaks, length_indexes):
        score = _motion_r2(coarse_target, coarse_bins.fx, coarse_bins.fy, float(lengths[length_index]), angles[k])
        if best is None or score > best[0]:
            best = (score, float(angles[k]), int(length_index))
    _, angle, length_index = best
    # 3. Refine the direction on finer grids, scoring only lengths near the one found; then
    #    the length with a parabola through the correlation peak (the grid is 0.05 px).
    near = slice(max(0, length_index - REFINE_LENGTH_SPAN), length_index + REFINE_LENGTH_SPAN + 1)
    previous_step = COARSE_ANGLE_STEP_DEG
    for step in FINE_ANGLE_STEPS_DEG:
        # The true angle lies within half the previous step: that many of this step, each side.
        reach = math.ceil(0.5 * previous_step / step - 1e-9)
        candidates = angle + step * np.arange(-reach, reach + 1)
        scores_by_angle = _motion_profiles(full, candidates) @ templates[near].T
        peak_by_angle = scores_by_angle.max(axis=1)
        best_angle = int(np.argmax(peak_by_angle))
        angle, scores = float(candidates[best_angle]), scores_by_angle[best_angle]
        previous_step = step
    # Between the last grid's angles: the vertex of a parabola through the best and its neighbours.
    angle += _parabolic_peak(peak_by_angle, best_angle) * FINE_ANGLE_STEPS_DEG[-1]
    k = int(np.argmax(scores))
    length = float(lengths[near][k] + _parabolic_peak(scores, k) * (lengths[1] - lengths[0]))
    angle = float(np.round(angle, 6) % 180.0)  # -1e-15 % 180 would be 180.0
    score = _motion_r2(_target(log_power, geometry.trend_basis), geometry.fx, geometry.fy, length, angle)
    return MotionFit(length - MOTION_LENGTH_BIAS_PX, angle, score)


def estimate_defocus(spectrum: BlurSpectrum) -> DefocusFit:
    """Defocus disk that best explains a spectrum.

    Parameters
    ----------
    spectrum : BlurSpectrum

    Returns
    -------
    DefocusFit
        Radius in pixels and the R^2 gain that scores it.
    """
    geometry = _geometry(spectrum.tile_px)
    log_power = _log_power(spectrum, geometry)
    profile = _radial_profile(log_power, geometry.radial_index, geometry.grid)
    normalised = _detrend_normalise(profile[None, :], geometry.grid.trend)[0]
    radii = DEFOCUS_RADII_PX
    # Candidates ranked on the coarse quarter of the bins; the winner scored on all of them.
    subset = geometry.coarse_selected
    coarse_rho = geometry.rho[subset]
    coarse_target = _target(log_power[subset], geometry.coarse_trend_basis)
    best = None
    for eps in DEFOCUS_TEMPLATE_EPS:
        scores = _defocus_templates(spectrum.tile_px, eps) @ normalised
        for k in _local_maxima(scores, DEFOCUS_CANDIDATES, circular=False):
            radius = float(radii[k] + _parabolic_peak(scores, k) * (radii[1] - radii[0]))
            template = _log_disk_template(radius, coarse_rho, eps)
            score = _r2_gain(coarse_target, template)
            if best is None or score > best[0]:
                best = (score, radius, eps)
    _, radius, eps = best
    score = _r2_gain(_target(log_power, geometry.trend_basis), _log_disk_template(radius, geometry.rho, eps))
    return DefocusFit(radius - DEFOCUS_RADIUS_BIAS_PX, score)


def estimate_blur(spectrum: BlurSpectrum, kind: str = "auto") -> BlurEstimate:
    """Estimate a frame's blur: motion, defocus, or none worth restoring.

    Parameters
    ----------
    spectrum : BlurSpectrum
        From :func:`blur_spectrum` (or :func:`average_spectra`).
    kind : {"auto", "motion", "defocus"}
        Which families to search. ``"auto"`` searches both and keeps the better one.

    Returns
    -------
    BlurEstimate
        Its ``kind`` is ``"none"`` when the winning fit is too weak
        (:data:`MOTION_MIN_SCORE`, :data:`DEFOCUS_MIN_SCORE`) or the blur too small to matter.
    """
    if kind not in KINDS:
        raise InvalidParameterError(f"estimation kind must be one of {', '.join(KINDS)}, got {kind!r}")
    defocus = estimate_defocus(spectrum) if kind in ("auto", "defocus") else None
    # A decisive defocus fit settles "auto" without the (costlier) motion search: no motion
    # fit of a defocused frame, and no defocus fit of a motion-blurred one, has scored that
    # high on the benchmark's footage and photographs (0.18 and 0.12 at most).
    decisive = kind == "auto" and defocus.score >= DECISIVE_DEFOCUS_SCORE
    motion = estimate_motion(spectrum) if kind in ("auto", "motion") and not decisive else None
    motion_score = motion.score if motion is not None else -1.0
    defocus_score = defocus.score if defocus is not None else -1.0
    if motion_score >= defocus_score:
        chosen, score, big_enough = "motion", motion_score, motion.length_px >= MIN_LENGTH_PX
    else:
        chosen, score, big_enough = "defocus", defocus_score, defocus.radius_px >= MIN_RADIUS_PX
    minimum = MOTION_MIN_SCORE if chosen == "motion" else DEFOCUS_MIN_SCORE
    if score < minimum or not big_enough:
        chosen = "none"
    confidence = float(min(1.0, max(0.0, score) / FULL_CONFIDENCE_SCORE))
    return BlurEstimate(chosen, motion, defocus, confidence)
