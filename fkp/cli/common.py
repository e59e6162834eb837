"""What the ``fkp`` sub-commands share: their errors, argument types, the detector and model
options, writing a drawing, the sample photo and the video run that ``fkp video`` and ``fkp filter``
both make. Each sub-command lives in its own module of :mod:`fkp.cli` and imports from here."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import cv2
import numpy as np

from fkp.outputs import STDOUT, Output, OutputError, names_folder, plan_output

WRITABLE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
"""Image endings a drawing is written as; any other output name gets a PNG."""


class CommandError(Exception):
    """A failure reported to the user as one line on stderr, with exit code 1."""


class UsageError(Exception):
    """Arguments that cannot work together or are out of range: one line on stderr, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr, with a ``--help`` hint
    (argparse prints its whole usage block), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


class SubcommandParser(OneLineParser):
    """A sub-command's parser that can add options on first use (:meth:`add_options_later`), so that
    building the whole ``fkp`` parser imports nothing heavy: ``fkp train``'s options come from
    ``TrainConfig``, which imports torch, and ``fkp detect`` must start without it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[Callable[[argparse.ArgumentParser], None]] = []

    def add_options_later(self, add_options: Callable[[argparse.ArgumentParser], None]) -> None:
        """Call ``add_options(self)`` before this parser first parses or prints its help."""
        self._pending.append(add_options)

    def _add_pending(self) -> None:
        while self._pending:
            self._pending.pop(0)(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._add_pending()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._add_pending()
        return super().format_help()


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number of at least 0 (not NaN)."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def finite_float(text: str) -> float:
    """argparse type: any number but NaN and infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def scale_factor_arg(text: str) -> float:
    """argparse type: the Haar pyramid step, at least :data:`fkp.detectors.haar.MIN_SCALE_FACTOR`."""
    from fkp.detectors.haar import MIN_SCALE_FACTOR

    value = float(text)
    if not value >= MIN_SCALE_FACTOR:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_SCALE_FACTOR}, got {text}")
    return value


MIN_MAX_SIDE = 32
"""The smallest ``--max-side`` a detector takes."""


def max_side_arg(text: str) -> int:
    """argparse type: ``--max-side``, a whole number of at least :data:`MIN_MAX_SIDE`."""
    value = int(text)
    if value < MIN_MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_MAX_SIDE}, got {value}")
    return value


PASSES_HELP = (
    "keypoint passes per face: 1 (default) runs a second, upright pass only on faces the first finds "
    "rolled by more than 10 degrees; 2 gives every face one, on a crop framed by the points found: "
    "lower error on detector boxes, at twice the keypoint time"
)


def add_passes_option(parser: argparse.ArgumentParser) -> None:
    """``--passes {1,2}``: 2 gives every face an extra upright pass (:attr:`fkp.predictor.SecondPass.extra_passes`)."""
    parser.add_argument("--passes", type=int, choices=(1, 2), default=1, help=PASSES_HELP)


def add_detection_options(parser: argparse.ArgumentParser) -> None:
    """Model and detector options shared by ``fkp detect``, ``fkp video`` (and ``fkp filter``)."""
    parser.add_argument("--model", metavar="PATH", help="keypoint model checkpoint (default: the shipped model)")
    add_passes_option(parser)
    from fkp.detectors.registry import AUTO, detector_choices, detector_help
    from fkp.detectors.yunet import ROTATION_SEARCHES, ROTATIONS

    turns = " and ".join(f"{degrees:g}" for degrees in ROTATIONS)

    parser.add_argument("--detector", choices=detector_choices(), default=AUTO, help=detector_help())
    parser.add_argument(
        "--rotations",
        choices=ROTATION_SEARCHES,
        default="auto",
        help=f"when YuNet also searches copies of the image turned by {turns} degrees, for strongly "
        "rolled faces: auto (default) only when the image itself shows no face; always: on every image "
        "(also finds a rolled face beside an upright one, at a YuNet pass per turned copy); never",
    )
    parser.add_argument(
        "--max-side",
        type=max_side_arg,
        default=None,
        metavar="PX",
        help="the detector searches a copy of the image whose longer side is at most PX pixels: smaller is "
        "faster but misses small faces; 320 suits a webcam with one face near it (default: YuNet 640, Haar 1280)",
    )
    group = parser.add_argument_group("Haar cascade options (--detector haar, or auto without YuNet)")
    group.add_argument(
        "--scale-factor",
        type=scale_factor_arg,
        default=1.1,
        metavar="F",
        help="pyramid step, at least 1.01 (default 1.1)",
    )
    group.add_argument(
        "--min-neighbors",
        type=non_negative_int,
        default=5,
        metavar="N",
        help="raw detections needed per face; higher: fewer false faces, more missed ones (default 5)",
    )
    group.add_argument(
        "--min-size", type=positive_int, default=30, metavar="PX", help="smallest face side in pixels (default 30)"
    )


def add_video_options(parser: argparse.ArgumentParser, also_photos: bool = False) -> None:
    """``--smoothing``, ``--max-frames``, ``--detect-every`` and ``--no-tracking``: the options of
    :func:`annotate_video_from_args`, shared by ``fkp video`` and ``fkp filter`` (``also_photos``:
    the command takes photos too, so the help says these are for videos)."""
    videos = "videos: " if also_photos else ""
    parser.add_argument(
        "--smoothing",
        type=non_negative_float,
        default=None,
        metavar="S",
        help=f"{videos}temporal smoothing strength: 0 off, 1 default, 2 twice as smooth, ...",
    )
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help=f"{videos}stop after N frames")
    parser.add_argument(
        "--detect-every",
        type=positive_int,
        default=10,
        metavar="N",
        help=f"{videos}follow faces by their keypoints and run the face detector every N frames (default 10)",
    )
    parser.add_argument(
        "--no-tracking", action="store_true", help=f"{videos}run the face detector on every frame instead (slower)"
    )


