"""issue 26: `matrix_from:` — a matrix task whose cells are the lines of a file an upstream task writes.

The cells are known only once that task has run, so make still drives the whole DAG and this module
fills in the missing piece when make reaches the task. Its Makefile target runs

    python -m flank_ops.run.matrix_from SPECS/model.cells.json RUN_DIR LAUNCHER...

which reads the file (one value a line; a .csv is a table, its header the keys), writes one spec
per instance, decides which are up to date (a flank run's incremental rules, per cell), writes
`RUN_DIR/plan/cells/<target>.json` (the instances the runner splices into the run record, in place
of the task) and a sub-Makefile beside it, then execs make on that: the recipe is marked `+`, so the
sub-make shares the outer make's -j slots and -k, and the task's dependents wait for every instance.

A file that is missing, empty, has a bad value or too many cells fails the task with one line
saying so (its log and record entry), and its dependents do not start.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from flank_ops.config.load import (
    FILENAME,
    MATRIX_KEY_RE,
    MATRIX_TABLE_SUFFIX,
    MATRIX_VALUE_RE,
    MAX_MATRIX_CELLS,
    load_config_file,
)
from flank_ops.config.model import LIST_MATRIX_KEY, Pipeline, Task, make_target, placeholders
from flank_ops.config.repo_paths import repo_relative
from flank_ops.errors import ConfigErrors, UserError
from flank_ops.fileio import atomic_write_text
from flank_ops.paths import Home, ProjectPaths
from flank_ops.run import makefile
from flank_ops.store import records
from flank_ops.store.model import RunRecord, TaskResult, TaskStatus
from flank_ops.task.task_exec import read_spec_bytes

CELLS_DIR = "cells"  # in the run's plan folder
MAX_FILE_BYTES = 4 * 1024 * 1024  # MAX_MATRIX_CELLS lines of plain values are far less

Cell = tuple[tuple[str, str], ...]


def cells_dir(run_dir: Path) -> Path:
    return Path(run_dir) / makefile.PLAN_DIR / CELLS_DIR


def instances_file(run_dir: Path, task: str) -> Path:
    """The instances of a matrix_from: task once its cells were read (what the runner adopts)."""
    return cells_dir(run_dir) / f"{make_target(task)}.json"


# --- reading the cells ------------------------------------------------------------------


def read_cells(path: Path, shown: str) -> tuple[list[Cell], bool]:
    """The cells of a matrix_from: file -> (cells, plain list?). Raises UserError saying what is wrong."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"{shown} does not exist", "the task that writes it must list it in its outputs:") from None
    except IsADirectoryError:
        raise UserError(f"{shown} is a directory, not a file") from None
    except OSError as exc:
        raise UserError(f"cannot read {shown}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise UserError(f"{shown} is over {MAX_FILE_BYTES // 1024 // 1024} MB", f"at most {MAX_MATRIX_CELLS} cells")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise UserError(f"{shown} is not UTF-8 text") from None
    if shown.lower().endswith(MATRIX_TABLE_SUFFIX):
        cells, plain = _table_cells(text, shown), False
    else:
        cells, plain = _line_cells(text, shown), True
    if not cells:
        raise UserError(f"{shown} has no cells: it is empty", "the task that writes it wrote no values")
    if len(cells) > MAX_MATRIX_CELLS:
        raise UserError(
            f"{shown} has {len(cells)} cells; at most {MAX_MATRIX_CELLS} per task",
            "loop inside the task over some of the values, or split the file",
        )
    return cells, plain


def _check_value(value: str, shown: str, line: int) -> None:
    if not MATRIX_VALUE_RE.match(value):
        raise UserError(
            f"{shown}:{line}: {value[:80]!r} is not a plain value",
            "use letters, digits, '_', '.', '+' and '-': a value becomes part of the task's name and its log's",
        )


def _line_cells(text: str, shown: str) -> list[Cell]:
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        value = line.strip()
        if not value:
            continue
        _check_value(value, shown, number)
        if value in seen:
            raise UserError(f"{shown}:{number}: {value!r} is listed twice (first at line {seen[value]})")
        seen[value] = number
    return [((LIST_MATRIX_KEY, value),) for value in seen]


def _table_cells(text: str, shown: str) -> list[Cell]:
    rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text)), 1) if any(c.strip() for c in row)]
    if not rows:
        return []
    _, header = rows[0]
    keys = [k.strip() for k in header]
    for key in keys:
        if not MATRIX_KEY_RE.match(key):
            raise UserError(
                f"{shown}:1: {key!r} is not a key",
                "the first line names the keys, like region,year (letters, digits, _): tasks see FLANK_MATRIX_<KEY>",
            )
    if len(set(keys)) != len(keys):
        raise UserError(f"{shown}:1: a key is named twice in the header")
    seen: dict[Cell, int] = {}
    for number, row in rows[1:]:
        values = [v.strip() for v in row]
        if len(values) != len(keys):
            raise UserError(f"{shown}:{number}: {len(values)} values for {len(keys)} keys ({', '.join(keys)})")
        for value in values:
            _check_value(value, shown, number)
        cell = tuple(zip(keys, values))
        if cell in seen:
            raise UserError(f"{shown}:{number}: the row is listed twice (first at line {seen[cell]})")
        seen[cell] = number
    return list(seen)


