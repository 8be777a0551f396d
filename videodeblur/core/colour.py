"""Transfer curves and ranges: coded values to linear light and back, fast enough for video.

A lens blurs light, before the sensor clips at white and before the transfer curve encodes it;
a linear deconvolution is exact only in linear light. This module holds the curves a stream can
be tagged with (FFmpeg's ``color_trc`` values), the coded range (limited or full), and
:class:`Linearisation`: lookup tables from a plane's integer codes to linear light and from
linear light back to codes, so that converting a frame is one table lookup each way.

Curves are normalised so that 1.0 is nominal white (coded 1.0) and 0.0 black; values beyond
(limited-range "super-whites", overshoot) follow the curve's formula. "Linear" is scene light
for camera curves (the inverse OETF: BT.709/601/2020, SMPTE 240M, HLG) and display light for
display curves (sRGB's and plain gamma's EOTF, PQ's EOTF with 10,000 cd/m^2 as 1.0).

Pure NumPy: no I/O, no threads.

References
----------
.. [1] ITU-R BT.709-6, BT.601-7, BT.2020-2, BT.2100-2 (PQ and HLG); SMPTE ST 2084; SMPTE 240M;
   IEC 61966-2-1 (sRGB); ARIB STD-B67.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from videodeblur.errors import InvalidParameterError


def _spow(x: np.ndarray, exponent: float) -> np.ndarray:
    """Sign-preserving power (negative overshoot stays negative)."""
    return np.sign(x) * np.abs(x) ** exponent


def _camera_curve(alpha: float, beta: float, slope: float = 4.5, exponent: float = 0.45):
    """An OETF with a linear toe: ``slope L`` below ``beta``, ``alpha L^exponent - (alpha - 1)`` above.

    The standard's rounded constants leave the two pieces a hair apart at ``beta``; decoding
    switches where the power piece reaches ``beta``, as colour-science does.
    """
    knee = alpha * beta**exponent - (alpha - 1.0)

    def encode(linear):
        linear = np.asarray(linear, dtype=np.float64)
        return np.where(linear < beta, linear * slope, alpha * _spow(linear, exponent) - (alpha - 1.0))

    def decode(coded):
        coded = np.asarray(coded, dtype=np.float64)
        return np.where(coded < knee, coded / slope, _spow((coded + alpha - 1.0) / alpha, 1.0 / exponent))

    return decode, encode


def _srgb():
    def decode(coded):
        coded = np.asarray(coded, dtype=np.float64)
        return np.where(coded <= 0.04045, coded / 12.92, _spow((coded + 0.055) / 1.055, 2.4))

    def encode(linear):
        linear = np.asarray(linear, dtype=np.float64)
        return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * _spow(linear, 1 / 2.4) - 0.055)

    return decode, encode


def _gamma(gamma: float):
    return (lambda coded: _spow(np.asarray(coded, dtype=np.float64), gamma),
            lambda linear: _spow(np.asarray(linear, dtype=np.float64), 1.0 / gamma))


_PQ_M1, _PQ_M2 = 2610 / 16384, 2523 / 4096 * 128
_PQ_C1, _PQ_C2, _PQ_C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32


def _pq():
    def decode(coded):
        powered = np.maximum(np.asarray(coded, dtype=np.float64), 0.0) ** (1.0 / _PQ_M2)
        return (np.maximum(powered - _PQ_C1, 0.0) / (_PQ_C2 - _PQ_C3 * powered)) ** (1.0 / _PQ_M1)

    def encode(linear):
        powered = np.maximum(np.asarray(linear, dtype=np.float64), 0.0) ** _PQ_M1
        return ((_PQ_C1 + _PQ_C2 * powered) / (1.0 + _PQ_C3 * powered)) ** _PQ_M2

    return decode, encode


_HLG_A = 0.17883277
_HLG_B = 1.0 - 4.0 * _HLG_A
_HLG_C = 0.5 - _HLG_A * math.log(4.0 * _HLG_A)


def _hlg():
    def decode(coded):
        coded = np.asarray(coded, dtype=np.float64)
        with np.errstate(over="ignore"):
            return np.where(coded <= 0.5, _spow(coded, 2.0) / 3.0, (np.exp((coded - _HLG_C) / _HLG_A) + _HLG_B) / 12.0)

    def encode(linear):
        linear = np.asarray(linear, dtype=np.float64)
        safe = np.maximum(12.0 * linear - _HLG_B, 1e-12)
        return np.where(linear <= 1.0 / 12.0, _spow(3.0 * linear, 0.5), _HLG_A * np.log(safe) + _HLG_C)

    return decode, encode


@dataclass(frozen=True)
class Transfer:
    """A transfer curve.

    Attributes
    ----------
    name : str
        Short name used in messages and ``config show`` (``"bt709"``, ``"srgb"``, ``"pq"`` ...).
    description : str
    ffmpeg_values : tuple of int
        FFmpeg ``AVColorTransferCharacteristic`` values it stands for.
    decode, encode : callable
        Coded value (1.0 = nominal white) to linear light, and back (NumPy, vectorised).
    steep_black : bool
        The curve has no linear toe, so codes near black are far apart in linear light; the
        table back to codes is indexed by the fourth root of linear light (see
        :class:`Linearisation`).
    high_dynamic_range : bool
    reference_white : float
        The linear light of the curve's reference white: 1.0 (nominal white) for standard
        dynamic range; for PQ and HLG, BT.2408's graphics white (203 cd/m^2, 75 % HLG signal).
    """

    name: str
    description: str
    ffmpeg_values: tuple[int, ...]
    decode: Callable[[np.ndarray], np.ndarray]
    encode: Callable[[np.ndarray], np.ndarray]
    steep_black: bool = False
    high_dynamic_range: bool = False
    reference_white: float = 1.0


def _transfer(name, description, values, curves, **flags) -> Transfer:
    decode, encode = curves
    return Transfer(name, description, values, decode, encode, **flags)


#: The curves this module knows, by name. BT.601 / SMPTE 170M and BT.2020 (10-bit) share
#: BT.709's curve; BT.2020 12-bit has more precise constants.
TRANSFERS: dict[str, Transfer] = {t.name: t for t in (
    _transfer("bt709", "ITU-R BT.709 (also BT.601, SMPTE 170M, BT.2020 10-bit, BT.1361, xvYCC)", (1, 6, 11, 12, 14),
              _camera_curve(1.099, 0.018)),
    _transfer("bt2020-12", "ITU-R BT.2020 12-bit", (15,), _camera_curve(1.0993, 0.0181)),
    _transfer("smpte240m", "SMPTE 240M", (7,), _camera_curve(1.1115, 0.0228, slope=4.0)),
    _transfer("srgb", "IEC 61966-2-1 (sRGB)", (13,), _srgb()),
    _transfer("gamma22", "gamma 2.2 (BT.470 M)", (4,), _gamma(2.2), steep_black=True),
    _transfer("gamma28", "gamma 2.8 (BT.470 BG)", (5,), _gamma(2.8), steep_black=True),
    _transfer("linear", "linear light", (8,), (lambda c: np.asarray(c, dtype=np.float64),
                                               lambda c: np.asarray(c, dtype=np.float64))),
    _transfer("pq", "SMPTE ST 2084 (PQ), 10,000 cd/m^2 = 1", (16,), _pq(), steep_black=True,
              high_dynamic_range=True, reference_white=0.0203),
    _transfer("hlg", "ARIB STD-B67 (HLG, BT.2100)", (18,), _hlg(), steep_black=True, high_dynamic_range=True,
              reference_white=float(_hlg()[0](np.array(0.75)))),
)}

#: The curve assumed for an untagged stream: standard dynamic range video is BT.709.
UNTAGGED = "bt709"


def transfer_for_tag(color_trc: int | None) -> Transfer | None:
    """The curve of an FFmpeg ``color_trc`` value; None for one this module does not know (log
    curves, SMPTE 428). An untagged stream (None, or 2 = unspecified) gets :data:`UNTAGGED`."""
    if color_trc is None or color_trc == 2:
        return TRANSFERS[UNTAGGED]
    for transfer in TRANSFERS.values():
        if color_trc in transfer.ffmpeg_values:
            return transfer
    return None


@dataclass(frozen=True)
class CodedRange:
    """How a plane's integer codes map to coded values 0 (black) .. 1 (nominal white).

    Attributes
    ----------
    bit_depth : int
    limited : bool
        Limited ("tv", MPEG) range: luma black at 16 and white at 235, scaled by the bit depth;
        else full ("pc", JPEG) range: 0 and ``2^bits - 1``.
    """

    bit_depth: int
    limited: bool

    @property
    def black(self) -> float:
        return 16.0 * 2 ** (self.bit_depth - 8) if self.limited else 0.0

    @property
    def white(self) -> float:
        return 235.0 * 2 ** (self.bit_depth - 8) if self.limited else float(2**self.bit_depth - 1)

    @property
    def largest_code(self) -> int:
        return 2**self.bit_depth - 1

    def to_coded(self, codes: np.ndarray) -> np.ndarray:
        """Integer codes to coded values (1.0 = nominal white)."""
        return (np.asarray(codes, dtype=np.float64) - self.black) / (self.white - self.black)

    def to_codes(self, coded: np.ndarray) -> np.ndarray:
        """Coded values to (fractional) codes."""
        return np.asarray(coded, dtype=np.float64) * (self.white - self.black) + self.black


#: Entries of the table from linear light back to codes, at most.
MAX_ENCODE_TABLE = 1 << 20


class Linearisation:
    """Tables from a plane's codes to linear light and back, for one curve, range and depth.

    Parameters
    ----------
    transfer : Transfer
    coded_range : CodedRange

    Notes
    -----
    Decoding is exact: one float32 per code. Encoding reads a table indexed by
    ``u = (max(L, 0) * scale) ** exponent`` (truncated), where ``exponent`` is 1 for curves with a
    linear toe and 1/4 for steep ones (:attr:`Transfer.steep_black`), and the table holds the code
    nearest to the curve at the middle of each index's interval; the table is as long as needed
    to give every pair of neighbouring codes distinct entries (at most :data:`MAX_ENCODE_TABLE`).
    Linear light below black gives black's code, above the largest code's light the largest
    code, as a clip of the coded values would.
    """

    def __init__(self, transfer: Transfer, coded_range: CodedRange):
        self.transfer = transfer
        self.coded_range = coded_range
        codes = np.arange(coded_range.largest_code + 1)
        self.decode_table = transfer.decode(coded_range.to_coded(codes)).astype(np.float32)
        self.exponent = 0.25 if transfer.steep_black else 1.0
        top = float(max(self.decode_table[-1], 1.0))
        # The finest step between codes above black, in the index domain, sets the table length.
        warped = np.maximum(self.decode_table.astype(np.float64), 0.0) ** self.exponent
        steps = np.diff(warped[int(coded_range.black):])
        finest = float(steps[steps > 0].min()) if np.any(steps > 0) else 1.0
        size = int(min(MAX_ENCODE_TABLE, max(4096, 2 ** math.ceil(math.log2(4.0 * top**self.exponent / finest)))))
        #: ``u = (L * scale) ** exponent`` indexes :attr:`encode_table`.
        self.scale = (size - 1) ** (1.0 / self.exponent) / top
        centres = ((np.arange(size) + 0.5) / (size - 1)) ** (1.0 / self.exponent) * top
        fractional = coded_range.to_codes(transfer.encode(centres))
        self.encode_table = np.clip(np.rint(fractional), 0, coded_range.largest_code).astype(
            np.uint8 if coded_range.bit_depth <= 8 else np.uint16)
        self.encode_table[0] = int(np.clip(round(coded_range.black), 0, coded_range.largest_code))

    def decode(self, plane: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Linear light (float32) of an integer plane's codes."""
        return np.take(self.decode_table, plane, out=out, mode="clip")

    def encode(self, linear: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Codes of linear light into an integer array ``out`` (rounded, clipped to the codes)."""
        index = self.index(linear)
        return np.take(self.encode_table, index, out=out, mode="clip")

    def index(self, scaled: np.ndarray, prescaled: bool = False) -> np.ndarray:
        """The table indexes of linear light (``prescaled``: already multiplied by :attr:`scale`),
        clipped to the table."""
        values = np.asarray(scaled, dtype=np.float32)
        values = values if prescaled else values * np.float32(self.scale)
        values = np.clip(values, np.float32(0.0), np.float32(self.index_limit))
        if self.exponent != 1.0:
            values = np.sqrt(np.sqrt(values))
        return values.astype(np.int32)

    @property
    def index_limit(self) -> float:
        """The largest prescaled light worth indexing (the table's last entry, before the roots)."""
        return float(self.encode_table.size - 1) ** (1.0 / self.exponent)


@functools.lru_cache(maxsize=16)
def linearisation(transfer_name: str, bit_depth: int, limited: bool) -> Linearisation:
    """The (cached) :class:`Linearisation` of a curve, depth and range."""
    if transfer_name not in TRANSFERS:
        raise InvalidParameterError(f"unknown transfer curve {transfer_name!r} (known: {', '.join(TRANSFERS)})")
    return Linearisation(TRANSFERS[transfer_name], CodedRange(bit_depth, limited))
