"""`flank logs --follow`: print a task's output (or every task's, prefixed) as it is written,
until the task (or the run) ends.

Plain polling of the log files and records: it works the same for a run on this machine or
one on a cluster node writing to a shared FLANK_HOME, and costs a few small reads a second.
A runner that died is noticed (records.reconcile marks its run interrupted), so a follow
never waits forever.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from flank_ops.executors.cleanup import dead_run_hook
from flank_ops.paths import ProjectPaths
from flank_ops.store import records
from flank_ops.store.model import LIVE_TASK_STATUSES, RunRecord, RunStatus

POLL_S = 0.2
CHUNK = 1 << 16


class _Tail:
    """New bytes of one log file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(CHUNK * 16)
        except FileNotFoundError:
            return b""
        self.offset += len(data)
        return data


def follow(
    paths: ProjectPaths,
    pipeline: str,
    run_id: int,
    task: str | None,
    out: BinaryIO,
    *,
    on_end: Callable[[RunRecord], None] | None = None,
) -> RunRecord:
    """Copy the log(s) to `out` until the task (or run) has ended; returns the final record."""
    run_dir = paths.run_dir(pipeline, run_id)
    record = records.read_record(run_dir)
    names = [task] if task is not None else list(record.tasks)
    tails = {n: _Tail(records.task_log_file(run_dir, n, record.tasks[n])) for n in names}
    partial: dict[str, bytes] = {n: b"" for n in names}

    def emit(name: str, data: bytes) -> None:
        if task is not None:
            out.write(data)
            return
        lines = (partial[name] + data).split(b"\n")
        partial[name] = lines.pop()  # an unfinished line waits for its end
        for line in lines:
            out.write(name.encode() + b" | " + line + b"\n")

    while True:
        try:
            # the launchers' own results merged in (fresher than run.json): the one source for both
            # whether a task has ended and the status then printed, so a finished task never reads running
            record = records.current(run_dir, names=names)
        except (OSError, ValueError):
            pass  # caught mid-replace: the next poll reads it
        if records.runner_gone(record):  # its runner died: recorded now, so what is printed is the record's
            records.reconcile(paths, pipeline, on_interrupted=dead_run_hook(paths))
            with contextlib.suppress(OSError, ValueError):
                record = records.read_record(run_dir)
        states = {n: record.tasks[n].status for n in names}
        # A task has ended when its result says so; a run only when its record does (its status is
        # the runner's to decide, after the last task): what is printed then is what ended it.
        tasks_done = task is not None and all(s not in LIVE_TASK_STATUSES for s in states.values())
        done = tasks_done or record.status != RunStatus.RUNNING
        for name, tail in tails.items():  # read after the states: nothing written before the end is lost
            data = tail.read()
            while data:
                emit(name, data)
                data = tail.read()
        out.flush()
        if done:
            for name in names:
                if partial[name]:
                    out.write(name.encode() + b" | " + partial[name] + b"\n")
                    partial[name] = b""
            out.flush()
            if on_end is not None:
                on_end(record)
            return record
        time.sleep(POLL_S)
