"""The real `flank` CLI, run as a subprocess exactly as a user or a git hook runs it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from flank_ops.paths import STATE_DIR, Home
from helpers.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_REPO = REPO_ROOT / "examples" / "repo"


def run_flank(
    *args: str,
    cwd: Path | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; returns the finished process (text mode)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "flank_ops", *args],
        cwd=cwd,
        input=input,
        env=full_env,
        text=True,
        capture_output=True,
    )
    if args[:1] == ("run",) and "--detach" not in args:
        # what the test reads next is drawn after `flank run` has answered: wait for it as a user would
        wait_for_site_draws(_home_of(args, cwd, full_env))
    if check and proc.returncode != 0:
        raise AssertionError(f"flank {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _home_of(args: tuple[str, ...], cwd: Path | None, env: dict[str, str]) -> Path | None:
    """The FLANK_HOME of a `flank` command line (a working copy's .flank/ with --local)."""
    if "--local" not in args:
        return Path(env["FLANK_HOME"]) if env.get("FLANK_HOME") else None
    here = (cwd or Path.cwd()).resolve()
    return next((d / STATE_DIR for d in [here, *here.parents] if (d / STATE_DIR).is_dir()), None)


def wait_for_site_draws(home: Path | None) -> None:
    """Until the runs' final site draws under `home` are done (each holds Home.site_draws_lock
    shared while it draws, after its `flank run` has answered)."""
    if home is None:
        return
    try:
        fd = os.open(Home(home).site_draws_lock, os.O_RDWR)
    except FileNotFoundError:
        return  # no run has drawn there yet
    try:

        def drawn() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True

        wait_for(drawn, "the runs' pages to be drawn")
    finally:
        os.close(fd)
