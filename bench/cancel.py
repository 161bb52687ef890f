"""A cancel is never lost: a seeded sweep of cancel instants across a run's life (issue 20 item 1).

    python bench/cancel.py [--instants 50] [--projects 25] [--seed 20] [--longest 3.0]

Each instant starts `flank run demo nightly` (a task that waits for a gate, a task failing and waiting
between retries), waits for its record, waits the instant's delay and runs `flank cancel`: the run must
end `cancelled` with every process gone, whether the cancel lands before make starts, while the site
draws, between retries or while the tasks run. Swept in a busy FLANK_HOME (many projects: every page
draw reads them all) and, as the baseline, in a fresh one with the same seed. Prints the lost cancels
and the median time `flank cancel` took (busy vs fresh); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from helpers.cancel_sweep import busy_home, cancel_at, delays  # noqa: E402


def sweep(root: Path, projects: int, instants: list[float]) -> tuple[int, float]:
    """-> (lost cancels, median seconds per cancel) in a new FLANK_HOME under root."""
    root.mkdir()
    os.environ["FLANK_HOME"] = str(root / "home")
    pid_file = root / "pids"
    busy_home(root, projects, pid_file)
    lost, took = 0, []
    for run_id, delay in enumerate(instants, start=1):
        began = time.monotonic()
        result = cancel_at(run_id, delay, pid_file)
        took.append(time.monotonic() - began - delay)
        if result.lost:
            lost += 1
            print(f"  LOST at {delay:.2f}s: {result}")
    return lost, statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instants", type=int, default=50)
    parser.add_argument("--projects", type=int, default=25)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--longest", type=float, default=3.0, help="latest instant, in seconds after the record")
    args = parser.parse_args()
    os.environ.update(
        {
            "GIT_AUTHOR_NAME": "Ada Analyst",
            "GIT_AUTHOR_EMAIL": "ada@example.org",
            "GIT_COMMITTER_NAME": "Ada Analyst",
            "GIT_COMMITTER_EMAIL": "ada@example.org",
        }
    )
    instants = delays(args.seed, args.instants, args.longest)
    with tempfile.TemporaryDirectory() as tmp:
        fresh_lost, fresh_s = sweep(Path(tmp) / "fresh", 0, instants)
        busy_lost, busy_s = sweep(Path(tmp) / "busy", args.projects, instants)
    print(f"{args.instants} cancel instants in 0..{args.longest}s after the record (seed {args.seed})")
    print(f"  fresh FLANK_HOME:             {fresh_lost} lost, median {fresh_s:.2f}s per cancel")
    busy = f"busy FLANK_HOME ({args.projects} projects):"
    print(f"  {busy:<29} {busy_lost} lost, median {busy_s:.2f}s per cancel (ratio {busy_s / fresh_s:.2f})")


if __name__ == "__main__":
    main()
