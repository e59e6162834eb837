"""fkp: 68-point facial keypoint detection.

The public API is this short list; everything else is reached through its module
(``from fkp.transforms import RandomFaceCrop``). Attributes are imported on first use, so that
``import fkp`` and light commands such as ``fkp data verify`` do not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "fkp.predict",
    "KeypointModel": "fkp.predict",
    "SecondPass": "fkp.predictor",
    "list_models": "fkp.model_config",
    "detect_keypoints": "fkp.detect",
    "Landmarker": "fkp.detect",
    "align_face": "fkp.align",
    "Face": "fkp.face",
    "HaarFaceDetector": "fkp.detectors.haar",
    "YuNetFaceDetector": "fkp.detectors.yunet",
    "load_image": "fkp.images",
    "FacialKeypointsDataset": "fkp.data",
    "set_seed": "fkp.utils",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fkp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
