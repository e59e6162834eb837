"""``fkp align``: every face of every photo as an aligned crop (:func:`fkp.align.align_face`), with a
JSON Lines record per face.

Exit codes: 0 success (also when no face is found), 1 an input could not be read (the other inputs
are still processed; each bad one is named on one stderr line) or an output could not be written,
2 bad arguments or an output that exists (without ``--overwrite``) or is an input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fkp.align import ARCFACE_SIZES, DEFAULT_SIZES, MAX_SIZE, STYLES, Template, TemplateError, align_face, load_template
from fkp.bulk import ImageResult
from fkp.cli.common import (
    CommandError,
    UsageError,
    add_detection_options,
    build_detector,
    detector_options,
    load_model_for,
    positive_int,
    write_image,
)
from fkp.images import ImageReadError, load_image
from fkp.inputs import iter_inputs, list_images
from fkp.model_file import sha256_of
from fkp.outputs import OutputConflictError, check_folder, plan_folder_outputs, plan_output, same_file
from fkp.records import lock_exclusive, parse_line

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
            "detector's box and the 68 points, the style and the size, written as each image finishes. Running "
            f"the same command again resumes: the images already in OUT/{RECORDS_NAME} are skipped (--overwrite "
            "starts over). Crops left without a records file are not replaced without --overwrite (exit code "
            "2); inputs never are. Exit code 0 on success (also when no face is found), 1 when an input cannot "
            "be read (the others are still processed and each bad one is named on stderr), 2 for bad "
            "arguments, 130 when interrupted (every finished crop and record kept)."
        ),
    )
    align.add_argument(
        "paths", nargs="*", metavar="INPUT", help="image files or folders of images (their sub-folders too with -r)"
    )
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
        "--overwrite",
        action="store_true",
        help=f"start over: replace the crops and the {RECORDS_NAME} left in OUT by an earlier run (instead of resuming it)",
    )
    align.add_argument("-r", "--recursive", action="store_true", help="also the images in sub-folders of folders")
    align.add_argument(
        "--from", dest="from_list", metavar="LIST", help="a text file of image paths, folders or globs, one a line"
    )
    align.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes finding the faces, one thread each (default 1: this process)",
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
    if existing and not overwrite and not records.is_file():  # an earlier run's records: resumed
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputConflictError(
            f"{existing[0]} exists{more}: pass --overwrite to replace, or choose another output folder"
        )


class _Records:
    """``OUT/faces.jsonl``, appended one image's records at a time (one ``write``), locked against a
    second concurrent run. An existing file is resumed unless ``overwrite``: an image's records stay
    when they are all there (``image_faces`` lines), made with the same style and size, from a file
    whose sha256 is unchanged; the others are removed, and their images run again. :attr:`done`
    holds the names of the images whose records stay.

    Raises:
        OutputConflictError: the file was made with another style or size, or another run holds it.
    """

    def __init__(self, path: Path, style: str, size: int, overwrite: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        resume = path.is_file() and not overwrite
        self.done: set[str] = set()
        self.dropped = 0
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | (0 if resume else os.O_TRUNC), 0o666)
        try:
            try:
                lock_exclusive(self._fd, path)
            except BlockingIOError:
                raise OutputConflictError(f"{path} exists: another run is writing to this folder") from None
            if resume:
                self._resume(path, style, size)
        except BaseException:
            os.close(self._fd)
            raise

    def _resume(self, path: Path, style: str, size: int) -> None:
        groups: dict[tuple[str, str], list[bytes]] = {}
        expected: dict[tuple[str, str], int] = {}
        broken = 0
        with open(path, "rb") as handle:
            for line in handle:
                record = parse_line(line, ("source", "sha256", "image_faces"))
                if record is None:  # cut short by a killed run, or not a record
                    broken += 1
                    continue
                if (record.get("style"), record.get("size")) != (style, size):
                    raise OutputConflictError(
                        f"{path} exists, made with --style {record.get('style')} --size {record.get('size')}: "
                        "pass --overwrite to replace, or choose another output folder"
                    )
                key = (record["source"], record["sha256"])
                groups.setdefault(key, []).append(line)
                expected[key] = record["image_faces"]
        kept: list[bytes] = []
        for (name, digest), lines in groups.items():
            if name in self.done or len(lines) != expected[(name, digest)] or not _unchanged(name, digest):
                broken += len(lines)
                continue
            self.done.add(name)
            kept.extend(lines)
        self.dropped = broken
        if broken:  # rewrite in place what stays (the lock is held on this file)
            os.ftruncate(self._fd, 0)
            self.write(b"".join(kept))

    def write(self, payload: bytes) -> None:
        """Append ``payload`` (whole lines) in as few ``write`` calls as the system allows."""
        view = memoryview(payload)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


def _unchanged(name: str, digest: str) -> bool:
    try:
        return sha256_of(name) == digest
    except OSError:
        return True  # no longer there: its records stay, it is not part of this run


def _record(
    item: _Input, digest: str, index: int, face: Any, transform: Any, style: str, size: int, crop: Path
) -> dict[str, Any]:
    """One face's record: where the crop comes from and how it was made."""
    data = face.to_dict()
    return {
        "source": item.name,
        "sha256": digest,
        "face": index,
        "crop": crop.name,
        "style": style,
        "size": size,
        "transform": [[float(v) for v in row] for row in transform],
        "box": data["box"],
        "score": data["score"],
        "keypoints": data["keypoints"],
    }


