"""The run store: the files a run leaves on disk, and the one place that reads, writes and locks them.

The record itself (what a run is: `RunRecord`, its statuses and nested shapes) is store/model.py;
this module knows the files: run ids and their disk reserve, atomic writes, the history index,
the pipeline's state, runner liveness, reconcile, and `current` (a record as it is now).

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
    "runs_on": "slurm"|"batch"   the executor flank.yml names for it (issue 14), known before it starts
    "memory_mb": 4096, "cpus": 2  the resources it declared (issue 14)
    "artifacts": [{"path", "size", "kept", "note"}], "artifact_warnings": ["..."]  (issue 11)
    "artifacts_run": 41           up to date, and files of its `artifacts:` are not there now (they went
                                  with an older release): the earlier run that ran it and kept them
A launcher's tasks/<task>.json carries the same keys plus its own bookkeeping ("task",
"attempt", "pid"); every other key of it reaches run.json (`merge_task_results`), and a key this
version does not know is kept as it is (`extra`) in run.json and tasks alike, so records written
by a newer flank survive being rewritten by an older one.

In Python the record is a `RunRecord` (store/model.py) holding `TaskResult`s: read by `read_record`,
built by `start_record` (a run) or `finished_record` (a record of a run that is over, for benches and
tests), finished by the model's `finish`, `skip`, `not_started`, `stop`, `conclude` and here by
`mark_interrupted`, and written by `write_record`. `current` is the record as it is now: a running
run's launcher results merged in and, when its runner died, "interrupted" (in memory; only
`reconcile` writes that down): what the site, `flank logs --follow`, `flank cancel` and the deploy's
check of releases in use read.

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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from flank_ops.clock import now_iso
from flank_ops.errors import UserError
from flank_ops.fileio import append_json_line, atomic_write_text, locked, read_json_lines, read_small_file
from flank_ops.paths import ProjectPaths
from flank_ops.store.model import (
    FORMAT,
    LAUNCHER_ONLY_KEYS,
    OUTCOME_RUN_STATUSES,
    SETTLED_TASK_STATUSES,
    TASK_STATUS_VALUES,
    Commit,
    Runner,
    RunRecord,
    RunStatus,
    RunTrigger,
    Selection,
    TaskResult,
    TaskStatus,
    TriggeredBy,
    finish,
    history_entry,
    is_partial,
)
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


RECORD_FILE = "run.json"
HISTORY_FILE = "history.jsonl"
LAST_ID_FILE = "last_id"
STATE_FILE = "state.json"
RESERVE_FILE = ".reserve"


def start_record(
    *,
    project: str,
    pipeline: str,
    run_id: int,
    trigger: str,
    local: bool,
    commit: Mapping[str, str],
    release: str,
    selection: Mapping[str, str | int | None],
    tasks: list[tuple[str, list[str]]],
    selected: list[str],
    scheduled_at: str | None,
    timezone: str | None,
    concurrency: int,
    triggered_by: Mapping[str, str] | None = None,
) -> RunRecord:
    """A new run's record: "running", started now by this process; `tasks` = (name, needs) in
    topological order; those not `selected` are "skipped". `commit`, `selection` ({"task", "from",
    "rerun_of"}) and `triggered_by` ({"user", "via"}) as run.json has them."""
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
        trigger=RunTrigger(trigger),
        status=RunStatus.RUNNING,
        local=local,
        commit=Commit.from_json(commit),
        release=release,
        started_at=now_iso(),
        runner=runner_identity(),
        selection=Selection.from_json(selection),
        selected_tasks=[n for n in entries if n in chosen],
        scheduled_at=scheduled_at,
        timezone=timezone,
        concurrency=concurrency,
        tasks=entries,
        triggered_by=TriggeredBy.from_json(triggered_by),
    )


def record_path(run_dir: Path) -> Path:
    return Path(run_dir) / RECORD_FILE


def task_result_path(run_dir: Path, task: str) -> Path:
    return Path(_task_result_file(run_dir, task))


def _task_result_file(run_dir: Path | str, task: str) -> str:
    """task_result_path as a str: a run's end reads 500 results, and their Path objects alone took
    longer than the reads (issue 22)."""
    return os.path.join(run_dir, "tasks", f"{task}.json")


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
                record.format = FORMAT
                text = format_record(record)  # once: its size is what the reserve is made of
                reserve_space(run_dir, reserve_size(record, text))
                atomic_write_text(record_path(run_dir), text)
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


def reserve_size(record: RunRecord, text: str | None = None) -> int:
    """Room for the final record (tasks gain times, exit codes, errors), written beside the
    current one (atomic replace), plus the history line and the after-run outcomes. `text`: the
    record's run.json text, when the caller has it."""
    now = len((format_record(record) if text is None else text).encode("utf-8"))
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


