"""``fkp detect``'s bulk run: ``-r``, ``--from``, ``--jobs``, ``--engine`` or a ``.jsonl``/``.parquet``
``--json`` make one (:func:`is_bulk`); :func:`run_bulk` streams one record per image through
:mod:`fkp.bulk` (or :mod:`fkp.distributed`) into :mod:`fkp.records`' writers, resuming a JSON Lines file.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fkp.bulk import DEFAULT_BATCH_SIZE
from fkp.cli.common import CommandError, UsageError, build_detector, detector_options, load_model_for, positive_int
from fkp.outputs import STDOUT_NAMES, plan_output

BULK_FORMATS = ("jsonl", "parquet")
"""What a bulk run writes: JSON Lines (appendable, resumable) or Parquet."""


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


def say_error(name: str, reason: str) -> None:
    """One ``fkp detect: error: NAME: REASON`` line on stderr, above a running progress bar."""
    message = f"fkp detect: error: {name}: {reason}"
    try:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)  # does not break a running progress bar
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(message, file=sys.stderr)


def labels_of(model: Any, wanted: str | None) -> str | None:
    """The convention the keypoints are in: ``--labels`` if the model has a head for it, else its default."""
    conventions = tuple(getattr(model, "conventions", ())) if model is not None else ()
    if wanted is not None and wanted not in conventions:
        known = f"it answers in {', '.join(conventions)}" if conventions else "it does not name its convention"
        raise UsageError(f"--labels {wanted}: the model has no head for it; {known}")
    return wanted or (conventions[0] if conventions else None)


def bulk_format(args: argparse.Namespace) -> str | None:
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
        or bulk_format(args) is not None
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

    fmt = bulk_format(args) or "jsonl"
    _check_bulk_args(args, fmt)
    resume = fmt == "jsonl" and args.json not in STDOUT_NAMES and Path(args.json).is_file() and not args.overwrite
    output = plan_output(args.json, args.paths, what="--json", overwrite=args.overwrite or resume)
    model = load_model_for(args)
    labels = labels_of(model, args.labels)
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
            detector_options(args),
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
                    say_error(str(result.path), result.error)
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
