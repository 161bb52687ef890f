"""The cost of history: `flank run` and `flank status` with 10 vs 100,000 past runs, end to end.

    python bench/history.py [--runs 100000] [--repeat 7]

Two FLANK_HOMEs, each with the same tiny project pushed through the real hooks (one task,
`true`). The past runs are written straight to disk in the record format (a run.json per
folder, history.jsonl, last_id), as a pipeline that ran every 5 minutes for a year leaves
them. Then, alternating between the two homes, the real CLI in a subprocess: `flank run demo
nightly` (the whole run: reconcile, record, make, history, note, site, notifications) and
`flank status demo`. The first run of each home is timed apart: a FLANK_HOME from before the
pipeline state file (run/state.py) rebuilds it once. Prints medians and ratios; asserts nothing.
Targets (issue 10): both ratios <= 1.1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from flank_ops.store import records  # noqa: E402
from flank_ops.store.model import (  # noqa: E402
    Commit,
    Runner,
    RunRecord,
    RunStatus,
    RunTrigger,
    TaskResult,
    TaskStatus,
    history_entry,
)
from helpers.cli import wait_for_site_draws  # noqa: E402

FLANK_YML = "pipelines:\n  nightly:\n    tasks:\n      only: 'true'\n"
T0 = datetime(2025, 11, 1, tzinfo=UTC)


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "FLANK_HOME": str(home),
            "PYTHONPATH": str(REPO),
            "GIT_AUTHOR_NAME": "Ada Analyst",
            "GIT_AUTHOR_EMAIL": "ada@example.org",
            "GIT_COMMITTER_NAME": "Ada Analyst",
            "GIT_COMMITTER_EMAIL": "ada@example.org",
        }
    )
    return env


def flank(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flank_ops", *args], env=_env(home), text=True, capture_output=True, check=False
    )


def deploy(root: Path) -> Path:
    """A FLANK_HOME with project demo pushed once (no crontab touched)."""
    home = root / "home"
    home.mkdir(parents=True)
    (home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    done = flank(home, "init", "demo")
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    clone = root / "clone"
    clone.mkdir()
    (clone / "flank.yml").write_text(FLANK_YML)
    env = _env(home)
    for argv in (
        ["init", "-q", "-b", "main"],
        ["add", "flank.yml"],
        ["commit", "-qm", "first"],
        ["remote", "add", "flank", str(home / "demo.git")],
        ["push", "-q", "flank", "main"],
    ):
        subprocess.run(["git", *argv], cwd=clone, env=env, check=True, capture_output=True)
    return home


def write_past_runs(home: Path, count: int) -> None:
    """`count` finished runs, as the runner leaves them (no logs: nothing per run reads them)."""
    runs = home / "demo" / "runs" / "nightly"
    runs.mkdir(parents=True, exist_ok=True)
    lines = []
    for run_id in range(1, count + 1):
        start = T0 + timedelta(minutes=5 * run_id)
        end = start + timedelta(seconds=1.5)
        failed = run_id % 13 == 0
        record = RunRecord(
            project="demo",
            pipeline="nightly",
            run_id=run_id,
            trigger=RunTrigger.SCHEDULE,
            status=RunStatus.FAILED if failed else RunStatus.SUCCESS,
            commit=Commit(sha="a" * 40, short="aaaaaaa", message="m", author="Ada", date=T0.isoformat()),
            release=str(home / "demo" / "releases" / ("a" * 40)),
            started_at=start.isoformat(),
            ended_at=end.isoformat(),
            duration_s=1.5,
            runner=Runner(pid=1, host="vm", boot_id="", pid_start=1),
            selected_tasks=["only"],
            scheduled_at=start.isoformat(),
            concurrency=1,
            tasks={
                "only": TaskResult(
                    status=TaskStatus.FAILED if failed else TaskStatus.SUCCESS,
                    attempts=1,
                    started_at=start.isoformat(),
                    ended_at=end.isoformat(),
                    duration_s=1.5,
                    exit_code=1 if failed else 0,
                    peak_rss_kb=1500,
                    log="logs/only.log",
                    cpu_s=0.001,
                )
            },
            after_run={"note": "ok", "site": "ok"},
            summary="0/1 ok; only failed (exit 1)" if failed else "1/1 ok",
        )
        run_dir = runs / str(run_id)
        run_dir.mkdir()
        records.write_record(run_dir, record, durable=False)  # without the runner's fsync (100,000 of them)
        lines.append(json.dumps(history_entry(record), separators=(",", ":")))
    (runs / records.HISTORY_FILE).write_text("\n".join(lines) + "\n")
    (runs / records.LAST_ID_FILE).write_text(f"{count}\n")


def timed(home: Path, *args: str) -> float:
    t = time.perf_counter()
    done = flank(home, *args)
    took = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"flank {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    wait_for_site_draws(home)  # a run's final draw goes on after `flank run` answered: not timed
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, big = deploy(Path(tmp) / "small"), deploy(Path(tmp) / "big")
        t = time.perf_counter()
        write_past_runs(small, 10)
        write_past_runs(big, args.runs)
        print(f"wrote {args.runs} past runs in {time.perf_counter() - t:.1f} s")
        first = {name: timed(home, "run", "demo", "nightly") for name, home in (("10", small), ("big", big))}
        print(
            f"first run (a FLANK_HOME from before the state file): 10 past runs {first['10'] * 1000:.0f} ms, "
            f"{args.runs} past runs {first['big'] * 1000:.0f} ms"
        )
        results: dict[str, dict[str, list[float]]] = {"run": {"10": [], "big": []}, "status": {"10": [], "big": []}}
        for _ in range(args.repeat):  # alternating, so a busy machine slows both alike
            for name, home in (("10", small), ("big", big)):
                results["run"][name].append(timed(home, "run", "demo", "nightly"))
                results["status"][name].append(timed(home, "status", "demo"))
        for what, label in (("run", "flank run demo nightly"), ("status", "flank status demo")):
            lo, hi = statistics.median(results[what]["10"]), statistics.median(results[what]["big"])
            print(
                f"{label:<24} 10 past runs: median {lo * 1000:6.0f} ms; {args.runs} past runs: median "
                f"{hi * 1000:6.0f} ms (of {args.repeat}); ratio {hi / lo:.2f} (target <= 1.1)"
            )


if __name__ == "__main__":
    main()
