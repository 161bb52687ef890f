"""The pipeline page's grid: its tasks (rows, in topological order) x its newest runs (columns, newest first).

Airflow's grid view: each cell is one task's status in one run, linking to that
task's log, so "model has failed three nights running" is one look. It reads the
run records of the newest GRID_RUNS runs only: the same cost with 30 or 10,000
past runs. Skipped triggers ran no task, so they take no column.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from flank_ops.config.model import instance_parts
from flank_ops.fileio import atomic_write_bytes
from flank_ops.paths import ProjectPaths
from flank_ops.site import layout
from flank_ops.site.data import Warnings, load_run
from flank_ops.store import records

GRID_RUNS = 30


class GridRun(NamedTuple):
    run_id: int
    status: str
    started_at: str | None


class GridCell(NamedTuple):
    run_id: int
    status: str | None  # None: the task was not part of this run (added later, or the record is gone)
    has_log: bool  # link to the log page (the site writes one only for a non-empty log), else the run page


class GridRow(NamedTuple):
    task: str
    cells: list[GridCell]  # one per GridRun, same order


class TaskGrid(NamedTuple):
    runs: list[GridRun]  # newest first
    rows: list[GridRow]


def _log_sizes(run_dir: Path) -> dict[str, int]:
    """Sizes of a run's task logs (logs/<task>.log), from one directory listing."""
    try:
        with os.scandir(records.task_log_path(run_dir, "x").parent) as entries:
            return {e.name: e.stat().st_size for e in entries if e.name.endswith(".log")}
    except OSError:
        return {}


def task_grid(
    paths: ProjectPaths, pipeline: str, recent: Sequence[dict[str, Any]], task_order: Sequence[str]
) -> TaskGrid | None:
    """The grid from `recent` (history entries, newest first); tasks in `task_order`, then any
    task the runs had that the deployed flank.yml no longer has. None when there is no run."""

    runs = [r for r in recent if r.get("status") != "skipped" and isinstance(r.get("run_id"), int)][:GRID_RUNS]
    if not runs:
        return None
    per_run = [_column(paths, pipeline, entry["run_id"]) for entry in runs]
    seen: dict[str, None] = {}
    for cells in per_run:
        seen.update(dict.fromkeys(cells))
    # a matrix_from: task is one name in flank.yml and its instances in the runs: they take its place
    instances: dict[str, list[str]] = {}
    for name in seen:
        parts = instance_parts(name)
        if parts is not None:
            instances.setdefault(parts[0], []).append(name)
    tasks: dict[str, None] = {}
    for name in task_order:
        if name not in seen and name in instances:
            tasks.update(dict.fromkeys(instances[name]))
        else:
            tasks[name] = None
    tasks.update(seen)
    rows = [
        GridRow(name, [cells.get(name) or GridCell(r["run_id"], None, False) for r, cells in zip(runs, per_run)])
        for name in tasks
    ]
    return TaskGrid([GridRun(r["run_id"], str(r.get("status")), r.get("started_at")) for r in runs], rows)


def _column(paths: ProjectPaths, pipeline: str, run_id: int) -> dict[str, GridCell]:
    """One run's cells. A finished run's never change: they are kept (paths.Home.grid_columns_dir)
    and read back while its run.json stays the same file, so a page of a big pipeline does not
    read its 30 newest records whole on every draw."""
    run_dir = paths.run_dir(pipeline, run_id)
    kept = paths.home.grid_columns_dir / layout.file_name(paths.name) / layout.file_name(pipeline) / f"{run_id}.json"
    try:
        st = os.stat(records.record_path(run_dir))
        key = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        key = None
    if key is not None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            data = json.loads(kept.read_bytes())
            if data["key"] == key:
                return {
                    str(name): GridCell(run_id, str(status), bool(has_log)) for name, status, has_log in data["cells"]
                }
    record = load_run(paths, pipeline, run_id, Warnings())  # a damaged record is reported by its own page
    cells: dict[str, GridCell] = {}
    sizes = _log_sizes(run_dir) if record else {}
    for name, task in ((record or {}).get("tasks") or {}).items():
        task = task if isinstance(task, dict) else {}
        name = str(name)
        status = str(task.get("status") or "pending")
        if "/" not in name and task.get("log") in (None, "", f"logs/{name}.log"):
            has_log = sizes.get(f"{name}.log", 0) > 0  # the launcher's layout: one listing per run
        else:
            try:
                has_log = records.task_log_file(run_dir, name, task).stat().st_size > 0
            except OSError:
                has_log = False
        cells[name] = GridCell(run_id, status, has_log)
    if key is not None and record is not None and record.get("status") in records.FINISHED_RUN_STATUSES:
        column = {"key": key, "cells": [[c_name, c.status, c.has_log] for c_name, c in cells.items()]}
        with contextlib.suppress(OSError):  # only a shortcut
            atomic_write_bytes(kept, json.dumps(column, separators=(",", ":")).encode(), durable=False)
    return cells
