"""Regenerate ``docs/demo.png``, the README's first picture, exactly as ``fkp detect`` writes it.

    FKP_MODELS_DIR=path/to/yunet python benchmarks/demo_image.py [--out docs/demo.png]

Runs ``fkp detect --detector yunet -o OUT`` in this process: the bundled sample photo (scikit-image's
astronaut), the shipped keypoint model, the YuNet face detector (what ``--detector auto`` picks when
its file is found: ``fkp models download``, or ``$FKP_MODELS_DIR``), and the drawing of
:func:`fkp.annotate.draw_faces`, whose lines and colours come from :data:`fkp.landmarks.OUTLINES` and
:data:`fkp.landmarks.REGION_COLOURS`. Without YuNet's file it stops with fkp's one-line error rather
than draw a Haar-cascade demo.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fkp.cli import main

DEMO = Path(__file__).resolve().parents[1] / "docs" / "demo.png"


def make_demo(out: Path = DEMO) -> int:
    """Write the demo image to ``out`` with ``fkp detect``; returns its exit code."""
    return main(["detect", "--detector", "yunet", "-o", str(out), "--overwrite"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEMO, help=f"where to write it (default: {DEMO})")
    raise SystemExit(make_demo(parser.parse_args().out))
