"""Shared fixtures for the numerical tests.

* Every test session points ``VIDEODEBLUR_CACHE_DIR`` at a temporary directory before anything
  plans an FFT, so FFTW wisdom is never read from nor written to the user's cache.
* Real photographs from scikit-image (shipped inside its wheel, no download) as float64 luma in
  [0, 1]; tests crop what they need so they stay fast on two shared cores.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache_dir(tmp_path_factory):
    """Session-wide: FFTW wisdom goes to a temporary cache directory, never the user's.

    Session scope (not function scope) because the library loads wisdom once per process, and
    because Hypothesis refuses function-scoped fixtures around ``@given`` tests.
    """
    cache = tmp_path_factory.mktemp("videodeblur-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIDEODEBLUR_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="session")
def camera() -> np.ndarray:
    """scikit-image's 512x512 'camera' photograph, float64 in [0, 1] (read-only)."""
    from skimage import data

    image = data.camera().astype(np.float64) / 255.0
    image.setflags(write=False)
    return image


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    """scikit-image's 512x512x3 'astronaut', float64 in [0, 1] (read-only)."""
    from skimage import data

    image = data.astronaut().astype(np.float64) / 255.0
    image.setflags(write=False)
    return image


@pytest.fixture(scope="session")
def astronaut(astronaut_rgb) -> np.ndarray:
    """The astronaut as BT.709 luma, float64 in [0, 1] (read-only)."""
    from skimage import color

    image = color.rgb2gray(astronaut_rgb)
    image.setflags(write=False)
    return image
