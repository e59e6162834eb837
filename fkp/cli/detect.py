"""``fkp detect`` (faces and keypoints on photos) and ``fkp video`` (on a video or a webcam).

Exit codes: 0 success (also when no face is found), 1 an input could not be read (the other inputs
are still processed; each bad one is named on one stderr line) or the output could not be written,
2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fkp.cli import CommandError
from fkp.images import IMAGE_SUFFIXES, ImageReadError, load_image
from fkp.outputs import check_output, is_folder, plan_folder_outputs

DEMO_OUTPUT = Path("fkp_demo.png")
"""What ``fkp detect`` with no path writes: the astronaut sample with its keypoints."""
FOLDER_OUTPUT = Path("fkp_detect")
"""Default output folder when there are several inputs and no ``-o``."""
WRITABLE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
SAMPLE_NAME = "sample:astronaut"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def scale_factor_arg(text: str) -> float:
    value = float(text)
    if not value > 1:
        raise argparse.ArgumentTypeError(f"must be above 1, got {text}")
    return value


def add_detection_options(parser: argparse.ArgumentParser) -> None:
    """Model and detector options shared by ``fkp detect``, ``fkp video`` (and ``fkp filter``)."""
    parser.add_argument("--model", metavar="PATH", help="keypoint model checkpoint (default: the shipped model)")
    parser.add_argument(
        "--detector",
        choices=("auto", "yunet", "haar"),
        default="auto",
        help="face detector: YuNet (its file from 'fkp models download'), the Haar cascade, or auto: "
        "YuNet when its file is found, else Haar (default auto)",
    )
    parser.add_argument(
        "--no-rotations",
        action="store_true",
        help="YuNet searches the image only, not also copies turned by -40 and 40 degrees: about three "
        "times faster, but finds fewer faces rolled beyond 30 degrees",
    )
    group = parser.add_argument_group("Haar cascade options (--detector haar, or auto without YuNet)")
    group.add_argument(
        "--scale-factor", type=scale_factor_arg, default=1.1, metavar="F", help="pyramid step, above 1 (default 1.1)"
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


def add_tracking_options(parser: argparse.ArgumentParser) -> None:
    """``--detect-every`` and ``--no-tracking``, shared by ``fkp video`` and ``fkp filter``."""
    parser.add_argument(
        "--detect-every",
        type=positive_int,
        default=10,
        metavar="N",
        help="follow faces by their keypoints and run the face detector every N frames (default 10)",
    )
    parser.add_argument(
        "--no-tracking", action="store_true", help="run the face detector on every frame instead (slower)"
    )


def build_detector(args: argparse.Namespace) -> Any:
    """The face detector that ``--detector`` and the Haar options ask for (:func:`fkp.detect.make_detector`).

    ``auto`` without YuNet's file prints one line naming ``fkp models download``; ``yunet`` without
    it is a one-line error (exit code 1).
    """
    from fkp.detect import make_detector
    from fkp.yunet import ModelFileError

    name = getattr(args, "detector", "auto")
    try:
        return make_detector(
            name,
            notify=lambda line: print(f"fkp {args.command}: {line}", file=sys.stderr),
            rotations=not getattr(args, "no_rotations", False),
            scale_factor=args.scale_factor,
            min_neighbors=args.min_neighbors,
            min_size=args.min_size,
        )
    except ModelFileError as error:
        raise CommandError(str(error)) from None


def load_model_for(args: argparse.Namespace) -> Any:
    """Load ``--model PATH`` or the shipped model; a missing or broken model is a one-line error."""
    from fkp.detect import default_model
    from fkp.predict import WeightsError, load_model

    try:
        return default_model() if args.model is None else load_model(args.model)
    except WeightsError as error:  # its one line names the file
        raise CommandError(str(error)) from None
    except (OSError, ValueError, RuntimeError, KeyError, ImportError) as error:
        where = args.model or "the shipped default model"
        raise CommandError(f"cannot load {where}: {error}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp detect`` and ``fkp video``."""
    detect = subparsers.add_parser(
        "detect",
        help="find faces and their 68 keypoints on photos",
        description=(
            "Find every face and its 68 keypoints on images or folders of images; draw them and/or write "
            "them as JSON. With no PATH, runs on a bundled sample photo and writes fkp_demo.png. "
            "Exit code 0 on success (also when no face is found), 1 when an input cannot be read "
            "(the others are still processed and each bad one is named on stderr), 2 for bad arguments."
        ),
    )
    detect.add_argument("paths", nargs="*", metavar="PATH", help="image files or folders of images (not recursive)")
    detect.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help=(
            "annotated output: a file for one image, a folder for several "
            f"(default: {DEMO_OUTPUT} for the sample, NAME_fkp.EXT for one image, {FOLDER_OUTPUT}/ for several)"
        ),
    )
    detect.add_argument(
        "--json", metavar="FILE", help="write boxes and keypoints per image and face to FILE ('-': stdout)"
    )
    detect.add_argument("--no-draw", action="store_true", help="write no annotated images")
    detect.add_argument(
        "--overwrite",
        action="store_true",
        help="in a folder run, replace drawings that exist in the output folder (inputs are never replaced)",
    )
    add_detection_options(detect)
    detect.set_defaults(handler=run_detect)

    video = subparsers.add_parser(
        "video",
        help="keypoints on every frame of a video or a webcam, smoothed",
        description=(
            "Find faces and keypoints on every frame of a video file (or a webcam), smooth them over time "
            "and write an annotated video; prints faces per second. Exit code 1 when the input cannot be read."
        ),
    )
    source = video.add_mutually_exclusive_group(required=True)
    source.add_argument("input", nargs="?", metavar="IN", help="video file")
    source.add_argument("--camera", type=int, metavar="N", help="read webcam N instead of a file (Ctrl-C stops)")
    video.add_argument("-o", "--output", metavar="OUT", help="output video, .mp4 or .avi (default: NAME_fkp.mp4)")
    video.add_argument(
        "--smoothing",
        type=non_negative_float,
        default=None,
        metavar="S",
        help="temporal smoothing strength: 0 off, 1 default, 2 twice as smooth, ...",
    )
    video.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    add_tracking_options(video)
    add_detection_options(video)
    video.set_defaults(handler=run_video)


