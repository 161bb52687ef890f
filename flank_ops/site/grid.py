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

from markupsafe import Markup, escape

from flank_ops.config.model import instance_parts
from flank_ops.fileio import atomic_write_bytes
from flank_ops.paths import ProjectPaths
from flank_ops.site import layout
from flank_ops.site.data import Warnings, load_run_record
from flank_ops.site.fmt import status_icon, status_key, status_label
from flank_ops.store import records
from flank_ops.store.model import FINISHED_RUN_STATUSES, RunStatus

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
    html: Markup  # the cells as the page shows them (_cells_html)


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

    runs = [r for r in recent if r.get("status") != RunStatus.SKIPPED and isinstance(r.get("run_id"), int)][:GRID_RUNS]
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
    project = paths.name
    root = layout.depth_prefix(layout.url_pipeline(project, pipeline))
    run_hrefs = {r["run_id"]: str(escape(root + layout.url_run(project, pipeline, r["run_id"]))) for r in runs}
    looks: dict[str, tuple[str, str, str]] = {}
    rows = []
    for name in tasks:
        row = [cells.get(name) or GridCell(r["run_id"], None, False) for r, cells in zip(runs, per_run)]
        rows.append(GridRow(name, row, _cells_html(name, row, (project, pipeline, root), run_hrefs, looks)))
    return TaskGrid([GridRun(r["run_id"], str(r.get("status")), r.get("started_at")) for r in runs], rows)


def _cells_html(
    task: str,
    cells: list[GridCell],
    where: tuple[str, str, str],
    run_hrefs: dict[int, str],
    looks: dict[str, tuple[str, str, str]],
) -> Markup:
    """A row's cells, exactly as _grid.html drew each one itself before (issue 22: 15,000 cells
    for 500 tasks and 30 runs were most of a run's final draw). Escaped parts are joined, never
    escaped again: each piece is escaped once (the task once a row, a status once a grid)."""
    project, pipeline, root = where
    task_e = str(escape(task))
    out = []
    for c in cells:
        if c.status is None:
            what = f"{task_e} #{c.run_id}: not in this run"
            out.append(f'<td><span class="cell s-absent" title="{what}" aria-label="{what}"></span></td>')
            continue
        if c.status not in looks:
            looks[c.status] = (
                str(escape(status_key(c.status))),
                str(escape(status_label(c.status))),
                str(escape(status_icon(c.status))),
            )
        key, label, icon = looks[c.status]
        what = f"{task_e} #{c.run_id} {label}"
        href = (
            str(escape(root + layout.url_log(project, pipeline, c.run_id, task))) if c.has_log else run_hrefs[c.run_id]
        )
        out.append(f'<td><a class="cell s-{key}" href="{href}" title="{what}" aria-label="{what}">{icon}</a></td>')
    return Markup("".join(out))


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
    record = load_run_record(paths, pipeline, run_id, Warnings())  # a damaged record is reported by its own page
    cells: dict[str, GridCell] = {}
    sizes = _log_sizes(run_dir) if record else {}
    for name, task in record.tasks.items() if record is not None else ():
        status = str(task.status)
        if "/" not in name and task.log in (None, "", f"logs/{name}.log"):
            has_log = sizes.get(f"{name}.log", 0) > 0  # the launcher's layout: one listing per run
        else:
            try:
                has_log = records.task_log_file(run_dir, name, task).stat().st_size > 0
            except OSError:
                has_log = False
        cells[name] = GridCell(run_id, status, has_log)
    if key is not None and record is not None and record.status in FINISHED_RUN_STATUSES:
        column = {"key": key, "cells": [[c_name, c.status, c.has_log] for c_name, c in cells.items()]}
        with contextlib.suppress(OSError):  # only a shortcut
            atomic_write_bytes(kept, json.dumps(column, separators=(",", ":")).encode(), durable=False)
    return cells
