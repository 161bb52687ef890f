"""Cancelling a run: `flank cancel` asks, the runner stops its tasks and records `cancelled`.

The request is a file (`runs/<p>/<id>/cancel`) written before the runner gets SIGTERM, so
the runner can tell a cancel from any other stop (a shutdown, a kill: those stay
`interrupted`). The runner stops make, make passes SIGTERM to each task launcher, and each
launcher stops its task's whole process tree: SIGTERM, then SIGKILL after the task's grace
period (5 s). A run still waiting its turn under `overlap: queue` is cancelled only when named
by its id: `flank cancel PROJECT PIPELINE` stops the run that is executing, never the queue.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import NamedTuple

from flank_ops.config.suggest import choices_hint
from flank_ops.errors import UserError
from flank_ops.executors import cleanup
from flank_ops.executors.cleanup import dead_run_hook
from flank_ops.fileio import atomic_write_text, locked
from flank_ops.git.release_config import known_pipelines
from flank_ops.hints import flank_command
from flank_ops.paths import ProjectPaths
from flank_ops.store import records
from flank_ops.store.model import RunRecord, RunStatus, TaskStatus, summarize

CANCEL_LOCK = ".cancel.lock"
WAIT_MARGIN_S = 30.0  # beyond the tasks' grace period: make and the runner finishing the record


def deciding(run_dir: Path) -> contextlib.AbstractContextManager[bool]:
    """Held by a cancel while it checks the record, leaves its request and signals the runner,
    and by the runner while it decides and writes the final record: a cancel either finds the
    record final, or the runner finds the request (never a "stopping …" answered by a success)."""
    return locked(run_dir / CANCEL_LOCK)


class Target(NamedTuple):
    run_dir: Path
    record: RunRecord


def find_target(paths: ProjectPaths, pipeline: str, run_id: int | None) -> Target:
    """The run to cancel: `run_id`, or the one executing now. Raises NothingToCancel."""
    records.reconcile(paths, pipeline, on_interrupted=dead_run_hook(paths))
    running = records.find_running(paths, pipeline)
    if run_id is not None:
        match = next((r for r in running if r.run_id == run_id), None)
        if match is None:
            run_dir = paths.run_dir(pipeline, run_id)
            try:
                found = records.read_record(run_dir)
            except (OSError, ValueError):
                raise UserError(
                    f"no run #{run_id} of {pipeline}",
                    f"see the runs with: {flank_command('status', None if paths.local else paths.name)}",
                ) from None
            found = records.current(run_dir, found, names=[])
            if found.status == RunStatus.RUNNING and found.runner is not None:
                return Target(run_dir, found)  # so new that the pipeline's state does not list it yet
            if records.runner_gone(found) or found.status == RunStatus.RUNNING:  # no live runner works on it
                raise NothingToCancel(
                    f"{pipeline} #{run_id} is not running (its record says running, but no runner has it)"
                )
            raise NothingToCancel(f"{pipeline} #{run_id} is not running (it {_ended_as(found.status)})")
        return Target(paths.run_dir(pipeline, run_id), match)
    executing = [r for r in running if r.waiting_for is None]
    if not executing:
        queued = [f"#{r.run_id}" for r in running]
        more = f" ({', '.join(queued)} queued: name one to cancel it)" if queued else ""
        raise NothingToCancel(f"no run of {pipeline} is running{more}")
    newest = max(executing, key=lambda r: r.run_id)
    return Target(paths.run_dir(pipeline, newest.run_id), newest)


def _ended_as(status: RunStatus) -> str:
    return {
        RunStatus.SUCCESS: "succeeded",
        RunStatus.FAILED: "failed",
        RunStatus.INTERRUPTED: "was interrupted",
        RunStatus.SKIPPED: "was skipped",
        RunStatus.CANCELLED: "was cancelled",
    }.get(status, f"is {status}")


class NothingToCancel(Exception):
    """Not an error of the user's: the run is not (or no longer) running."""


