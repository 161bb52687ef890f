"""The run record: the one definition of what a run leaves on disk.

    runs/<pipeline>/
      last_id                 the last run id handed out (ids are sequential per pipeline)
      history.jsonl           one summary line per finished run, appended (the site's index)
      state.json              what each run needs of the runs before it (run/state.py): running
                              runs, last finished, last success, last full run; a cache of the
                              two above, rebuilt from them when missing, damaged or stale
      <run-id>/
        run.json              the run record (below), replaced atomically, readable mid-run
        .reserve              disk space held while the run goes, freed to write its final record
        tasks/<task>.json     per-task results written by the task launcher as tasks go
        logs/<task>.log       each task's stdout+stderr, as produced (secrets masked)
        logs/<task>.log.times when each attempt and line of the log began (run/task_exec.py says how)
        cancel                present once `flank cancel` asked the run to stop (run/cancel.py)
        artifacts/<task>/<path>  files the task's `artifacts:` matched, kept when it ended (run/artifacts.py)
        artifacts.sources.json   what each kept file was kept from (lets the next run link an unchanged one)

run.json (format 1), plain JSON a person can read:
    {
      "format": 1,
      "project": "demo", "pipeline": "nightly", "run_id": 17,
      "trigger": "schedule" | "push" | "manual" | "rerun" | "catchup" | "backfill",   # RunTrigger
      "triggered_by": {"user": "ada", "via": "web"},   # who started it, and from where (VIA below)
      "status": "running" | "success" | "failed" | "interrupted" | "skipped" | "cancelled",
      "commit": {"sha": "...", "short": "3f2a1c0", "message": "...", "author": "...", "date": "..."},
      "release": "/abs/path/releases/<sha>",
      "started_at": "2026-11-24T02:00:00.000+00:00", "ended_at": null | "...",
      "duration_s": null | 872.4,
      "runner": {"pid": 1234, "host": "vm", "boot_id": "...", "pid_start": 123456},
      "selection": {"task": null, "from": null, "rerun_of": null},
      "selected_tasks": ["extract", ...],   # what the selection chose (all tasks for a full run)
      "scheduled_at": null | "2026-11-24T02:00:00+01:00",   # the minute a scheduled run stands for
      "timezone": null | "Europe/London",   # the pipeline's; its times are shown in it (null: the VM's)
      "concurrency": 2,
      "tasks": {            # topological order
        "extract": {"status": "success", "needs": [], "attempts": 1,
                    "started_at": "...", "ended_at": "...", "duration_s": 1.2,
                    "exit_code": 0, "peak_rss_kb": 51234, "log": "logs/extract.log", "cpu_s": 1.1},
        ...
      },
      "waiting_for": 16,   # only while it waits for that run (overlap: queue)
      "skipped_reason": null | "nightly #16 was still running (overlap: skip)",
      "after_run": {"note": "ok" | "error: ...", "site": ..., "s3": ..., "notify": ..., "ping": ..., "vm_size": ...},
      "summary": "3/4 ok; model failed (exit 1, 3 attempts)",
      "error": "disk full: ..."    # only when flank itself could not run or record the run
      "params": {"day": "2026-11-01", "n": 3}, "non_default_params": ["n"],   # only with params: (issue 23)
      "backfill": "20261206T103900-1"   # only for a run of `flank backfill` (schedule/backfill.py)
    }

A run is *partial* when its selection has any of task/from/rerun_of set; its history
line says so ("partial", and "selected" of "total" tasks), so a partial success is
never mistaken for the whole pipeline's.

Statuses are the StrEnums below, `RunStatus` and `TaskStatus` (the one list of them):
tasks are pending, queued, running, success, up_to_date, failed, timed_out, upstream_failed,
skipped, interrupted or cancelled. "skipped" = not selected by --task/--from/--rerun;
"up_to_date" = not run because nothing it depends on changed (done, not a failure);
"queued" = a remote job waiting for its cluster; "interrupted" = it was running when the runner
died; "cancelled" = running or waiting when `flank cancel` stopped the run. A "skipped" run
records a trigger refused by `overlap: skip` (the spec's run statuses plus this one, so skips
are recorded, not silent).

A task entry always has the keys shown above; these only when set:
    "cpu_s": 1.1                  CPU time (user + system) the launcher measured
    "error": "..."                why flank itself (not the task) has no result for it
    "reason": "ran: R/model.R changed" | "up_to_date" | ...        why it ran or not (issue 12)
    "executor": {"kind": "slurm"|"batch", "job_id", "queue", "host", "state", "max_rss_kb"}
    "memory_mb": 4096, "cpus": 2  the resources it declared (issue 14)
    "artifacts": [{"path", "size", "kept", "note"}], "artifact_warnings": ["..."]  (issue 11)
A launcher's tasks/<task>.json carries the same keys plus its own bookkeeping ("task",
"attempt", "pid"); every other key of it reaches run.json (`merge_task_results`), and a key this
version does not know is kept as it is (`extra`) in run.json and tasks alike, so records written
by a newer flank survive being rewritten by an older one.

In Python the record is a `RunRecord` holding `TaskResult`s: read by `read_record`, built by
`start_record`, finished only here (`finish`, `skip`, `not_started`, `stop`, `conclude`,
`mark_interrupted`) and written by `write_record`.

Life of a record: `create_run` hands out the run id and writes the record with status
"running" in one step, together with a reserve file big enough for the final record and
its history line; if the disk cannot hold that, nothing is left behind (no folder, no
id used). While it waits under `overlap: queue`, "waiting_for" names the run it waits
for. The runner merges tasks/*.json into it as tasks change, then frees the reserve,
writes the final status and appends the history line — so a full disk can cost a run its
logs but never its outcome. A runner that died leaves "running": `reconcile` (called by
`flank status`, `flank run` and the site build) marks such runs "interrupted".
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

# the record's clock: defined in the launcher, which stays light (a Python start per task)
from flank_ops.clock import now_iso as now_iso
from flank_ops.errors import UserError
from flank_ops.fileio import append_json_line, atomic_write_text, locked, read_json_lines
from flank_ops.paths import ProjectPaths
from flank_ops.store.state import PipelineState, rebuild

# A cancel's request, left in the run folder by `flank cancel` (run/cancel.py) for the runner and the launchers.
CANCEL_FILE = "cancel"


def cancel_request_path(run_dir: Path) -> Path:
    return run_dir / CANCEL_FILE


def cancel_requested(run_dir: Path) -> bool:
    return cancel_request_path(run_dir).exists()


# What the layer above does with a dead runner's leftovers (its cluster jobs), handed to reconcile;
# a line it returns is added to the run's summary (issue 26: "2 jobs still running on slurm: …").
DeadRunHook = Callable[[Path, "RunRecord"], "str | None"]

FORMAT = 1


class RunStatus(StrEnum):
    """A run's status: the one list (the site, notes, notifications and status print these)."""

    RUNNING = "running"  # its runner is alive and tasks are running or waiting
    SUCCESS = "success"  # every selected task succeeded or was up to date
    FAILED = "failed"  # a task failed or timed out
    INTERRUPTED = "interrupted"  # its runner died (SIGKILL, reboot) or was stopped without `flank cancel`
    SKIPPED = "skipped"  # a trigger refused by `overlap: skip`
    CANCELLED = "cancelled"  # `flank cancel` stopped it


