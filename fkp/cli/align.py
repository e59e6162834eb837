"""``fkp align``: every face of every photo as an aligned crop (:func:`fkp.align.align_face`), with a
JSON Lines record per face.

Exit codes: 0 success (also when no face is found), 1 an input could not be read (the other inputs
are still processed; each bad one is named on one stderr line) or an output could not be written,
2 bad arguments or an output that exists (without ``--overwrite``) or is an input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fkp.align import ARCFACE_SIZES, DEFAULT_SIZES, MAX_SIZE, STYLES, Template, TemplateError, align_face, load_template
from fkp.cli.common import (
    CommandError,
    UsageError,
    add_detection_options,
    build_detector,
    load_model_for,
    positive_int,
    write_image,
)
from fkp.images import ImageReadError, load_image
from fkp.inputs import list_images
from fkp.outputs import OutputConflictError, check_folder, plan_folder_outputs, plan_output, same_file

RECORDS_NAME = "faces.jsonl"
"""The JSON Lines file, one record per aligned face, in the output folder."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp align``."""
    align = subparsers.add_parser(
        "align",
        conflict_handler="resolve",  # its --min-size replaces the Haar group's, with the same meaning and more
        help="cut every face out as an aligned crop (FFHQ, ArcFace or your own template)",
        description=(
            "Find every face on images or folders of images and write each as an aligned crop, "
            f"OUT/STEM_faceK.png (K: the face's place in the detector's order, from 0), with one JSON line per "
            f"face in OUT/{RECORDS_NAME}: the source, the face index, the 2x3 image-to-crop transform, the "
            "detector's box and the 68 points, the style and the size. Existing outputs are not replaced "
            "without --overwrite (exit code 2); inputs never are. Exit code 0 on success (also when no face "
            "is found), 1 when an input cannot be read (the others are still processed and each bad one is "
            "named on stderr), 2 for bad arguments."
        ),
    )
    align.add_argument("paths", nargs="+", metavar="INPUT", help="image files or folders of images (not recursive)")
    align.add_argument("-o", "--output", metavar="OUT", required=True, help="output folder (made if missing)")
    align.add_argument(
        "--style",
        choices=STYLES,
        default="ffhq",
        help="ffhq: the FFHQ data set's crop from the eyes and mouth, the photo's edges filled by blurred "
        "reflection; arcface: 5 points (eye centres, nose tip, mouth corners) onto the face recognisers' "
        "112 x 112 template; custom: your --template (default ffhq)",
    )
    align.add_argument(
        "--template",
        metavar="FILE",
        help='JSON for --style custom: {"points": [index, [indices], or region name, ...], '
        '"positions": [[x, y] in 0..1 crop coordinates, ...]}',
    )
    align.add_argument(
        "--size",
        type=positive_int,
        metavar="N",
        help=f"crop side in pixels, at most {MAX_SIZE} (default {DEFAULT_SIZES['ffhq']} for ffhq and custom, "
        f"{DEFAULT_SIZES['arcface']} for arcface, which makes {' or '.join(map(str, ARCFACE_SIZES))})",
    )
    align.add_argument(
        "--overwrite", action="store_true", help="replace crops and the records file left in OUT by an earlier run"
    )
    add_detection_options(align)
    align.add_argument(
        "--min-size",
        type=positive_int,
        default=30,
        metavar="PX",
        help="skip faces whose detector box is narrower or shorter than PX pixels, counted in the summary; "
        "the Haar cascade looks for none smaller (default 30)",
    )
    align.set_defaults(handler=run_align)


@dataclass
class _Input:
    name: str  # as reported
    path: Path
    stem: str = ""  # of its crops' names, unique in the run


@dataclass
class _Counts:
    images: int = 0
    faces: int = 0
    skipped: int = 0
    unreadable: int = 0


def _error_line(name: str, reason: str) -> None:
    print(f"fkp align: error: {name}: {reason}", file=sys.stderr)


def _expand(paths: list[str], counts: _Counts) -> list[_Input]:
    """The images of ``paths`` (:func:`fkp.inputs.list_images`); a path that names none is one line."""
    names, errors = list_images(paths)
    for name, reason in errors:
        _error_line(name, reason)
        counts.unreadable += 1
    return [_Input(name, Path(name)) for name in names]


def _template(args: argparse.Namespace) -> Template | None:
    if args.style != "custom":
        if args.template is not None:
            raise UsageError(f"--template is for --style custom, not --style {args.style}")
        return None
    if args.template is None:
        raise UsageError("--style custom needs --template FILE")
    try:
        return load_template(args.template)
    except TemplateError as error:
        raise UsageError(f"--template {error}") from None


