"""Runs started by a push: on_push pipelines and `git push -o run=PIPELINE`, fully detached."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import REPO_ROOT, wait_for_site_draws
from helpers.deployed import WAIT_FOR_GATE, deploy, history, open_gate, record, task_status
from helpers.repos import commit_all, git
from helpers.waiting import wait_for

pytestmark = pytest.mark.slow


def test_on_push_run_is_detached_so_the_push_does_not_wait(tmp_path: Path) -> None:
    yml = f"persist: [gate]\npipelines:\n  nightly:\n    on_push: true\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
    deploy(tmp_path, yml)  # the push returns although `hold` waits for the gate
    wait_for(lambda: task_status(1, "hold") == "running", "the on_push run to start")
    assert record(1)["trigger"] == "push" and record(1)["status"] == "running"
    open_gate()
    wait_for(history, "the run to finish")
    assert record(1)["status"] == "success"


def test_push_option_starts_a_pipeline(tmp_path: Path) -> None:
    clone = deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    commit_all(clone, "again")
    push = git("push", "-o", "run=nightly", "flank", "main", cwd=clone)
    assert "started nightly" in push.stderr
    wait_for(history, "the run to finish")
    rec = record(1)
    assert rec["status"] == "success" and rec["trigger"] == "push" and rec["commit"]["message"] == "again"


def test_work_forked_after_the_answer_holds_its_lock_until_done(tmp_path: Path) -> None:
    """fork_detached (a run's final draw): the process answers and ends, its output closes at once, and
    whoever waits on the lock (tests/helpers/cli.py) sees the work done."""
    gate, done, lock = tmp_path / "gate", tmp_path / "done", tmp_path / "home" / ".flank" / "site-draws.lock"
    script = (
        "import os, time\n"
        "from pathlib import Path\n"
        "from flank_ops.run.launch import fork_detached\n"
        "def work():\n"
        f"    while not os.path.exists({str(gate)!r}): time.sleep(0.02)\n"
        f"    Path({str(done)!r}).write_text(str(os.getsid(0)))\n"
        f"print('forked', fork_detached(work, Path({str(lock)!r})), os.getsid(0))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,  # the copy's work waits for the gate: the answer must not
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    said, sid = proc.stdout.split()[1:]
    assert said == "True" and not done.exists()
    fd = os.open(lock, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while the work goes on
        gate.touch()
        wait_for_site_draws(tmp_path / "home")
        assert done.read_text() != sid  # done, in a session of its own
    finally:
        os.close(fd)