class RunTrigger(StrEnum):
    """What started a run: the record's `trigger` (the site, notes and notifications show it)."""

    SCHEDULE = "schedule"  # cron (or `flank scheduler`) at one of the pipeline's scheduled minutes
    PUSH = "push"  # a push deployed the pipeline, which has `on_push: true`
    MANUAL = "manual"  # a person: `flank run`, `flank remote run`, the site's Run button
    RERUN = "rerun"  # `flank run --rerun RUN_ID` (or the site's Rerun): what failed or did not run in that run
    CATCHUP = "catchup"  # a scheduled run missed while the VM was off, started once at boot (`flank catchup`)
    BACKFILL = "backfill"  # `flank backfill`: a past scheduled minute run again on purpose


# the triggers that stand for a scheduled minute (FLANK_SCHEDULED_AT): a minute one of them ran is not caught up
SCHEDULED_TRIGGERS = (RunTrigger.SCHEDULE, RunTrigger.CATCHUP, RunTrigger.BACKFILL)


class TaskStatus(StrEnum):
    """A task's status in a run: the one list (the launchers' strings are checked against it by a test)."""

    PENDING = "pending"  # selected, not started yet
    QUEUED = "queued"  # a remote job submitted, waiting for the cluster (issue 14)
    RUNNING = "running"  # started (on this VM, or a remote job that left the queue)
    SUCCESS = "success"  # exited 0 (and made its declared outputs)
    UP_TO_DATE = "up_to_date"  # not run: nothing it depends on changed (issue 12); not a failure
    FAILED = "failed"  # exited non-zero, or did not make a declared output
    TIMED_OUT = "timed_out"  # killed after its `timeout:`
    UPSTREAM_FAILED = "upstream_failed"  # not run: a task it needs did not succeed
    SKIPPED = "skipped"  # not selected by --task/--from/--rerun (or every task of a skipped run)
    INTERRUPTED = "interrupted"  # running when the runner died or was stopped
    CANCELLED = "cancelled"  # running or waiting when `flank cancel` stopped the run


FINISHED_RUN_STATUSES = frozenset(RunStatus) - {RunStatus.RUNNING}
# The task ran and failed: its log says why (notifications show these logs, `flank run` names them).
FAILED_TASK_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.TIMED_OUT})
# The task is done and its dependents may run.
OK_TASK_STATUSES = frozenset({TaskStatus.SUCCESS, TaskStatus.UP_TO_DATE})
# A need that ended so keeps its dependents from running (they become upstream_failed).
BLOCKING_TASK_STATUSES = FAILED_TASK_STATUSES | {
    TaskStatus.UPSTREAM_FAILED,
    TaskStatus.INTERRUPTED,
    TaskStatus.CANCELLED,
}
# Final in a launcher's tasks/<task>.json: it is written once, there is nothing more to read.
SETTLED_TASK_STATUSES = FAILED_TASK_STATUSES | OK_TASK_STATUSES

RECORD_FILE = "run.json"
HISTORY_FILE = "history.jsonl"
LAST_ID_FILE = "last_id"
STATE_FILE = "state.json"
RESERVE_FILE = ".reserve"


# --- the typed record ----------------------------------------------------------

# Task entry keys always written (in this order), then the optional ones when set, then `extra`.
_TASK_ALWAYS = (
    "status",
    "needs",
    "attempts",
    "started_at",
    "ended_at",
    "duration_s",
    "exit_code",
    "peak_rss_kb",
    "log",
)
_TASK_OPTIONAL = ("cpu_s", "error", "reason", "executor", "memory_mb", "cpus", "artifacts", "artifact_warnings")
# Keys of a launcher's tasks/<task>.json that are the launcher's own bookkeeping, not the task's result.
_LAUNCHER_ONLY = ("task", "attempt", "pid")


