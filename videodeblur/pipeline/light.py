"""Where a stream's frames are restored: in linear light, or on the coded values.

``deconvolution.light = "auto"`` reads the stream's transfer tag (``color_trc``) and range: a
curve :mod:`videodeblur.core.colour` knows means linear light; an untagged stream is taken as
BT.709 (standard dynamic range video), and the run says so once; a curve it does not know (log
curves, SMPTE 428) means the coded values. ``"linear"`` insists (and refuses an unknown curve),
``"encoded"`` restores the coded values as they are.

Only the luma plane (or, for RGB pixel formats, each colour plane) carries light: chroma planes
are colour differences and are always restored as coded values, in their own resolution. Linear
RGB for ``planes = "all"`` would need the chroma of a 4:2:0 or 4:2:2 frame upsampled and then
subsampled again, which changes the colours of unblurred areas on every run; luma in linear light
with chroma as coded keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

from videodeblur.core import colour
from videodeblur.errors import InvalidParameterError
from videodeblur.io.planes import planar_format

#: FFmpeg's ``color_range`` values.
RANGE_LIMITED, RANGE_FULL = 1, 2


@dataclass(frozen=True)
class LightChoice:
    """What a stream's light planes are restored in.

    Attributes
    ----------
    linear : bool
        In linear light (else the coded values).
    transfer : Transfer or None
        The curve, when linear.
    limited : bool
        Limited ("tv") range codes.
    description : str
        One line for ``config show``, the preview label and the run's summary, e.g.
        ``"linear light (bt709, limited range)"``.
    note : str or None
        Said once by a run: what was assumed (an untagged stream) or why linear light is off.
    """

    linear: bool
    transfer: colour.Transfer | None
    limited: bool
    description: str
    note: str | None = None

    def linearisation(self, bit_depth: int) -> colour.Linearisation:
        """The tables of this choice for planes of ``bit_depth``."""
        return colour.linearisation(self.transfer.name, bit_depth, self.limited)


def _limited(info) -> bool:
    if info.color_range is not None:
        return info.color_range == RANGE_LIMITED
    # Untagged: video in YUV is limited range; RGB and gray planes are full range.
    name = planar_format(info.pix_fmt)
    return not (name.startswith(("gbr", "gray")) or name.startswith("yuvj"))


def light_for(setting: str, info) -> LightChoice:
    """The :class:`LightChoice` of ``deconvolution.light = setting`` for a stream.

    Parameters
    ----------
    setting : {"auto", "linear", "encoded"}
    info : VideoInfo
        The stream's tags (``color_trc``, ``color_range``) and pixel format.

    Raises
    ------
    InvalidParameterError
        ``"linear"`` for a stream whose transfer curve is not one this program knows.
    """
    limited = _limited(info)
    range_name = "limited" if limited else "full"
    if setting == "encoded":
        return LightChoice(False, None, limited, "the coded values (deconvolution.light = \"encoded\")")
    transfer = colour.transfer_for_tag(info.color_trc)
    if transfer is None:
        if setting == "linear":
            raise InvalidParameterError(
                f"deconvolution.light = \"linear\": the stream's transfer curve (color_trc {info.color_trc}) is not "
                "one videodeblur knows; use \"encoded\" or \"auto\"")
        return LightChoice(False, None, limited, "the coded values (the stream's transfer curve is not known)",
                           f"transfer curve color_trc {info.color_trc} is not known: restoring the coded values")
    untagged = info.color_trc is None
    note = "no transfer tag: taken as BT.709 standard dynamic range video" if untagged else None
    return LightChoice(True, transfer, limited, f"linear light ({transfer.name}, {range_name} range"
                       + (", untagged: assumed" if untagged else "") + ")", note)
