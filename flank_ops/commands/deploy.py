"""flank deploy PROJECT [SHA]: redo a deploy by hand, as post-receive does it for a push.

For a deploy a killed hook left unfinished (`flank status` says "deploy interrupted"),
or to deploy another pushed commit (SHA) without moving the branch. Starts no runs.
"""

from __future__ import annotations

import argparse

from flank_ops.deploy.deploy import deploy_by_hand
from flank_ops.paths import Home


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="the project (as in flank init NAME)")
    parser.add_argument("sha", nargs="?", help="commit to deploy (default: the tip of the deploy branch)")


def run(args: argparse.Namespace) -> int:
    return deploy_by_hand(Home().project(args.project).require(), args.sha)
