"""flank cancel PROJECT PIPELINE [RUN_ID]

Stops a running run: its tasks get SIGTERM, then SIGKILL after the grace period (their
whole process trees), and the run ends `cancelled`. Without RUN_ID: the run that is
executing now (queued triggers are left alone; name a queued run's id to cancel it).

Exit codes: 0 the run is cancelled; 3 there was nothing to cancel (no such run running);
1 anything else (unknown project or pipeline, the runner belongs to another user, ...).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from flank_ops.errors import UserError
from flank_ops.git.release_config import deployed_config
from flank_ops.paths import Home, ProjectPaths
from flank_ops.run import cancel
from flank_ops.run.records import RunStatus, TaskStatus
from flank_ops.run.runner import choices_hint, find_working_copy
from flank_ops.run.task_exec import DEFAULT_KILL_GRACE_S

EXIT_NOTHING_TO_CANCEL = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names",
        nargs="+",
        metavar="PROJECT PIPELINE [RUN_ID]",
        help="RUN_ID: a run id (default: the run executing now)",
    )
    parser.add_argument("--local", action="store_true", help="a run of the current working copy (.flank/)")
    parser.add_argument("--no-wait", action="store_true", help="ask the run to stop and return at once")


def _split(args: argparse.Namespace) -> tuple[str | None, str, int | None]:
    usage = "usage: flank cancel PROJECT PIPELINE [RUN_ID]  (or: flank cancel --local PIPELINE [RUN_ID])"
    names = list(args.names)
    project = None if args.local else names.pop(0)
    if not names:
        raise UserError("which pipeline?", usage)
    pipeline = names.pop(0)
    run_id = None
    if names:
        text = names.pop(0).lstrip("#")
        if not text.isdigit():
            raise UserError(f"{text!r} is not a run id", usage)
        run_id = int(text)
    if names:
        raise UserError(f"unexpected {' '.join(names)!r}", usage)
    return project, pipeline, run_id


def run(args: argparse.Namespace) -> int:
    project, pipeline, run_id = _split(args)
    if project is None:
        paths = ProjectPaths.for_local(find_working_copy(Path.cwd()))
    else:
        paths = Home().project(project).require()
    if not paths.runs_dir(pipeline).is_dir():
        config = deployed_config(paths)
        known = sorted(set(config.pipelines if config is not None else ()) | set(paths.pipelines_with_runs()))
        if pipeline in known:
            print(f"flank: nothing to cancel: {pipeline} has not run yet", file=sys.stderr)
            return EXIT_NOTHING_TO_CANCEL
        raise UserError(
            f"no pipeline {pipeline!r} in project {paths.name!r}", choices_hint(pipeline, known, "pipelines")
        )
    try:
        target = cancel.find_target(paths, pipeline, run_id)
        cancel.request(target, getpass.getuser())
    except cancel.NothingToCancel as exc:
        print(f"flank: nothing to cancel: {exc}", file=sys.stderr)
        return EXIT_NOTHING_TO_CANCEL
    name = f"{pipeline} #{target.record.run_id}"
    if args.no_wait:
        print(f"flank: asked {name} to stop")
        return 0
    print(f"flank: stopping {name} …", flush=True)
    record = cancel.wait_until_finished(target, DEFAULT_KILL_GRACE_S)
    status = record.status
    if status == RunStatus.RUNNING:
        print(f"flank: {name} is still stopping; see: flank status {paths.name}", file=sys.stderr)
        return 1
    stopped = [n for n, t in record.tasks.items() if t.status == TaskStatus.CANCELLED]
    detail = f" ({len(stopped)} task{'s' if len(stopped) != 1 else ''} stopped)" if stopped else ""
    if status == RunStatus.CANCELLED:
        print(f"flank: {name} cancelled{detail}")
        return 0
    print(f"flank: nothing to cancel: {name} had already ended ({status})", file=sys.stderr)
    return EXIT_NOTHING_TO_CANCEL
