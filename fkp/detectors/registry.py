"""The one table of face detectors: name -> factory, box style, options.

Everything that names a detector reads this table: :func:`make_detector`, the CLI's ``--detector``
choices and ``fkp evaluate --boxes``, :func:`fkp.evaluate.evaluate`, the training crops (which draw
boxes in each detector's :class:`~fkp.calibration.BoxStyle`) and the benchmarks. Adding a detector
is one :func:`register_detector` call::

    register_detector("toy", ToyDetector, label="Toy", summary="finds one face in the middle")

A detector whose file is not part of fkp (YuNet) names a ``fetch`` step: when building it fails
for want of its file, :func:`make_detector` fetches the file once (a one-line notice) and builds it
again; with ``$FKP_OFFLINE`` set, or when the fetch fails, ``"auto"`` falls back to the next row.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fkp.calibration import HAAR, YUNET, BoxStyle
from fkp.detectors.base import DetectorUnavailableError, FaceDetector
from fkp.detectors.haar import HaarFaceDetector
from fkp.detectors.yunet import RotationSearch, YuNetFaceDetector, fetch_yunet

AUTO = "auto"
"""The name that picks the first detector of the table (``auto=True`` ones, in order) that can be built here."""
OFFLINE_ENV = "FKP_OFFLINE"
"""Environment variable: set (to anything but ``0`` or nothing), no detector file is downloaded on first use."""


@dataclass(frozen=True)
class DetectorSpec:
    """One row of the detector table.

    Attributes:
        name: what ``--detector`` and :func:`make_detector` call it.
        factory: builds the detector from the keyword options named in ``options``.
        label: its name in prose and benchmark tables (``"YuNet"``).
        summary: a few words for ``--detector``'s help.
        box_style: how its boxes relate to the tight box of the 68 points (:mod:`fkp.calibration`);
            the training crops are drawn in every registered style. None: not calibrated (the
            model then sees its boxes as they come, and training ignores it).
        options: the keyword options of :func:`make_detector` that ``factory`` takes.
        auto: ``"auto"`` tries it, in table order, falling through when it raises
            :class:`~fkp.detectors.base.DetectorUnavailableError`.
        fetch: gets the detector's missing file, called with a function that shows one line
            (the notice); raises :class:`~fkp.detectors.base.DetectorUnavailableError` when it
            cannot. None: nothing to fetch.
    """

    name: str
    factory: Callable[..., FaceDetector]
    label: str
    summary: str = ""
    box_style: BoxStyle | None = None
    options: tuple[str, ...] = ()
    auto: bool = False
    fetch: Callable[[Callable[[str], Any]], Any] | None = None


DETECTORS: dict[str, DetectorSpec] = {}
"""The table, in registration order (the order ``"auto"`` tries and benchmarks list them)."""


def register_detector(
    name: str,
    factory: Callable[..., FaceDetector],
    *,
    label: str | None = None,
    summary: str = "",
    box_style: BoxStyle | None = None,
    options: tuple[str, ...] = (),
    auto: bool = False,
    fetch: Callable[[Callable[[str], Any]], Any] | None = None,
) -> DetectorSpec:
    """Add a detector to the table (see :class:`DetectorSpec` for the arguments); returns its row.

    Raises:
        ValueError: ``name`` is ``"auto"`` or already registered.
    """
    if name == AUTO or name in DETECTORS:
        raise ValueError(f"detector name {name!r} is taken")
    spec = DetectorSpec(name, factory, label or name, summary, box_style, tuple(options), auto, fetch)
    DETECTORS[name] = spec
    return spec


def detector_names() -> tuple[str, ...]:
    """The registered detectors' names, in table order."""
    return tuple(DETECTORS)


def detector_choices() -> tuple[str, ...]:
    """What ``--detector`` accepts: ``"auto"`` and every registered name."""
    return (AUTO, *DETECTORS)


def detector_spec(name: str) -> DetectorSpec:
    """The table's row for ``name``.

    Raises:
        ValueError: no detector has that name.
    """
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; use one of {', '.join(detector_choices())}")
    return DETECTORS[name]