def write_record(run_dir: Path, record: RunRecord, *, durable: bool = True) -> None:
    """run.json, replaced atomically (`durable=False`: no fsync, for data made in bulk by benches and tests)."""
    record.format = FORMAT
    atomic_write_text(record_path(run_dir), format_record(record), durable=durable)


_ENCODE = json.JSONEncoder(ensure_ascii=False).encode  # one encoder: json.dumps(…, ensure_ascii=False) made one a call


def format_record(record: RunRecord) -> str:
    """run.json's text: one field a line and one task a line — as readable as an
    indented dump, and written by json's C encoder (an indented dump of a
    500-task record took 30 ms, rewritten on every task change)."""

    dump = _ENCODE
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
        if entry.get("status") in OUTCOME_RUN_STATUSES:
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


def runner_identity() -> Runner:
    """This process, as a record names its runner."""
    pid = os.getpid()
    return Runner(pid=pid, host=os.uname().nodename, boot_id=_boot_id(), pid_start=_pid_start(pid))


def runner_alive(runner: Runner | None) -> bool:
    if runner is None:
        return False
    if runner.boot_id and runner.boot_id != _boot_id():
        return False  # the machine rebooted since
    if not isinstance(runner.pid, int):
        return False
    start = _pid_start(runner.pid)
    return start is not None and start == runner.pid_start


def current(run_dir: Path, record: RunRecord | None = None, names: list[str] | None = None) -> RunRecord:
    """The run as it is now: its record (read when not given) with, while it runs, the launchers'
    results merged in (of `names`, default all: fresher than run.json, which the runner rewrites a
    moment later) and, when its runner died, status "interrupted" — in memory only (`reconcile`
    writes that down; `runner_gone` tells the two apart). Every reader of a live run asks this: the
    site's pages, `flank logs --follow`, `flank cancel`, the releases in use. Raises OSError /
    ValueError as read_record does."""
    if record is None:
        record = read_record(run_dir)
    if record.status == RunStatus.RUNNING:
        if names is None or names:
            merge_task_results(run_dir, record, names)
        if record.runner is not None and not runner_alive(record.runner):
            record.status = RunStatus.INTERRUPTED  # not written: the page must not say "running" forever
    return record


def runner_gone(record: RunRecord) -> bool:
    """Is this `current`'s "interrupted" of a run whose runner died, not yet recorded by reconcile?
    (a recorded end always has its end time: model.finish)"""
    return record.status == RunStatus.INTERRUPTED and record.ended_at is None


# --- task results merged into the record -----------------------------------


def read_task_result(run_dir: Path, task: str) -> dict[str, Any] | None:
    """The launcher's result for one task (tasks/<task>.json as written), or None (not started,
    or caught mid-write)."""
    try:
        result = json.loads(read_small_file(_task_result_file(run_dir, task)))
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("status") not in TASK_STATUS_VALUES:
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
        if entry.update({k: v for k, v in result.items() if k not in LAUNCHER_ONLY_KEYS}):
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
