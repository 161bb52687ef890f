"""The run record's model: what a run is, typed, apart from the files it is kept in.

A reader gets these dataclasses and enums, never a dict: `RunRecord` holds its `TaskResult`s and the
nested shapes (`Commit`, `Runner`, `Selection`, `TriggeredBy`); `RunStatus`, `TaskStatus` and
`RunTrigger` are the one list of each, and the status sets below say what a status means (live,
final, failed, ok). `from_json`/`to_json` are run.json's format (described in store/records.py,
the file store that reads, writes and locks the files): a record read and written back is the
same bytes, and keys this version does not know are kept as they are (`extra`), so a record
written by a newer flank survives being rewritten by an older one.

The ways a record reaches its final status live here too (`finish`, `skip`, `not_started`, `stop`,
`conclude`, `summarize`, `mark_disk_full`): they change the record, never a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypedDict

from flank_ops.clock import now_iso
from flank_ops.config.model import ParamValue

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
# Not over yet: waiting, waiting for its cluster, or running (its log may still grow).
LIVE_TASK_STATUSES = frozenset({TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.RUNNING})
# Over, one way or another: what the task's log holds is all it will hold.
FINAL_TASK_STATUSES = frozenset(TaskStatus) - LIVE_TASK_STATUSES
# Stopped from outside (a dead runner, `flank cancel`): the task did not end by itself.
STOPPED_TASK_STATUSES = frozenset({TaskStatus.INTERRUPTED, TaskStatus.CANCELLED})
# The run ended and had a verdict (a skipped trigger or a cancel has none): what a notification compares.
OUTCOME_RUN_STATUSES = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.INTERRUPTED})


# --- the shapes inside a record ----------------------------------------------------


def _split(data: Mapping[str, Any], known: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the known keys' values, the other keys as they are)."""
    return {k: v for k, v in data.items() if k in known}, {k: v for k, v in data.items() if k not in known}


@dataclass
class Commit:
    """The commit a run ran ({} for a working copy without commits): `short` is what every reader shows
    (a laptop run of uncommitted edits says `a0965cb + changes`). A key is written only when set."""

    sha: str | None = None
    short: str | None = None
    message: str | None = None
    author: str | None = None
    date: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object) -> Commit:
        if not isinstance(data, Mapping):
            return cls()
        known, extra = _split(data, _COMMIT_KEYS)
        return cls(**known, extra=extra)

    def to_json(self) -> dict[str, Any]:
        out = {key: getattr(self, key) for key in _COMMIT_KEYS if getattr(self, key) is not None}
        out.update((k, v) for k, v in self.extra.items() if k not in out)
        return out


_COMMIT_KEYS = ("sha", "short", "message", "author", "date")


@dataclass
class Runner:
    """The process that runs the run (store/records.py `runner_alive` asks whether it still does):
    `pid_start` (its start in clock ticks since boot) guards against a reused pid, `boot_id` against a reboot."""

    pid: int | None = None
    host: str | None = None
    boot_id: str | None = None
    pid_start: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object) -> Runner | None:
        if not isinstance(data, Mapping):
            return None
        known, extra = _split(data, _RUNNER_KEYS)
        return cls(**known, extra=extra)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: getattr(self, key) for key in _RUNNER_KEYS}
        out.update((k, v) for k, v in self.extra.items() if k not in out)
        return out


_RUNNER_KEYS = ("pid", "host", "boot_id", "pid_start")


@dataclass
class Selection:
    """What part of the pipeline the run chose: `--task`, `--from` (`from_`, "from" in run.json) or
    `--rerun RUN_ID`; none set = the whole pipeline."""

    task: str | None = None
    from_: str | None = None
    rerun_of: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object) -> Selection:
        if not isinstance(data, Mapping):
            return cls()
        known, extra = _split(data, ("task", "from", "rerun_of"))
        return cls(task=known.get("task"), from_=known.get("from"), rerun_of=known.get("rerun_of"), extra=extra)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task, "from": self.from_, "rerun_of": self.rerun_of}
        out.update((k, v) for k, v in self.extra.items() if k not in out)
        return out

    @property
    def partial(self) -> bool:
        """Did it choose only part of the pipeline?"""
        return any(value is not None for value in (self.task, self.from_, self.rerun_of))


