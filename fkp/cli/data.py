"""``fkp data download`` and ``fkp data verify``: get the data set, or check a copy of it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fkp.cli import CommandError
from fkp.utils import resolve_data_dir

_DIR_HELP = "the data folder; default: $FKP_DATA_DIR if set, else ./data"
_LOOKUP = "The data folder is --dir if given, else $FKP_DATA_DIR if set, else ./data"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp data`` with its ``download`` and ``verify`` actions."""
    parser = subparsers.add_parser(
        "data", help="download or verify the data set", description=f"Get or check the data set. {_LOOKUP}."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    download = actions.add_parser(
        "download",
        help="download, verify and unpack the data set",
        description=(
            "Download the Udacity facial keypoints archive (upstream, else its GitHub copy), verify it "
            "(archive size, CSV checksums, every labelled image decodes) and move it into place only "
            "once verified: a failed or interrupted run leaves nothing behind. If the folder already "
            f"holds the data set it is verified and kept (exit 0) unless --force is given. {_LOOKUP}"
        ),
    )
    download.add_argument("--dir", type=Path, help=_DIR_HELP)
    download.add_argument(
        "--force", action="store_true", help="download again and replace the data set in the folder"
    )
    download.set_defaults(handler=_download)

    verify = actions.add_parser(
        "verify",
        help="check a copy of the data set",
        description=f"Check the CSV checksums and that every labelled image exists and decodes. {_LOOKUP}.",
    )
    verify.add_argument("--dir", type=Path, help=_DIR_HELP)
    verify.set_defaults(handler=_verify)


def _download(args: argparse.Namespace) -> int:
    from fkp.download import DataError, download

    dest = resolve_data_dir(args.dir)
    try:
        report = download(dest, progress=sys.stderr.isatty(), force=args.force)
    except (DataError, OSError) as error:
        raise CommandError(" ".join(str(error).split())) from None
    if report.source is None:
        print(f"{dest} already holds the data set: {report} (--force downloads it again)")
    else:
        print(f"data set downloaded from {report.source}: {report}")
        print(f"data set ready in {dest.absolute()}")
    if resolve_data_dir().absolute() != dest.absolute():
        print(f"use it with --dir {dest} or: export FKP_DATA_DIR={dest.absolute()}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from fkp.download import DataError, verify

    try:
        report = verify(resolve_data_dir(args.dir), progress=sys.stderr.isatty())
    except (DataError, OSError) as error:
        raise CommandError(" ".join(str(error).split())) from None
    print(report)
    return 0