def _align_image(
    args: argparse.Namespace, item: _Input, result: ImageResult, size: int, template: Template | None, counts: _Counts
) -> bytes:
    """Write the crops of one image's faces (each atomically) and return its records' lines, each
    with ``image_faces``, the number of them (written only once all its crops exist)."""
    folder = Path(args.output)
    try:
        image = load_image(item.path)  # the detector's copy stayed in the worker
    except ImageReadError as error:  # changed or removed meanwhile
        _error_line(item.name, error.reason)
        counts.unreadable += 1
        return b""
    found: list[dict[str, Any]] = []
    for index, face in enumerate(result.faces):
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
        found.append(_record(item, str(result.sha256), index, face, transform, args.style, size, path))
    counts.faces += len(found)
    return "".join(json.dumps({**record, "image_faces": len(found)}) + "\n" for record in found).encode()


def _names(args: argparse.Namespace, counts: _Counts) -> list[_Input]:
    """The inputs: listed at once (a path naming nothing is one line here), or with ``-r``/``--from``
    walked by :func:`fkp.inputs.iter_inputs` (a path naming nothing fails as its image)."""
    if not (args.recursive or args.from_list):
        return _expand(args.paths, counts)
    if args.from_list and not Path(args.from_list).is_file():
        raise UsageError(f"--from {args.from_list}: no such file")
    return [_Input(name, Path(name)) for name in iter_inputs(args.paths, args.recursive, args.from_list)]


def run_align(args: argparse.Namespace) -> int:
    """Handler of ``fkp align``: the images run through :func:`fkp.bulk.run_images` (``--jobs``
    worker processes find the faces); this process writes the crops and ``faces.jsonl``, resumed when
    it exists. Exit code 1 when an input or face failed, 130 on Ctrl-C (every finished record and crop kept)."""
    from fkp import bulk
    from fkp.detect import Landmarker, LandmarkerSpec
    from fkp.utils import set_seed

    set_seed(0)
    template = _template(args)
    size = DEFAULT_SIZES[args.style] if args.size is None else args.size
    if size > MAX_SIZE:
        raise UsageError(f"--size {size}: at most {MAX_SIZE} pixels")
    if args.style == "arcface" and size not in ARCFACE_SIZES:
        raise UsageError(f"--size {size}: --style arcface makes {' or '.join(map(str, ARCFACE_SIZES))} pixel crops")
    if not args.paths and not args.from_list:
        raise UsageError("give INPUTs or --from LIST")
    counts = _Counts()
    inputs = _names(args, counts)
    folder = Path(args.output)
    _plan(folder, inputs, args.overwrite)
    model = load_model_for(args) if inputs else None
    interrupted = False
    resumed = 0
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        records = _Records(folder / RECORDS_NAME, args.style, size, args.overwrite)
        stack.callback(records.close)
        if records.dropped:
            print(f"fkp align: {records.dropped} lines of {folder / RECORDS_NAME} will be run again", file=sys.stderr)
        todo = [item for item in inputs if item.name not in records.done]
        resumed = len(inputs) - len(todo)
        if todo:
            spec = LandmarkerSpec(args.detector, args.model, args.passes, None, detector_options(args))
            landmarker: list[Any] = []

            def local() -> Any:  # its detector is built at the first image, here
                if not landmarker:
                    landmarker.append(Landmarker(build_detector(args), model))
                return landmarker[0]

            factory = spec if args.jobs > 1 else local
            results = bulk.run_images([str(item.path) for item in todo], factory, jobs=args.jobs)
            from tqdm.auto import tqdm

            bar = stack.enter_context(
                tqdm(total=len(todo), unit="image", desc="fkp align", file=sys.stderr, disable=None, dynamic_ncols=True)
            )
            try:
                for result in results:
                    item = todo[result.index]
                    if result.error is not None:
                        _error_line(item.name, result.error)
                        counts.unreadable += 1
                    else:
                        counts.images += 1
                        records.write(_align_image(args, item, result, size, template, counts))
                    bar.update()
            except KeyboardInterrupt:
                interrupted = True
    seconds = time.perf_counter() - start
    summary = f"{counts.images} images, {counts.faces} faces aligned"
    if counts.skipped:
        summary += f", {counts.skipped} smaller than {args.min_size} px skipped"
    if counts.unreadable:
        summary += f", {counts.unreadable} failed"
    summary += f", {seconds:.1f} s"
    if resumed:
        summary += f"; {resumed} images already in {folder / RECORDS_NAME}, skipped"
    if interrupted:
        summary += "; interrupted: run the same command again to continue"
    print(f"{summary}\nwrote {counts.faces} crops and {folder / RECORDS_NAME}")
    return 130 if interrupted else 1 if counts.unreadable else 0