def instances(task: Task, cells: list[Cell], plain: bool) -> list[Task]:
    """The task's instances; raises UserError when its paths name a key the cells lack, or two
    instances would write the same output."""
    keys = [k for k, _ in cells[0]]
    for key in ("inputs", "outputs", "artifacts"):
        for pattern in getattr(task, key):
            unknown = [k for k in placeholders(pattern) if k not in keys]
            if unknown:
                raise UserError(
                    f"{key}: {pattern!r} names {{{unknown[0]}}}, which {task.matrix_from} has no column for",
                    f"its keys: {', '.join('{' + k + '}' for k in keys)}",
                )
    made = [task.instance(cell, plain) for cell in cells]
    writers: dict[str, str] = {}
    for one in made:
        for output in one.outputs:
            if output in writers:
                raise UserError(
                    f"outputs: {writers[output]} and {one.name} would both write {output}",
                    f"name every key in outputs: ({', '.join('{' + k + '}' for k in keys)})",
                )
            writers[output] = one.name
    return made


# --- the expansion (make's recipe for the task) -------------------------------------------


def expanded_pipeline(pipeline: Pipeline, task: Task, release_dir: Path) -> tuple[Pipeline, list[Task], bool]:
    """The pipeline with `task`'s instances, read from its file as it is in `release_dir`, in its
    place -> (pipeline, instances, plain list?). Raises UserError (the file missing, a bad value ...)."""
    assert task.matrix_from is not None
    rel = repo_relative(task.dir, task.matrix_from) or task.matrix_from
    cells, plain = read_cells(release_dir / rel, task.matrix_from)
    made = instances(task, cells, plain)

    # The instances in the task's place, their needs the task's (done by now). The cells file is no
    # upstream output of theirs: a cell's value is in its env, so a line added or changed elsewhere in
    # the file leaves the other cells up to date (per-cell early cut-off).
    def without_cells_file(t: Task) -> Task:
        return replace(t, outputs=tuple(o for o in t.outputs if repo_relative(t.dir, o) != rel))

    others = {n: without_cells_file(t) if n in task.needs else t for n, t in pipeline.tasks.items() if n != task.name}
    return replace(pipeline, tasks={**others, **{t.name: t for t in made}}), made, plain


