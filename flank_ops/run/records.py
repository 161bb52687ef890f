"""The run record: the one definition of what a run leaves on disk.

    runs/<pipeline>/
      last_id                 the last run id handed out (ids are sequential per pipeline)
      history.jsonl           one summary line per finished run, appended (the site's index)
      <run-id>/
        run.json              the run record (below), replaced atomically, readable mid-run
        tasks/<task>.json     per-task results written by the task launcher as tasks go
        logs/<task>.log       each task's stdout+stderr, as produced (secrets masked)

run.json (format 1), plain JSON a person can read:
    {
      "format": 1,
      "project": "demo", "pipeline": "nightly", "run_id": 17,
      "trigger": "schedule" | "push" | "manual" | "rerun",
      "status": "running" | "success" | "failed" | "interrupted" | "skipped" | "cancelled",
      "commit": {"sha": "...", "short": "3f2a1c0", "message": "...", "author": "...", "date": "..."},
      "release": "/abs/path/releases/<sha>",
      "started_at": "2026-11-24T02:00:00.000+00:00", "ended_at": null | "...",
      "duration_s": null | 872.4,
      "runner": {"pid": 1234, "host": "vm", "boot_id": "...", "pid_start": 123456},
      "selection": {"task": null, "from": null, "rerun_of": null},
      "concurrency": 2,
      "tasks": {            # topological order
        "extract": {"status": "success", "needs": [], "attempts": 1,
                    "started_at": "...", "ended_at": "...", "duration_s": 1.2,
                    "exit_code": 0, "peak_rss_kb": 51234, "log": "logs/extract.log"},
        ...
      },
      "skipped_reason": null | "nightly #16 was still running (overlap: skip)",
      "after_run": {"note": "ok" | "error: ...", "site": ..., "notify": ..., "s3": ...},
      "summary": "3/4 ok; model failed (exit 1, 3 attempts)"
    }

Task statuses: pending, running, success, failed, upstream_failed, timed_out, skipped,
interrupted. "skipped" = not selected by --task/--from/--rerun; "interrupted" = it was
running when the runner died. A task entry may carry "error": "..." when flank itself
(not the task) explains why it has no result.
A "skipped" run records a trigger refused by `overlap: skip` (the spec's run
statuses plus this one, so skips are recorded, not silent).

Life of a record: the runner writes it with status "running" as soon as it has a run
id (while it waits under `overlap: queue`, "waiting_for" names the run it waits for),
merges tasks/*.json into it as tasks change, then writes the final status and appends
the history line. A runner that died leaves "running": `reconcile` (called by
`flank status`, `flank run` and the site build) marks such runs "interrupted".
"""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flank_ops.fileio import append_json_line, atomic_write_text, locked, read_json_lines
from flank_ops.paths import ProjectPaths

FORMAT = 1
RUN_STATUSES = ("running", "success", "failed", "interrupted", "skipped", "cancelled")
TASK_STATUSES = (
    "pending", "running", "success", "failed", "upstream_failed", "timed_out", "skipped", "interrupted",
)
FAILED_TASK_STATUSES = ("failed", "timed_out", "upstream_failed", "interrupted")
FINISHED_RUN_STATUSES = ("success", "failed", "interrupted", "skipped", "cancelled")

RECORD_FILE = "run.json"
HISTORY_FILE = "history.jsonl"
LAST_ID_FILE = "last_id"


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


def allocate_run_id(paths: ProjectPaths, pipeline: str) -> tuple[int, Path]:
    """Hand out the next sequential run id and create its folder (safe across processes)."""
    runs = paths.runs_dir(pipeline)
    runs.mkdir(parents=True, exist_ok=True)
    with locked(paths.lock_file(f"run-id-{pipeline}")):
        counter = runs / LAST_ID_FILE
        try:
            last = int(counter.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            last = max(list_run_ids(paths, pipeline), default=0)
        run_id = last + 1
        while (runs / str(run_id)).exists():
            run_id += 1
        (runs / str(run_id)).mkdir()
        atomic_write_text(counter, f"{run_id}\n")
    return run_id, runs / str(run_id)


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
    }


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
_TASK_FIELDS = ("status", "attempts", "exit_code", "started_at", "ended_at", "duration_s", "peak_rss_kb", "error")


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
    with locked(paths.lock_file(f"reconcile-{pipeline}")):
        finished = {e["run_id"] for e in read_history(paths, pipeline)}
        for run_id in list_run_ids(paths, pipeline):
            if run_id in finished:
                continue
            run_dir = paths.run_dir(pipeline, run_id)
            try:
                record = read_record(run_dir)
            except (OSError, ValueError):
                continue  # just allocated (no record yet) or unreadable: nothing safe to do
            if runner_alive(record.get("runner")):
                continue
            if record.get("status") == "running":
                mark_interrupted(run_dir, record)
                marked.append(run_id)
            elif record.get("status") not in FINISHED_RUN_STATUSES:
                continue
            append_history(paths, record)
    if marked:  # their pages must stop saying "running" (and refreshing) now
        from flank_ops.site.build import redraw_runs

        redraw_runs(paths, pipeline, marked)
    return marked


def mark_interrupted(run_dir: Path, record: dict[str, Any]) -> None:
    merge_task_results(run_dir, record)
    ended = now_iso()
    for entry in record.get("tasks", {}).values():
        if entry.get("status") == "running":
            entry["status"] = "interrupted"
            entry["ended_at"] = entry.get("ended_at") or ended
    record["status"] = "interrupted"
    record.pop("waiting_for", None)
    record["ended_at"] = ended
    started = parse_iso(record.get("started_at"))
    if started is not None:
        record["duration_s"] = round((parse_iso(ended) - started).total_seconds(), 3)
    record["summary"] = "interrupted: the runner stopped before the run finished"
    write_record(run_dir, record)