class _UsageError(Exception):
    """A combination of arguments that cannot work: reported like argparse's errors (exit code 2)."""


@dataclass
class _Job:
    """One image to process: where it comes from and where its drawing goes."""

    name: str  # as reported (path or sample name)
    path: Path | None  # None for the bundled sample
    output: Path | None = None


@dataclass
class _Report:
    images: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    faces: int = 0


def _expand(paths: list[str], report: _Report) -> list[_Job]:
    """Files as given, folders as their image files (sorted); missing paths go to ``report.errors``."""
    jobs: list[_Job] = []
    for text in paths:
        path = Path(text)
        try:
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
                jobs.extend(_Job(str(p), p) for p in files)
            elif path.exists():
                jobs.append(_Job(text, path))
            else:
                _record_error(report, text, "no such file or folder")
        except OSError as error:  # a name or path too long, a folder that cannot be listed
            _record_error(report, text, error.strerror or str(error))
    return jobs


def _record_error(report: _Report, name: str, reason: str) -> None:
    report.errors.append({"path": name, "error": reason})
    message = f"fkp detect: error: {name}: {reason}"
    try:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)  # does not break a running progress bar
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(message, file=sys.stderr)


def _output_name(path: Path) -> str:
    suffix = path.suffix.lower() if path.suffix.lower() in WRITABLE_SUFFIXES else ".png"
    return f"{path.stem}_fkp{suffix}"


def _assign_outputs(jobs: list[_Job], args: argparse.Namespace, single: bool) -> None:
    """Decide where each drawing goes: OUT as a file for one input, OUT/ as a folder for several."""
    out = Path(args.output) if args.output else None
    inputs = [job.path for job in jobs if job.path is not None]
    if single:
        job = jobs[0]
        if out is not None and is_folder(out):
            job.output = out / (DEMO_OUTPUT.name if job.path is None else _output_name(job.path))
        elif out is not None:
            job.output = out
        else:
            job.output = DEMO_OUTPUT if job.path is None else Path(_output_name(job.path))
        check_output(job.output, inputs, what="-o" if out is not None else "output")
        return
    folder = out or FOLDER_OUTPUT
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"{folder}: exists and is not a folder (several inputs need an output folder)")
    if not folder.exists() and folder.suffix.lower() in WRITABLE_SUFFIXES:
        raise _UsageError(f"-o {folder}: several inputs need an output folder, not an image file name")
    names = [_output_name(job.path) for job in jobs if job.path is not None]
    for job, path in zip(jobs, plan_folder_outputs(folder, names, inputs, args.overwrite)):
        job.output = path


def write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower() if path.suffix.lower() in WRITABLE_SUFFIXES else ".png"
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise CommandError(f"{path}: cannot encode the image as {suffix}")
    from fkp.utils import atomic_write_bytes

    try:
        atomic_write_bytes(path, encoded.tobytes())
    except OSError as error:
        raise CommandError(f"{path}: cannot write ({error.strerror or error})") from None


def _json_report(report: _Report) -> str:
    """``{"images": [...], "errors": [...]}`` with one line per image (points stay compact)."""
    images = ",\n".join(json.dumps(image) for image in report.images)
    return f'{{"images": [\n{images}\n],\n"errors": {json.dumps(report.errors)}}}'


def _progress(jobs: list[_Job], show: bool) -> Iterator[_Job]:
    if not show:
        yield from jobs
        return
    from tqdm.auto import tqdm

    yield from tqdm(jobs, unit="image", desc="fkp detect", file=sys.stderr)