def build_detector(args: argparse.Namespace) -> Any:
    """The face detector that ``--detector`` and the detector options ask for (:func:`fkp.detectors.make_detector`).

    YuNet's file, when missing, is downloaded on first use with a one-line notice (not with
    ``$FKP_OFFLINE`` set); where that fails, ``auto`` prints one line naming ``fkp models download``
    and uses Haar, and ``yunet`` is a one-line error (exit code 1).
    """
    from fkp.detectors import DetectorUnavailableError, make_detector

    try:
        return make_detector(
            args.detector,
            notify=lambda line: print(f"fkp {args.command}: {line}", file=sys.stderr),
            **detector_options(args),
        )
    except DetectorUnavailableError as error:
        raise CommandError(str(error)) from None


def detector_options(args: argparse.Namespace) -> dict[str, Any]:
    """The detector options of the command line (:func:`add_detection_options`) as keyword
    arguments of :func:`fkp.detectors.make_detector`."""
    return {
        "rotations": args.rotations,
        **({} if args.max_side is None else {"max_side": args.max_side}),
        "scale_factor": args.scale_factor,
        "min_neighbors": args.min_neighbors,
        "min_size": args.min_size,
    }


def load_model_for(args: argparse.Namespace) -> Any:
    """Load ``--model PATH`` or the shipped model, with ``--passes``; a missing or broken model is a one-line error."""
    from fkp.model_file import WeightsError
    from fkp.predict import load_model
    from fkp.predictor import SecondPass

    rule = SecondPass(extra_passes=args.passes - 1)
    try:
        return load_model(args.model, second_pass=rule)
    except WeightsError as error:  # its one line names the file
        raise CommandError(str(error)) from None
    except (OSError, ValueError, RuntimeError, KeyError, ImportError) as error:
        where = args.model or "the shipped default model"
        raise CommandError(f"cannot load {where}: {error}") from None


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``: replace existing output files (:mod:`fkp.outputs`' rule; inputs never)."""
    parser.add_argument(
        "--overwrite", action="store_true", help="replace output files that exist (inputs are never replaced)"
    )


def output_for(text: str | None, default: Path, inputs: list[Any], what: str, overwrite: bool) -> Output:
    """Plan a single output (:func:`fkp.outputs.plan_output`): ``text`` as given, ``default`` without it,
    and ``default``'s name inside ``text`` when ``text`` is a folder (existing, or ending in ``/``)."""
    if text is None:
        return plan_output(default, inputs, what="output", overwrite=overwrite)
    if text != STDOUT and names_folder(text):
        return plan_output(Path(text) / default.name, inputs, what=what, overwrite=overwrite)
    return plan_output(text, inputs, what=what, overwrite=overwrite)


def write_image(output: Output, rgb: np.ndarray) -> None:
    """Encode (H, W, 3) uint8 RGB by the output's ending (PNG for an unknown one, and for standard
    output) and write it by :mod:`fkp.outputs`' rule; a failure is a one-line :class:`CommandError`
    (an output made meanwhile by another run: :class:`fkp.outputs.OutputConflictError`)."""
    ending = Path(output.shown).suffix.lower() if output.path is None else output.path.suffix.lower()
    suffix = ending if ending in WRITABLE_SUFFIXES else ".png"
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise CommandError(f"{output}: cannot encode the image as {suffix}")
    try:
        output.write_bytes(encoded.tobytes())
    except OutputError as error:
        if type(error) is not OutputError:
            raise
        raise CommandError(str(error)) from None


def sample_photo() -> np.ndarray:
    """The sample photo (scikit-image's astronaut) that ``fkp detect`` and ``fkp filter`` use without
    a path, or a one-line :class:`CommandError` without scikit-image."""
    from fkp.samples import SampleUnavailableError, astronaut

    try:
        return astronaut()
    except SampleUnavailableError as error:
        raise CommandError(str(error)) from error


def annotate_video_from_args(
    args: argparse.Namespace, path: str | None, label: str, render: Any = None
) -> tuple[Any, Output]:
    """Run :func:`fkp.video.annotate_video` with the options that ``fkp video`` and ``fkp filter``
    share (``--camera``, ``-o``, ``--smoothing``, ``--max-frames``, detector and model options).

    Returns:
        The run's :class:`fkp.video.VideoStats` and the video written
        (default ``STEM_LABEL.mp4``, or ``cameraN_LABEL.mp4``), by :mod:`fkp.outputs`' rule.

    Raises:
        UsageError: ``-o`` is standard output, a device or a FIFO (a video is written to a file).
    """
    from fkp.smoothing import DEFAULT_SMOOTHING
    from fkp.video import VideoReadError, annotate_video

    if args.camera is not None:
        source: str | int = args.camera
        default_output = Path(f"camera{args.camera}_{label}.mp4")
    else:
        source = str(path)
        default_output = Path(f"{Path(str(path)).stem}_{label}.mp4")
    output = output_for(args.output, default_output, [path], "-o", args.overwrite)
    if output.path is None or output.device:
        raise UsageError(f"-o {output.shown}: a video is written to a file (.mp4 or .avi), not to {output}")
    try:
        with output.staged() as staged:
            stats = annotate_video(
                source,
                staged,
                render=render,
                detector=build_detector(args),
                model=load_model_for(args),
                smoothing=DEFAULT_SMOOTHING if args.smoothing is None else args.smoothing,
                progress=True,
                max_frames=args.max_frames,
                detect_every=None if args.no_tracking else args.detect_every,
            )
    except (VideoReadError, ValueError) as error:
        raise CommandError(str(error)) from None
    return stats, output
