"""Synthesized run records for the site tests and bench/site.py (no real runner needed).

Written through flank_ops.store.records (write_record, append_history,
create_run), so they have exactly the format the runner writes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flank_ops.fileio import append_json_line, atomic_write_text
from flank_ops.paths import Home, ProjectPaths
from flank_ops.store import records
from flank_ops.store.model import (
    Commit,
    Runner,
    RunRecord,
    RunStatus,
    RunTrigger,
    Selection,
    TaskResult,
    TaskStatus,
    history_entry,
)

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)

FLANK_YML = """\
pipelines:
  nightly:
    schedule: "0 2 * * *"
    timezone: Europe/London
    tasks:
      extract: Rscript R/extract.R
      transform:
        run: Rscript R/transform.R
        needs: [extract]
      model:
        run: Rscript R/model.R
        needs: [transform]
      report:
        run: python py/report.py
        needs: [model]
"""

CHAIN = {"extract": [], "transform": ["extract"], "model": ["transform"], "report": ["model"]}


def make_project(
    home: Home, name: str = "demo", flank_yml: str = FLANK_YML, sha: str = "3f2a1c0" + "0" * 33
) -> ProjectPaths:
    """A project as `flank init` + one deploy leave it: bare repo HEAD, a release, `current`, deploys.jsonl."""
    paths = home.project(name)
    paths.bare_repo.mkdir(parents=True, exist_ok=True)
    (paths.bare_repo / "HEAD").write_text("ref: refs/heads/main\n")
    release = paths.release_dir(sha)
    release.mkdir(parents=True, exist_ok=True)
    (release / "flank.yml").write_text(flank_yml)
    paths.release_config(sha).parent.mkdir(parents=True, exist_ok=True)
    paths.release_config(sha).write_text(flank_yml)  # the copy the deploy validated
    if not paths.current.is_symlink():
        paths.current.symlink_to(Path("releases") / sha)
    append_json_line(
        paths.deploys_log,
        {
            "time": T0.isoformat(),
            "sha": sha,
            "short": sha[:7],
            "message": "fix model formula",
            "author": "Ada Analyst",
            "ref": "refs/heads/main",
            "status": "accepted",
            "errors": [],
            "pipelines": ["nightly"],
        },
    )
    return paths


def make_run(
    paths: ProjectPaths,
    pipeline: str = "nightly",
    *,
    status: str = "success",
    tasks: dict[str, list[str]] | None = None,
    task_status: dict[str, str] | None = None,
    logs: dict[str, bytes] | None = None,
    start: datetime | None = None,
    seconds: float = 60.0,
    message: str = "fix model formula",
    trigger: str = "schedule",
    history: bool = True,
    runner: Runner | None = None,
    selection: dict[str, Any] | None = None,
    after_run: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> int:
    """One run on disk (record, task logs, history line); returns its run id."""
    tasks = CHAIN if tasks is None else tasks
    task_status = task_status or {}
    logs = logs if logs is not None else {name: f"{name}: done\n".encode() for name in tasks}
    running = status == "running"

    def build(run_id: int) -> RunRecord:
        begin = start or T0 + timedelta(days=run_id)
        per_task = {}
        t = begin
        for i, (name, needs) in enumerate(tasks.items()):
            st = TaskStatus(task_status.get(name, "success" if not running else ("running" if i == 0 else "pending")))
            ran = st not in (TaskStatus.PENDING, TaskStatus.UPSTREAM_FAILED, TaskStatus.SKIPPED)
            over = ran and st != TaskStatus.RUNNING
            dur = seconds / max(1, len(tasks))
            per_task[name] = TaskResult(
                status=st,
                needs=list(needs),
                attempts=1 if ran else 0,
                started_at=t.isoformat() if ran else None,
                ended_at=(t + timedelta(seconds=dur)).isoformat() if over else None,
                duration_s=dur if over else None,
                exit_code=(0 if st == TaskStatus.SUCCESS else 1) if over else None,
                peak_rss_kb=51234 if ran else None,
                log=f"logs/{name}.log" if name in logs else None,
                error=(errors or {}).get(name),
            )
            if ran:
                t += timedelta(seconds=dur)
        return RunRecord(
            project=paths.name,
            pipeline=pipeline,
            run_id=run_id,
            trigger=RunTrigger(trigger),
            status=RunStatus(status),
            commit=Commit(sha="3f2a1c0" + "0" * 33, short="3f2a1c0", message=message, author="Ada Analyst"),
            release=str(paths.current),
            started_at=begin.isoformat(),
            ended_at=None if running else (begin + timedelta(seconds=seconds)).isoformat(),
            duration_s=None if running else seconds,
            runner=runner if runner is not None else (records.runner_identity() if running else None),
            selection=Selection.from_json({"task": None, "from": None, "rerun_of": None, **(selection or {})}),
            concurrency=2,
            tasks=per_task,
            summary=f"{sum(1 for v in per_task.values() if v.ok)}/{len(per_task)} ok",
            after_run=after_run or {},
        )

    # the runner's way to a new run: id, folder, first record and its disk reserve, all or nothing
    run_id, run_dir, typed = records.create_run(paths, pipeline, build)
    for name, data in logs.items():
        log = records.task_log_path(run_dir, name)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(data)
    if not running:
        records.release_space(run_dir)  # as the runner does before a run's final writes
    if history and not running:
        records.append_history(paths, typed)
    return run_id


def make_many_runs(paths: ProjectPaths, pipeline: str, count: int, *, folders: bool = True) -> None:
    """`count` finished runs in the record format, written fast (no fsync: this is test data).

    With folders=False only the history index and the id counter are written:
    enough for the incremental path, which must not look at old folders anyway.
    """
    import json

    runs = paths.runs_dir(pipeline)
    runs.mkdir(parents=True, exist_ok=True)
    lines = []
    for run_id in range(1, count + 1):
        run_dir = runs / str(run_id)
        start = T0 + timedelta(hours=run_id)
        typed = RunRecord(
            project=paths.name,
            pipeline=pipeline,
            run_id=run_id,
            trigger=RunTrigger.SCHEDULE,
            status=RunStatus.FAILED if run_id % 7 == 0 else RunStatus.SUCCESS,
            commit=Commit(sha="a" * 40, short="aaaaaaa", message="m", author="Ada"),
            started_at=start.isoformat(),
            ended_at=(start + timedelta(seconds=60 + run_id % 30)).isoformat(),
            duration_s=60.0 + run_id % 30,
            tasks={
                name: TaskResult(
                    status=TaskStatus.SUCCESS,
                    needs=needs,
                    attempts=1,
                    started_at=start.isoformat(),
                    ended_at=(start + timedelta(seconds=15)).isoformat(),
                    duration_s=15.0,
                    exit_code=0,
                    peak_rss_kb=1000,
                    log=f"logs/{name}.log",
                )
                for name, needs in CHAIN.items()
            },
            summary="4/4 ok",
        )
        lines.append(history_entry(typed))
        if not folders:
            continue
        (run_dir / "logs").mkdir(parents=True)
        records.write_record(run_dir, typed, durable=False)  # test data: no fsync
        for name in CHAIN:
            (run_dir / "logs" / f"{name}.log").write_text(f"{name} ok\n")

    with open(runs / records.HISTORY_FILE, "w", encoding="utf-8") as f:
        for entry in lines:
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")
    atomic_write_text(runs / records.LAST_ID_FILE, f"{count}\n")


def write_times(
    log: Path, attempts: list[tuple[bytes, int, int | None, str]], start_ms: int, step_ms: int = 1500
) -> None:
    """Write a task log and its companion `<task>.log.times` as the launcher does (BRIEF contract 1).

    attempts: (output, seconds it took, exit code or None, status) each; every line gets an entry
    `step_ms` after the previous one.
    """
    out = b""
    entries = []
    t = start_ms
    for n, (data, seconds, code, status) in enumerate(attempts, start=1):
        begin = t
        entries.append(f"attempt {n} {len(out)} {begin}")
        for line in data.splitlines(keepends=True):
            entries.append(f"{len(out)} {t}")
            out += line
            t += step_ms
        t = begin + seconds * 1000
        entries.append(f"end {n} {len(out)} {t} {'-' if code is None else code} {status}")
        t += 2000
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(out)
    log.with_name(log.name + ".times").write_text("\n".join(entries) + "\n")