@dataclass
class TaskResult:
    """One task's entry in run.json (see the format above)."""

    status: TaskStatus = TaskStatus.PENDING
    needs: list[str] = field(default_factory=list)
    attempts: int = 0
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    peak_rss_kb: int | None = None
    log: str | None = None
    cpu_s: float | None = None  # user + system CPU time, when the launcher measured it
    error: str | None = None  # why flank (not the task) has no result for it
    # contract C2 (issues 11, 12, 14): written by launchers into tasks/<task>.json
    reason: str | None = None
    executor: dict[str, Any] | None = None
    memory_mb: int | None = None
    cpus: int | None = None
    artifacts: list[dict[str, Any]] | None = None
    artifact_warnings: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know: kept as they are

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskResult:
        """A task entry from run.json. Raises ValueError for an entry that is not one."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a task entry is not an object: {data!r}")
        task = cls()
        task.update(data)
        return task

    def update(self, data: Mapping[str, Any]) -> bool:
        """Take every key of `data` (a run.json entry or a launcher's result); True when anything changed."""
        changed = False
        for key, value in data.items():
            if key == "status":
                value = TaskStatus(value)
            elif key == "needs":
                value = [str(n) for n in value] if isinstance(value, list) else []
            if key in _TASK_KNOWN:
                if getattr(self, key) != value:
                    setattr(self, key, value)
                    changed = True
            elif self.extra.get(key, _MISSING) != value:
                self.extra[key] = value
                changed = True
        return changed

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: getattr(self, key) for key in _TASK_ALWAYS}
        out["status"] = str(self.status)
        out.update((key, getattr(self, key)) for key in _TASK_OPTIONAL if getattr(self, key) is not None)
        out.update((key, value) for key, value in self.extra.items() if key not in out)
        return out

    @property
    def ok(self) -> bool:
        return self.status in OK_TASK_STATUSES


_MISSING = object()
_TASK_STATUS_VALUES = frozenset(status.value for status in TaskStatus)
_TASK_KNOWN = frozenset(_TASK_ALWAYS + _TASK_OPTIONAL)

# Run keys always written (in this order), then the optional ones when set, then `extra`.
_RUN_ALWAYS = (
    "format",
    "project",
    "pipeline",
    "run_id",
    "trigger",
    "status",
    "local",
    "commit",
    "release",
    "started_at",
    "ended_at",
    "duration_s",
    "runner",
    "selection",
    "selected_tasks",
    "scheduled_at",
    "timezone",
    "concurrency",
    "tasks",
    "skipped_reason",
    "after_run",
    "summary",
)
_RUN_OPTIONAL = ("triggered_by", "waiting_for", "error", "params", "non_default_params", "backfill")

# Where a run was started from (triggered_by.via): the site's Run button, `flank run` in a shell
# on the VM, `flank remote` over ssh, cron (or `flank scheduler`, catch-up), a push.
VIA = ("web", "cli", "remote", "schedule", "push")
PEOPLE_VIA = ("web", "cli", "remote")  # a person asked: their name is shown with the run


def via_of_trigger(trigger: str) -> str:
    """Where a run with this trigger came from when nobody said (`flank run --via`)."""
    if trigger in (RunTrigger.SCHEDULE, RunTrigger.CATCHUP):
        return "schedule"  # a backfill is started by a person: "cli"
    return "push" if trigger == RunTrigger.PUSH else "cli"


def triggered_by_text(triggered_by: dict[str, Any] | None) -> str | None:
    """'ada via web' for a run a person started (None for cron, a push, or an older record)."""
    if not isinstance(triggered_by, dict) or triggered_by.get("via") not in PEOPLE_VIA:
        return None
    return f"{triggered_by.get('user') or '?'} via {triggered_by['via']}"


def _no_selection() -> dict[str, Any]:
    return {"task": None, "from": None, "rerun_of": None}


@dataclass
class RunRecord:
    """A run's record, run.json (see the format above). Built by `start_record`, finished by
    `finish`, `skip`, `not_started`, `stop`, `conclude` and `mark_interrupted`, written by `write_record`."""

    project: str
    pipeline: str
    run_id: int
    trigger: str | None = RunTrigger.MANUAL
    status: RunStatus = RunStatus.RUNNING
    local: bool = False
    commit: dict[str, Any] = field(default_factory=dict)
    release: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    runner: dict[str, Any] | None = None
    selection: dict[str, Any] = field(default_factory=_no_selection)
    selected_tasks: list[str] | None = None  # None in records from before it was kept
    scheduled_at: str | None = None
    timezone: str | None = None
    concurrency: int | None = None
    tasks: dict[str, TaskResult] = field(default_factory=dict)  # topological order
    skipped_reason: str | None = None
    after_run: dict[str, str] = field(default_factory=dict)
    summary: str | None = None
    triggered_by: dict[str, Any] | None = None  # {"user", "via"}: who started it, from where (VIA)
    waiting_for: int | None = None  # the run it waits for (overlap: queue)
    error: str | None = None  # only when flank itself could not run or record the run
    # issue 23: every parameter's value (typed: str, int, float, bool; a date as YYYY-MM-DD), only when
    # the pipeline has params:, and those not at their default (what pages, notes and notifications show)
    params: dict[str, Any] | None = None
    non_default_params: list[str] | None = None
    backfill: str | None = None  # issue 23: the id of the backfill the run belongs to
    format: int = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know: kept as they are

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        """A record from run.json's object. Raises ValueError when it is not a run record."""
        if not isinstance(data, dict) or not isinstance(data.get("run_id"), int):
            raise ValueError("not a flank run record")
        if not isinstance(data.get("project"), str) or not isinstance(data.get("pipeline"), str):
            raise ValueError("not a flank run record (no project or pipeline)")
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in _RUN_KNOWN:
                values[key] = value
            else:
                extra[key] = value
        values["status"] = RunStatus(values.get("status") or "running")
        tasks = values.get("tasks")
        values["tasks"] = {str(n): TaskResult.from_json(t) for n, t in tasks.items()} if isinstance(tasks, dict) else {}
        for key, make in (("commit", dict), ("selection", _no_selection), ("after_run", dict)):
            if not isinstance(values.get(key), dict):
                values[key] = make()
        if values.get("selected_tasks") is not None and not isinstance(values["selected_tasks"], list):
            values["selected_tasks"] = None
        values["local"] = bool(values.get("local"))
        return cls(**values, extra=extra)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in _RUN_ALWAYS:
            value = getattr(self, key)
            if key == "tasks":
                value = {name: task.to_json() for name, task in value.items()}
            elif key == "status":
                value = str(value)
            out[key] = value
        out.update((key, getattr(self, key)) for key in _RUN_OPTIONAL if getattr(self, key) is not None)
        out.update((key, value) for key, value in self.extra.items() if key not in out)
        return out


