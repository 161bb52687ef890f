"""Starting runs in the background: `flank run --detach` and the post-receive hook.

A detached run is a fresh `flank run` process in its own session, with stdio on
/dev/null and no inherited file descriptors, so neither a terminal closing nor a
`git push` waiting for its hook's output holds it up.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from flank_ops.paths import ProjectPaths

# Set by git for hooks; they would point a task's git commands at the bare repo.
_HOOK_GIT_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_QUARANTINE_PATH",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
    "GIT_PUSH_OPTION_COUNT",
)
REPORT_TIMEOUT_S = 60.0


def _detached_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HOOK_GIT_VARS and not k.startswith("GIT_PUSH_OPTION_")}
    # The child must import this very flank_ops (editable installs, tests).
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_argv(project: str | None, pipeline: str, options: list[str]) -> list[str]:
    """The `flank run` command line for this Python and flank_ops."""
    target = ["--local", pipeline] if project is None else [project, pipeline]
    return [sys.executable, "-m", "flank_ops", "run", *target, *options]


def spawn_detached(argv: list[str], cwd: Path | None = None, pass_fds: tuple[int, ...] = ()) -> int:
    """Start argv in a new session with stdio on /dev/null; returns its pid without waiting."""
    with open(os.devnull, "r+b") as devnull:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=_detached_env(),
            stdin=devnull,
            stdout=devnull,
            stderr=devnull,
            start_new_session=True,
            close_fds=True,
            pass_fds=pass_fds,
        )
    return proc.pid


def start_detached(paths: ProjectPaths, pipeline: str, trigger: str, options: tuple[str, ...] = ()) -> None:
    """Start `flank run PROJECT PIPELINE --trigger TRIGGER [OPTIONS]` fully detached (the post-receive
    hook, catch-up)."""
    spawn_detached(
        run_argv(paths.name, pipeline, ["--trigger", trigger, *options]),
        cwd=paths.home.root if paths.home.root.is_dir() else None,
    )


def start_detached_reporting(
    project: str | None, pipeline: str, options: list[str], cwd: Path | None = None
) -> int | None:
    """Start a detached run and wait only until it has a run id (for `flank run --detach`).

    The child writes its run id on a pipe as soon as it has one (before any overlap
    wait), then closes it. Returns None when the child stopped before that (bad input:
    the parent validated already, so this is rare).
    """
    read_fd, write_fd = os.pipe()
    try:
        spawn_detached(
            run_argv(project, pipeline, [*options, "--report-fd", str(write_fd)]), cwd=cwd, pass_fds=(write_fd,)
        )
    finally:
        os.close(write_fd)
    data = b""
    deadline = time.monotonic() + REPORT_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(read_fd, 64)
            if not chunk:
                break
            data += chunk
            if b"\n" in data:
                break
    finally:
        os.close(read_fd)
    text = data.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