def check_pipeline(paths: ProjectPaths, pipeline: str) -> None:
    """A pipeline with no runs: NothingToCancel when it exists ("has not run yet"), else the UserError
    naming the pipelines there are (`flank cancel` and the site's Cancel say the same)."""
    if paths.runs_dir(pipeline).is_dir():
        return
    known = known_pipelines(paths)
    if pipeline in known:
        raise NothingToCancel(f"{pipeline} has not run yet")
    raise UserError(f"no pipeline {pipeline!r} in project {paths.name!r}", choices_hint(pipeline, known, "pipelines"))


def request(target: Target, who: str) -> None:
    """Leave the cancel request, then SIGTERM the runner (checked to be the run's own runner)."""
    name = f"{target.record.pipeline} #{target.record.run_id}"
    with deciding(target.run_dir):
        try:
            record = records.current(target.run_dir, names=[])
        except (OSError, ValueError):
            record = records.current(target.run_dir, target.record, names=[])
        runner = record.runner
        if records.runner_gone(record) or runner is None or runner.pid is None:
            raise NothingToCancel(f"{name} is not running any more")
        if record.status != RunStatus.RUNNING:
            raise NothingToCancel(f"{name} had already ended ({record.status})")
        atomic_write_text(records.cancel_request_path(target.run_dir), f"{who} {records.now_iso()}\n")
        try:
            # signalled under the lock: the runner gets it before it can write its final record
            os.kill(runner.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it died between the check and the signal: reconcile records it interrupted
        except PermissionError:
            records.cancel_request_path(target.run_dir).unlink(missing_ok=True)
            raise UserError(
                f"{name} runs as another user (pid {runner.pid})",
                "run flank cancel as the user that runs the pipelines",
            ) from None


def wait_until_finished(target: Target, grace_s: float) -> RunRecord:
    """The run's final record, once the runner wrote it (or the runner is gone)."""
    deadline = time.monotonic() + grace_s + WAIT_MARGIN_S
    while True:
        try:
            record = records.current(target.run_dir, names=[])
        except (OSError, ValueError):
            record = target.record
        if record.status != RunStatus.RUNNING or time.monotonic() > deadline:
            return record  # ended, or its runner is gone (records.current: "interrupted")
        time.sleep(0.1)


def cancel_left_jobs(paths: ProjectPaths, pipeline: str, run_id: int, who: str) -> tuple[RunRecord, list[str]] | None:
    """issue 26: `flank cancel PROJECT PIPELINE N` of an interrupted run whose jobs were left running on a
    cluster (for `flank run --resume N`): the jobs are cancelled, what they left cleaned up (environment
    files, secrets in raw outputs), and the run is recorded cancelled (its stopped tasks too).
    -> (the record, the cancelled job ids); None when run N is not such a run."""
    records.reconcile(paths, pipeline, on_interrupted=dead_run_hook(paths))
    run_dir = paths.run_dir(pipeline, run_id)
    try:
        record = records.read_record(run_dir)
    except (OSError, ValueError):
        return None
    if record.status != RunStatus.INTERRUPTED or not cleanup.live_jobs(run_dir, record):
        return None
    from flank_ops.store.reopen import replace_final
    from flank_ops.task.secrets import load_secrets

    try:
        secrets = load_secrets(paths)
    except (UserError, OSError):
        secrets = {}
    with deciding(run_dir):
        cancelled = cleanup.cancel_jobs_of_run(run_dir, record, secrets)
        for entry in record.tasks.values():
            if entry.status == TaskStatus.INTERRUPTED:
                entry.status = TaskStatus.CANCELLED
        record.status = RunStatus.CANCELLED
        jobs = f"{len(cancelled)} job{'s' if len(cancelled) != 1 else ''}"
        record.summary = f"cancelled by {who} after its runner stopped ({jobs} cancelled); {summarize(record)}"
        replace_final(paths, run_dir, record)
    return record, cancelled
