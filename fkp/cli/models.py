"""``fkp models download``: fetch the YuNet face detector file into the user cache now (the detector
table also fetches it on first use, unless ``$FKP_OFFLINE`` is set: see :mod:`fkp.detectors.registry`).

Exit codes: 0 the file is in place (downloaded, or an intact copy was already there), 1 it could
not be downloaded, its checksum was wrong or its folder cannot be written (one line on stderr that
names the URL or the folder; nothing is left behind, not even a folder the run created).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fkp.cli.common import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp models`` with its ``download`` action."""
    from fkp.detectors.registry import OFFLINE_ENV
    from fkp.detectors.yunet import MODELS_DIR_ENV, YUNET_FILE, YUNET_URL

    parser = subparsers.add_parser(
        "models",
        help="download the face detector model (YuNet)",
        description=(
            "Get model files that fkp does not ship, before they are needed (the first command that needs "
            f"one downloads it, unless {OFFLINE_ENV} is set). {MODELS_DIR_ENV} names a folder that already holds them."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    download = actions.add_parser(
        "download",
        help=f"download {YUNET_FILE} (230 KB, MIT licence) from the OpenCV Model Zoo",
        description=(
            f"Download the YuNet face detector, {YUNET_FILE}, from the OpenCV Model Zoo into the user cache "
            "(~/.cache/fkp/models; $XDG_CACHE_HOME is honoured), check its sha256 and "
            "move it into place only then: a failed or interrupted run leaves nothing behind."
        ),
    )
    download.add_argument("--dir", type=Path, help="put the file in this folder instead of the cache")
    download.add_argument("--url", default=YUNET_URL, help="download from this URL instead (a mirror)")
    download.set_defaults(handler=_download)


def _download(args: argparse.Namespace) -> int:
    from fkp.detectors.yunet import ModelFileError, download_yunet, models_cache_dir
    from fkp.fetch import FetchError

    folder = models_cache_dir() if args.dir is None else args.dir
    try:
        path = download_yunet(args.url, folder, progress=True)
    except FetchError as error:
        raise CommandError(f"cannot download the face detector (no network?): {error}") from None
    except ModelFileError as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"{folder}: cannot write the face detector file ({error.strerror or error})") from None
    print(f"YuNet face detector in {path}")
    return 0
