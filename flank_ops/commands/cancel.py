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
from typing import TYPE_CHECKING

from flank_ops.commands.target import TargetArgs, add_target_arguments, parse_target
from flank_ops.errors import UserError
from flank_ops.hints import flank_command
from flank_ops.jsonout import FLAG_HELP
from flank_ops.store.model import RunStatus, TaskStatus

if TYPE_CHECKING:
    from flank_ops.paths import ProjectPaths
    from flank_ops.store.model import RunRecord
from flank_ops import jsonout
from flank_ops.exit_codes import ExitCode
from flank_ops.finish.run_steps import RUN_STEPS
from flank_ops.paths import Home
from flank_ops.run import cancel
from flank_ops.run.cancel import NothingToCancel
from flank_ops.schedule.backfill import cancel_backfill
from flank_ops.task.task_exec import DEFAULT_KILL_GRACE_S

EXIT_NOTHING_TO_CANCEL = ExitCode.NOTHING_TO_CANCEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(
        parser,
        "[RUN_ID]",
        help="RUN_ID: a run id (default: the run executing now)",
        local_help="a run of the current working copy (.flank/)",
    )
    parser.add_argument("--no-wait", action="store_true", help="ask the run to stop and return at once")
    parser.add_argument("--json", action="store_true", help=FLAG_HELP)
    parser.add_argument("--backfill", metavar="ID", help="stop a backfill as a whole: its running run, and no more")


def _split(args: argparse.Namespace) -> tuple[TargetArgs, int | None]:
    target = parse_target(args, "cancel", "[RUN_ID]", most=1)
    run_id = None
    if target.rest:
        text = target.rest[0].lstrip("#")
        if not text.isdigit():
            raise UserError(f"{text!r} is not a run id", target.usage)
        run_id = int(text)
    return target, run_id


def run(args: argparse.Namespace) -> int:
    named, run_id = _split(args)
    pipeline = named.pipeline
    paths = named.paths()
    if args.backfill:
        return _cancel_backfill(named.project, pipeline, args.backfill)
    try:
        cancel.check_pipeline(paths, pipeline)
    except cancel.NothingToCancel as exc:
        return _nothing(args, str(exc))
    if run_id is not None:  # issue 26: an interrupted run's jobs left on a cluster
        left = cancel.cancel_left_jobs(paths, pipeline, run_id, getpass.getuser())
        if left is not None:
            return _left_jobs_cancelled(args, paths, *left)
    try:
        target = cancel.find_target(paths, pipeline, run_id)
        cancel.request(target, getpass.getuser())
    except cancel.NothingToCancel as exc:
        return _nothing(args, str(exc))
    name = f"{pipeline} #{target.record.run_id}"
    if args.no_wait:
        if args.json:
            _emit_json(target.record, stopping=True)
        else:
            print(f"flank: asked {name} to stop")
        return 0
    if args.json:
        record = cancel.wait_until_finished(target, DEFAULT_KILL_GRACE_S)
        _emit_json(record, stopping=record.status == RunStatus.RUNNING)
        if record.status == RunStatus.RUNNING:
            return 1
        return 0 if record.status == RunStatus.CANCELLED else EXIT_NOTHING_TO_CANCEL
    print(f"flank: stopping {name} …", flush=True)
    record = cancel.wait_until_finished(target, DEFAULT_KILL_GRACE_S)
    status = record.status
    if status == RunStatus.RUNNING:
        see = flank_command("status", None if paths.local else paths.name)
        print(f"flank: {name} is still stopping; see: {see}", file=sys.stderr)
        return 1
    stopped = [n for n, t in record.tasks.items() if t.status == TaskStatus.CANCELLED]
    detail = f" ({len(stopped)} task{'s' if len(stopped) != 1 else ''} stopped)" if stopped else ""
    if status == RunStatus.CANCELLED:
        print(f"flank: {name} cancelled{detail}")
        return 0
    print(f"flank: nothing to cancel: {name} had already ended ({status})", file=sys.stderr)
    return EXIT_NOTHING_TO_CANCEL


def _left_jobs_cancelled(args: argparse.Namespace, paths: ProjectPaths, record: RunRecord, jobs: list[str]) -> int:
    """The interrupted run's left jobs are cancelled and the run recorded cancelled: its pages say so."""
    try:
        RUN_STEPS.interrupted(paths, record.pipeline, [record.run_id])  # redraws the run's pages
    except Exception as exc:  # noqa: BLE001 - the cancel is done; a broken site must not hide it
        print(f"flank: could not redraw the run's page: {exc}", file=sys.stderr)
    if args.json:
        _emit_json(record, stopping=False)
    else:
        count = f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}"
        print(
            f"flank: {record.pipeline} #{record.run_id} cancelled ({count} it left running cancelled: {', '.join(jobs)})"
        )
    return 0


def _nothing(args: argparse.Namespace, why: str) -> int:
    """Nothing to cancel: said (as a JSON error with --json), exit 3."""
    if args.json:
        jsonout.emit_error(f"nothing to cancel: {why}", None)
    else:
        print(f"flank: nothing to cancel: {why}", file=sys.stderr)
    return EXIT_NOTHING_TO_CANCEL


def _emit_json(record: RunRecord, *, stopping: bool) -> None:
    """`flank cancel --json`: the run's record as the cancel left it; `stopping` while it still goes."""
    stopped = [n for n, t in record.tasks.items() if t.status == TaskStatus.CANCELLED]
    jsonout.emit(
        "cancel",
        project=record.project,
        pipeline=record.pipeline,
        run_id=record.run_id,
        stopping=stopping,
        stopped_tasks=stopped,
        run=jsonout.record(record),
    )


def _cancel_backfill(project: str | None, pipeline: str, backfill_id: str) -> int:
    """issue 23: `flank cancel PROJECT PIPELINE --backfill ID` (schedule/backfill.py)."""
    if project is None:
        raise UserError("--backfill goes with a project on this VM", "flank cancel PROJECT PIPELINE --backfill ID")
    paths = Home().project(project).require()
    try:
        state = cancel_backfill(paths, pipeline, backfill_id)
    except NothingToCancel as exc:
        print(f"flank: nothing to cancel: {exc}", file=sys.stderr)
        return EXIT_NOTHING_TO_CANCEL
    runs = state.get("runs") or {}
    left = len(state.get("minutes") or []) - len(runs)
    print(f"flank: backfill {backfill_id} {state['status']} ({len(runs)} runs started, {left} not started)")
    return 0 if state["status"] != "running" else 1
