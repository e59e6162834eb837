"""Face detectors: what they are (:mod:`~fkp.detectors.base`), the ones fkp ships
(:mod:`~fkp.detectors.haar`, :mod:`~fkp.detectors.yunet`) and the one table that names them
(:mod:`~fkp.detectors.registry`): ``make_detector("yunet")``, ``register_detector("mine", Mine)``.
"""

from fkp.detectors.base import Detections, DetectorUnavailableError, FaceDetector, detect_faces
from fkp.detectors.registry import (
    DetectorSpec,
    box_styles,
    detector_choices,
    detector_names,
    detector_spec,
    make_detector,
    register_detector,
)

__all__ = [
    "Detections",
    "DetectorSpec",
    "DetectorUnavailableError",
    "FaceDetector",
    "box_styles",
    "detect_faces",
    "detector_choices",
    "detector_names",
    "detector_spec",
    "make_detector",
    "register_detector",
]
