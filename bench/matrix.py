"""issue 26: the cost of fan-out — `flank run --local` of a 200-cell matrix vs 200 declared tasks.

    python bench/matrix.py [--cells 200] [--repeat 3]

Both pipelines have the same 200 tasks (`true`) and a final task that needs them all, run by the real
runner, make and launchers in a git working copy (`flank run --local`). The matrix one is written as
one task with `matrix:`; its instances have longer names and FLANK_MATRIX_VALUE in their env. The
matrix_from one reads its cells from a file a first task writes (`seq`), so it runs one task more, and
its instances in a sub-make started when make reaches the task.
Prints the median wall time of each and their ratio (target <= 1.1); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from flank_ops.paths import STATE_DIR  # noqa: E402
from helpers.cli import wait_for_site_draws  # noqa: E402


def flank_yml(cells: int) -> str:
    declared = "".join(f"      t{i:03d}: 'true'\n" for i in range(cells))
    values = ", ".join(str(i) for i in range(cells))
    return (
        "pipelines:\n"
        "  declared:\n    concurrency: 2\n    tasks:\n"
        f"{declared}"
        f"      last: {{run: 'true', needs: [{', '.join(f't{i:03d}' for i in range(cells))}]}}\n"
        "  matrix:\n    concurrency: 2\n    tasks:\n"
        f"      t: {{run: 'true', matrix: [{values}]}}\n"
        "      last: {run: 'true', needs: [t]}\n"
        "  matrix_from:\n    concurrency: 2\n    tasks:\n"
        f"      cells: {{run: 'seq 0 {cells - 1} > cells.txt', outputs: [cells.txt]}}\n"
        "      t: {run: 'true', needs: [cells], matrix_from: cells.txt}\n"
        "      last: {run: 'true', needs: [t]}\n"
    )


def run_once(work: Path, pipeline: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLANK_HOME": str(work / "home")}
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "flank_ops", "run", "--local", pipeline],
        cwd=work / "repo",
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - began
    if proc.returncode != 0:
        sys.exit(f"flank run --local {pipeline} failed:\n{proc.stdout}{proc.stderr}")
    wait_for_site_draws(work / "repo" / STATE_DIR)  # goes on after `flank run` answered: not timed
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repo = work / "repo"
        repo.mkdir()
        (repo / "flank.yml").write_text(flank_yml(args.cells))
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", "bench"], cwd=repo, check=True)
        run_once(work, "declared")  # warm-up: the launcher build, caches
        times: dict[str, list[float]] = {"declared": [], "matrix": [], "matrix_from": []}
        for _ in range(args.repeat):  # interleaved, so a busy moment weighs on both
            for pipeline in times:
                times[pipeline].append(run_once(work, pipeline))
    declared, matrix, matrix_from = (statistics.median(times[p]) for p in ("declared", "matrix", "matrix_from"))
    print(f"flank run --local, {args.cells} tasks + 1 (median of {args.repeat}):")
    print(f"  {args.cells} declared tasks   {declared:7.2f}s")
    print(f"  {args.cells}-cell matrix      {matrix:7.2f}s")
    print(f"  {args.cells}-cell matrix_from {matrix_from:7.2f}s  (+1 task writing the cells)")
    print(f"  ratio matrix/declared  {matrix / declared:7.2f}  (target <= 1.1)")
    print(f"  ratio matrix_from/declared {matrix_from / declared:7.2f}")


if __name__ == "__main__":
    main()