def expand(spec_file: Path, run_dir: Path, launcher_argv: list[str]) -> Path | None:
    """Read the cells, write the instances' specs, checks and sub-Makefile -> the sub-Makefile, or
    None when every instance is up to date. Raises UserError."""
    spec = json.loads(read_spec_bytes(str(spec_file)))
    release_dir = Path(spec["release_dir"])
    try:
        config = load_config_file(release_dir / FILENAME)
    except ConfigErrors as exc:
        raise UserError(f"cannot read {FILENAME} of the release: {exc.errors[0]}") from None
    pipeline = config.pipelines[spec["pipeline"]]
    task = pipeline.tasks[spec["task"]]
    expanded, made, plain = expanded_pipeline(pipeline, task, release_dir)
    statuses: dict[str, tuple[str, str | None]] = {t.name: ("pending", None) for t in made}
    checked: dict[str, Path] = {}
    run = spec.get("run")
    folder = cells_dir(run_dir)
    target = make_target(task.name)
    if run is not None:  # a flank run: the incremental rules, per instance
        from flank_ops.incremental import plan

        paths = _project_paths(run)
        names = [t.name for t in made]
        forced = frozenset(names) if task.name in run.get("forced", []) else frozenset()
        decisions = plan.decide(paths, expanded, config, release_dir, names, forced, run.get("params_env") or {})
        for name, d in decisions.items():
            statuses[name] = ("up_to_date" if d.action == plan.UP_TO_DATE else "pending", d.reason)
        checked = plan.write_checks(folder / target, expanded, paths, decisions, run["run_id"], run.get("commit"))
    to_start = [t for t in made if statuses[t.name][0] == "pending"]
    sub = replace(pipeline, tasks={t.name: replace(t, needs=()) for t in to_start})
    specs = folder / f"{target}.tasks"
    makefile._write_specs(specs, sub, release_dir, spec["project_env"], spec.get("mode", 0o644), spec["slurm"])
    sub_makefile = folder / f"{target}.mk"
    text = makefile.render_makefile(
        sub,
        makefile_path=sub_makefile,
        specs_dir=specs,
        default_run_dir=run_dir,
        launcher_argv=launcher_argv,
        release_dir=release_dir,
        commit=(run or {}).get("commit"),
        checked=checked,
    )
    atomic_write_text(sub_makefile, text, mode=0o644, durable=False)
    listing = {
        "task": task.name,
        "file": task.matrix_from,
        "plain": plain,
        "instances": [
            {"cell": [list(pair) for pair in t.cell], "status": statuses[t.name][0], "reason": statuses[t.name][1]}
            for t in made
        ],
    }
    atomic_write_text(instances_file(run_dir, task.name), json.dumps(listing, indent=1) + "\n", durable=False)
    fresh = len(made) - len(to_start)
    print(
        f"flank: {task.name}: {len(made)} cell{'s' if len(made) != 1 else ''} from {task.matrix_from}"
        + (f" ({fresh} up to date)" if fresh else ""),
        flush=True,
    )
    return sub_makefile if to_start else None


def _project_paths(run: dict[str, Any]) -> ProjectPaths:
    local = run.get("local_dir")
    if local:
        return ProjectPaths.for_local(Path(local))
    return ProjectPaths(Home(Path(run["home"])), run["name"])


def run_info(
    paths: ProjectPaths, run_id: int, commit: str | None, params_env: dict[str, str], forced: Iterable[str]
) -> dict[str, Any]:
    """What a flank run tells the expansion of its matrix_from: tasks (written in their cells spec)."""
    return {
        "home": str(paths.home.root),
        "name": paths.name,
        "local_dir": str(paths.dir.parent) if paths.local else None,
        "run_id": run_id,
        "commit": commit,
        "params_env": params_env,
        "forced": sorted(forced),
    }


# --- the runner's side: the instances in the run record -------------------------------------


