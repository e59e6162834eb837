"""``fkp detect``: faces and their keypoints on photos and folders of photos, drawn and/or as JSON.

Exit codes: 0 success (also when no face is found), 1 an input could not be read (the other inputs
are still processed; each bad one is named on one stderr line) or the output could not be written,
2 bad arguments or an output that :mod:`fkp.outputs`' rule refuses (an existing file without
``--overwrite``, an input, two outputs on one place).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fkp.bulk import DEFAULT_BATCH_SIZE
from fkp.cli.common import (
    WRITABLE_SUFFIXES,
    CommandError,
    UsageError,
    add_detection_options,
    add_overwrite_option,
    build_detector,
    load_model_for,
    output_for,
    positive_int,
    sample_photo,
    write_image,
)
from fkp.images import IMAGE_SUFFIXES, ImageReadError, load_image
from fkp.outputs import (
    STDOUT,
    STDOUT_NAMES,
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
BULK_FORMATS = ("jsonl", "parquet")
"""What a bulk run writes: JSON Lines (appendable, resumable) or Parquet."""


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


def add_bulk_options(parser: argparse.ArgumentParser) -> None:
    """The options of a bulk run (:func:`run_bulk`): any of them makes ``fkp detect`` one."""
    group = parser.add_argument_group(
        "many photos (any of these, or --json NAME.jsonl / .parquet, makes a bulk run: results only, "
        "streamed one line per image, resumed by running the same command again)"
    )
    group.add_argument("-r", "--recursive", action="store_true", help="also the images in sub-folders of folders")
    group.add_argument(
        "--from", dest="from_list", metavar="LIST", help="a text file of image paths, folders or globs, one a line"
    )
    group.add_argument(
        "--format",
        choices=BULK_FORMATS,
        help="results as JSON Lines (default of a bulk run) or Parquet (needs pyarrow: pip install 'fkp[parquet]')",
    )
    group.add_argument(
        "--jobs",
        type=positive_int,
        metavar="N",
        help="worker processes, one thread each (default: the cores); with --engine ray, the local Ray's CPUs",
    )
    group.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"images per task handed to a worker (default {DEFAULT_BATCH_SIZE})",
    )
    group.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local worker processes (default), or Ray Data (pip install 'fkp[ray]'), on this machine or a cluster",
    )
    group.add_argument(
        "--address", metavar="ADDR", help="with --engine ray: the Ray cluster to join (ray.init's address)"
    )


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
    _say_error(name, reason)


def _say_error(name: str, reason: str) -> None:
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


def _labels_of(model: Any, wanted: str | None) -> str | None:
    """The convention the keypoints are in: ``--labels`` if the model has a head for it, else its default."""
    conventions = tuple(getattr(model, "conventions", ())) if model is not None else ()
    if wanted is not None and wanted not in conventions:
        known = f"it answers in {', '.join(conventions)}" if conventions else "it does not name its convention"
        raise UsageError(f"--labels {wanted}: the model has no head for it; {known}")
    return wanted or (conventions[0] if conventions else None)


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
    labels = _labels_of(model, args.labels)
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


def _bulk_format(args: argparse.Namespace) -> str | None:
    """``--format``, else what the ``--json`` name's ending says (``.jsonl``, ``.parquet``), else None."""
    if args.format:
        return str(args.format)
    suffix = Path(args.json).suffix.lower() if args.json else ""
    return {".jsonl": "jsonl", ".parquet": "parquet"}.get(suffix)


def is_bulk(args: argparse.Namespace) -> bool:
    """Whether ``fkp detect`` makes a bulk run (:func:`run_bulk`) rather than drawing each image."""
    return bool(
        args.recursive
        or args.from_list
        or args.jobs
        or args.engine != "local"
        or args.address
        or _bulk_format(args) is not None
    )


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _check_bulk_args(args: argparse.Namespace, fmt: str) -> None:
    if args.output is not None:
        raise UsageError(
            f"-o {args.output}: a bulk run writes results only (--json); drawings come without -r, --from, "
            "--jobs, --engine and .jsonl/.parquet"
        )
    if not args.json:
        raise UsageError(
            "a bulk run writes its results with --json FILE (.jsonl or .parquet; '-': JSON Lines to stdout)"
        )
    if not args.paths and not args.from_list:
        raise UsageError("a bulk run needs PATHs or --from LIST")
    if args.address and args.engine != "ray":
        raise UsageError("--address is the Ray cluster of --engine ray")
    if fmt == "parquet" and args.json in STDOUT_NAMES:
        raise UsageError("--json -: Parquet is written to a file; use JSON Lines for standard output")
    if fmt == "parquet" and not _installed("pyarrow"):
        raise UsageError("--format parquet needs pyarrow: pip install 'fkp[parquet]'")
    if args.engine == "ray" and not _installed("ray"):
        raise UsageError("--engine ray needs Ray: pip install 'fkp[ray]'")
    if args.from_list and not Path(args.from_list).is_file():
        raise UsageError(f"--from {args.from_list}: no such file")


