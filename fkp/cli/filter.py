"""``fkp filter [PATH] [--filter NAME] [-o OUT] [--strength S]``: face filters on a photo or a video.

    fkp filter                                  # sunglasses on the bundled astronaut photo
    fkp filter photo.jpg --filter hat -o hat.png
    fkp filter clip.mp4 --filter pose --smoothing 2
    fkp filter --camera 0 --filter moustache    # a webcam; Ctrl-C stops and keeps the video
    fkp filter photo.jpg --art mask.png --anchors 40,60,160,60 --points 36,45

Filters: see :data:`fkp.filters.FILTER_NAMES`. ``--strength`` is the overlays' opacity, the blur's
strength or the pose axes' length (1 = as designed). Videos (recognised by their file name ending)
go through :func:`fkp.video.annotate_video`, the path of ``fkp video``, with the keypoints smoothed
over time so that overlays do not jitter. ``--art`` places your own RGBA PNG: ``--anchors`` are
points in its pixels, ``--points`` the keypoint indices (0-67) they go to.

Exit codes as ``fkp detect``: 0 success (also when no face is found), 1 unreadable input or
unwritable output (one line on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fkp.cli.common import (
    WRITABLE_SUFFIXES,
    CommandError,
    add_detection_options,
    add_overwrite_option,
    add_video_options,
    annotate_video_from_args,
    build_detector,
    load_model_for,
    output_for,
    sample_photo,
    write_image,
)
from fkp.filters import FILTER_NAMES, FILTERS, MAX_STRENGTH, FilterFunction, apply_filter, overlay_filter

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv"})
"""File name endings read as videos; anything else is read as an image."""
DEFAULT_FILTER = "sunglasses"


def _numbers(kind: type) -> Any:
    def parse(text: str) -> list:
        try:
            return [kind(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None

    return parse


def register(subparsers: Any) -> None:
    """Add the ``filter`` sub-command."""
    parser = subparsers.add_parser(
        "filter",
        help="sunglasses, a moustache, a hat, head pose or blur on every face of a photo or video",
        description=(
            "Put a filter on every face of a photo or a video (or a webcam). With no PATH, runs on a bundled "
            "sample photo. Exit code 0 on success (also when no face is found), 1 when the input cannot be "
            "read or the output written, 2 for bad arguments."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "path", nargs="?", metavar="PATH", help="image or video file (default: the bundled astronaut photo)"
    )
    source.add_argument("--camera", type=int, metavar="N", help="filter webcam N live into a video (Ctrl-C stops)")
    parser.add_argument(
        "--filter",
        "-f",
        dest="filter_name",
        choices=FILTER_NAMES,
        default=None,
        help=f"which filter (default {DEFAULT_FILTER})",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file, or a folder; '-': stdout (default: NAME_FILTER.png, or .mp4 for a video, here)",
    )
    add_overwrite_option(parser)
    parser.add_argument(
        "--strength",
        type=_strength,
        default=1.0,
        metavar="S",
        help=f"opacity, blur strength or axis length, 0 to {MAX_STRENGTH:g} (1)",
    )
    art = parser.add_argument_group("your own overlay")
    art.add_argument("--art", metavar="PNG", help="an RGBA picture to place instead of --filter")
    art.add_argument("--anchors", type=_numbers(float), metavar="X,Y,...", help="anchor points in the picture's pixels")
    art.add_argument("--points", type=_numbers(int), metavar="I,...", help="keypoint indices (0-67) the anchors go to")
    add_video_options(parser, also_photos=True)
    add_detection_options(parser)
    parser.set_defaults(handler=run, parser=parser)


def _strength(text: str) -> float:
    """argparse type: a filter strength in [0, :data:`fkp.filters.MAX_STRENGTH`]."""
    value = float(text)
    if not 0.0 <= value <= MAX_STRENGTH:  # also refuses NaN and inf
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_STRENGTH:g}, got {text}")
    return value


def _chosen_filter(args: argparse.Namespace) -> tuple[str, FilterFunction]:
    """The filter to run and its label, from ``--filter`` or ``--art``; bad combinations exit with code 2."""
    from fkp.art import load_art

    if args.art is None:
        if args.anchors is not None or args.points is not None:
            args.parser.error("--anchors and --points go with --art")
        name = args.filter_name or DEFAULT_FILTER
        return name, FILTERS[name]
    if args.filter_name is not None:
        args.parser.error("give either --filter or --art, not both")
    if not args.anchors or not args.points:
        args.parser.error("--art needs --anchors X,Y,... and --points I,...")
    if len(args.anchors) % 2 or len(args.anchors) // 2 != len(args.points) or len(args.points) < 2:
        args.parser.error("--anchors needs one X,Y pair per index in --points, and at least two of each")
    try:
        art = load_art(args.art, np.reshape(args.anchors, (-1, 2)), args.points)
    except ValueError as error:  # unreadable picture or keypoint indices out of range
        raise CommandError(str(error)) from None
    return art.name, overlay_filter(art)


def _run_image(args: argparse.Namespace, label: str, function: FilterFunction) -> int:
    from fkp.detect import detect_keypoints
    from fkp.images import ImageReadError, load_image

    if args.path is None:
        image, default_output = sample_photo(), Path(f"fkp_{label}.png")
    else:
        try:
            image = load_image(args.path)
        except ImageReadError as error:
            raise CommandError(str(error)) from None
        path = Path(args.path)
        suffix = path.suffix.lower() if path.suffix.lower() in WRITABLE_SUFFIXES else ".png"
        default_output = Path(f"{path.stem}_{label}{suffix}")
    output = output_for(args.output, default_output, [args.path], "-o", args.overwrite)
    detector = build_detector(args)
    model = load_model_for(args)
    start = time.perf_counter()
    faces = detect_keypoints(image, detector=detector, model=model)
    result = apply_filter(image, [face.keypoints for face in faces], function, args.strength)
    write_image(output, result)
    seconds = time.perf_counter() - start
    found = f"{len(faces)} face{'' if len(faces) == 1 else 's'}" if faces else "no face found"
    print(f"{label}: {found}, {seconds:.1f} s\nwrote {output}", file=sys.stderr if output.to_stdout else sys.stdout)
    return 0


def _run_video(args: argparse.Namespace, label: str, function: FilterFunction) -> int:
    def render(frame: np.ndarray, faces: Sequence[Any]) -> np.ndarray:
        return apply_filter(frame, [face.keypoints for face in faces], function, args.strength)

    stats, output = annotate_video_from_args(args, args.path, label, render)
    print(
        f"{label}: {stats.frames} frames, {stats.faces} faces, {stats.seconds:.1f} s: "
        f"{stats.frames_per_second:.1f} frames/s\nwrote {output}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Handler of ``fkp filter``."""
    label, function = _chosen_filter(args)
    is_video = args.camera is not None or (args.path is not None and Path(args.path).suffix.lower() in VIDEO_SUFFIXES)
    return _run_video(args, label, function) if is_video else _run_image(args, label, function)