def box_styles() -> dict[str, BoxStyle]:
    """Detector name -> its box style, for every registered detector that has one."""
    return {name: spec.box_style for name, spec in DETECTORS.items() if spec.box_style is not None}


def detector_help() -> str:
    """The help text of ``--detector``, from the table."""
    tried = ", then ".join(spec.name for spec in DETECTORS.values() if spec.auto)
    rows = "; ".join(f"{spec.name}: {spec.summary}" if spec.summary else spec.name for spec in DETECTORS.values())
    return f"face detector: {rows}; auto: {tried}, the first that is available here (default auto)"


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr)


def offline() -> bool:
    """Whether ``$FKP_OFFLINE`` forbids downloading a detector's file on first use."""
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def make_detector(name: str = AUTO, notify: Callable[[str], Any] = _stderr_line, **options: Any) -> FaceDetector:
    """The face detector called ``name``, built by its row of the table.

    Args:
        name: a registered name (:func:`detector_names`), or ``"auto"``: the first ``auto`` row that
            can be built here (YuNet when its model file is found and intact or can be downloaded,
            else Haar).
        notify: called with one line when a detector's file is downloaded (its row's ``fetch``) and
            when ``"auto"`` falls back to a later detector (default: print it on stderr).
        options: keyword options; each detector takes those its row lists (``rotations`` for
            YuNet, ``scale_factor``, ``min_neighbors``, ``min_size``, ... for Haar) and ignores the
            others, so one set of command-line options serves every detector.

    Raises:
        DetectorUnavailableError: (e.g. :class:`fkp.detectors.yunet.ModelFileError`) the detector,
            or for ``"auto"`` every candidate, cannot be built here.
        ValueError: an unknown name, or an option no registered detector takes.
    """
    known = {option for spec in DETECTORS.values() for option in spec.options}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"no detector takes the option(s) {', '.join(unknown)}")
    if name != AUTO:
        return _build(detector_spec(name), options, notify)
    failure: DetectorUnavailableError | None = None
    for spec in DETECTORS.values():
        if not spec.auto:
            continue
        try:
            detector = _build(spec, options, notify)
        except DetectorUnavailableError as error:
            failure = error
            continue
        if failure is not None:
            notify(f"using the {spec.label} face detector: {failure}")
        return detector
    raise failure or DetectorUnavailableError("no detector is registered for 'auto'")


def _build(spec: DetectorSpec, options: dict[str, Any], notify: Callable[[str], Any]) -> FaceDetector:
    """Build ``spec``'s detector; if its file is missing, fetch it (unless :func:`offline`) and build again."""
    kwargs = {key: value for key, value in options.items() if key in spec.options}
    try:
        return spec.factory(**kwargs)
    except DetectorUnavailableError:
        if spec.fetch is None or offline():
            raise
    spec.fetch(notify)
    return spec.factory(**kwargs)


def _yunet(rotations: RotationSearch = "auto", max_side: int = 640) -> YuNetFaceDetector:
    """YuNet from its file (:func:`fkp.detectors.yunet.find_yunet`); ``rotations``: when to also
    search the copies turned by :data:`fkp.detectors.yunet.ROTATIONS` (``"always"``, ``"auto"``,
    ``"never"``); ``max_side``: the longer side of the copy it searches."""
    return YuNetFaceDetector(rotations=rotations, max_side=max_side)


register_detector(
    "yunet",
    _yunet,
    label="YuNet",
    summary="YuNet (its file is downloaded on first use, or by 'fkp models download')",
    box_style=YUNET,
    options=("rotations", "max_side"),
    auto=True,
    fetch=fetch_yunet,
)
register_detector(
    "haar",
    HaarFaceDetector,
    label="Haar",
    summary="the Haar cascade",
    box_style=HAAR,
    options=("scale_factor", "min_neighbors", "min_size", "max_side", "merge_overlap"),
    auto=True,
)
