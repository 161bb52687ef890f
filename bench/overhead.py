"""Per-task overhead: flank vs plain GNU make on a layered DAG of no-op tasks.

    python bench/overhead.py [--tasks 500] [--layers 10] [--rounds 5] [--jobs 2] [--baseline-src DIR]

The DAG: LAYERS layers of TASKS/LAYERS tasks; each task needs 2 tasks of the
previous layer. The contenders, alternated in every round (so machine noise hits
all alike):

  make            plain `make -j2` on an equivalent Makefile, recipes `true`
  make+stamps     each recipe also touches a stamp file, as a make pipeline records what ran
                  (the stamps stay from round to round, as a make pipeline's do: after the first
                  round they are touched, not created; a flank run creates each task's log and
                  result in its own new run folder, so the figure printed for file creation says
                  how much this disk weighs in)
                  (issue 22's baseline: flank run <= 1.5x this)
  make+logs       the fair equivalent: each recipe `true > logs/<task>.log 2>&1`
  flank-launcher  `make -j2` on flank's generated Makefile (the task launcher per task:
                  a log, a result record, process group, rusage), no runner
  flank run       `flank run --local nightly` in a git working copy: the whole thing
                  (runner, run records, per-task JSON, history, site rebuild)

Prints median wall and CPU time (user+sys of all child processes) per contender
and the ratios to plain make. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
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
from helpers.baseline_src import baseline_tree  # noqa: E402
from helpers.cli import wait_for_site_draws  # noqa: E402


def dag(tasks: int, layers: int) -> dict[str, list[str]]:
    width = tasks // layers
    graph: dict[str, list[str]] = {}
    for layer in range(layers):
        for i in range(width):
            needs = [] if layer == 0 else [f"t{layer - 1}_{i}", f"t{layer - 1}_{(i + 1) % width}"]
            graph[f"t{layer}_{i}"] = needs
    return graph


def plain_makefile(graph: dict[str, list[str]], recipe: str) -> str:
    lines = [
        ".SUFFIXES:",
        "MAKEFLAGS += --no-builtin-rules",
        f".PHONY: all {' '.join(graph)}",
        f"all: {' '.join(graph)}",
    ]
    for name, needs in graph.items():
        lines += [f"{name}: {' '.join(needs)}".rstrip(), "\t@" + recipe.replace("TASK", name)]
    return "\n".join(lines) + "\n"


def flank_yml(graph: dict[str, list[str]], jobs: int) -> str:
    lines = ["pipelines:", "  nightly:", f"    concurrency: {jobs}", "    tasks:"]
    for name, needs in graph.items():
        if needs:
            lines.append(f"      {name}: {{run: 'true', needs: [{', '.join(needs)}]}}")
        else:
            lines.append(f"      {name}: 'true'")
    return "\n".join(lines) + "\n"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return wall, cpu, proc.returncode


def file_creation_us(folder: Path, count: int = 300) -> float:
    """Median cost of creating (and writing) one small file in `folder`, in microseconds. flank's
    launcher creates two files per task (its log and its result), make+stamps touches stamps that
    are there after the first round: on a disk where creating a file is slow (this VM's: 5 to 250 us,
    moving with what was deleted lately; tmpfs: ~3 us) the full-run ratio moves with it."""
    probe = folder / "file-creation-probe"
    probe.mkdir()
    costs = []
    for i in range(count):
        began = time.perf_counter()
        fd = os.open(probe / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x" * 300)
        os.close(fd)
        costs.append(time.perf_counter() - began)
    shutil.rmtree(probe)
    return statistics.median(costs) * 1e6


def draw_figures(wc: Path, rounds: int) -> None:
    """In this process: what drawing the newest run's pages costs (goal: its run page <= 50 ms)."""
    from flank_ops.paths import ProjectPaths
    from flank_ops.site import build
    from flank_ops.store import records

    paths = ProjectPaths.for_local(wc)
    run_id = max(records.list_run_ids(paths, "nightly"))
    tasks = len(records.read_record(paths.run_dir("nightly", run_id)).tasks)
    build.draw_run(paths, "nightly", run_id)  # warm: imports, templates, the DAG's layout
    for what, draw, goal in (
        ("its run page (+ its log pages)", build.redraw_run_page, " (goal: <= 50 ms)"),
        ("a progress redraw (run page, project and home cards)", build.draw_progress, ""),
        ("the final draw (+ pipeline pages, resources)", build.draw_run, ""),
    ):
        times = []
        for _ in range(max(rounds, 5)):
            start = time.perf_counter()
            draw(paths, "nightly", run_id)
            times.append(time.perf_counter() - start)
        print(f"drawing a {tasks}-task run, {what}: median {statistics.median(times) * 1000:.0f} ms{goal}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--launcher", choices=("c", "python"), default="c", help="which task launcher flank uses (FLANK_TASK_EXEC)"
    )
    parser.add_argument("--no-flank-run", action="store_true", help="measure only the Makefile level")
    parser.add_argument(
        "--baseline-src",
        metavar="DIR",
        help="also time `flank run` of the flank_ops in DIR (e.g. `git archive main | tar -x -C DIR`), "
        "in the same rounds: before/after figures under the same load",
    )
    args = parser.parse_args()

    from flank_ops.config.load import load_config
    from flank_ops.run import makefile
    from flank_ops.task.launcher import task_launcher_argv

    graph = dag(args.tasks, args.layers)
    work = Path(tempfile.mkdtemp(prefix="flank-bench-overhead-"))
    env = dict(
        os.environ,
        FLANK_HOME=str(work / "flank-home"),
        FLANK_TASK_EXEC=args.launcher,
        PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    os.environ.update(FLANK_HOME=env["FLANK_HOME"], FLANK_TASK_EXEC=args.launcher)
    # flank as installed: pip byte-compiles it. With PYTHONDONTWRITEBYTECODE (CI and these sessions
    # set it) every `flank run` compiled all its modules again, ~90 ms the users never pay.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        (work / "plain.mk").write_text(plain_makefile(graph, "true"))
        (work / "logs").mkdir()
        (work / "stamps").mkdir()
        (work / "plain-stamps.mk").write_text(plain_makefile(graph, f"true; touch {work}/stamps/TASK"))
        (work / "plain-logs.mk").write_text(plain_makefile(graph, f"true > {work}/logs/TASK.log 2>&1"))

        wc = work / "wc"
        wc.mkdir()
        (wc / "flank.yml").write_text(flank_yml(graph, args.jobs))
        config = load_config((wc / "flank.yml").read_text())
        pipeline = config.pipelines["nightly"]
        launcher_argv = task_launcher_argv()  # builds the C launcher outside the timings
        plan_mk = makefile.write_run_plan(work / "plan-run", pipeline, config, wc)
        git_env = dict(
            env, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@x"
        )
        for git_args in (["init", "-q", "-b", "main"], ["add", "flank.yml"], ["commit", "-qm", "bench"]):
            subprocess.run(["git", *git_args], cwd=wc, env=git_env, check=True)

        def launcher_run(n: int) -> list[str]:
            run_dir = work / f"launcher-run-{n}"
            return makefile.make_command(plan_mk, run_dir, args.jobs, [])

        make = shutil.which("make") or "make"
        cwds: dict[str, Path] = {}
        contenders = {
            "make": lambda n: [make, "-s", "-j", str(args.jobs), "-f", str(work / "plain.mk")],
            "make+stamps": lambda n: [make, "-s", "-j", str(args.jobs), "-f", str(work / "plain-stamps.mk")],
            "make+logs": lambda n: [make, "-s", "-j", str(args.jobs), "-f", str(work / "plain-logs.mk")],
            "flank-launcher": launcher_run,
        }
        if not args.no_flank_run:
            contenders["flank run"] = lambda n: [sys.executable, "-m", "flank_ops", "run", "--local", "nightly"]
            if args.baseline_src:
                src = baseline_tree(str(Path(args.baseline_src).resolve()), work)
                # a working copy of its own: in one shared .flank/, each version found the other's
                # validated flank.yml (keyed by flank's code) and validated it again, every run
                shutil.copytree(wc, work / "wc-baseline", symlinks=True)
                cwds["flank run (baseline)"] = work / "wc-baseline"
                contenders["flank run (baseline)"] = lambda n: [
                    "env",
                    f"PYTHONPATH={src}",
                    sys.executable,
                    "-m",
                    "flank_ops",
                    "run",
                    "--local",
                    "nightly",
                ]

        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
        print(f"creating a small file in {work}: median {file_creation_us(work):.0f} us before the rounds")
        print(
            f"DAG: {len(graph)} no-op tasks in {args.layers} layers, each needing 2 of the layer before; "
            f"-j{args.jobs}; {args.rounds} rounds alternated; launcher: {' '.join(launcher_argv)}"
        )
        walls: dict[str, list[float]] = {k: [] for k in contenders}
        cpus: dict[str, list[float]] = {k: [] for k in contenders}
        for n in range(args.rounds):
            for name, argv_for in contenders.items():
                where = cwds.get(name, wc)
                wall, cpu, _ = timed(argv_for(n), where, env)
                wait_for_site_draws(where / STATE_DIR)  # goes on after `flank run` answered: not timed
                walls[name].append(wall)
                cpus[name].append(cpu)
        base_wall = statistics.median(walls["make"])
        base_cpu = statistics.median(cpus["make"])
        fair_wall = statistics.median(walls["make+logs"])
        fair_cpu = statistics.median(cpus["make+logs"])
        print(
            f"{'':16} {'wall (median)':>14} {'x make':>8} {'x make+logs':>12} {'cpu (median)':>14} "
            f"{'x make':>8} {'x make+logs':>12}"
        )
        for name in contenders:
            w, c = statistics.median(walls[name]), statistics.median(cpus[name])
            print(
                f"{name:16} {w:13.3f}s {w / base_wall:7.2f}x {w / fair_wall:11.2f}x "
                f"{c:13.3f}s {c / base_cpu:7.2f}x {c / fair_cpu:11.2f}x"
            )
        if "flank run" in walls:
            ratio = statistics.median(walls["flank run"]) / statistics.median(walls["make+stamps"])
            print(f"flank run / make+stamps (wall): {ratio:.2f}x  (goal: <= 1.5x)")
            draw_figures(wc, args.rounds)
        print(f"creating a small file there: median {file_creation_us(work):.0f} us after the rounds")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
