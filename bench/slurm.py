"""Per-task overhead of `executor: slurm` (issue 14): flank vs a plain `sbatch --wait` loop.

    python bench/slurm.py [--tasks 50] [--rounds 1] [--parallel]

On a private one-node Slurm cluster started here (tests/helpers/slurm_cluster.py; needs root, slurm-wlm
and munge). The contenders, alternated in every round:

  sbatch --wait   a shell-free loop: `sbatch --wait --parsable -o DIR/%j.out --wrap true`, one after the other
  flank run       `flank run --local` of a pipeline whose TASKS no-op tasks are `executor: slurm`, chained
                  (each needs the one before), so both run the jobs one at a time

--parallel: the tasks are independent instead (concurrency = TASKS) against TASKS `sbatch --wait`
started at once. --matrix (issue 26, implies --parallel): also `flank run` of one matrix task of TASKS
cells, which go to Slurm as one job array (one sbatch instead of TASKS). Prints wall times and the
ratio to sbatch; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from flank_ops.paths import STATE_DIR  # noqa: E402
from helpers.cli import wait_for_site_draws  # noqa: E402
from helpers.slurm_cluster import SlurmCluster, slurm_available  # noqa: E402


def flank_yml(tasks: int, parallel: bool) -> str:
    lines = [
        "pipelines:",
        "  nightly:",
        "    executor: slurm",
        f"    concurrency: {tasks if parallel else 1}",
        "    tasks:",
    ]
    for i in range(tasks):
        needs = "" if parallel or i == 0 else f", needs: t{i - 1}"
        lines.append(f"      t{i}: {{run: 'true'{needs}}}")
    return "\n".join(lines) + "\n"


def matrix_yml(tasks: int) -> str:
    cells = ", ".join(f"c{i}" for i in range(tasks))
    return (
        f"pipelines:\n  nightly:\n    executor: slurm\n    concurrency: {tasks}\n    tasks:\n"
        f"      t: {{run: 'true', matrix: [{cells}]}}\n"
    )


def sbatch_loop(tasks: int, parallel: bool, out_dir: Path, env: dict[str, str]) -> float:
    argv = ["sbatch", "--wait", "--parsable", "-o", str(out_dir / "%j.out"), "--wrap", "true"]
    start = time.perf_counter()
    if parallel:
        procs = [subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL) for _ in range(tasks)]
        codes = [p.wait() for p in procs]
    else:
        codes = [subprocess.run(argv, env=env, stdout=subprocess.DEVNULL).returncode for _ in range(tasks)]
    wall = time.perf_counter() - start
    if any(codes):
        sys.exit(f"sbatch --wait failed: exit codes {sorted(set(codes))}")
    return wall


def flank_run(work: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "flank_ops", "run", "--local", "nightly"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"flank run failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')[-2000:]}")
    wait_for_site_draws(work / STATE_DIR)  # the final draw goes on after `flank run` answered: not timed
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--parallel", action="store_true")
    parser.add_argument("--matrix", action="store_true")
    args = parser.parse_args()
    args.parallel = args.parallel or args.matrix
    why = slurm_available()
    if why:
        print(f"bench/slurm.py skipped: {why}")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="flank-bench-slurm-"))
    try:
        with SlurmCluster(tmp / "cluster") as cluster:
            home = tmp / "home"
            home.mkdir()
            (home / "flank.toml").write_text(f'[executors.slurm]\npartition = "{cluster.partition}"\n')
            work = tmp / "work"
            work.mkdir()
            (work / "flank.yml").write_text(flank_yml(args.tasks, args.parallel))
            matrix_work = tmp / "matrix"
            matrix_work.mkdir()
            (matrix_work / "flank.yml").write_text(matrix_yml(args.tasks))
            env = {
                **os.environ,
                **cluster.env,
                "FLANK_HOME": str(home),
                "XDG_CACHE_HOME": str(tmp / "cache"),
                "PYTHONPATH": str(REPO_ROOT),
            }
            out_dir = tmp / "sbatch-out"
            out_dir.mkdir()
            mode = "independent, all at once" if args.parallel else "one at a time"
            print(
                f"{args.tasks} no-op Slurm jobs ({mode}), {args.rounds} round(s), "
                f"one-node cluster ({cluster.cpus} CPUs)"
            )
            times: dict[str, list[float]] = {"sbatch --wait": [], "flank run": []}
            if args.matrix:
                times["flank matrix"] = []  # one task, TASKS cells: one job array
            for _ in range(args.rounds):
                times["sbatch --wait"].append(sbatch_loop(args.tasks, args.parallel, out_dir, env))
                times["flank run"].append(flank_run(work, env))
                if args.matrix:
                    times["flank matrix"].append(flank_run(matrix_work, env))
            base = statistics.median(times["sbatch --wait"])
            for name, values in times.items():
                wall = statistics.median(values)
                print(f"  {name:<14} {wall:7.1f} s   {wall / args.tasks:6.2f} s/task   {wall / base:5.2f}x")
            print("target: flank run <= 1.2x the sbatch --wait loop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