_RUN_KNOWN = frozenset(f.name for f in fields(RunRecord)) - {"extra"}


def start_record(
    *,
    project: str,
    pipeline: str,
    run_id: int,
    trigger: str,
    local: bool,
    commit: dict[str, Any],
    release: str,
    selection: dict[str, Any],
    tasks: list[tuple[str, list[str]]],
    selected: list[str],
    scheduled_at: str | None,
    timezone: str | None,
    concurrency: int,
    triggered_by: dict[str, Any] | None = None,
) -> RunRecord:
    """A new run's record: "running", started now by this process; `tasks` = (name, needs) in
    topological order; those not `selected` are "skipped"."""
    chosen = set(selected)
    entries = {
        name: TaskResult(
            status=TaskStatus.PENDING if name in chosen else TaskStatus.SKIPPED,
            needs=list(needs),
            log=f"logs/{name}.log",
        )
        for name, needs in tasks
    }
    return RunRecord(
        project=project,
        pipeline=pipeline,
        run_id=run_id,
        trigger=trigger,
        status=RunStatus.RUNNING,
        local=local,
        commit=commit,
        release=release,
        started_at=now_iso(),
        runner=runner_identity(),
        selection=selection,
        selected_tasks=[n for n in entries if n in chosen],
        scheduled_at=scheduled_at,
        timezone=timezone,
        concurrency=concurrency,
        tasks=entries,
        triggered_by=triggered_by,
    )


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def record_path(run_dir: Path) -> Path:
    return Path(run_dir) / RECORD_FILE


