"""Regenerate ``docs/align.png``, the README's picture of aligned faces.

    FKP_MODELS_DIR=path/to/yunet python benchmarks/align_figure.py [--out docs/align.png]

Grace Hopper (matplotlib's sample photo) turned by 25 degrees, with her 68 points from
:class:`fkp.Landmarker`, beside the crops :func:`fkp.align_face` cuts from them in the ``ffhq`` and
``arcface`` styles: the eyes and mouth land on the same pixels whatever the tilt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from fkp import samples
from fkp.align import align_face
from fkp.annotate import draw_faces
from fkp.detect import Landmarker
from fkp.geometry import rotate_image
from fkp.utils import atomic_write_bytes

OUT = Path(__file__).resolve().parents[1] / "docs" / "align.png"
HEIGHT = 256
"""Height of every panel of the figure, in pixels."""


def make_figure(out: Path = OUT) -> None:
    """Write the figure (one PNG row: the photo with its points, the ffhq crop, the arcface crop)."""
    photo = samples.grace_hopper()
    photo, _ = rotate_image(photo, np.zeros((68, 2), np.float32), 25.0)
    (face,) = Landmarker(detector="yunet")(photo)
    ffhq, _ = align_face(photo, face.keypoints, style="ffhq", size=HEIGHT)
    arcface, _ = align_face(photo, face.keypoints, style="arcface", size=112)
    drawn = draw_faces(photo, [face])
    scale = HEIGHT / drawn.shape[0]
    panels = [
        cv2.resize(drawn, (round(drawn.shape[1] * scale), HEIGHT), interpolation=cv2.INTER_AREA),
        ffhq,
        cv2.resize(arcface, (HEIGHT, HEIGHT), interpolation=cv2.INTER_NEAREST),
    ]
    gap = np.full((HEIGHT, 8, 3), 255, np.uint8)
    row = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    ok, png = cv2.imencode(".png", cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("cannot encode the figure as PNG")
    atomic_write_bytes(out, png.tobytes())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write it (default: {OUT})")
    make_figure(parser.parse_args().out)
