"""The run record: the one definition of what a run leaves on disk.

    runs/<pipeline>/
      last_id                 the last run id handed out (ids are sequential per pipeline)
      history.jsonl           one summary line per finished run, appended (the site's index)
      <run-id>/
        run.json              the run record (below), replaced atomically, readable mid-run
        .reserve              disk space held while the run goes, freed to write its final record
        tasks/<task>.json     per-task results written by the task launcher as tasks go
        logs/<task>.log       each task's stdout+stderr, as produced (secrets masked)
        logs/<task>.log.times when each attempt and line of the log began (run/task_exec.py says how)
        cancel                present once `flank cancel` asked the run to stop (run/cancel.py)

run.json (format 1), plain JSON a person can read:
    {
      "format": 1,
      "project": "demo", "pipeline": "nightly", "run_id": 17,
      "trigger": "schedule" | "push" | "manual" | "rerun" | "catchup",
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
                    "exit_code": 0, "peak_rss_kb": 51234, "cpu_s": 1.1, "log": "logs/extract.log"},
        ...
      },
      "skipped_reason": null | "nightly #16 was still running (overlap: skip)",
      "after_run": {"note": "ok" | "error: ...", "site": ..., "notify": ..., "s3": ...},
      "summary": "3/4 ok; model failed (exit 1, 3 attempts)",
      "error": "disk full: ..."    # only when flank itself could not run or record the run
    }

A run is *partial* when its selection has any of task/from/rerun_of set; its history
line says so ("partial", and "selected" of "total" tasks), so a partial success is
never mistaken for the whole pipeline's.

Task statuses: pending, running, success, failed, upstream_failed, timed_out, skipped,
interrupted, cancelled. "skipped" = not selected by --task/--from/--rerun; "interrupted" = it was
running when the runner died; "cancelled" = running or waiting when `flank cancel` stopped the run. A task entry may carry "error": "..." when flank itself
(not the task) explains why it has no result.
A "skipped" run records a trigger refused by `overlap: skip` (the spec's run
statuses plus this one, so skips are recorded, not silent).

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
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flank_ops.errors import UserError
from flank_ops.fileio import append_json_line, atomic_write_text, locked, read_json_lines
from flank_ops.paths import ProjectPaths

FORMAT = 1
RUN_STATUSES = ("running", "success", "failed", "interrupted", "skipped", "cancelled")
TASK_STATUSES = (
    "pending", "running", "success", "failed", "upstream_failed", "timed_out", "skipped", "interrupted", "cancelled",
)
FAILED_TASK_STATUSES = ("failed", "timed_out", "upstream_failed", "interrupted")
FINISHED_RUN_STATUSES = ("success", "failed", "interrupted", "skipped", "cancelled")

RECORD_FILE = "run.json"
HISTORY_FILE = "history.jsonl"
LAST_ID_FILE = "last_id"
RESERVE_FILE = ".reserve"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def record_path(run_dir: Path) -> Path:
    return Path(run_dir) / RECORD_FILE


def task_result_path(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / "tasks" / f"{task}.json"


def task_log_path(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / "logs" / f"{task}.log"


def task_log_file(run_dir: Path, name: str, task: dict[str, Any]) -> Path:
    """The log of task `name` as its record entry names it; a record can only point inside its own
    run folder (anything else means the launcher's own layout). Every reader of logs asks this."""
    rel = task.get("log")
    if rel == f"logs/{name}.log" and "/" not in name and name not in (".", ".."):
        return Path(run_dir) / rel  # the launcher's own layout: no need to resolve symlinks
    if isinstance(rel, str) and rel:
        candidate = (Path(run_dir) / rel).resolve()
        if candidate.is_relative_to(Path(run_dir).resolve()):
            return candidate
    return task_log_path(run_dir, name)


def allocate_run_id(paths: ProjectPaths, pipeline: str) -> tuple[int, Path]:
    """Hand out the next sequential run id and create its folder (safe across processes)."""
    runs = paths.runs_dir(pipeline)
    runs.mkdir(parents=True, exist_ok=True)
    with locked(paths.lock_file("run-id", pipeline)):
        run_id = _next_run_id(paths, pipeline)
        (runs / str(run_id)).mkdir()
        atomic_write_text(runs / LAST_ID_FILE, f"{run_id}\n")
    return run_id, runs / str(run_id)


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


def create_run(paths: ProjectPaths, pipeline: str,
               build: Callable[[int], dict[str, Any]]) -> tuple[int, Path, dict[str, Any]]:
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
                atomic_write_text(counter, f"{run_id}\n")  # last: a failure above leaves the id unused
            except BaseException:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
    except OSError as exc:
        raise UserError(f"cannot start a run of {pipeline}: {disk_error(exc)} in {runs}",
                        "free some disk space, then run it again" if is_disk_full(exc)
                        else "check that folder's permissions, then run it again") from None
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


def reserve_size(record: dict[str, Any]) -> int:
    """Room for the final record (tasks gain times, exit codes, errors), written beside the
    current one (atomic replace), plus the history line and the after-run outcomes."""
    now = len(format_record(record).encode("utf-8"))
    final = now + 400 * len(record.get("tasks") or {}) + 4096
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


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    record["format"] = FORMAT
    atomic_write_text(record_path(run_dir), format_record(record))


def format_record(record: dict[str, Any]) -> str:
    """run.json's text: one field a line and one task a line — as readable as an
    indented dump, and written by json's C encoder (an indented dump of a
    500-task record took 30 ms, rewritten on every task change)."""
    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = []
    for key, value in record.items():
        if key == "tasks" and isinstance(value, dict) and value:
            tasks = [f"    {dump(name)}: {dump(entry)}" for name, entry in value.items()]
            lines.append('  "tasks": {\n' + ",\n".join(tasks) + "\n  }")
        else:
            lines.append(f"  {dump(key)}: {dump(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def read_record(run_dir: Path) -> dict[str, Any]:
    """The record as stored. Raises OSError / ValueError for a missing or corrupt file."""
    with open(record_path(run_dir), encoding="utf-8") as f:
        record = json.load(f)
    if not isinstance(record, dict) or "run_id" not in record:
        raise ValueError(f"{record_path(run_dir)} is not a flank run record")
    return record


def append_history(paths: ProjectPaths, record: dict[str, Any]) -> None:
    """Add a finished run's one-line summary to the pipeline's history index."""
    append_json_line(paths.runs_dir(record["pipeline"]) / HISTORY_FILE, history_entry(record))


def history_entry(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": record["run_id"],
        "status": record["status"],
        "trigger": record.get("trigger"),
        "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"),
        "duration_s": record.get("duration_s"),
        "commit": (record.get("commit") or {}).get("short"),
        "summary": record.get("summary"),
        "partial": is_partial(record),
        "selected": len(selected_tasks(record)),
        "total": len(record.get("tasks") or {}),
    }


def is_partial(record: dict[str, Any]) -> bool:
    """Did the run select only part of the pipeline (--task, --from, --rerun)?"""
    selection = record.get("selection") or {}
    return any(selection.get(key) is not None for key in ("task", "from", "rerun_of"))


def selected_tasks(record: dict[str, Any]) -> list[str]:
    """The tasks the run's selection chose, in the record's (topological) order."""
    tasks = record.get("tasks") or {}
    chosen = record.get("selected_tasks")
    if isinstance(chosen, list):
        wanted = set(chosen)
        return [n for n in tasks if n in wanted]
    # Records from before "selected_tasks": a task not selected was marked "skipped"
    # (as was every task of a skipped run, which then stood for its whole pipeline).
    if record.get("status") == "skipped" and not is_partial(record):
        return list(tasks)
    return [n for n, t in tasks.items() if (t or {}).get("status") != "skipped"]


def last_full_run(paths: ProjectPaths, pipeline: str, before: int | None = None) -> dict[str, Any] | None:
    """The history entry of the newest run that ran the whole pipeline (skipped triggers do not
    count), older than run `before` when given; None when there is none."""
    entries = list(read_history(paths, pipeline))
    for entry in sorted(entries, key=lambda e: e["run_id"], reverse=True):
        if before is not None and entry["run_id"] >= before:
            continue
        if entry.get("status") == "skipped":
            continue
        partial = entry.get("partial")
        if partial is None:  # a line written before history lines said so
            try:
                partial = is_partial(read_record(paths.run_dir(pipeline, entry["run_id"])))
            except (OSError, ValueError):
                continue
        if not partial:
            return entry
    return None


def read_history(paths: ProjectPaths, pipeline: str) -> Iterator[dict[str, Any]]:
    """Finished runs' summaries in the order they finished (skips damaged lines)."""
    yield from read_json_lines(paths.runs_dir(pipeline) / HISTORY_FILE, "run_id")


# --- liveness: a runner that died leaves "running"; we detect and mark it ----

def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _pid_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (guards against pid reuse)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 22; the command name (field 2) may contain spaces, so split after ')'
    return int(stat.rsplit(")", 1)[1].split()[19])


def runner_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "boot_id": _boot_id(), "pid_start": _pid_start(pid)}