def task_result_path(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / "tasks" / f"{task}.json"


def task_log_path(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / "logs" / f"{task}.log"


def task_log_file(run_dir: Path, name: str, task: TaskResult | Mapping[str, Any]) -> Path:
    """The log of task `name` as its record entry names it; a record can only point inside its own
    run folder (anything else means the launcher's own layout). Every reader of logs asks this."""
    rel = task.log if isinstance(task, TaskResult) else task.get("log")
    if rel == f"logs/{name}.log" and "/" not in name and name not in (".", ".."):
        return Path(run_dir) / rel  # the launcher's own layout: no need to resolve symlinks
    if isinstance(rel, str) and rel:
        candidate = (Path(run_dir) / rel).resolve()
        if candidate.is_relative_to(Path(run_dir).resolve()):
            return candidate
    return task_log_path(run_dir, name)


def artifacts_dir(run_dir: Path, task: str) -> Path:
    """Where task `task`'s kept artifacts live: artifacts/<task>/<path relative to the task's dir>."""
    return Path(run_dir) / "artifacts" / task


def artifact_names_ok(task: str, path: str) -> bool:
    """A record's task name and artifact path can only name a file under artifacts/<task>/."""
    if not task or "/" in task or "\0" in task or task in (".", ".."):
        return False
    return bool(path) and "\0" not in path and not path.startswith("/") and ".." not in path.split("/")


def kept_artifact(run_dir: Path, task: str, path: str) -> Path | None:
    """The kept file a record's artifact entry names, or None when the names could lead anywhere
    else (issue 20 item 5): a record is read back, never trusted. Every reader of kept files asks
    this: the task a plain name, the path relative with no `..`, and the file, symlinks resolved,
    still inside the task's artifacts folder."""
    if not artifact_names_ok(task, path):
        return None
    folder = artifacts_dir(run_dir, task)
    candidate = folder / path
    real = Path(os.path.realpath(candidate))
    if not real.is_relative_to(os.path.realpath(folder)):
        return None
    return candidate


def artifact_sources_path(run_dir: Path) -> Path:
    return Path(run_dir) / "artifacts.sources.json"


def _next_run_id(paths: ProjectPaths, pipeline: str) -> int:
    """The id after the last one handed out (the caller holds the run-id lock)."""
    runs = paths.runs_dir(pipeline)
    try:
        last = int((runs / LAST_ID_FILE).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        last = max(list_run_ids(paths, pipeline), default=0)
    run_id = last + 1
    while (runs / str(run_id)).exists():
        run_id += 1
    return run_id


def create_run(paths: ProjectPaths, pipeline: str, build: Callable[[int], RunRecord]) -> tuple[int, Path, RunRecord]:
    """A new run: its id, its folder, the record `build(run_id)` written, and the disk space its
    final record will need held in reserve — all or nothing. When the disk cannot take it,
    raises UserError and leaves no folder and no used id behind."""
    runs = paths.runs_dir(pipeline)
    run_dir: Path | None = None
    try:
        runs.mkdir(parents=True, exist_ok=True)
        with locked(paths.lock_file("run-id", pipeline)):
            run_id = _next_run_id(paths, pipeline)
            counter = runs / LAST_ID_FILE
            run_dir = runs / str(run_id)
            run_dir.mkdir()
            try:
                record = build(run_id)
                reserve_space(run_dir, reserve_size(record))
                write_record(run_dir, record)
                _change_state(paths, pipeline, lambda state: state.created(run_id))
                atomic_write_text(counter, f"{run_id}\n")  # last: a failure above leaves the id unused
            except BaseException:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
    except OSError as exc:
        raise UserError(
            f"cannot start a run of {pipeline}: {disk_error(exc)} in {runs}",
            "free some disk space, then run it again"
            if is_disk_full(exc)
            else "check that folder's permissions, then run it again",
        ) from None
    return run_id, run_dir, record


# --- disk space: a run holds what its final record needs --------------------


def is_disk_full(exc: BaseException | None) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_error(exc: OSError) -> str:
    """'disk full (No space left on device)', or the error's own words."""
    reason = exc.strerror or str(exc)
    return f"disk full ({reason})" if is_disk_full(exc) else reason


def free_bytes(folder: Path) -> int:
    """Bytes this process can still write on the file system holding `folder`."""
    st = os.statvfs(folder)
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may use the reserved blocks
    return blocks * st.f_frsize


def reserve_size(record: RunRecord) -> int:
    """Room for the final record (tasks gain times, exit codes, errors), written beside the
    current one (atomic replace), plus the history line and the after-run outcomes."""
    now = len(format_record(record).encode("utf-8"))
    final = now + 400 * len(record.tasks) + 4096
    return 2 * final + 16384


def reserve_space(run_dir: Path, size: int) -> None:
    """Allocate `size` bytes in run_dir/.reserve (really allocated, not a sparse file)."""
    fd = os.open(Path(run_dir) / RESERVE_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            os.write(fd, b"\0" * size)  # a file system without fallocate
            os.fsync(fd)
    finally:
        os.close(fd)


def release_space(run_dir: Path) -> bool:
    """Free the run's reserve (just before its final writes); True when there was one."""
    try:
        os.unlink(Path(run_dir) / RESERVE_FILE)
        return True
    except FileNotFoundError:
        return False


def list_run_ids(paths: ProjectPaths, pipeline: str) -> list[int]:
    """Run ids on disk, ascending."""
    runs = paths.runs_dir(pipeline)
    if not runs.is_dir():
        return []
    return sorted(int(p.name) for p in runs.iterdir() if p.name.isdigit() and p.is_dir())


def write_record(run_dir: Path, record: RunRecord) -> None:
    record.format = FORMAT
    atomic_write_text(record_path(run_dir), format_record(record))


def format_record(record: RunRecord) -> str:
    """run.json's text: one field a line and one task a line — as readable as an
    indented dump, and written by json's C encoder (an indented dump of a
    500-task record took 30 ms, rewritten on every task change)."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = []
    for key, value in record.to_json().items():
        if key == "tasks" and isinstance(value, dict) and value:
            tasks = [f"    {dump(name)}: {dump(entry)}" for name, entry in value.items()]
            lines.append('  "tasks": {\n' + ",\n".join(tasks) + "\n  }")
        else:
            lines.append(f"  {dump(key)}: {dump(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def read_record(run_dir: Path) -> RunRecord:
    """The record as stored. Raises OSError / ValueError for a missing or corrupt file."""
    with open(record_path(run_dir), encoding="utf-8") as f:
        data = json.load(f)
    try:
        return RunRecord.from_json(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{record_path(run_dir)} is not a flank run record ({exc})") from None


def append_history(paths: ProjectPaths, record: RunRecord) -> None:
    """Add a finished run's one-line summary to the pipeline's history index, and say in the
    pipeline's state that it is over (both under the pipeline's run-id lock)."""
    entry = history_entry(record)
    with locked(paths.lock_file("run-id", record.pipeline)):
        append_json_line(paths.runs_dir(record.pipeline) / HISTORY_FILE, entry)
        _change_state(paths, record.pipeline, lambda state: state.finished(entry))


def history_entry(record: RunRecord) -> dict[str, Any]:
    """The run's line in history.jsonl (also what the site lists for a run still going)."""
    return {
        "run_id": record.run_id,
        "status": str(record.status),
        "trigger": record.trigger,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "duration_s": record.duration_s,
        "commit": record.commit.get("short"),
        "summary": record.summary,
        "partial": is_partial(record),
        "selected": len(selected_tasks(record)),
        "total": len(record.tasks),
        **({"rerun_of": record.selection["rerun_of"]} if record.selection.get("rerun_of") is not None else {}),
        **({"backfill": record.backfill} if record.backfill else {}),  # issue 23: the site groups by it
    }


def params_text(record: RunRecord) -> str:
    """issue 23: the run's parameters that were not at their default, as pages, notes and
    notifications show them ('n=7, model=glm'); empty for a run with the defaults only."""
    from flank_ops.config.params import shown

    return shown(record.params or {}, list(record.non_default_params or ()))


def is_partial(record: RunRecord) -> bool:
    """Did the run select only part of the pipeline (--task, --from, --rerun)?"""
    return any(record.selection.get(key) is not None for key in ("task", "from", "rerun_of"))


def selected_tasks(record: RunRecord) -> list[str]:
    """The tasks the run's selection chose, in the record's (topological) order."""
    chosen = record.selected_tasks
    if chosen is not None:
        wanted = set(chosen)
        return [n for n in record.tasks if n in wanted]
    # Records from before "selected_tasks": a task not selected was marked "skipped"
    # (as was every task of a skipped run, which then stood for its whole pipeline).
    if record.status == RunStatus.SKIPPED and not is_partial(record):
        return list(record.tasks)
    return [n for n, t in record.tasks.items() if t.status != TaskStatus.SKIPPED]


def last_full_run(paths: ProjectPaths, pipeline: str, before: int | None = None) -> dict[str, Any] | None:
    """{"run_id", "status"} of the newest run that ran the whole pipeline (skipped triggers do not
    count), older than run `before` when given; None when there is none. A `--rerun` of it that
    succeeded completes it: "status" is then "success" and "completed_by" the rerun's id (run/state.py).
    Reads the pipeline's state; only when a full run newer than `before` has finished since does it
    replay the history up to `before` through the same state."""
    full = read_state(paths, pipeline).last_full
    if full is None or before is None or full["run_id"] < before:
        return full
    state = PipelineState()  # rare: e.g. an old partial run still going
    for entry in read_history(paths, pipeline):
        if entry["run_id"] < before:
            state.finished({**entry, "partial": _line_is_partial(paths, pipeline, entry)})
    return state.last_full


def last_run(paths: ProjectPaths, pipeline: str) -> int | None:
    """The pipeline's last run: the newest run going now (not one waiting behind another under
    `overlap: queue`) or finished having run (a trigger refused by `overlap: skip` never is).
    None before the first. Every reader of "the last run" asks this — `flank status`, `flank logs`
    (and --follow), `flank remote`, the site's cards — so they agree; none takes the newest id."""
    state = read_state(paths, pipeline)
    last = state.last_ran["run_id"] if state.last_ran else None
    for run_id in sorted(state.running, reverse=True):
        if last is not None and run_id < last:
            break
        try:
            record = read_record(paths.run_dir(pipeline, run_id))
        except (OSError, ValueError):
            continue
        if record.status == RunStatus.RUNNING and record.waiting_for is None:
            return run_id
    return last


def _line_is_partial(paths: ProjectPaths, pipeline: str, entry: dict[str, Any]) -> bool:
    """A history line's "partial"; for a line written before lines said so, its record's (an
    unreadable record counts as partial: it cannot stand for the whole pipeline)."""
    partial = entry.get("partial")
    if partial is not None:
        return bool(partial)
    try:
        return is_partial(read_record(paths.run_dir(pipeline, entry["run_id"])))
    except (OSError, ValueError):
        return True


def previous_outcome(paths: ProjectPaths, pipeline: str, run_id: int) -> dict[str, Any] | None:
    """{"run_id", "status"} of the run that ended (success, failed or interrupted) last before
    run `run_id` did — what a notification compares a success with; None when there is none."""
    before = read_state(paths, pipeline).outcome_before(run_id)
    if before is not False:
        return before if isinstance(before, dict) else None
    previous = None  # another run finished since: read the history up to this run's line
    for entry in read_history(paths, pipeline):
        if entry["run_id"] == run_id:
            break  # runs that finished after this one do not count
        if entry.get("status") in ("success", "failed", "interrupted"):
            previous = {"run_id": entry["run_id"], "status": entry["status"]}
    return previous


def read_history(paths: ProjectPaths, pipeline: str) -> Iterator[dict[str, Any]]:
    """Finished runs' summaries in the order they finished (skips damaged lines)."""
    yield from read_json_lines(paths.runs_dir(pipeline) / HISTORY_FILE, "run_id")


# --- the pipeline's state (run/state.py): no per-run path scans the history -----


def _counter(paths: ProjectPaths, pipeline: str) -> int | None:
    try:
        return int((paths.runs_dir(pipeline) / LAST_ID_FILE).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return None


def _load_state(paths: ProjectPaths, pipeline: str) -> PipelineState | None:
    """The state file when it is whole and current: None when missing, damaged, or stale (runs were
    handed out without it, e.g. by an older flank: its last id is not the counter's)."""
    try:
        state = PipelineState.from_text((paths.runs_dir(pipeline) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    counter = _counter(paths, pipeline)
    return state if counter is None or counter == state.last_id else None


def _rebuilt_state(paths: ProjectPaths, pipeline: str) -> PipelineState:
    """The state from history.jsonl and the run folders: the one full scan (the caller holds the
    run-id lock)."""
    ids = list_run_ids(paths, pipeline)
    counter = _counter(paths, pipeline)
    return rebuild(
        read_history(paths, pipeline),
        ids,
        counter if counter is not None else max(ids, default=0),
        lambda run_id: _line_is_partial(paths, pipeline, {"run_id": run_id}),
    )


def _change_state(paths: ProjectPaths, pipeline: str, change: Callable[[PipelineState], None]) -> None:
    """Apply `change` to the pipeline's state and write it (the caller holds the run-id lock)."""
    state = _load_state(paths, pipeline) or _rebuilt_state(paths, pipeline)
    change(state)
    atomic_write_text(paths.runs_dir(pipeline) / STATE_FILE, state.to_text())


def read_state(paths: ProjectPaths, pipeline: str) -> PipelineState:
    """The pipeline's state: one small file read; rebuilt (and saved) when missing, damaged or stale."""
    state = _load_state(paths, pipeline)
    if state is not None:
        return state
    if not paths.runs_dir(pipeline).is_dir():
        return PipelineState()
    with locked(paths.lock_file("run-id", pipeline)):
        state = _load_state(paths, pipeline)  # another process may have rebuilt it meanwhile
        if state is None:
            state = _rebuilt_state(paths, pipeline)
            try:
                atomic_write_text(paths.runs_dir(pipeline) / STATE_FILE, state.to_text())
            except OSError:
                pass  # e.g. a full disk: rebuilt again next time
    return state


# --- liveness: a runner that died leaves "running"; we detect and mark it ----


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _pid_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (guards against pid reuse); None when no
    live process has that pid. A zombie (state Z: killed, not yet reaped by a long-lived parent such
    as `flank scheduler`) still has a /proc entry but runs nothing: it counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces, so split after ')': field 3 is the state, 22 the start
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def runner_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "boot_id": _boot_id(), "pid_start": _pid_start(pid)}


def runner_alive(runner: Mapping[str, Any] | None) -> bool:
    if not runner:
        return False
    if runner.get("boot_id") and runner["boot_id"] != _boot_id():
        return False  # the machine rebooted since
    pid = runner.get("pid")
    if not isinstance(pid, int):
        return False
    start = _pid_start(pid)
    return start is not None and start == runner.get("pid_start")


# --- task results merged into the record -----------------------------------


def read_task_result(run_dir: Path, task: str) -> dict[str, Any] | None:
    """The launcher's result for one task (tasks/<task>.json as written), or None (not started,
    or caught mid-write)."""
    try:
        with open(task_result_path(run_dir, task), encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("status") not in _TASK_STATUS_VALUES:
        return None
    if "attempts" not in result and "attempt" in result:
        result["attempts"] = result["attempt"]
    return result


def merge_task_results(run_dir: Path, record: RunRecord, names: list[str] | None = None) -> list[str]:
    """Copy tasks/<task>.json into the record's task entries (every key but the launcher's own
    bookkeeping: a launcher's new key needs no change here); returns the names whose entry changed.
    The one place launcher results reach a record: the runner, reconcile and the site's view of a
    running run all merge through it."""
    changed = []
    for name in names if names is not None else list(record.tasks):
        entry = record.tasks[name]
        if entry.status in SETTLED_TASK_STATUSES:
            continue  # the launcher writes a final result once: nothing more to read
        result = read_task_result(run_dir, name)
        if result is None:
            continue
        if entry.update({k: v for k, v in result.items() if k not in _LAUNCHER_ONLY}):
            changed.append(name)
    return changed


# --- finding runs ------------------------------------------------------------


def last_run_id(paths: ProjectPaths, pipeline: str) -> int | None:
    """The last run id handed out (the pipeline's newest run); None before its first run."""
    last = _counter(paths, pipeline)
    if last is None:
        last = max(list_run_ids(paths, pipeline), default=0)
    return last or None


def find_running(paths: ProjectPaths, pipeline: str) -> list[RunRecord]:
    """Records of the pipeline's runs that are not finished yet (live runners only)."""
    out = []
    for run_id in sorted(read_state(paths, pipeline).running):
        try:
            record = read_record(paths.run_dir(pipeline, run_id))
        except (OSError, ValueError):
            continue
        if record.status == RunStatus.RUNNING and runner_alive(record.runner):
            out.append(record)
    return out


def reconcile(paths: ProjectPaths, pipeline: str, *, on_interrupted: DeadRunHook | None) -> list[int]:
    """Mark runs whose runner died (SIGKILL, reboot) as interrupted; returns their ids.
    `on_interrupted(run_dir, record)` is called for each before its record is written: the layer above
    hands in what to do with the jobs a dead runner left on a cluster (executors/cleanup.py); the store
    itself knows no cluster.

    Only the runs the pipeline's state lists as running are looked at, so this costs the same
    with 10 or 100,000 past runs (nothing at all when none is running). A finished record whose
    history line was lost (the runner died between the two writes) gets its history line back.
    """
    if not read_state(paths, pipeline).running:
        return []
    marked: list[int] = []
    with locked(paths.lock_file("reconcile", pipeline)):
        for run_id in sorted(read_state(paths, pipeline).running):
            run_dir = paths.run_dir(pipeline, run_id)
            try:
                record = read_record(run_dir)
            except FileNotFoundError:
                _drop_if_empty(paths, pipeline, run_dir)
                continue
            except (OSError, ValueError):
                continue  # unreadable: nothing safe to do
            if runner_alive(record.runner):
                continue
            try:
                if record.status == RunStatus.RUNNING:
                    mark_interrupted(run_dir, record, on_interrupted)
                    marked.append(run_id)
                elif any(e["run_id"] == run_id for e in read_history(paths, pipeline)):  # rare: a full read
                    with locked(paths.lock_file("run-id", pipeline)):  # its line is there: only the state lags
                        _change_state(paths, pipeline, lambda state: state.finished(history_entry(record)))  # noqa: B023 - called at once
                    continue
                release_space(run_dir)
                append_history(paths, record)
            except OSError:
                continue  # a full disk: the run stays as it is until there is room to record it
    return marked  # callers above site/ redraw their pages (site.build.redraw_runs)


def _drop_if_empty(paths: ProjectPaths, pipeline: str, run_dir: Path) -> None:
    """Remove a run folder that holds nothing (at most a reserve) and no record: what a run that
    could not write its first record left before create_run did it all or nothing. Under the
    run-id lock, as create_run writes the first record under it: a folder being born is never seen."""
    try:
        with locked(paths.lock_file("run-id", pipeline)):
            if not run_dir.exists() or {p.name for p in run_dir.iterdir()} <= {RESERVE_FILE}:
                shutil.rmtree(run_dir, ignore_errors=True)
                _change_state(paths, pipeline, lambda state: state.forget(int(run_dir.name)))
    except OSError:
        pass


def mark_interrupted(run_dir: Path, record: RunRecord, on_interrupted: DeadRunHook | None = None) -> None:
    """Record a run whose runner died as interrupted (the one path by which a reader of the
    records, `reconcile`, writes one); `on_interrupted` deals with what its jobs left."""
    merge_task_results(run_dir, record)
    waited_for = record.waiting_for
    record.waiting_for = None
    for entry in record.tasks.values():
        if entry.status in (TaskStatus.RUNNING, TaskStatus.QUEUED):
            entry.status = TaskStatus.INTERRUPTED
    left = on_interrupted(run_dir, record) if on_interrupted is not None else None
    if waited_for is not None:  # queued (overlap: queue): not a task of it ever ran
        summary = f"interrupted: the runner stopped while it waited for #{waited_for}; no task ran"
    else:
        summary = "interrupted: the runner stopped before the run finished"
    if left:
        summary += f"; {left}"
    finish(record, RunStatus.INTERRUPTED, summary)
    release_space(run_dir)  # the dead runner's reserve: room for this very write
    write_record(run_dir, record)


# --- finishing a run: every way a record reaches its final status -------------


def finish(record: RunRecord, status: RunStatus, summary: str | None = None) -> None:
    """The run ends now with `status`: its end time and duration (computed here only), and the
    end time of tasks stopped without one."""
    record.status = status
    record.ended_at = now_iso()
    started, ended = parse_iso(record.started_at), parse_iso(record.ended_at)
    record.duration_s = round((ended - started).total_seconds(), 3) if started and ended else None
    for entry in record.tasks.values():
        if (
            entry.status in (TaskStatus.INTERRUPTED, TaskStatus.CANCELLED)
            and entry.ended_at is None
            and entry.started_at is not None
        ):
            entry.ended_at = record.ended_at
    if summary is not None:
        record.summary = summary


def skip(record: RunRecord, reason: str) -> None:
    """A trigger refused by `overlap: skip`: recorded, with why."""
    for entry in record.tasks.values():
        entry.status = TaskStatus.SKIPPED
    record.skipped_reason = reason
    finish(record, RunStatus.SKIPPED, f"skipped: {reason}")


def not_started(record: RunRecord, selected: list[str], reason: str) -> None:
    """A run that got its record but could not start make (e.g. a full disk): failed, with the reason."""
    for name in selected:
        record.tasks[name].status = TaskStatus.FAILED
        record.tasks[name].error = f"did not start: {reason}"
    record.error = reason
    finish(record, RunStatus.FAILED, f"did not start: {reason}")


def stop(record: RunRecord, cancelled: bool) -> None:
    """A stopped run's statuses: `cancelled` when `flank cancel` asked for it (its running and
    waiting tasks too), else `interrupted` (a shutdown, a kill: its running tasks). `finish` follows."""
    record.waiting_for = None
    for entry in record.tasks.values():
        if cancelled and entry.status in (TaskStatus.RUNNING, TaskStatus.QUEUED, TaskStatus.PENDING):
            entry.status = TaskStatus.CANCELLED
            entry.ended_at = entry.ended_at or now_iso()
        elif not cancelled and entry.status in (TaskStatus.RUNNING, TaskStatus.QUEUED):
            entry.status = TaskStatus.INTERRUPTED
    record.status = RunStatus.CANCELLED if cancelled else RunStatus.INTERRUPTED


def conclude(record: RunRecord, selected: list[str], make_exit: int | None) -> None:
    """Once make has exited: every selected task's final status, and the run's (success only
    when every selected task is done and make agreed). `finish` follows."""
    tasks = record.tasks
    for name in selected:  # dependencies first, so needs are final when we look at them
        entry = tasks[name]
        if entry.status == TaskStatus.PENDING:
            if any(tasks[d].status in BLOCKING_TASK_STATUSES for d in entry.needs if d in tasks):
                entry.status = TaskStatus.UPSTREAM_FAILED
            else:
                entry.status = TaskStatus.FAILED
                entry.error = f"did not start: make exited {make_exit} (see make.log)"
        elif entry.status in (TaskStatus.RUNNING, TaskStatus.QUEUED):
            entry.status = TaskStatus.FAILED
            entry.error = "its task launcher stopped without a result"
            entry.ended_at = entry.ended_at or now_iso()
    all_ok = all(tasks[n].ok for n in selected)
    record.status = RunStatus.SUCCESS if all_ok and make_exit == 0 else RunStatus.FAILED


def summarize(record: RunRecord) -> str:
    """'3/4 ok; model failed (exit 1, 3 attempts)'."""
    ran = {n: t for n, t in record.tasks.items() if t.status != TaskStatus.SKIPPED}
    ok = sum(1 for t in ran.values() if t.ok)
    text = f"{ok}/{len(ran)} ok"
    up_to_date = sum(1 for t in ran.values() if t.status == TaskStatus.UP_TO_DATE)
    if up_to_date:
        text += f" ({up_to_date} up to date)"  # issue 12
    stopped = {status: [n for n, t in ran.items() if t.status == status] for status in _STOPPED}
    for name, t in ran.items():
        attempts = t.attempts or 1
        tries = f", {attempts} attempts" if attempts > 1 else ""
        if t.status == TaskStatus.FAILED:
            detail = f"exit {t.exit_code}{tries}" if t.exit_code is not None else (t.error or "")
            text += f"; {name} failed ({detail})"
        elif t.status == TaskStatus.TIMED_OUT:
            text += f"; {name} timed out" + (f" ({attempts} attempts)" if attempts > 1 else "")
        elif t.status in _STOPPED and len(stopped[t.status]) <= 2:
            text += f"; {name} {t.status}"
    for status, names in stopped.items():
        if len(names) > 2:  # a cancelled run of 9 tasks: counted, not listed one by one
            text += f"; {len(names)} {status}"
    return text


_STOPPED = (TaskStatus.INTERRUPTED, TaskStatus.CANCELLED)


def disk_full(record: RunRecord, selected: list[str], run_dir: Path) -> None:
    """A failed run whose tasks met a full disk: the real outcome, said in the record."""
    record.error = f"disk full: no space left on the file system of {run_dir}"
    record.summary = f"disk full; {record.summary}"
    for name in selected:
        entry = record.tasks[name]
        if entry.error and not entry.error.startswith("disk full"):
            entry.error = f"disk full: {entry.error}"
