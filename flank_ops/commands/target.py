"""The words naming what a command acts on: PROJECT PIPELINE [...], or --local PIPELINE [...]
(the current working copy). One reading for `flank run`, `plan`, `logs` and `cancel`: the same
usage line, the same answer to a missing pipeline or a word too many."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from flank_ops.errors import UserError
from flank_ops.hints import REMOTE_VERBS, via_remote
from flank_ops.paths import Home, ProjectPaths
from flank_ops.run.runner import find_working_copy

if TYPE_CHECKING:
    from flank_ops.paths import ProjectPaths


class TargetArgs(NamedTuple):
    project: str | None  # None: --local
    pipeline: str
    rest: list[str]  # the words after PIPELINE (at most as many as the command takes)
    usage: str  # "usage: flank VERB PROJECT PIPELINE ...", for the command's own errors

    @property
    def local_dir(self) -> Path | None:
        """The working copy's folder (--local: the current one), None for a project on this VM."""
        return Path.cwd() if self.project is None else None

    def paths(self) -> ProjectPaths:
        """The project's paths: this VM's project (it must exist), or the working copy's (--local)."""
        if self.project is None:
            return ProjectPaths.for_local(find_working_copy(Path.cwd()))
        return Home().project(self.project).require()


def add_target_arguments(
    parser: argparse.ArgumentParser, after: str = "", help: str = "", local_help: str = ""
) -> None:
    """PROJECT PIPELINE, then `after` (e.g. "[RUN_ID]"), and --local."""
    tail = f" {after}" if after else ""
    parser.usage = f"%(prog)s [options] (PROJECT | --local) PIPELINE{tail}"
    parser.add_argument(
        "names",
        nargs="*",  # none at all gets the same answer as a missing pipeline, not argparse's
        metavar=f"PROJECT PIPELINE{' ' + after if after else ''}",
        help=help or "the project and pipeline (with --local: just the pipeline)",
    )
    parser.add_argument("--local", action="store_true", help=local_help or "the current working copy (.flank/)")


def parse_target(args: argparse.Namespace, verb: str, after: str = "", most: int = 0) -> TargetArgs:
    """The target of `flank VERB`; `most`: how many words may follow PIPELINE (those in `after`)."""
    tail = f" {after}" if after else ""
    if via_remote() is not None and verb in REMOTE_VERBS:  # typed on a laptop as `flank remote VERB ...`
        usage = f"usage: flank remote {verb} PIPELINE{tail}"
    else:
        usage = f"usage: flank {verb} PROJECT PIPELINE{tail}  (or: flank {verb} --local PIPELINE{tail})"
    names = list(args.names)
    project = None if args.local or not names else names.pop(0)
    if not names:
        raise UserError("which pipeline?" if args.local or project else "which project and pipeline?", usage)
    pipeline = names.pop(0)
    if len(names) > most:
        raise UserError(f"unexpected {' '.join(names[most:])!r}", usage)
    return TargetArgs(project, pipeline, names, usage)


def add_param_option(parser: argparse.ArgumentParser, help_text: str = "") -> None:
    """`-p NAME=VALUE` (repeatable): a value for one of the pipeline's `params:` (issue 23); run, plan,
    backfill and their `flank remote` forms take it alike, into `args.params`."""
    parser.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=help_text or "a value for one of the pipeline's params: (repeatable; the others take their default)",
    )