@dataclass
class TriggeredBy:
    """Who started a run and from where (`via`: one of VIA below)."""

    user: str | None = None
    via: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object) -> TriggeredBy | None:
        if not isinstance(data, Mapping):
            return None
        known, extra = _split(data, ("user", "via"))
        return cls(**known, extra=extra)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.user, "via": self.via}
        out.update((k, v) for k, v in self.extra.items() if k not in out)
        return out


class ExecutorInfo(TypedDict, total=False):
    """A task's entry "executor" (issue 14): where a remote job ran. Written by the executors into
    tasks/<task>.json and merged key by key, so it stays the JSON object (a newer key passes through)."""

    kind: str  # slurm | batch
    job_id: str
    queue: str | None
    host: str | None
    state: str | None
    max_rss_kb: int | None


class ArtifactEntry(TypedDict, total=False):
    """One of a task's entry "artifacts" (issue 11): a file its `artifacts:` matched."""

    path: str  # relative to the task's folder
    size: int
    kept: bool
    note: str | None


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
_TASK_OPTIONAL = (
    "cpu_s",
    "error",
    "reason",
    "executor",
    "runs_on",
    "memory_mb",
    "cpus",
    "artifacts",
    "artifact_warnings",
    "artifacts_run",
    "queued_reason",
)
# Keys of a launcher's tasks/<task>.json that are the launcher's own bookkeeping, not the task's result.
LAUNCHER_ONLY_KEYS = ("task", "attempt", "pid")


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
    executor: ExecutorInfo | None = None
    runs_on: str | None = None  # the executor flank.yml names for it, when not "local" (set before it starts)
    memory_mb: int | None = None
    cpus: int | None = None
    artifacts: list[ArtifactEntry] | None = None
    artifact_warnings: list[str] | None = None
    artifacts_run: int | None = None  # up to date, files not found now: the earlier run that kept them
    queued_reason: str | None = None  # why its cluster still holds the job (while queued)
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
TASK_STATUS_VALUES = frozenset(status.value for status in TaskStatus)
_TASK_KNOWN = frozenset(_TASK_ALWAYS + _TASK_OPTIONAL)

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


def triggered_by_text(triggered_by: TriggeredBy | None) -> str | None:
    """'ada via web' for a run a person started (None for cron, a push, or an older record)."""
    if triggered_by is None or triggered_by.via not in PEOPLE_VIA:
        return None
    return f"{triggered_by.user or '?'} via {triggered_by.via}"


@dataclass
class RunRecord:
    """A run's record, run.json (see the format above). Built by `start_record`, finished by
    `finish`, `skip`, `not_started`, `stop`, `conclude` and `mark_interrupted`, written by `write_record`."""

    project: str
    pipeline: str
    run_id: int
    trigger: RunTrigger | str | None = RunTrigger.MANUAL  # a str only for a trigger a newer flank added
    status: RunStatus = RunStatus.RUNNING
    local: bool = False
    commit: Commit = field(default_factory=Commit)
    release: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    runner: Runner | None = None
    selection: Selection = field(default_factory=Selection)
    selected_tasks: list[str] | None = None  # None in records from before it was kept
    scheduled_at: str | None = None
    timezone: str | None = None
    concurrency: int | None = None
    tasks: dict[str, TaskResult] = field(default_factory=dict)  # topological order
    skipped_reason: str | None = None
    after_run: dict[str, str] = field(default_factory=dict)
    summary: str | None = None
    triggered_by: TriggeredBy | None = None  # who started it, from where (VIA)
    waiting_for: int | None = None  # the run it waits for (overlap: queue)
    error: str | None = None  # only when flank itself could not run or record the run
    # issue 23: every parameter's value (typed: str, int, float, bool; a date as YYYY-MM-DD), only when
    # the pipeline has params:, and those not at their default (what pages, notes and notifications show)
    params: dict[str, ParamValue] | None = None
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
        trigger = values.get("trigger")
        values["trigger"] = RunTrigger(trigger) if trigger in _TRIGGER_VALUES else trigger
        tasks = values.get("tasks")
        values["tasks"] = {str(n): TaskResult.from_json(t) for n, t in tasks.items()} if isinstance(tasks, dict) else {}
        values["commit"] = Commit.from_json(values.get("commit"))
        values["runner"] = Runner.from_json(values.get("runner"))
        values["selection"] = Selection.from_json(values.get("selection"))
        values["triggered_by"] = TriggeredBy.from_json(values.get("triggered_by"))
        if not isinstance(values.get("after_run"), dict):
            values["after_run"] = {}
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
            elif key in ("status", "trigger") and value is not None:
                value = str(value)
            elif key in ("commit", "runner", "selection") and value is not None:
                value = value.to_json()
            out[key] = value
        for key in _RUN_OPTIONAL:
            value = getattr(self, key)
            if value is not None:
                out[key] = value.to_json() if isinstance(value, TriggeredBy) else value
        out.update((key, value) for key, value in self.extra.items() if key not in out)
        return out

    # What pages show of its scope, as a history line says it ("partial", "selected" of "total" tasks).
    @property
    def partial(self) -> bool:
        return is_partial(self)

    @property
    def selected(self) -> int:
        return len(selected_tasks(self))

    @property
    def total(self) -> int:
        return len(self.tasks)


