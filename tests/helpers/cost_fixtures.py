"""Run records like the seed case's: a nightly R pipeline peaking near 200 GB.

The records are written through the record store as the runner writes them (run.json, history.jsonl, last_id), for a
project deployed by a real push, so every command reads them the way it reads real runs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flank_ops.paths import Home
from flank_ops.store import records
from flank_ops.store.model import RunRecord, RunStatus, RunTrigger, TaskResult, TaskStatus

GIB_KB = 1024 * 1024

SEED_YML = """\
pipelines:
  nightly:
    schedule: "0 2 * * *"
    timezone: Europe/London
    tasks:
      extract: "true"
      model_a: {run: "true", needs: [extract]}
      model_b: {run: "true", needs: [extract]}
      report: {run: "true", needs: [model_a, model_b]}
"""

# (task, start min, end min, peak GiB): model_a and model_b run together: 120 + 80 = 200 GiB
SEED_TASKS = [("extract", 0, 15, 8), ("model_a", 15, 135, 120), ("model_b", 15, 120, 80), ("report", 135, 165, 4)]


def iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def write_runs(
    project: str = "demo",
    pipeline: str = "nightly",
    count: int = 30,
    tasks: list[tuple[str, int, int, float]] = SEED_TASKS,
    first_day: datetime = datetime(2026, 10, 27, 2, 0, tzinfo=UTC),
) -> Path:
    paths = Home().project(project)
    for day in range(count):
        start = first_day + timedelta(days=day)
        end = start + timedelta(minutes=max(t[2] for t in tasks))

        def build(run_id: int, start: datetime = start, end: datetime = end) -> RunRecord:
            return RunRecord(
                project=project,
                pipeline=pipeline,
                run_id=run_id,
                trigger=RunTrigger.SCHEDULE,
                status=RunStatus.SUCCESS,
                started_at=iso(start),
                ended_at=iso(end),
                duration_s=(end - start).total_seconds(),
                tasks={
                    name: TaskResult(
                        status=TaskStatus.SUCCESS,
                        attempts=1,
                        started_at=iso(start + timedelta(minutes=a)),
                        ended_at=iso(start + timedelta(minutes=b)),
                        duration_s=(b - a) * 60.0,
                        exit_code=0,
                        peak_rss_kb=int(gib * GIB_KB),
                        log=f"logs/{name}.log",
                    )
                    for name, a, b, gib in tasks
                },
                summary=f"{len(tasks)}/{len(tasks)} ok",
            )

        # the runner's way: a new id, folder and record, then the reserve freed and the history line
        _run_id, run_dir, record = records.create_run(paths, pipeline, build)
        records.release_space(run_dir)
        records.append_history(paths, record)
    runs = paths.runs_dir(pipeline)
    return runs


NO_CRONTAB = "[schedule]\ninstall_crontab = false\n"  # pushes of scheduled pipelines leave the crontab alone


def write_toml(text: str = "") -> None:
    """flank.toml with `text`; pushes never touch the user's crontab."""
    home = Path(os.environ["FLANK_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "flank.toml").write_text(NO_CRONTAB + text)
