"""``fkp detect``: faces and their keypoints on photos and folders of photos, drawn and/or as JSON.

Exit codes: 0 success (also when no face is found), 1 an input could not be read (the other inputs
are still processed; each bad one is named on one stderr line) or the output could not be written,
2 bad arguments or an output that :mod:`fkp.outputs`' rule refuses (an existing file without
``--overwrite``, an input, two outputs on one place).
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

from fkp.cli.common import (
    WRITABLE_SUFFIXES,
    CommandError,
    UsageError,
    add_detection_options,
    add_overwrite_option,
    build_detector,
    load_model_for,
    output_for,
    sample_photo,
    write_image,
)
from fkp.cli.detect_bulk import add_bulk_options, is_bulk, labels_of, run_bulk, say_error
from fkp.images import ImageReadError, load_image
from fkp.inputs import list_images
from fkp.outputs import (
    STDOUT,
    Output,
    OutputConflictError,
    check_distinct,
    plan_folder_outputs,
    plan_output,
)

DEMO_OUTPUT = Path("fkp_demo.png")
"""What ``fkp detect`` with no path writes: the astronaut sample with its keypoints."""
FOLDER_OUTPUT = Path("fkp_detect")
"""Default output folder when there are several inputs and no ``-o``."""
SAMPLE_NAME = "sample:astronaut"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp detect``."""
    detect = subparsers.add_parser(
        "detect",
        help="find faces and their 68 keypoints on photos",
        description=(
            "Find every face and its 68 keypoints on images or folders of images; draw them and/or write "
            "them as JSON. With no PATH, runs on a bundled sample photo and writes fkp_demo.png. "
            "Exit code 0 on success (also when no face is found), 1 when an input cannot be read "
            "(the others are still processed and each bad one is named on stderr), 2 for bad arguments "
            "or an output that exists (without --overwrite) or is an input."
        ),
    )
    detect.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="image files, folders of images (see -r) or quoted globs ('photos/*.jpg')",
    )
    detect.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help=(
            "annotated output: a file for one image ('-': stdout; a name ending in / is a folder), a folder "
            f"for several (default: {DEMO_OUTPUT} for the sample, NAME_fkp.EXT for one image, {FOLDER_OUTPUT}/ "
            "for several)"
        ),
    )
    detect.add_argument(
        "--json", metavar="FILE", help="write boxes and keypoints per image and face to FILE ('-': stdout)"
    )
    detect.add_argument("--no-draw", action="store_true", help="write no annotated images")
    detect.add_argument(
        "--labels",
        metavar="NAME",
        help="labelling convention of the keypoints, one of the model's: 300w (the shipped model's default) "
        "or udacity (the course data set's, as notebook 1 shows its labels)",
    )
    add_overwrite_option(detect)
    add_detection_options(detect)
    add_bulk_options(detect)
    detect.set_defaults(handler=run_detect)


@dataclass
class _Job:
    """One image to process: where it comes from and where its drawing goes."""

    name: str  # as reported (path or sample name)
    path: Path | None  # None for the bundled sample
    output: Output | None = None


@dataclass
class _Report:
    images: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    faces: int = 0


def _expand(paths: list[str], report: _Report) -> list[_Job]:
    """The images of ``paths`` (:func:`fkp.inputs.list_images`); the paths that name none go to ``report.errors``."""
    names, errors = list_images(paths)
    for name, reason in errors:
        _record_error(report, name, reason)
    return [_Job(name, Path(name)) for name in names]


def _record_error(report: _Report, name: str, reason: str) -> None:
    report.errors.append({"path": name, "error": reason})
    say_error(name, reason)


def _output_name(path: Path) -> str:
    suffix = path.suffix.lower() if path.suffix.lower() in WRITABLE_SUFFIXES else ".png"
    return f"{path.stem}_fkp{suffix}"