def run_bulk(args: argparse.Namespace) -> int:
    """A bulk run of ``fkp detect``: every image of the inputs, streamed to one JSON Lines (or Parquet)
    record per image as it finishes, by worker processes or Ray; an existing JSON Lines output is
    resumed (the one exception to :mod:`fkp.outputs`' rule: it is appended to, never replaced,
    unless ``--overwrite`` starts it over). Exit code 1 when an image failed, 130 on Ctrl-C."""
    from fkp import bulk, records
    from fkp.detect import Landmarker, LandmarkerSpec
    from fkp.inputs import iter_inputs

    fmt = _bulk_format(args) or "jsonl"
    _check_bulk_args(args, fmt)
    resume = fmt == "jsonl" and args.json not in STDOUT_NAMES and Path(args.json).is_file() and not args.overwrite
    output = plan_output(args.json, args.paths, what="--json", overwrite=args.overwrite or resume)
    model = load_model_for(args)
    labels = _labels_of(model, args.labels)
    jobs = args.jobs or bulk.default_jobs()
    counts = {"images": 0, "faces": 0, "failures": 0, "skipped": 0}
    interrupted = False
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        writer: records.JsonLinesWriter | records.ParquetWriter
        try:
            if fmt == "parquet":
                writer = records.ParquetWriter(stack.enter_context(output.staged()))
            else:
                writer = records.JsonLinesWriter(output.path, overwrite=args.overwrite)
        except OSError as error:
            raise CommandError(f"--json {output}: {error.strerror or error}") from None
        stack.callback(writer.close)
        if writer.dropped:
            print(
                f"fkp detect: {writer.dropped} lines of {output} will be run again (errors, changed or cut short)",
                file=sys.stderr,
            )

        def sources() -> Iterator[str]:
            for name in iter_inputs(args.paths, args.recursive, args.from_list):
                if name in writer.done:
                    counts["skipped"] += 1
                else:
                    yield name

        spec = LandmarkerSpec(
            args.detector,
            args.model,
            args.passes,
            args.labels,
            {
                "rotations": args.rotations,
                **({} if args.max_side is None else {"max_side": args.max_side}),
                "scale_factor": args.scale_factor,
                "min_neighbors": args.min_neighbors,
                "min_size": args.min_size,
            },
        )
        results: Iterator[bulk.ImageResult]
        if args.engine == "ray":
            from fkp.distributed import run_paths

            results = run_paths(sources(), spec, address=args.address, jobs=jobs, batch_size=args.batch_size)
        else:
            landmarker = Landmarker(build_detector(args), model, labels=args.labels)  # says which detector, here
            factory = spec if jobs > 1 else lambda: landmarker
            results = bulk.run_images(sources(), factory, jobs=jobs, batch_size=args.batch_size)
        from tqdm.auto import tqdm

        bar = stack.enter_context(tqdm(unit="image", desc="fkp detect", file=sys.stderr, dynamic_ncols=True))
        try:
            for result in results:
                writer.write(result.to_record(labels))
                counts["images"] += 1
                counts["faces"] += len(result.faces)
                if result.error is not None:
                    counts["failures"] += 1
                    _say_error(str(result.path), result.error)
                bar.update()
                seconds = max(time.perf_counter() - start, 1e-9)
                bar.set_postfix_str(f"{counts['faces'] / seconds:.1f} faces/s", refresh=False)
        except KeyboardInterrupt:
            interrupted = True
    seconds = time.perf_counter() - start
    summary = (
        f"{counts['images']} images, {counts['faces']} faces, {counts['failures']} failures, {seconds:.1f} s"
        f" ({counts['images'] / max(seconds, 1e-9):.1f} images/s)"
    )
    if counts["skipped"]:
        summary += f"; {counts['skipped']} already in {output}, skipped"
    lines = [summary + ("; interrupted: run the same command again to continue" if interrupted else "")]
    if not output.to_stdout:
        lines.append(f"wrote {output}")
    print("\n".join(lines), file=sys.stderr if output.to_stdout else sys.stdout)
    return 130 if interrupted else 1 if counts["failures"] else 0