def runner_alive(runner: dict[str, Any] | None) -> bool:
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

# Fields of a launcher's tasks/<task>.json copied into run.json's task entry.
_TASK_FIELDS = ("status", "attempts", "exit_code", "started_at", "ended_at", "duration_s", "peak_rss_kb", "cpu_s",
                "error")


_SETTLED = ("success", "failed", "timed_out")


def read_task_result(run_dir: Path, task: str) -> dict[str, Any] | None:
    """The launcher's result for one task, or None (not started, or caught mid-write)."""
    try:
        with open(task_result_path(run_dir, task), encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("status") not in TASK_STATUSES:
        return None
    if "attempts" not in result and "attempt" in result:
        result["attempts"] = result["attempt"]
    return result


def merge_task_results(run_dir: Path, record: dict[str, Any], names: list[str] | None = None) -> list[str]:
    """Copy tasks/<task>.json into record["tasks"]; returns the names whose entry changed."""
    changed = []
    for name in names if names is not None else list(record.get("tasks", {})):
        if record["tasks"][name].get("status") in _SETTLED:
            continue  # the launcher writes a final result once: nothing more to read
        result = read_task_result(run_dir, name)
        if result is None:
            continue
        entry = record["tasks"][name]
        update = {k: result[k] for k in _TASK_FIELDS if k in result}
        if any(entry.get(k) != v for k, v in update.items()):
            entry.update(update)
            changed.append(name)
    return changed


# --- finding runs ------------------------------------------------------------

def last_run_id(paths: ProjectPaths, pipeline: str) -> int | None:
    return max(list_run_ids(paths, pipeline), default=None)


def find_running(paths: ProjectPaths, pipeline: str) -> list[dict[str, Any]]:
    """Records of the pipeline's runs that are not finished yet (live runners only)."""
    finished = {e["run_id"] for e in read_history(paths, pipeline)}
    out = []
    for run_id in list_run_ids(paths, pipeline):
        if run_id in finished:
            continue
        try:
            record = read_record(paths.run_dir(pipeline, run_id))
        except (OSError, ValueError):
            continue
        if record.get("status") == "running" and runner_alive(record.get("runner")):
            out.append(record)
    return out


def reconcile(paths: ProjectPaths, pipeline: str) -> list[int]:
    """Mark runs whose runner died (SIGKILL, reboot) as interrupted; returns their ids.

    Only runs missing from history.jsonl are looked at, so this stays cheap with
    thousands of past runs. A finished record whose history line was lost (the
    runner died between the two writes) gets its history line back.
    """
    if not paths.runs_dir(pipeline).is_dir():
        return []
    marked: list[int] = []
    with locked(paths.lock_file("reconcile", pipeline)):
        finished = {e["run_id"] for e in read_history(paths, pipeline)}
        for run_id in list_run_ids(paths, pipeline):
            if run_id in finished:
                continue
            run_dir = paths.run_dir(pipeline, run_id)
            try:
                record = read_record(run_dir)
            except FileNotFoundError:
                _drop_if_empty(paths, pipeline, run_dir)
                continue
            except (OSError, ValueError):
                continue  # unreadable: nothing safe to do
            if runner_alive(record.get("runner")):
                continue
            try:
                if record.get("status") == "running":
                    mark_interrupted(run_dir, record)
                    marked.append(run_id)
                elif record.get("status") not in FINISHED_RUN_STATUSES:
                    continue
                release_space(run_dir)
                append_history(paths, record)
            except OSError:
                continue  # a full disk: the run stays as it is until there is room to record it
    if marked:  # their pages must stop saying "running" (and refreshing) now
        from flank_ops.site.build import redraw_runs

        redraw_runs(paths, pipeline, marked)
    return marked


def _drop_if_empty(paths: ProjectPaths, pipeline: str, run_dir: Path) -> None:
    """Remove a run folder that holds nothing (at most a reserve) and no record: what a run that
    could not write its first record left before create_run did it all or nothing. Under the
    run-id lock, as create_run writes the first record under it: a folder being born is never seen."""
    try:
        with locked(paths.lock_file("run-id", pipeline)):
            if {p.name for p in run_dir.iterdir()} <= {RESERVE_FILE}:
                shutil.rmtree(run_dir)
    except OSError:
        pass


def mark_interrupted(run_dir: Path, record: dict[str, Any]) -> None:
    merge_task_results(run_dir, record)
    ended = now_iso()
    for entry in record.get("tasks", {}).values():
        if entry.get("status") == "running":
            entry["status"] = "interrupted"
            entry["ended_at"] = entry.get("ended_at") or ended
    record["status"] = "interrupted"
    waited_for = record.pop("waiting_for", None)
    record["ended_at"] = ended
    started, ended_dt = parse_iso(record.get("started_at")), parse_iso(ended)
    if started is not None and ended_dt is not None:
        record["duration_s"] = round((ended_dt - started).total_seconds(), 3)
    if waited_for is not None:  # queued (overlap: queue): not a task of it ever ran
        record["summary"] = f"interrupted: the runner stopped while it waited for #{waited_for}; no task ran"
    else:
        record["summary"] = "interrupted: the runner stopped before the run finished"
    release_space(run_dir)  # the dead runner's reserve: room for this very write
    write_record(run_dir, record)