def _assign_outputs(jobs: list[_Job], args: argparse.Namespace, single: bool) -> None:
    """Decide where each drawing goes (:mod:`fkp.outputs`' rule): OUT as a file for one input (a folder
    when it is one or ends in ``/``; ``-`` for stdout), OUT/ as a folder for several."""
    inputs = [job.path for job in jobs]
    if single:
        job = jobs[0]
        default = DEMO_OUTPUT if job.path is None else Path(_output_name(job.path))
        job.output = output_for(args.output, default, inputs, "-o", args.overwrite)
        return
    if args.output == STDOUT:
        raise UsageError("-o -: several inputs need an output folder, not standard output")
    folder = Path(args.output) if args.output else FOLDER_OUTPUT
    if os.path.lexists(folder) and not folder.is_dir():
        raise UsageError(f"-o {folder}: exists and is not a folder (several inputs need an output folder)")
    if not folder.exists() and folder.suffix.lower() in WRITABLE_SUFFIXES:
        raise UsageError(f"-o {folder}: several inputs need an output folder, not an image file name")
    names = [_output_name(job.path) for job in jobs if job.path is not None]
    for job, output in zip(jobs, plan_folder_outputs(folder, names, inputs, args.overwrite)):
        job.output = output


def _json_report(report: _Report, labels: str | None) -> str:
    """``{"labels": convention or null, "images": [...], "errors": [...]}`` with one line per image (points stay compact)."""
    images = ",\n".join(json.dumps(image) for image in report.images)
    return f'{{"labels": {json.dumps(labels)},\n"images": [\n{images}\n],\n"errors": {json.dumps(report.errors)}}}'


def _progress(jobs: list[_Job], show: bool) -> Iterator[_Job]:
    if not show:
        yield from jobs
        return
    from tqdm.auto import tqdm

    yield from tqdm(jobs, unit="image", desc="fkp detect", file=sys.stderr)


def run_detect(args: argparse.Namespace) -> int:
    """Handler of ``fkp detect``."""
    from fkp.annotate import draw_faces
    from fkp.detect import Landmarker
    from fkp.utils import set_seed

    set_seed(0)
    if is_bulk(args):
        return run_bulk(args)
    report = _Report()
    if args.paths:
        jobs = _expand(args.paths, report)
        single = len(args.paths) == 1 and len(jobs) == 1 and not Path(args.paths[0]).is_dir()
    else:
        jobs, single = [_Job(SAMPLE_NAME, None)], True
    draw = not args.no_draw
    if args.no_draw and args.output is not None:
        raise UsageError(f"-o {args.output} with --no-draw: nothing would be drawn; drop one of them")
    json_output = None
    if args.json:
        json_output = plan_output(args.json, [job.path for job in jobs], what="--json", overwrite=args.overwrite)
    if draw and jobs:
        _assign_outputs(jobs, args, single)
    check_distinct([json_output] + [job.output for job in jobs])
    sample = sample_photo() if any(job.path is None for job in jobs) else None  # before any other message
    landmarker = None  # its detector is built at the first readable image: no detector note for unreadable inputs
    model = load_model_for(args) if jobs else None
    labels = labels_of(model, args.labels)
    to_stdout = any(output is not None and output.to_stdout for output in [json_output] + [j.output for j in jobs])
    written: list[Output] = []
    start = time.perf_counter()
    for job in _progress(jobs, show=len(jobs) > 1):
        try:
            image = load_image(job.path) if job.path is not None else sample
            assert image is not None  # the sample was loaded above for the job without a path
        except ImageReadError as error:
            _record_error(report, job.name, error.reason)
            continue
        if landmarker is None:
            landmarker = Landmarker(build_detector(args), model, labels=args.labels)
        faces = landmarker(image)
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
            except (CommandError, OutputConflictError) as error:  # the others go on, the JSON is still written
                _record_error(report, job.name, str(error))
                continue
            written.append(job.output)
    seconds = time.perf_counter() - start

    if json_output is not None:
        json_output.write_bytes((_json_report(report, labels) + "\n").encode())
    summary = f"{len(report.images)} images, {report.faces} faces, {seconds:.1f} s"
    if report.errors:
        summary += f", {len(report.errors)} unreadable"
    lines = [summary]
    if written:
        if single:
            lines.append(f"wrote {written[0]}")
        else:
            lines.append(f"wrote {len(written)} images to {Path(written[0].shown).parent}{os.sep}")
    if json_output is not None and not json_output.to_stdout:
        lines.append(f"wrote {json_output}")
    print("\n".join(lines), file=sys.stderr if to_stdout else sys.stdout)
    return 1 if report.errors else 0
