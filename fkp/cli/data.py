"""``fkp data download``, ``verify`` and ``prepare-300w``: get the data sets, or check a copy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fkp.cli.common import CommandError
from fkp.utils import W300_DIR_ENV, resolve_300w_dir, resolve_data_dir

_DIR_HELP = "the data folder; default: $FKP_DATA_DIR if set, else ./data"
_LOOKUP = "The data folder is --dir if given, else $FKP_DATA_DIR if set, else ./data"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fkp data`` with its ``download``, ``verify`` and ``prepare-300w`` actions."""
    parser = subparsers.add_parser(
        "data",
        help="download, verify or prepare the data sets",
        description=f"Get or check the data sets. {_LOOKUP}; for prepare-300w, see its --help.",
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
    download.add_argument("--force", action="store_true", help="download again and replace the data set in the folder")
    download.set_defaults(handler=_download)

    verify = actions.add_parser(
        "verify",
        help="check a copy of the data set",
        description=f"Check the CSV checksums and that every labelled image exists and decodes. {_LOOKUP}.",
    )
    verify.add_argument("--dir", type=Path, help=_DIR_HELP)
    verify.set_defaults(handler=_verify)

    prepare = actions.add_parser(
        "prepare-300w",
        help="crop the official 300-W files into the 300-W data set folder",
        description=(
            "Crop every annotated face of the official 300-W folders (from "
            "https://ibug.doc.ic.ac.uk/resources/300-W/; research use only) into the layout of the "
            "Udacity set: training/ = LFPW trainset + HELEN trainset + AFW, test/ = LFPW testset + "
            "HELEN testset + iBUG. SRC holds lfpw/trainset, lfpw/testset, helen/trainset, "
            "helen/testset, afw and ibug (absent ones are skipped), each with photos (.png/.jpg) and "
            "one .pts file per face. The folder is built aside and moved into place only when "
            "complete: a failed or interrupted run leaves nothing behind."
        ),
    )
    prepare.add_argument("src", type=Path, metavar="SRC", help="the unpacked 300-W folder")
    prepare.add_argument(
        "--dir", type=Path, help=f"the folder to create; default: ${W300_DIR_ENV} if set, else ./data/faces-300w"
    )
    prepare.add_argument("--force", action="store_true", help="replace a data set already in the folder")
    prepare.set_defaults(handler=_prepare_300w)


def _download(args: argparse.Namespace) -> int:
    from fkp.data_check import DataError
    from fkp.download import download

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
    from fkp.data_check import DataError, verify

    try:
        report = verify(resolve_data_dir(args.dir), progress=sys.stderr.isatty())
    except (DataError, OSError) as error:
        raise CommandError(" ".join(str(error).split())) from None
    print(report)
    return 0


def _prepare_300w(args: argparse.Namespace) -> int:
    from fkp.data_check import DataError
    from fkp.w300 import prepare_300w

    dest = resolve_300w_dir(args.dir)
    try:
        report = prepare_300w(args.src, dest, progress=sys.stderr.isatty(), force=args.force)
    except (DataError, OSError) as error:
        raise CommandError(" ".join(str(error).split())) from None
    print(f"300-W ready in {report.root}: {report}")
    if resolve_300w_dir().absolute() != dest.absolute():
        print(f"use it with: export {W300_DIR_ENV}={report.root}")
    return 0