_RUN_KNOWN = frozenset(f.name for f in fields(RunRecord)) - {"extra"}
_TRIGGER_VALUES = frozenset(trigger.value for trigger in RunTrigger)


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def history_entry(record: RunRecord) -> dict[str, Any]:
    """The run's line in history.jsonl (also what the site lists for a run still going)."""
    return {
        "run_id": record.run_id,
        "status": str(record.status),
        "trigger": None if record.trigger is None else str(record.trigger),
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "duration_s": record.duration_s,
        "commit": record.commit.short,
        "summary": record.summary,
        "partial": is_partial(record),
        "selected": len(selected_tasks(record)),
        "total": len(record.tasks),
        **({"rerun_of": record.selection.rerun_of} if record.selection.rerun_of is not None else {}),
        **({"backfill": record.backfill} if record.backfill else {}),  # issue 23: the site groups by it
    }


def params_text(record: RunRecord) -> str:
    """issue 23: the run's parameters that were not at their default, as pages, notes and
    notifications show them ('n=7, model=glm'); empty for a run with the defaults only."""
    if not record.params:
        return ""
    from flank_ops.config.params import shown  # only a run with parameters: a push's redraw imports no params code

    return shown(record.params or {}, list(record.non_default_params or ()))


def is_partial(record: RunRecord) -> bool:
    """Did the run select only part of the pipeline (--task, --from, --rerun)?"""
    return record.selection.partial


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


# --- finishing a run: every way a record reaches its final status -------------


def finish(record: RunRecord, status: RunStatus, summary: str | None = None) -> None:
    """The run ends now with `status`: its end time and duration (computed here only), and the
    end time of tasks stopped without one."""
    record.status = status
    record.ended_at = now_iso()
    started, ended = parse_iso(record.started_at), parse_iso(record.ended_at)
    record.duration_s = round((ended - started).total_seconds(), 3) if started and ended else None
    for entry in record.tasks.values():
        if entry.status in STOPPED_TASK_STATUSES and entry.ended_at is None and entry.started_at is not None:
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
        elif t.status in STOPPED_TASK_STATUSES and len(stopped[t.status]) <= 2:
            text += f"; {name} {t.status}"
    for status, names in stopped.items():
        if len(names) > 2:  # a cancelled run of 9 tasks: counted, not listed one by one
            text += f"; {len(names)} {status}"
    return text


_STOPPED = (TaskStatus.INTERRUPTED, TaskStatus.CANCELLED)


def mark_disk_full(record: RunRecord, selected: list[str], run_dir: Path) -> None:
    """A failed run whose tasks met a full disk: the real outcome, said in the record."""
    record.error = f"disk full: no space left on the file system of {run_dir}"
    record.summary = f"disk full; {record.summary}"
    for name in selected:
        entry = record.tasks[name]
        if entry.error and not entry.error.startswith("disk full"):
            entry.error = f"disk full: {entry.error}"
