"""Finished runs on disk, written with the real record functions (no runner needed)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

from flank_ops.git.release_config import load_release_config
from flank_ops.notify import dispatch, ping
from flank_ops.paths import Home, ProjectPaths
from flank_ops.run import runner
from flank_ops.store import records
from flank_ops.store.model import Commit, RunRecord, RunStatus, RunTrigger, TaskResult, TaskStatus


def make_project(name: str = "demo", flank_yml: str | None = None, settings_toml: str | None = None) -> ProjectPaths:
    """A project as `flank init` + a deploy leave it: bare repo, and a release holding flank.yml."""
    home = Home()
    paths = home.project(name)
    subprocess.run(["git", "init", "-q", "--bare", str(paths.bare_repo)], check=True)
    release = paths.release_dir("0" * 40)
    release.mkdir(parents=True)
    (release / "flank.yml").write_text(
        textwrap.dedent(
            flank_yml
            or """\
        pipelines:
          nightly:
            notify: [failure, recovery]
            tasks:
              extract: Rscript R/extract.R
              model:
                run: Rscript R/model.R
                needs: [extract]
        """
        )
    )
    paths.release_config("0" * 40).parent.mkdir(parents=True, exist_ok=True)  # the copy the deploy validated
    shutil.copyfile(release / "flank.yml", paths.release_config("0" * 40))
    for folder in (paths.dir, paths.bare_repo):
        folder.chmod(0o700)  # as flank makes them (fileio.py: state is the owner's)
    if settings_toml is not None:
        home.settings_file.parent.mkdir(parents=True, exist_ok=True)
        home.settings_file.write_text(textwrap.dedent(settings_toml))
    return paths


def finished_run(
    paths: ProjectPaths,
    status: str = "failed",
    pipeline: str = "nightly",
    logs: dict[str, str] | None = None,
    failed_task: str = "model",
) -> RunRecord:
    """Write a finished run (record, task results, logs, history line); returns its record."""
    logs = logs if logs is not None else {"extract": "read 10 rows\n", "model": "fitting\nError: singular fit\n"}

    def build(run_id: int) -> RunRecord:
        tasks = {}
        for task in logs:
            failed = status == "failed" and task == failed_task
            tasks[task] = TaskResult(
                status=TaskStatus.FAILED if failed else TaskStatus.SUCCESS,
                attempts=3 if failed else 1,
                started_at=records.now_iso(),
                ended_at=records.now_iso(),
                duration_s=1.0,
                exit_code=1 if failed else 0,
                peak_rss_kb=1000,
                log=f"logs/{task}.log",
            )
        ok = sum(t.ok for t in tasks.values())
        return RunRecord(
            project=paths.name,
            pipeline=pipeline,
            run_id=run_id,
            trigger=RunTrigger.SCHEDULE,
            status=RunStatus(status),
            commit=Commit(
                sha="0" * 40, short="0000000", message="fix model formula", author="Ada Analyst", date=records.now_iso()
            ),
            release=str(paths.release_dir("0" * 40)),
            started_at=records.now_iso(),
            ended_at=records.now_iso(),
            duration_s=2.0,
            concurrency=2,
            tasks=tasks,
            summary=f"{ok}/{len(tasks)} ok"
            + (f"; {failed_task} failed (exit 1, 3 attempts)" if status == "failed" else ""),
        )

    _run_id, run_dir, typed = records.create_run(paths, pipeline, build)  # the runner's way to a new run
    for task, text in logs.items():
        log = records.task_log_path(run_dir, task)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(text)
        records.task_result_path(run_dir, task).parent.mkdir(parents=True, exist_ok=True)
        records.task_result_path(run_dir, task).write_text("{}\n")
    records.release_space(run_dir)  # as the runner does before a run's final writes
    records.append_history(paths, typed)
    return typed


def site_file(home: Path, rel: str, text: str) -> Path:
    path = home / "site" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run_context(paths: ProjectPaths, pipeline: str = "nightly") -> runner.RunContext:
    """The context the runner builds as a run starts, for the release make_project deployed."""
    sha = "0" * 40
    config = load_release_config(paths, sha)
    deployed = runner.Deployed(paths, paths.release_dir(sha), config, {"sha": sha})
    return runner.run_context(deployed, config.pipelines[pipeline])


def notify_and_ping(paths: ProjectPaths, record: RunRecord) -> str | None:
    """What the after-run notify and ping steps say (finish/run_steps.py), joined by "; "."""
    context = run_context(paths, record.pipeline)
    lines = [
        dispatch.send_notifications(context, record),
        ping.ping_finished(context, record, lambda: dispatch.run_message(context, record).as_text()),
    ]
    return "; ".join(line for line in lines if line) or None
