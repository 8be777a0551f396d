"""Transfer curves and the tables that convert planes (videodeblur.core.colour), against colour-science."""

from __future__ import annotations

import colour as colour_science
import numpy as np
import pytest

from videodeblur.core import colour
from videodeblur.errors import InvalidParameterError

CODED = np.linspace(0.0, 1.0, 1001)

#: Our curve -> (colour-science's function, its name, "decode" means ...)
REFERENCES = {
    "bt709": lambda v: colour_science.oetf_inverse(v, function="ITU-R BT.709"),
    "bt2020-12": lambda v: colour_science.models.oetf_inverse_BT2020(v, is_12_bits_system=True),
    "srgb": lambda v: colour_science.models.eotf_sRGB(v),
    "pq": lambda v: colour_science.models.eotf_ST2084(v) / 10000.0,
    "hlg": lambda v: colour_science.models.oetf_inverse_ARIBSTDB67(v) / 12.0,
    "gamma22": lambda v: v ** 2.2,
    "gamma28": lambda v: v ** 2.8,
    "linear": lambda v: v,
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_curves_match_colour_science(name):
    transfer = colour.TRANSFERS[name]
    expected = REFERENCES[name](CODED)
    np.testing.assert_allclose(transfer.decode(CODED), expected, rtol=1e-6, atol=1e-9)
    light = np.linspace(0.0, 1.0, 1001)
    np.testing.assert_allclose(transfer.decode(transfer.encode(light)), light, rtol=1e-6, atol=1e-9)


def test_smpte240m_matches_colour_science():
    light = np.linspace(0.0, 1.0, 501)
    np.testing.assert_allclose(colour.TRANSFERS["smpte240m"].encode(light),
                               colour_science.models.oetf_SMPTE240M(light), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("tag, name", [(1, "bt709"), (6, "bt709"), (14, "bt709"), (15, "bt2020-12"), (13, "srgb"),
                                       (16, "pq"), (18, "hlg"), (4, "gamma22"), (8, "linear"), (None, "bt709"),
                                       (2, "bt709")])
def test_ffmpeg_tags_map_to_curves(tag, name):
    assert colour.transfer_for_tag(tag).name == name


@pytest.mark.parametrize("tag", [9, 10, 17])
def test_unknown_curves_are_none(tag):
    assert colour.transfer_for_tag(tag) is None


@pytest.mark.parametrize("name", sorted(colour.TRANSFERS))
@pytest.mark.parametrize("bits, limited", [(8, True), (8, False), (10, True), (12, False)])
def test_tables_decode_exactly_and_encode_to_the_nearest_code(name, bits, limited):
    table = colour.linearisation(name, bits, limited)
    coded_range = colour.CodedRange(bits, limited)
    codes = np.arange(2**bits, dtype=np.uint16 if bits > 8 else np.uint8)
    light = table.decode(codes)
    reference = colour.TRANSFERS[name].decode(coded_range.to_coded(codes.astype(np.float64)))
    np.testing.assert_allclose(light, reference.astype(np.float32), rtol=1e-6, atol=1e-7)
    # Every code from black up comes back from its own light (the table separates neighbours).
    usable = codes[int(coded_range.black):]
    out = np.empty(usable.shape, usable.dtype)
    table.encode(table.decode(usable), out)
    assert np.array_equal(out, usable) or np.abs(out.astype(int) - usable.astype(int)).max() <= 1
    assert np.mean(out == usable) > 0.995
    # Below black: black; above the largest code's light: the largest code.
    table.encode(np.array([-1.0, 1e6], np.float32), out[:2])
    assert out[0] == round(coded_range.black) and out[1] == 2**bits - 1


def test_limited_range_codes():
    eight = colour.CodedRange(8, True)
    assert (eight.black, eight.white) == (16.0, 235.0)
    ten = colour.CodedRange(10, True)
    assert (ten.black, ten.white) == (64.0, 940.0)
    assert colour.CodedRange(10, False).white == 1023.0
    np.testing.assert_allclose(ten.to_coded(np.array([64, 940])), [0.0, 1.0])


def test_unknown_curve_name_is_refused():
    with pytest.raises(InvalidParameterError, match="unknown transfer curve"):
        colour.linearisation("log", 8, True)


@pytest.mark.parametrize("name, bits", [("bt709", 8), ("srgb", 8), ("bt709", 10), ("pq", 10), ("hlg", 12), ("bt709", 12)])
def test_linear_light_is_coded_back_from_a_view_of_the_transform_buffer(name, bits):
    """The restoration's store (LinearLight.store) reads a strided view of the padded FFT buffer,
    prescaled to table units, and clips what lies beyond the codes (far above white, even beyond
    an integer's range; below black) as a clip of the coded values would; its load reads the
    codes' light into such a view. Both go by bands of rows: the frame here has several."""
    from videodeblur.restoration.coding import LOOKUP_BAND_ROWS, LinearLight

    table = colour.linearisation(name, bits, True)
    rows = 2 * LOOKUP_BAND_ROWS + 11
    rng = np.random.default_rng(bits)
    light = rng.uniform(-0.1, 1.3, (rows + 6, 70)).astype(np.float32)
    light[0, :5] = [1e6, -1e6, -1.0, 0.0, 1e20]
    buffer = light * np.float32(table.scale)
    view = buffer[:rows, :53]  # rows longer than the view, as the FFT buffer's
    expected = np.empty(view.shape, table.encode_table.dtype)
    table.encode(light[:rows, :53], expected)
    out = np.zeros((rows + 9, 60), table.encode_table.dtype)[3:rows + 3, 2:55]
    LinearLight(table).store(view, out)  # (it changes the view: the transform's buffer is scratch)
    assert np.array_equal(out, expected)
    white, black = table.coded_range.largest_code, table.encode_table[0]
    assert list(out[0, :5]) == [white, black, black, black, white]
    if bits > 8:  # (8-bit planes are loaded by OpenCV's LUT)
        loaded = np.zeros((rows + 4, 60), np.float32)[2:rows + 2, 1:54]
        LinearLight(table).load(out, loaded)
        assert np.array_equal(loaded, table.decode_table[out])
