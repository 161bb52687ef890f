"""flank logs PROJECT PIPELINE [RUN] [TASK] [--follow]

Without RUN: the last run. Without TASK: the run's tasks with their statuses and
log files, then the log of the first task that failed (if any). --follow prints the
output as it is written until the task (without TASK: the whole run, each line
prefixed with its task) ends. Logs are printed
as stored (bytes, not decoded), so a task's non-UTF-8 output comes through intact.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flank_ops import jsonout
from flank_ops.commands.target import TargetArgs, add_target_arguments, parse_target
from flank_ops.config.suggest import choices_hint
from flank_ops.errors import UserError
from flank_ops.finish.reconcile import reconcile
from flank_ops.git.release_config import deployed_config, known_pipelines
from flank_ops.hints import flank_command, via_remote
from flank_ops.humanize import MEDIUM, clock
from flank_ops.humanize import duration as format_duration
from flank_ops.jsonout import FLAG_HELP
from flank_ops.paths import ProjectPaths
from flank_ops.run.follow import follow
from flank_ops.settings import settings_for, site_url
from flank_ops.site.layout import absolute_url, url_raw_log
from flank_ops.store import records
from flank_ops.store.model import FAILED_TASK_STATUSES

if TYPE_CHECKING:
    from flank_ops.paths import ProjectPaths
    from flank_ops.store.model import RunRecord


LOGS_AFTER = "[RUN] [TASK]"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(
        parser,
        LOGS_AFTER,
        help="RUN is a run id (default: the last run); TASK a task name",
        local_help="the runs of the current working copy (.flank/)",
    )
    parser.add_argument("--json", action="store_true", help=FLAG_HELP + "; the run's and tasks' metadata, no log")
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="print the output as it is written, until the task (or, without TASK, the run) ends; "
        "exits 0 when it succeeded, 1 otherwise",
    )


def _split(args: argparse.Namespace) -> tuple[TargetArgs, int | None, str | None]:
    target = parse_target(args, "logs", LOGS_AFTER, most=2)
    names = list(target.rest)
    run_id = None
    if names and names[0].lstrip("#").isdigit():
        run_id = int(names.pop(0).lstrip("#"))
    task = names.pop(0) if names else None
    if names:
        raise UserError(f"unexpected {' '.join(names)!r}", target.usage)
    return target, run_id, task


def _print_file(path: Path) -> None:
    sys.stdout.flush()
    with open(path, "rb") as f:
        shutil.copyfileobj(f, sys.stdout.buffer)
    sys.stdout.buffer.flush()


def _where(paths: ProjectPaths, record: RunRecord, run_dir: Path, task: str) -> str | None:
    """Where task's log is, as the reader can use it: the file on the VM (or in the working copy);
    through `flank remote`, whose reader is on the laptop, the command that prints it there.
    None: the task has no log."""
    log = records.task_log_file(run_dir, task, record.tasks[task])
    if not log.exists():
        return None
    if via_remote() is None:
        return str(log)
    return flank_command("logs", None if paths.local else paths.name, record.pipeline, str(record.run_id), task)


def _task_table(paths: ProjectPaths, record: RunRecord, run_dir: Path, tz: str | None = None) -> str:
    started = f" — started {clock(record.started_at, tz, MEDIUM)}" if record.started_at else ""
    lines = [f"{record.pipeline} #{record.run_id} {record.status}{started} — {record.summary or ''}".rstrip(" —")]
    width = max((len(n) for n in record.tasks), default=4)
    for name, t in record.tasks.items():
        took = format_duration(t.duration_s) if t.duration_s is not None else ""
        at = clock(t.started_at, tz, "%H:%M:%S") if t.started_at else ""
        where = _where(paths, record, run_dir, name) or "(no log)"
        lines.append(f"  {name:<{width}}  {t.status:<15} {at:>12} {took:>7}  {where}")
    return "\n".join(lines)


def _timezone(paths: ProjectPaths, pipeline: str) -> str | None:
    """The pipeline's `timezone:` in the deployed flank.yml (None: the VM's zone, also when unreadable)."""
    try:
        config = deployed_config(paths)
    except Exception:  # noqa: BLE001 - a broken flank.yml must not hide the logs
        return None
    found = config.pipelines.get(pipeline) if config is not None else None
    return found.timezone if found else None


def run(args: argparse.Namespace) -> int:
    target, run_id, task = _split(args)
    pipeline = target.pipeline
    paths = target.paths()
    last = records.last_run_id(paths, pipeline)
    if last is None:
        known = known_pipelines(paths)
        if pipeline in known:
            raise UserError(
                f"pipeline {pipeline!r} has not run yet",
                f"start it with: {flank_command('run', None if paths.local else paths.name, pipeline)}",
            )
        raise UserError(
            f"no pipeline {pipeline!r} in project {paths.name!r}", choices_hint(pipeline, known, "pipelines")
        )
    reconcile(paths, pipeline)
    run_id = (records.last_run(paths, pipeline) or last) if run_id is None else run_id
    if not paths.run_dir(pipeline, run_id).is_dir():
        ids = records.list_run_ids(paths, pipeline)  # only to say which there are
        hint = f"runs go from #{ids[0]} to #{ids[-1]}" if ids else f"{pipeline} has no runs left"
        raise UserError(f"no run #{run_id} of {pipeline}", hint)
    run_dir = paths.run_dir(pipeline, run_id)
    try:
        record = records.read_record(run_dir)
    except (OSError, ValueError):
        raise UserError(f"{pipeline} #{run_id} has no readable record yet", f"look in {run_dir}") from None

    if task is not None and task not in record.tasks:
        raise UserError(f"no task {task!r} in {pipeline} #{run_id}", choices_hint(task, list(record.tasks), "tasks"))
    if args.json:
        if args.follow:
            raise UserError("--follow prints the log itself, not JSON", "drop --json, or --follow")
        _emit_json(paths, record, run_dir, task)
        return 0
    if args.follow:
        return _follow(paths, pipeline, run_id, task)
    if task is None:
        print(_task_table(paths, record, run_dir, _timezone(paths, pipeline)))
        failed = [n for n, t in record.tasks.items() if t.status in FAILED_TASK_STATUSES]
        if failed and records.task_log_path(run_dir, failed[0]).exists():
            where = _where(paths, record, run_dir, failed[0]) or records.task_log_path(run_dir, failed[0])
            print(f"\n--- log of {failed[0]} ({where}) ---")
            _print_file(records.task_log_path(run_dir, failed[0]))
        return 0
    log = records.task_log_file(run_dir, task, record.tasks[task])
    if not log.exists():
        status = record.tasks[task].status
        raise UserError(
            f"{task} has no log in {pipeline} #{run_id} (it is {status})",
            "tasks that never started (skipped, upstream_failed) have no log",
        )
    _print_file(log)
    return 0


def _emit_json(paths: ProjectPaths, record: RunRecord, run_dir: Path, task: str | None) -> None:
    """`flank logs --json`: the run's record and where each task's log is (null: it has none), as
    the reader can open it: here, its file; through `flank remote` (the laptop, the R package), the
    file's address on the status site (`logs_are` says which)."""
    base = None if via_remote() is None else site_url(settings_for(paths.home, paths.name))
    logs: dict[str, str | None] = {}
    for name, entry in record.tasks.items():
        path = records.task_log_file(run_dir, name, entry)
        if not path.exists():
            logs[name] = None
        elif base is None:
            logs[name] = str(path)
        else:
            logs[name] = absolute_url(base, url_raw_log(paths.name, record.pipeline, record.run_id, name))
    logs_are = "files" if base is None else "urls"
    jsonout.emit("logs", run=jsonout.record(record), task=task, logs=logs, logs_are=logs_are)


def _follow(paths: Any, pipeline: str, run_id: int, task: str | None) -> int:
    """Print as it comes; the last line (stderr) says how the task or run ended."""
    sys.stdout.flush()
    record = follow(paths, pipeline, run_id, task, sys.stdout.buffer)
    if task is None:
        print(f"flank: {pipeline} #{run_id} {record.status} — {record.summary or ''}".rstrip(" —"), file=sys.stderr)
        return 0 if record.status == "success" else 1
    entry = record.tasks[task]
    detail = f" (exit {entry.exit_code})" if entry.exit_code is not None else ""
    print(f"flank: {task} {entry.status}{detail}", file=sys.stderr)
    return 0 if entry.ok else 1
