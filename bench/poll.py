"""issue 26: engine calls per minute while 200 remote tasks wait, one poller per task vs one per run.

    python bench/poll.py [--tasks 200] [--seconds 30]

On a private one-node Slurm cluster started here (tests/helpers/slurm_cluster.py; needs root, slurm-wlm and
munge): TASKS jobs (`sleep 600`) are submitted through flank's SlurmBackend into one run folder; then
TASKS threads, one per task, wait on their job the way a task's executor loop does (remote.py: polls
from 0.1 s, growing by 1.25x up to 2 s) for SECONDS. scontrol is wrapped so every call is counted.
  before   each task asks `scontrol show job -o ID` on its own (SlurmBackend.shared_poll = False)
  after    the run's tasks share `scontrol show job -o` (shared_poll.py: at most one call a second)
Each thread has its own backend, as each task is a process of its own. Prints calls per minute and
their ratio; the jobs are cancelled at the end. Nothing is asserted.
(AWS Batch, by arithmetic from the same code: before, one describe_jobs per task per poll_interval
(5 s: 2,400 a minute for 200 tasks); after, ceil(200/100) = 2 per poll_interval: 24 a minute.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from flank_ops.executors import remote  # noqa: E402
from flank_ops.executors.base import JobRequest  # noqa: E402
from flank_ops.executors.slurm import SlurmBackend  # noqa: E402
from helpers.slurm_cluster import SlurmCluster, slurm_available  # noqa: E402


def counting_scontrol(bin_dir: Path, calls: Path) -> None:
    real = shutil.which("scontrol")
    if real is None:
        sys.exit("scontrol is not installed")
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    (bin_dir / "scontrol").chmod(0o755)


def submit_all(tasks: int, run_dir: Path) -> list[str]:
    backend = SlurmBackend({})
    backend.shared_poll = False
    ids = []
    for i in range(tasks):
        job = JobRequest(
            name=f"flank-bench-poll-1-t{i}",
            command="sleep 600",
            cwd=str(run_dir),
            env={"PATH": os.environ["PATH"]},
            secrets={},
            memory_mb=10,
            cpus=None,
            timeout_s=None,
            release_dir=str(run_dir),
            commit="",
            run_dir=str(run_dir),
            task=f"t{i}",
            options={},
        )
        ids.append(backend.submit(job))
    return ids


def wait_like_a_task(job_id: str, run_dir: Path, shared: bool, until: float) -> None:
    from flank_ops.executors.shared_poll import SharedPoll
    from flank_ops.executors.slurm import LIVE_STATES

    backend = SlurmBackend({})
    if shared:
        backend.shared = SharedPoll(
            run_dir / "jobs", "slurm", backend._fetch_all, lambda f: f.get("JobState") not in LIVE_STATES
        )
        backend.shared.register(job_id)
    interval = remote.POLL_FIRST_S
    while time.monotonic() < until:
        backend.poll(job_id)
        time.sleep(interval)
        interval = min(remote.POLL_MAX_S, interval * remote.POLL_GROWTH)


def measure(ids: list[str], run_dir: Path, shared: bool, seconds: float, calls: Path) -> float:
    calls.write_text("")
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=wait_like_a_task, args=(i, run_dir, shared, until)) for i in ids]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - began
    count = len([line for line in calls.read_text().splitlines() if line.startswith("show job")])
    return count * 60.0 / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    why = slurm_available()
    if why:
        sys.exit(why)
    with tempfile.TemporaryDirectory() as tmp, SlurmCluster(Path(tmp) / "cluster") as cluster:
        work = Path(tmp)
        calls = work / "calls"
        counting_scontrol(work / "bin", calls)
        os.environ.update(cluster.env)
        os.environ["PATH"] = f"{work / 'bin'}:{os.environ['PATH']}"
        run_dir = work / "run"
        ids = submit_all(args.tasks, run_dir)
        try:
            before = measure(ids, run_dir, False, args.seconds, calls)
            after = measure(ids, run_dir, True, args.seconds, calls)
        finally:
            subprocess.run(["scancel", *ids], env=os.environ)
    print(f"scontrol calls per minute, {args.tasks} tasks waiting on their Slurm jobs ({args.seconds:g}s each):")
    print(f"  before: a poller per task   {before:8.0f}")
    print(f"  after:  one poller per run  {after:8.0f}")
    print(f"  ratio after/before          {after / before:8.3f}")


if __name__ == "__main__":
    main()
