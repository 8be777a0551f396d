"""Block means (videodeblur.core.blocks) against NumPy's mean of each block."""

import numpy as np
import pytest

from videodeblur.core.blocks import block_means
from videodeblur.errors import InvalidParameterError


def reference(plane: np.ndarray, factor: int) -> np.ndarray:
    rows, columns = (n // factor for n in plane.shape)
    whole = plane[: rows * factor, : columns * factor].astype(np.float64)
    return whole.reshape(rows, factor, columns, factor).mean(axis=(1, 3))


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("shape", [(64, 96), (67, 101), (1080, 1920)])
def test_float_block_means_are_the_means_of_the_blocks(shape, factor):
    plane = np.random.default_rng(1).gamma(0.5, 0.4, shape).astype(np.float32)
    means = block_means(plane, factor)
    assert means.shape == (shape[0] // factor, shape[1] // factor) and means.dtype == np.float32
    np.testing.assert_allclose(means, reference(plane, factor), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 1023)])
def test_integer_block_means_are_within_a_code_of_the_means(dtype, top):
    plane = np.random.default_rng(2).integers(0, top + 1, (270, 483)).astype(dtype)
    means = block_means(plane, 4)
    assert means.dtype == dtype
    error = np.abs(means - reference(plane, 4))
    assert error.max() <= 1.0 and error.mean() < 0.5


def test_a_strided_view_is_read_as_it_is():
    frame = np.random.default_rng(3).random((120, 200)).astype(np.float32)
    view = frame[:, 8:168]
    np.testing.assert_allclose(block_means(view, 4), reference(view, 4), rtol=1e-5)


@pytest.mark.parametrize("factor, shape", [(0, (8, 8)), (8, (7, 64)), (8, (64, 7))])
def test_blocks_larger_than_the_plane_are_refused(factor, shape):
    with pytest.raises(InvalidParameterError):
        block_means(np.zeros(shape, np.float32), factor)
