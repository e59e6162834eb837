"""``fkp video``: faces and keypoints on every frame of a video or a webcam, smoothed over time.

Exit codes: 0 success, 1 the input could not be read or the output written (one line on stderr),
2 bad arguments.
"""

from __future__ import annotations

import argparse

from fkp.cli.common import (
    add_detection_options,
    add_overwrite_option,
    add_video_options,
    annotate_video_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp video``."""
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
    video.add_argument(
        "-o", "--output", metavar="OUT", help="output video, .mp4 or .avi, or a folder (default: NAME_fkp.mp4)"
    )
    add_overwrite_option(video)
    add_video_options(video)
    add_detection_options(video)
    video.set_defaults(handler=run_video)


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
