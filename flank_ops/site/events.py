"""Live pages over Server-Sent Events (issue 23 item 2), answered by `flank serve --actions`.

    GET /api/events/run?project=P&pipeline=X&run=N
        event "run": {"status", "tasks": {name: {"status", "took", "exit"}}, "live": {name: html}}
                     whenever the record or a running task's last lines change; then event "end".
    GET /api/events/log?project=P&pipeline=X&run=N&task=T&from=BYTES
        event "lines": [html, ...] (whole lines, rendered as the log page renders them), its id the byte
                       offset after them; then event "end" once the task is over and its log read.

A browser's EventSource reconnects by itself and sends Last-Event-ID: a log resumes at that
offset (no line twice, none lost); a run's state is sent afresh. Both read the same files the
static pages are drawn from (run.json, which the runner refreshes every half second, and the
task logs), so a viewer adds no work to the run itself. Every status is sent with the icon and
word the site draws it with (site/fmt.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

from flank_ops.errors import UserError
from flank_ops.paths import Home, ProjectPaths
from flank_ops.site import fmt, logs
from flank_ops.store import records
from flank_ops.store.model import LIVE_TASK_STATUSES, RunRecord, RunStatus, TaskStatus

POLL_S = 0.5  # how often the files are looked at
HEARTBEAT_S = 10.0  # a comment line this often keeps proxies (and our own write timeout) from closing it
MAX_CHUNK = 256 * 1024  # log bytes read per look
RETRY_MS = 2000


class Event(NamedTuple):
    name: str
    data: str  # one line of JSON
    id: str | None = None

    def encode(self) -> bytes:
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.name}\ndata: {self.data}\n\n".encode()


class StreamError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status_view(status: str | None) -> dict[str, str]:
    value = str(status or "unknown")
    return {
        "value": value,
        "key": fmt.status_key(value),
        "icon": fmt.status_icon(value),
        "label": fmt.status_label(value),
    }


def _target(home: Home, query: dict[str, str]) -> tuple[ProjectPaths, str, int]:
    try:
        paths = home.project(query.get("project", "")).require()
    except UserError as exc:
        raise StreamError(404, exc.message) from None
    pipeline = query.get("pipeline", "")
    if pipeline not in paths.pipelines_with_runs():
        raise StreamError(404, f"no runs of {pipeline!r} in project {paths.name!r}")
    run = query.get("run", "")
    if not run.isdigit() or not paths.run_dir(pipeline, int(run)).is_dir():
        raise StreamError(404, f"no run {run!r} of {pipeline}")
    return paths, pipeline, int(run)


def _read(run_dir: Path, names: list[str] | None = None) -> RunRecord | None:
    """The run as it is now (records.current: the launchers' results of `names`, default all, merged
    in; a runner that died counts as interrupted), or None while it is being replaced or gone."""
    try:
        return records.current(run_dir, names=names)
    except (OSError, ValueError):
        return None  # being replaced, or gone: look again


def _final_status(record: RunRecord) -> str | None:
    """The run's status once it is over."""
    return None if record.status == RunStatus.RUNNING else str(record.status)


def _run_state(run_dir: Path, record: RunRecord) -> dict[str, Any]:
    tasks = {
        name: {
            "status": status_view(t.status),
            "took": fmt.fmt_duration(t.duration_s),
            "exit": "–" if t.exit_code is None else str(t.exit_code),
        }
        for name, t in record.tasks.items()
    }
    live = {}
    for name, t in record.tasks.items():
        if t.status == TaskStatus.RUNNING:
            tail = logs.log_excerpt(records.task_log_file(run_dir, name, t), logs.LIVE_LINES)
            if tail.exists and tail.lines_shown:
                live[name] = str(tail.html)
    return {"status": status_view(record.status), "tasks": tasks, "live": live}


# A run's state as last read, shared by all its viewers: a hundred open pages cost one read per look.
_looked: dict[Path, tuple[float, str | None, str | None]] = {}


