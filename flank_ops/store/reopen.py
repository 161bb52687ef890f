"""issue 26 item 6: an interrupted run goes on (`flank run --resume N`): its record is running again.

A run interrupted while its cluster jobs went on is taken over by a new runner, which finishes
the same run N (its record, note and page). The interrupted record was final: it has its history
line and the pipeline's state counts it as finished. Reopening withdraws that line (history.jsonl
rewritten without it, under the run-id lock, as `flank prune` rewrites it; rare, so the cost of
one full rewrite is fine) and drops the state file, which the next read rebuilds from the history
and the run folders (the run is listed as running again). The final record writes its line anew.
"""

from __future__ import annotations

import json
from pathlib import Path

from flank_ops.fileio import atomic_write_text, locked
from flank_ops.paths import ProjectPaths
from flank_ops.store import records
from flank_ops.store.model import RunRecord, RunStatus, TaskStatus, selected_tasks


def tasks_left(record: RunRecord) -> list[str]:
    """The selected tasks of the run that did not end well (what a resume runs), in its order."""
    return [n for n in selected_tasks(record) if not record.tasks[n].ok]


def reopen(paths: ProjectPaths, run_dir: Path, record: RunRecord) -> list[str]:
    """Make the interrupted `record` running again, by this process: its tasks not done are pending
    (their launchers re-attach to live jobs), its history line withdrawn. Returns those tasks."""
    left = tasks_left(record)
    for name in left:
        entry = record.tasks[name]
        entry.status = TaskStatus.PENDING
        entry.ended_at = entry.exit_code = entry.error = None
    record.status = RunStatus.RUNNING
    record.ended_at = record.duration_s = record.summary = None
    record.runner = records.runner_identity()
    record.waiting_for = None
    records.reserve_space(run_dir, records.reserve_size(record))
    records.write_record(run_dir, record)
    withdraw_history_line(paths, record.pipeline, record.run_id)
    return left


def withdraw_history_line(paths: ProjectPaths, pipeline: str, run_id: int) -> None:
    """history.jsonl without run `run_id`'s line; the pipeline's state is rebuilt at its next read."""
    runs = paths.runs_dir(pipeline)
    history = runs / records.HISTORY_FILE
    with locked(paths.lock_file("run-id", pipeline)):
        try:
            lines = history.read_text(encoding="utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            lines = []
        kept = [line for line in lines if not _is_line_of(line, run_id)]
        if len(kept) != len(lines):
            atomic_write_text(history, "".join(kept))
        (runs / records.STATE_FILE).unlink(missing_ok=True)  # rebuilt from the history and the run folders


def replace_final(paths: ProjectPaths, run_dir: Path, record: RunRecord) -> None:
    """A final record changed after the fact (an interrupted run whose left jobs `flank cancel`
    cancelled): written, with its history line in place of the old one."""
    withdraw_history_line(paths, record.pipeline, record.run_id)
    records.write_record(run_dir, record)
    records.append_history(paths, record)


def _is_line_of(line: str, run_id: int) -> bool:
    if str(run_id) not in line:
        return False  # most lines: no parse
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.get("run_id") == run_id