def _plan(folder: Path, inputs: list[_Input], overwrite: bool) -> None:
    """Give each input a unique crop stem and refuse, before any work, to replace what must stay:
    an input (always) or an earlier run's crops or records (without ``overwrite``)."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {folder}: exists and is not a folder")
    check_folder(folder, what="-o")
    records = folder / RECORDS_NAME
    if records.is_symlink() or (records.exists() and not records.is_file()):
        raise UsageError(f"{records} is not a regular file: choose another output folder")
    sources = [item.path for item in inputs]
    wanted = [f"{item.path.stem}.png" for item in inputs]
    names = plan_folder_outputs(folder, wanted, [], overwrite=True)  # only for unique stems: nothing is written there
    for item, name in zip(inputs, names):
        item.stem = Path(name.shown).stem
    if not folder.is_dir():
        return
    stems = "|".join(re.escape(item.stem) for item in inputs)
    pattern = re.compile(rf"(?:{stems})_face\d+\.png") if stems else None
    existing = sorted(
        path
        for path in folder.iterdir()
        if path.name == RECORDS_NAME or (pattern is not None and pattern.fullmatch(path.name))
    )
    for path in existing:
        for source in sources:
            if same_file(path, source):
                raise OutputConflictError(f"{path} is the input {source}: choose another output folder")
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputConflictError(
            f"{existing[0]} exists{more}: pass --overwrite to replace, or choose another output folder"
        )


def _open_records(path: Path, overwrite: bool) -> TextIO:
    """The records file, created exclusively (a concurrent run into the same folder is refused)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if overwrite and path.is_file():
        path.unlink()
    try:
        return open(path, "x", encoding="utf-8")
    except FileExistsError:
        raise OutputConflictError(f"{path} exists: another run is writing to this folder") from None


def _record(item: _Input, index: int, face: Any, transform: Any, style: str, size: int, crop: Path) -> str:
    """One JSON line: where the crop comes from and how it was made."""
    data = face.to_dict()
    return json.dumps(
        {
            "source": item.name,
            "face": index,
            "crop": crop.name,
            "style": style,
            "size": size,
            "transform": [[float(v) for v in row] for row in transform],
            "box": data["box"],
            "score": data["score"],
            "keypoints": data["keypoints"],
        }
    )


def run_align(args: argparse.Namespace) -> int:
    """Handler of ``fkp align``."""
    from fkp.detect import Landmarker
    from fkp.utils import set_seed

    set_seed(0)
    template = _template(args)
    size = DEFAULT_SIZES[args.style] if args.size is None else args.size
    if size > MAX_SIZE:
        raise UsageError(f"--size {size}: at most {MAX_SIZE} pixels")
    if args.style == "arcface" and size not in ARCFACE_SIZES:
        raise UsageError(f"--size {size}: --style arcface makes {' or '.join(map(str, ARCFACE_SIZES))} pixel crops")
    counts = _Counts()
    inputs = _expand(args.paths, counts)
    folder = Path(args.output)
    _plan(folder, inputs, args.overwrite)
    model = load_model_for(args) if inputs else None
    landmarker = None  # its detector is built at the first readable image
    start = time.perf_counter()
    with _open_records(folder / RECORDS_NAME, args.overwrite) as records:
        for item in inputs:
            try:
                image = load_image(item.path)
            except ImageReadError as error:
                _error_line(item.name, error.reason)
                counts.unreadable += 1
                continue
            if landmarker is None:
                landmarker = Landmarker(build_detector(args), model)
            counts.images += 1
            for index, face in enumerate(landmarker(image)):
                if min(face.box[2], face.box[3]) < args.min_size:
                    counts.skipped += 1
                    continue
                try:
                    crop, transform = align_face(image, face.keypoints, args.style, size, template)
                except ValueError as error:  # points no crop fits (all at one place, not finite)
                    _error_line(f"{item.name} face {index}", str(error))
                    counts.unreadable += 1
                    continue
                path = folder / f"{item.stem}_face{index}.png"
                try:
                    write_image(plan_output(path, [item.path], what="-o", overwrite=True), crop)  # checked by _plan
                except CommandError as error:
                    _error_line(item.name, str(error))
                    counts.unreadable += 1
                    continue
                records.write(_record(item, index, face, transform, args.style, size, path) + "\n")
                records.flush()
                counts.faces += 1
    seconds = time.perf_counter() - start
    summary = f"{counts.images} images, {counts.faces} faces aligned"
    if counts.skipped:
        summary += f", {counts.skipped} smaller than {args.min_size} px skipped"
    if counts.unreadable:
        summary += f", {counts.unreadable} failed"
    print(f"{summary}, {seconds:.1f} s\nwrote {counts.faces} crops and {folder / RECORDS_NAME}")
    return 1 if counts.unreadable else 0