def _look(run_dir: Path) -> tuple[str | None, str | None]:
    """(the run's state as JSON, its final status or None), read at most once per POLL_S/2."""
    now = time.monotonic()
    seen = _looked.get(run_dir)
    if seen is not None and now - seen[0] < POLL_S / 2:
        return seen[1], seen[2]
    record = _read(run_dir)  # the page says a task ended when `--follow` does: both ask records.current
    if record is None:
        return None, None
    state = json.dumps(_run_state(run_dir, record), separators=(",", ":"))
    final = _final_status(record)
    for old in [d for d, (t, _, _) in _looked.items() if now - t > 60]:
        del _looked[old]
    _looked[run_dir] = (now, state, final)
    return state, final


async def run_events(home: Home, query: dict[str, str], last_id: str | None) -> AsyncIterator[Event]:
    paths, pipeline, run_id = _target(home, query)
    run_dir = paths.run_dir(pipeline, run_id)
    seq = int(last_id) if last_id and last_id.isdigit() else 0
    sent: str | None = None
    beat = time.monotonic()
    while True:
        state, final = _look(run_dir)
        if state is not None:
            if state != sent:
                sent, seq, beat = state, seq + 1, time.monotonic()
                yield Event("run", state, str(seq))
            if final is not None:
                yield Event("end", json.dumps({"status": status_view(final)}), str(seq))
                return
        if time.monotonic() - beat > HEARTBEAT_S:
            beat = time.monotonic()
            yield Event("", "")  # a comment: keeps the connection open
        await asyncio.sleep(POLL_S)


def _task_status(run_dir: Path, task: str) -> str | None:
    record = _read(run_dir, [task])
    if record is None or task not in record.tasks:
        return None
    final = _final_status(record)
    status = record.tasks[task].status
    if final is not None and status in LIVE_TASK_STATUSES:
        return final  # its runner is gone: the task will not move again
    return str(status)


async def log_events(home: Home, query: dict[str, str], last_id: str | None) -> AsyncIterator[Event]:
    paths, pipeline, run_id = _target(home, query)
    run_dir = paths.run_dir(pipeline, run_id)
    task = query.get("task", "")
    record = _read(run_dir)
    if record is None or task not in record.tasks:
        raise StreamError(404, f"no task {task!r} in {pipeline} #{run_id}")
    log_file = records.task_log_file(run_dir, task, record.tasks[task])
    start = last_id if last_id and last_id.isdigit() else query.get("from", "")
    offset = int(start) if start.isdigit() else 0
    beat = time.monotonic()
    while True:
        status = _task_status(run_dir, task)  # before reading: what it wrote before ending is read below
        over = status is not None and status not in LIVE_TASK_STATUSES
        data = b""
        try:
            with open(log_file, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < offset:
                    offset = 0  # a new attempt's log replaced it
                f.seek(offset)
                data = f.read(MAX_CHUNK)
        except FileNotFoundError:
            size = 0
        whole = data[: data.rfind(b"\n") + 1] if not over or offset + len(data) < size else data
        if whole:
            offset += len(whole)
            lines = whole[:-1].split(b"\n") if whole.endswith(b"\n") else whole.split(b"\n")
            html = [str(h) for h in logs.render_log_lines(lines)]
            beat = time.monotonic()
            yield Event("lines", json.dumps(html, separators=(",", ":")), str(offset))
            continue  # more may be waiting
        if over:
            yield Event("end", json.dumps({"status": status_view(status)}), str(offset))
            return
        if time.monotonic() - beat > HEARTBEAT_S:
            beat = time.monotonic()
            yield Event("", "")
        await asyncio.sleep(POLL_S)


STREAMS = {"events/run": run_events, "events/log": log_events}


def encode(event: Event) -> bytes:
    return b": keep-alive\n\n" if not event.name else event.encode()
