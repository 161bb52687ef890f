"""A cancel at a seeded sweep of instants across a run's life, in a busy FLANK_HOME (issue 20 item 1).

Shared by tests/run/cancel_sweep_test.py (a few instants) and bench/cancel.py (many). The run
never ends by itself: `hold` waits for a gate the sweep never opens and `flaky` fails and waits
between retries, so every cancel that finds the run (its record exists) must end it `cancelled`
and stop every process, whether it lands before make starts, while the site draws (slow with
many projects), between retries or while tasks run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import NamedTuple

from helpers.cli import run_flank
from helpers.deployed import WAIT_FOR_GATE, deploy, runs_dir, start_flank
from helpers.waiting import process_gone, wait_for

SWEEP_YML = (
    "persist: [gate]\npipelines:\n  nightly:\n    tasks:\n"
    "      hold: sh hold.sh\n"
    "      flaky:\n        run: 'exit 1'\n        retries: 2\n        retry_delay: 1s\n"
) + "".join(  # scheduled pipelines: each page draw works out their next runs
    f"  report{i}:\n    schedule: '{i} 3 * * 1-5'\n    tasks:\n      a: 'true'\n" for i in range(8)
)


def busy_home(tmp_path: Path, projects: int, pid_file: Path) -> None:
    """Project `demo` (the swept pipeline) and `projects` copies of it: every page draw of a
    run reads them all (the issue saw ~25 projects)."""
    hold = f"echo $$ >> {pid_file}\n{WAIT_FOR_GATE}\n"
    deploy(tmp_path, SWEEP_YML, files={"hold.sh": hold})
    home = Path(os.environ["FLANK_HOME"])
    for i in range(projects):
        shutil.copytree(home / "demo.git", home / f"p{i}.git", symlinks=True)
        shutil.copytree(home / "demo", home / f"p{i}", symlinks=True)


class Instant(NamedTuple):
    run_id: int
    delay_s: float
    cancel_exit: int
    cancel_out: str
    status: str
    runner_exit: int | None
    left_running: list[int]  # task processes still alive after the cancel

    @property
    def lost(self) -> bool:
        return self.cancel_exit != 0 or self.status != "cancelled" or self.runner_exit != 130 or bool(self.left_running)


def delays(seed: int, count: int, longest_s: float) -> list[float]:
    rng = random.Random(seed)
    return sorted(rng.uniform(0.0, longest_s) for _ in range(count))


def cancel_at(run_id: int, delay_s: float, pid_file: Path) -> Instant:
    """Start run `run_id`, cancel it `delay_s` after its record exists, and say what came of it."""
    pid_file.unlink(missing_ok=True)
    record = runs_dir() / str(run_id) / "run.json"
    runner = start_flank("run", "demo", "nightly")
    try:
        wait_for(record.exists, f"the record of run #{run_id}")
        time.sleep(delay_s)  # the instant swept, not a wait for something
        cancel = run_flank("cancel", "demo", "nightly", str(run_id))
        runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    pids = [int(p) for p in pid_file.read_text().split()] if pid_file.exists() else []
    for pid in pids:  # the launcher's grace period may still be ending the tree
        with contextlib.suppress(AssertionError):
            wait_for(lambda pid=pid: process_gone(pid), f"process {pid}", timeout=15)
    status = json.loads(record.read_text())["status"]
    return Instant(
        run_id,
        delay_s,
        cancel.returncode,
        cancel.stdout + cancel.stderr,
        status,
        runner.returncode,
        [p for p in pids if not process_gone(p)],
    )
