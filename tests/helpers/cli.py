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
    # A run's final pages are drawn after its `flank run` has answered (also a run that `flank
    # backfill` or `flank remote run` started): what the test reads next is drawn once they are done.
    for home in _homes_of(args, cwd, full_env):
        wait_for_site_draws(home)
    if check and proc.returncode != 0:
        raise AssertionError(f"flank {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _homes_of(args: tuple[str, ...], cwd: Path | None, env: dict[str, str]) -> list[Path]:
    """The FLANK_HOMEs a `flank` command line may have run in: the test's, the command's, and with
    --local its working copy's .flank/."""
    homes = {Path(h) for h in (os.environ.get("FLANK_HOME"), env.get("FLANK_HOME")) if h}
    if "--local" in args:
        here = (cwd or Path.cwd()).resolve()
        found = next((d / STATE_DIR for d in [here, *here.parents] if (d / STATE_DIR).is_dir()), None)
        homes |= {found} if found is not None else set()
    return sorted(homes)


def wait_for_site_draws(home: Path) -> None:
    """Until the runs' final site draws under `home` are done (each holds Home.site_draws_lock
    shared while it draws, after its `flank run` has answered)."""
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
