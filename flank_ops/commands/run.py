"""flank run PROJECT PIPELINE [--task T | --from T | --rerun RUN_ID] [--force | --force-task T] [--detach]
          [-p NAME=VALUE ...]
   flank run PROJECT PIPELINE --resume RUN_ID   (go on with an interrupted run: re-attach to its cluster jobs)
   flank run --local PIPELINE ...   (a laptop working copy; records under .flank/)

Exits 0 only when the run succeeded, so cron mail and shell scripts can tell.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from flank_ops import jsonout
from flank_ops.commands.target import add_param_option, add_target_arguments, parse_target
from flank_ops.config.params import split_assignments
from flank_ops.deploy.setup import local_setup
from flank_ops.errors import UserError
from flank_ops.finish.run_steps import RUN_STEPS
from flank_ops.hints import flank_command
from flank_ops.jsonout import FLAG_HELP
from flank_ops.notify.message import log_tail
from flank_ops.paths import Home, ProjectPaths
from flank_ops.run import runner
from flank_ops.run.launch import start_detached_reporting
from flank_ops.run.runner import RunRequest, find_working_copy
from flank_ops.schedule.due import floor_minute, is_due, scheduled_at
from flank_ops.site.layout import run_page_url
from flank_ops.store import records
from flank_ops.store.model import (
    FAILED_TASK_STATUSES,
    SCHEDULED_TRIGGERS,
    RunRecord,
    RunStatus,
    RunTrigger,
    via_of_trigger,
)
from flank_ops.task.secrets import load_secrets

if TYPE_CHECKING:
    from datetime import datetime

    from flank_ops.run.runner import Deployed, RunRequest
    from flank_ops.store.model import RunRecord


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser, local_help="run in the current working copy (records and site under .flank/)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--task", metavar="T", help="run just task T")
    which.add_argument("--from", dest="from_task", metavar="T", help="run T and everything downstream of it")
    which.add_argument("--rerun", metavar="RUN_ID", help="re-run what failed or did not run in that run")
    which.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="go on with that interrupted run: re-attach to its jobs still on a cluster, run what is left, finish it",
    )
    parser.add_argument("--force", action="store_true", help="run every task, even those up to date")
    parser.add_argument(
        "--force-task",
        action="append",
        default=[],
        metavar="T",
        help="run task T even if it is up to date (repeatable)",
    )
    parser.add_argument("--detach", action="store_true", help="start in the background and return at once")
    parser.add_argument("--json", action="store_true", help=FLAG_HELP + "; with --detach: the run id and page URL")
    add_param_option(parser)
    parser.add_argument("--backfill", help=argparse.SUPPRESS)  # set by `flank backfill` for its runs
    parser.add_argument("--alongside", action="store_true", help=argparse.SUPPRESS)  # backfill --parallel
    parser.add_argument(
        "--trigger",
        choices=[t.value for t in RunTrigger if t != RunTrigger.RERUN],  # --rerun RUN_ID makes a rerun
        default=RunTrigger.MANUAL.value,
        help="what started this run (cron and hooks set it)",
    )
    parser.add_argument(
        "--if-due", metavar="CRON", help="run only if CRON is due now in the pipeline's timezone (cron lines use it)"
    )
    parser.add_argument(
        "--scheduled-at",
        metavar="ISO",
        help="with --trigger schedule or catchup: the minute the run stands for, given to tasks as "
        "FLANK_SCHEDULED_AT (default: this minute; `flank scheduler` sets it)",
    )
    parser.add_argument("--report-fd", type=int, help=argparse.SUPPRESS)
    # Who started it, from where (the run record's triggered_by): `flank serve --actions` sets them.
    parser.add_argument("--by", help=argparse.SUPPRESS)
    parser.add_argument("--via", choices=("web", "cli", "remote", "schedule", "push"), help=argparse.SUPPRESS)


def _request(args: argparse.Namespace) -> RunRequest:
    target = parse_target(args, "run")
    rerun = _run_id_option(args.rerun, "--rerun", target.project)
    resume = _run_id_option(args.resume, "--resume", target.project)
    if resume is not None and (args.force or args.force_task or args.params):
        raise UserError("--resume goes on with the run as it was", "leave out --force, --force-task and -p")
    return RunRequest(
        pipeline=target.pipeline,
        project=target.project,
        trigger=args.trigger,
        task=args.task,
        from_task=args.from_task,
        rerun=rerun,
        scheduled_at=args.scheduled_at,
        local_dir=target.local_dir,
        force=args.force,
        force_tasks=tuple(args.force_task),
        triggered_by=_triggered_by(args),
        params=split_assignments(args.params),
        backfill=args.backfill,
        alongside=args.alongside,
        resume=resume,
    )


def _run_id_option(value: str | None, option: str, project: str | None) -> int | None:
    if value is None:
        return None
    raw = value.lstrip("#")
    if not raw.isdigit():
        raise UserError(
            f"{option} takes a run id (a number), not {value!r}",
            f"see the ids with: {flank_command('status', project)}",
        )
    return int(raw)


def _triggered_by(args: argparse.Namespace) -> dict[str, str]:
    """Who started the run and from where: --by/--via when given (the site's Run button), else this
    user and what the trigger says (`flank remote` is `flank run` over ssh without a terminal)."""

    via = args.via or via_of_trigger(args.trigger)
    if via == "cli" and os.environ.get("SSH_CONNECTION") and not os.environ.get("SSH_TTY"):
        via = "remote"
    return {"user": args.by or getpass.getuser(), "via": via}


def _scheduled_minute(args: argparse.Namespace) -> datetime:
    """The minute a scheduled run stands for (aware): --scheduled-at, else the minute it was started in."""

    if args.scheduled_at is None:
        return floor_minute(None)
    try:
        return floor_minute(datetime.fromisoformat(args.scheduled_at))
    except ValueError:
        raise UserError(
            f"--scheduled-at {args.scheduled_at!r} is not an ISO date and time", "write it like 2026-11-24T02:00+01:00"
        ) from None


def _options(args: argparse.Namespace) -> list[str]:
    options = ["--trigger", args.trigger, *_chosen_options(args)]
    if args.backfill:
        options += ["--backfill", args.backfill]
    if args.alongside:
        options.append("--alongside")
    by = _triggered_by(args)  # the detached run records who asked here
    return [*options, "--by", by["user"], "--via", by["via"]]


def _typed_options(args: argparse.Namespace) -> list[str]:
    """The options a person gave for this run, as they typed them (a hint repeats the run they asked for)."""
    trigger = [] if args.trigger == RunTrigger.MANUAL.value else ["--trigger", args.trigger]
    return [*trigger, *_chosen_options(args)]


def _chosen_options(args: argparse.Namespace) -> list[str]:
    """What the run does (tasks, force, params, minute), as options of `flank run`."""
    options: list[str] = []
    if args.task:
        options += ["--task", args.task]
    if args.from_task:
        options += ["--from", args.from_task]
    if args.rerun:
        options += ["--rerun", args.rerun]
    if args.resume:
        options += ["--resume", args.resume]
    if args.scheduled_at:
        options += ["--scheduled-at", args.scheduled_at]
    if args.force:
        options.append("--force")
    for task in args.force_task:
        options += ["--force-task", task]
    for assignment in args.params:
        options += ["-p", assignment]
    return options


def run(args: argparse.Namespace) -> int:
    request = _request(args)
    deployed: Deployed | None = None  # resolved once (each resolve costs git calls): issue 22
    if request.local_dir is not None:  # issue 28 item 9: setup: runs locally too, as a push runs it
        deployed = runner.resolve_deployed(None, request.local_dir)
        local_setup(deployed.paths, deployed.release_dir, deployed.config)
    scheduled = args.trigger in SCHEDULED_TRIGGERS
    if args.scheduled_at is not None and not scheduled:
        raise UserError(
            "--scheduled-at goes with --trigger schedule (or catchup)", "a manual run stands for no scheduled minute"
        )
    if args.if_due or args.detach or scheduled:
        deployed = deployed or runner.resolve_deployed(request.project, request.local_dir)
        pipeline = runner.find_pipeline(deployed.config, request.pipeline, deployed.paths)
        minute = _scheduled_minute(args)  # the minute cron (or `flank scheduler`) fired for
        if args.if_due and not is_due(pipeline, args.if_due, minute):
            return 0
        if scheduled:
            request = request._replace(scheduled_at=scheduled_at(pipeline, minute))
            args.scheduled_at = request.scheduled_at  # a detached run stands for the same minute
        if args.detach:
            # Validate the selection here, where the user can still see the message.
            try:
                if request.resume is not None:
                    runner.resumable(deployed.paths, pipeline.name, request.resume)
                else:
                    runner.select_tasks(deployed.paths, pipeline, request)
                    runner.check_force_tasks(pipeline, request.force_tasks)
                    runner.run_params(deployed.paths, pipeline, request)
            except runner.NothingToRerun as nothing:
                _nothing_to_run(args, request, nothing.message)
                return 0
            return _detach(request, deployed, args)

    def report_run_id(run_id: int) -> None:
        try:
            os.write(args.report_fd, f"{run_id}\n".encode())
            os.close(args.report_fd)
        except OSError:
            pass

    report: Callable[[int], None] | None = report_run_id if args.report_fd is not None else None
    try:
        # --json: the task lines go to stderr, so stdout holds the answer alone
        out = sys.stderr if args.json else sys.stdout
        outcome = runner.run_pipeline(request, steps=RUN_STEPS, on_run_id=report, out=out, deployed=deployed)
    except runner.NothingToRerun as nothing:
        _nothing_to_run(args, request, nothing.message)
        return 0
    record = outcome.record
    if record.status == RunStatus.SKIPPED:
        raise UserError(
            f"{record.pipeline} #{record.run_id} skipped: {record.skipped_reason}",
            "the trigger is recorded as skipped; set 'overlap: queue' to wait instead",
        )
    if args.json:
        url = _page_url(request.project, record) if request.project is not None else None
        jsonout.emit(
            "run",
            project=record.project,
            pipeline=record.pipeline,
            run_id=record.run_id,
            url=url,
            detached=False,
            run=jsonout.record(record),
            message=None,
        )
        return outcome.exit_code
    print(f"flank: {runner.run_line(record)}")
    _print_where(record, request)
    return outcome.exit_code


def _nothing_to_run(args: argparse.Namespace, request: RunRequest, message: str) -> None:
    """--rerun of a run with nothing left to rerun: said, and no run started (exit 0)."""
    if not args.json:
        print(f"flank: {message}")
        return
    project = request.project
    jsonout.emit(
        "run",
        project=project,
        pipeline=request.pipeline,
        run_id=None,
        url=None,
        detached=False,
        run=None,
        message=message,
    )


# At most this many last lines of a failed task's log are printed under the run's line (issue 28
# item 6: the terminal says why a task failed, as GitHub Actions and dagu do).
FAILED_TAIL_LINES = 15


def _print_where(record: RunRecord, request: RunRequest) -> None:
    bad = [n for n, t in record.tasks.items() if t.status in FAILED_TASK_STATUSES]
    logged = [n for n in bad if "did not start" not in (record.tasks[n].error or "")]
    project, pipeline, run_id = request.project, record.pipeline, str(record.run_id)
    if logged:
        _print_failed_tail(record, request, logged[0])
        print(f"  log:  {flank_command('logs', project, pipeline, run_id, logged[0])}")
    if bad:
        print(f"  rerun the failures: {flank_command('run', project, pipeline, '--rerun', run_id)}")
    if request.project is not None:
        url = _page_url(request.project, record)
        if url:
            print(f"  page: {url}")


def _print_failed_tail(record: RunRecord, request: RunRequest, task: str) -> None:
    """The failed task's last lines (secrets masked, colours removed), indented under the run's line."""
    if request.project is not None:
        paths = Home().project(request.project)
    else:
        paths = ProjectPaths.for_local(find_working_copy(request.local_dir or Path.cwd()))
    try:
        secrets = load_secrets(paths)
    except (OSError, UserError):
        secrets = {}
    run_dir = paths.run_dir(record.pipeline, record.run_id)
    lines = log_tail(records.task_log_file(run_dir, task, record.tasks[task]), FAILED_TAIL_LINES, secrets)
    if lines:
        print(f"  {task}, last {len(lines)} line{'s' if len(lines) > 1 else ''} of its log:")
        for line in lines:
            print(f"    | {line}")


def _page_url(project: str, record: RunRecord) -> str | None:
    """The run's page on the status site (None when flank.toml is broken: already reported)."""
    return run_page_url(Home(), project, record.pipeline, record.run_id)


def _detach(request: RunRequest, deployed: Deployed, args: argparse.Namespace) -> int:
    run_id = start_detached_reporting(request.project, request.pipeline, _options(args), cwd=request.local_dir)
    if run_id is None:
        raise UserError(
            "the background run did not start",
            "run it in the foreground to see why: "
            + flank_command("run", request.project, request.pipeline, *_typed_options(args)),
        )
    url = None
    if request.project is not None:
        url = _page_url(request.project, RunRecord(request.project, request.pipeline, run_id))
    if args.json:
        jsonout.emit(
            "run",
            project=request.project,
            pipeline=request.pipeline,
            run_id=run_id,
            url=url,
            detached=True,
            run=None,
            message=None,
        )
        return 0
    print(f"flank: {request.pipeline} #{run_id} started in the background")
    if url:
        print(f"  page: {url}")
    print(f"  follow it: {flank_command('logs', request.project, request.pipeline, str(run_id), '--follow')}")
    return 0
