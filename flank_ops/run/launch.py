"""Starting runs in the background: `flank run --detach` and the post-receive hook; and a run's
last work after it has answered (`fork_detached`: its final site draw).

A detached run is a fresh `flank run` process in its own session, with stdio on
/dev/null and no inherited file descriptors, so neither a terminal closing nor a
`git push` waiting for its hook's output holds it up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from flank_ops.errors import UserError
from flank_ops.fileio import open_lock_file
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


def detach_this_child(keep_fd: int, *more_fds: int) -> None:
    """In a forked child: its own session, stdio on /dev/null, and no descriptor it inherited but
    `keep_fd` (a lock it holds) and `more_fds`. Whoever reads the parent's output (git for a hook, a
    caller of `flank run`) waits until every holder of its pipes has closed them: a child must hold none."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(devnull, std)
    low = 3
    for fd in sorted({keep_fd, *more_fds}):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def fork_detached(work: Callable[[], None], hold: Path) -> bool:
    """Do `work` in a forked copy of this process, in its own session with stdio on /dev/null and no
    other inherited file descriptor (a caller reading this process's output sees it end without
    waiting for `work`); returns at once. The copy holds `hold` (a flock) shared until `work` is
    done, so whoever must see its result takes it exclusively. A fork, not a fresh process: `work`
    finds its modules loaded and its data in memory. False when no copy could be made (the caller
    then does the work itself)."""
    try:
        hold.parent.mkdir(parents=True, exist_ok=True)
        fd = open_lock_file(hold)
    except (OSError, UserError):  # e.g. a read-only FLANK_HOME, a planted link
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()  # nothing buffered is written twice
        pid = os.fork()
    except OSError:
        os.close(fd)
        return False
    if pid:
        os.close(fd)  # the copy's descriptor keeps the lock
        return True
    code = 1
    try:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        detach_this_child(keep_fd=fd)
        sys.stdout = sys.stderr = open(1, "w", closefd=False)  # noqa: SIM115 - until os._exit
        work()
        code = 0
    finally:
        os._exit(code)


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