class Expansions:
    """A run's matrix_from: tasks: once make has read a task's cells, its instances take its place in
    the record (and in the runner's list of selected tasks, and in its pipeline: artifacts and
    missing-input hints look instances up there)."""

    def __init__(self, run_dir: Path, pipeline: Pipeline) -> None:
        self.run_dir = run_dir
        self.pipeline = pipeline
        self.waiting = [n for n, t in pipeline.tasks.items() if t.matrix_from]

    def adopt(self, record: RunRecord, selected: list[str]) -> list[str]:
        """Splice in the instances of every task whose cells were read since -> the new names."""
        adopted: list[str] = []
        for name in list(self.waiting):
            listing = _read_listing(instances_file(self.run_dir, name))
            if listing is None or name not in record.tasks:
                continue
            self.waiting.remove(name)
            task = self.pipeline.tasks[name]
            made = [task.instance(tuple((k, v) for k, v in i["cell"]), listing["plain"]) for i in listing["instances"]]
            tasks = dict(self.pipeline.tasks)
            self.pipeline = replace(self.pipeline, tasks=_spliced(tasks, name, {t.name: t for t in made}))
            old = record.tasks[name]
            entries = {}
            for one, line in zip(made, listing["instances"]):
                status = TaskStatus(line["status"])
                entries[one.name] = TaskResult(
                    status=status,
                    needs=list(old.needs),
                    log=f"logs/{one.name}.log",
                    reason=line.get("reason"),
                    runs_on=old.runs_on,
                )
                if one.memory_mb or one.cpus:
                    entries[one.name].memory_mb, entries[one.name].cpus = one.memory_mb, one.cpus
            record.tasks = _spliced(record.tasks, name, entries)
            names = list(entries)
            for entry in record.tasks.values():
                if name in entry.needs:
                    entry.needs = _replaced(entry.needs, name, names)
            selected[:] = _replaced(selected, name, names)
            if record.selected_tasks is not None:
                record.selected_tasks = _replaced(record.selected_tasks, name, names)
            adopted.extend(names)
        return adopted


def _read_listing(path: Path) -> dict[str, Any] | None:
    try:
        listing = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not read yet (it is written whole, at once)
    return listing if isinstance(listing, dict) else None


def _spliced(mapping: dict[str, Any], name: str, new: dict[str, Any]) -> dict[str, Any]:
    """`mapping` with `new` in the place of `name`, order kept."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key == name:
            out.update(new)
        else:
            out[key] = value
    return out


def _replaced(names: list[str], name: str, new: list[str]) -> list[str]:
    return [n for one in names for n in (new if one == name else [one])]


def _failed(run_dir: Path, task: str, message: str) -> None:
    """The task's record entry and log say why it has no instances."""
    from flank_ops.clock import now_iso

    with open(records.task_log_path(run_dir, task), "a", encoding="utf-8") as log:
        log.write(f"flank: {message}\n")
    # no reason: the plan's "cells from FILE, known after … runs" is stale now; the error says why
    result = {"task": task, "status": "failed", "error": message, "ended_at": now_iso(), "reason": None}
    atomic_write_text(records.task_result_path(run_dir, task), json.dumps(result) + "\n", durable=False)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: python -m flank_ops.run.matrix_from CELLS_SPEC RUN_DIR LAUNCHER...", file=sys.stderr)
        return 2
    spec_file, run_dir, launcher_argv = Path(argv[0]), Path(argv[1]), argv[2:]
    task = json.loads(read_spec_bytes(str(spec_file)))["task"]
    for sub in ("tasks", "logs"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    try:
        sub_makefile = expand(spec_file, run_dir, launcher_argv)
    except UserError as exc:
        message = f"{task}: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
        _failed(run_dir, task, message)
        print(f"flank: {message}", file=sys.stderr, flush=True)
        return 1
    if sub_makefile is None:
        return 0
    # MAKEFLAGS (from the outer make) carries -k, the job slots and RUN_DIR
    make = makefile.make_executable()
    os.execv(make, [make, "-f", str(sub_makefile), f"RUN_DIR={makefile.make_word(run_dir)}"])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