def _sample_photo() -> np.ndarray:
    """The demo's photo (scikit-image's astronaut), or a one-line :class:`CommandError` without it."""
    from fkp.samples import SampleUnavailableError, astronaut

    try:
        return astronaut()
    except SampleUnavailableError as error:
        raise CommandError(str(error)) from error


def run_detect(args: argparse.Namespace) -> int:
    """Handler of ``fkp detect``."""
    from fkp.annotate import draw_faces
    from fkp.detect import detect_keypoints
    from fkp.utils import set_seed

    set_seed(0)
    report = _Report()
    if args.paths:
        jobs = _expand(args.paths, report)
        single = len(args.paths) == 1 and len(jobs) == 1 and not Path(args.paths[0]).is_dir()
    else:
        jobs, single = [_Job(SAMPLE_NAME, None)], True
    draw = not args.no_draw
    if args.json and args.json != "-":
        check_output(args.json, [job.path for job in jobs if job.path is not None], what="--json")
    if draw and jobs:
        try:
            _assign_outputs(jobs, args, single)
        except _UsageError as error:
            print(f"fkp detect: error: {error}", file=sys.stderr)
            return 2
    sample = _sample_photo() if any(job.path is None for job in jobs) else None  # before any other message
    detector = build_detector(args)
    model = load_model_for(args) if jobs else None
    to_stdout = args.json == "-"
    written: list[Path] = []
    start = time.perf_counter()
    for job in _progress(jobs, show=len(jobs) > 1):
        try:
            image = load_image(job.path) if job.path is not None else sample
            assert image is not None  # the sample was loaded above for the job without a path
        except ImageReadError as error:
            _record_error(report, job.name, error.reason)
            continue
        faces = detect_keypoints(image, detector=detector, model=model)
        report.faces += len(faces)
        report.images.append(
            {
                "path": job.name,
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "faces": [face.to_dict() for face in faces],
            }
        )
        if draw and job.output is not None:
            try:
                write_image(job.output, draw_faces(image, faces))
            except CommandError as error:  # the others are still processed, the JSON still written
                _record_error(report, job.name, str(error))
                continue
            written.append(job.output)
    seconds = time.perf_counter() - start

    if args.json:
        payload = _json_report(report)
        if to_stdout:
            print(payload)
        else:
            from fkp.utils import atomic_write_bytes

            try:
                atomic_write_bytes(args.json, (payload + "\n").encode())
            except OSError as error:
                raise CommandError(f"{args.json}: cannot write ({error.strerror or error})") from None
    summary = f"{len(report.images)} images, {report.faces} faces, {seconds:.1f} s"
    if report.errors:
        summary += f", {len(report.errors)} unreadable"
    lines = [summary]
    if written:
        if single:
            lines.append(f"wrote {written[0]}")
        else:
            lines.append(f"wrote {len(written)} images to {written[0].parent}{os.sep}")
    if args.json and not to_stdout:
        lines.append(f"wrote {args.json}")
    print("\n".join(lines), file=sys.stderr if to_stdout else sys.stdout)
    return 1 if report.errors else 0


def annotate_video_from_args(
    args: argparse.Namespace, path: str | None, label: str, render: Any = None
) -> tuple[Any, Path]:
    """Run :func:`fkp.video.annotate_video` with the options that ``fkp video`` and ``fkp filter``
    share (``--camera``, ``-o``, ``--smoothing``, ``--max-frames``, detector and model options).

    Returns:
        The run's :class:`fkp.video.VideoStats` and the video written
        (default ``STEM_LABEL.mp4``, or ``cameraN_LABEL.mp4``).
    """
    from fkp.smoothing import DEFAULT_SMOOTHING
    from fkp.video import VideoReadError, annotate_video

    if args.camera is not None:
        source: str | int = args.camera
        default_output = Path(f"camera{args.camera}_{label}.mp4")
    else:
        source = str(path)
        default_output = Path(f"{Path(str(path)).stem}_{label}.mp4")
    output = Path(args.output) if args.output else default_output
    check_output(output, [] if path is None else [path], what="-o" if args.output else "output")
    try:
        stats = annotate_video(
            source,
            output,
            render=render,
            detector=build_detector(args),
            model=load_model_for(args),
            smoothing=DEFAULT_SMOOTHING if args.smoothing is None else args.smoothing,
            progress=True,
            max_frames=args.max_frames,
            detect_every=None if getattr(args, "no_tracking", False) else getattr(args, "detect_every", 10),
        )
    except (VideoReadError, ValueError) as error:
        raise CommandError(str(error)) from None
    return stats, output


def run_video(args: argparse.Namespace) -> int:
    """Handler of ``fkp video``."""
    from fkp.utils import set_seed

    set_seed(0)
    stats, output = annotate_video_from_args(args, args.input, "fkp")
    print(
        f"{stats.frames} frames, {stats.faces} faces, {stats.seconds:.1f} s: "
        f"{stats.faces_per_second:.1f} faces/s, {stats.frames_per_second:.1f} frames/s "
        f"(detector on {stats.detector_runs} frames)\nwrote {output}"
    )
    return 0
