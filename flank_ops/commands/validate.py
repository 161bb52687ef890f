"""flank validate [PATH]: check a flank.yml without a VM.

Prints `flank.yml OK — 1 pipeline, 4 tasks` (exit 0) or every problem as
`file:line:col: message` lines, the format editors and terminals link to (exit 1).
"""
from __future__ import annotations

import argparse
import os
import sys

from flank_ops.errors import ConfigErrors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="flank.yml", metavar="PATH",
                        help="a flank.yml, or a directory holding one (default: ./flank.yml)")


def run(args: argparse.Namespace) -> int:
    from flank_ops.config.load import describe, load_config_file

    path = args.path
    if os.path.isdir(path):
        path = os.path.join(path, "flank.yml")
    try:
        config = load_config_file(path)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        if len(exc.errors) > 1:
            print(f"{len(exc.errors)} errors", file=sys.stderr)
        return 1
    print(f"{path} OK — {describe(config)}")
    return 0
