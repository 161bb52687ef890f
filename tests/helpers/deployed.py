"""A project deployed the way a user does it: `flank init`, then `git push flank main`.

Shared by the runner's tests (tests/run, tests/commands, tests/deploy).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.cli import REPO_ROOT, run_flank, wait_for_site_draws
from helpers.repos import commit_all, git, make_repo, write_files
from helpers.waiting import wait_for

if TYPE_CHECKING:
    from flank_ops.store.model import TaskResult


def deploy(
    tmp_path: Path, flank_yml: str, files: dict[str, str] | None = None, project: str = "demo", settle: bool = True
) -> Path:
    """A clone of a new project, pushed to its bare repo; returns the clone.

    Pushes leave the user's crontab alone ([schedule] install_crontab = false in a new
    flank.toml): the crontab tests use the user_crontab fixture, which restores it. It returns once the
    push's work after its answer is done too (`settle`; off for a test that holds that work up)."""
    home = Path(os.environ["FLANK_HOME"])
    if not (home / "flank.toml").exists():
        home.mkdir(parents=True, exist_ok=True)
        (home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    run_flank("init", project, check=True)
    clone = make_repo(tmp_path / "clone", {"flank.yml": flank_yml, **(files or {})})
    git("remote", "add", "flank", str(home / f"{project}.git"), cwd=clone)
    git("push", "-q", "flank", "main", cwd=clone)
    if settle:  # the push's work after its answer (site redraw, pruned releases): the test's next step never races it
        wait_for_site_draws(home)
    return clone


def push(clone: Path, files: dict[str, str], message: str) -> str:
    write_files(clone, files)
    sha = commit_all(clone, message)
    git("push", "-q", "flank", "main", cwd=clone)
    wait_for_site_draws(Path(os.environ["FLANK_HOME"]))  # the push's work after its answer (as deploy)
    return sha


def runs_dir(pipeline: str = "nightly", project: str = "demo") -> Path:
    return Path(os.environ["FLANK_HOME"]) / project / "runs" / pipeline


def record(run_id: int, pipeline: str = "nightly", project: str = "demo") -> dict[str, Any]:
    return json.loads((runs_dir(pipeline, project) / str(run_id) / "run.json").read_text())


def history(pipeline: str = "nightly", project: str = "demo") -> list[dict[str, Any]]:
    path = runs_dir(pipeline, project) / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start_flank(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """The real CLI in the background (for runs we interrupt or overlap)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", "flank_ops", *args],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def task_status(run_id: int, task: str, pipeline: str = "nightly") -> str | None:
    """The launcher's current status for a task (None before it starts)."""
    try:
        return json.loads((runs_dir(pipeline) / str(run_id) / "tasks" / f"{task}.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


# A task that runs until the test creates the file `gate` in FLANK_PERSIST_GATE
# (bounded, so a failing test leaves nothing behind for long).
WAIT_FOR_GATE = 'for i in $(seq 600); do [ -e "$FLANK_PERSIST_GATE/open" ] && exit 0; sleep 0.1; done; exit 9'


# Prints two lines, a third when the test creates `gate/more`, and ends when it creates `gate/open`
# (bounded, so a failing test leaves nothing behind for long).
CHATTY = (
    'echo "loading 12 scripts"; echo "tidyverse attached"; G="$FLANK_PERSIST_GATE"; '
    'for i in $(seq 600); do [ -e "$G/more" ] && { echo "fitting glm"; rm "$G/more"; }; '
    '[ -e "$G/open" ] && exit 0; sleep 0.1; done; exit 9'
)


def gate_dir(project: str = "demo") -> Path:
    return Path(os.environ["FLANK_HOME"]) / project / "persist" / "gate"


def open_gate(project: str = "demo") -> None:
    gate_dir(project).mkdir(parents=True, exist_ok=True)
    (gate_dir(project) / "open").write_text("")


def leave_free(disk: Path, free: int) -> None:
    """Fill `disk` with one file so that exactly `free` bytes (whole pages) stay writable."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    st = os.statvfs(disk)
    size = st.f_bfree * st.f_frsize - free
    if size > 0:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)


def task_log(task: str, run_id: int = 1, pipeline: str = "nightly") -> str:
    return (runs_dir(pipeline) / str(run_id) / "logs" / f"{task}.log").read_text()


def write_dead_run(run_dir: Path, run_id: int, task: TaskResult) -> None:
    """run.json of demo/nightly's run `run_id` as a runner killed mid-run leaves it: running, its
    runner a pid no process has, one task `t` (`task`: its status and the job it holds, if any)."""
    from dataclasses import replace

    from flank_ops.store import records
    from flank_ops.store.model import RunRecord

    records.write_record(
        run_dir,
        RunRecord(
            project="demo",
            pipeline="nightly",
            run_id=run_id,
            started_at=records.now_iso(),
            runner=replace(records.runner_identity(), pid=2**22 + 1),
            tasks={"t": task},
        ),
    )


def kill_runner_mid_job(
    executor: str, tasks: tuple[str, ...] = ("long",), first_line: str = "before the runner died"
) -> None:
    """Start run 1 of demo/nightly and kill -9 its runner once each of `tasks`' jobs printed `first_line`
    into its log; returns when their launchers have let go of the jobs ("stays running on EXECUTOR: ...")."""
    proc = start_flank("run", "demo", "nightly")
    logs = [runs_dir() / "1" / "logs" / f"{task}.log" for task in tasks]
    try:
        for log in logs:
            wait_for(
                lambda log=log: log.exists() and first_line in log.read_text(), f"the job's first line in {log.name}"
            )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # make got SIGTERM (it dies with the runner) and passed it on: the launchers let go of the jobs
        for log in logs:
            wait_for(lambda log=log: f"stays running on {executor}: " in log.read_text(), "the launchers to let go")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
