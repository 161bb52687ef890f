"""Incremental runs (issue 12): what a no-change rerun, a big input and a save cost.

    python bench/incremental.py [--tasks 500] [--gb 1] [--repeat 3] [--no-snakemake] [--baseline-src DIR]

1. No-change rerun of a layered DAG (each task: one small input file, one output, needs 1-2 tasks
   of the layer before), every file up to date:
     flank run --local     the whole command (plan + record + make on an empty plan + site + notes)
     flank plan --local    the decision alone, as a command
     decide() in-process   the decision alone: in full (every task's fingerprint: stat + cache
                           lookups), and answered from the last all-up-to-date decision
                           (incremental/up_to_date.py: a stat per file it read)
     flank run, in full    the whole command without that kept answer (the first run after a
                           change; on the VM after each push)
   against plain make's no-op on the same DAG as file targets (`make -q`, and `make` saying
   "Nothing to be done") and snakemake's "Nothing to be done" (installed with pip into a temp
   venv; skipped with a note when it cannot be installed). Target: flank <= 2x make, < snakemake.
2. A 1 GB input: the first check (hashing; the file is in the page cache, freshly written) in
   MB/s and the second (cached: a stat and a lookup) in ms. Target >= 1 GB/s and <= 5 ms.
3. `flank watch`: from a save to the affected task's start (the task writes the clock first).
   Target <= 250 ms (issue 22).
Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
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
from helpers.baseline_src import baseline_tree  # noqa: E402
from helpers.cli import wait_for_site_draws  # noqa: E402

FLANK = [sys.executable, "-m", "flank_ops"]


def layered_dag(n: int, seed: int = 12) -> dict[str, list[str]]:
    rng = random.Random(seed)
    width = max(1, round(n**0.5))
    names = [f"t{i:04d}" for i in range(n)]
    needs: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        layer = i // width
        prev = names[(layer - 1) * width : layer * width] if layer else []
        needs[name] = sorted(set(rng.sample(prev, min(len(prev), rng.randint(1, 2))))) if prev else []
    return needs


CPU: dict[str, float] = {}  # argv[0..2] -> median CPU seconds (user + system) of the last timed() call


def timed(argv: list[str], cwd: Path, repeat: int, env: dict[str, str] | None = None) -> float:
    """Median wall time; the median CPU time goes to CPU (a fairer figure on a busy machine)."""
    import resource

    times, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if proc.returncode not in (0, 1):
            print(proc.stdout.decode()[-2000:])
            raise SystemExit(f"{argv} failed")
    CPU[" ".join(argv[:4])] = statistics.median(cpu)
    return statistics.median(times)


def timed_alternated(
    contenders: dict[str, tuple[list[str], dict[str, str] | None]],
    cwd: Path,
    repeat: int,
    cwds: dict[str, Path] | None = None,
) -> dict[str, float]:
    """Median wall time of each contender (in `cwd`, or its own in `cwds`), run one after the other
    in each of `repeat` rounds; the median CPU times go to CPU as timed() puts them. A flank run's
    final site draw goes on after it answered: it is waited for, untimed, before the next contender
    starts (else it would slow that one)."""
    import resource

    walls: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, (argv, env) in contenders.items():
            where = (cwds or {}).get(name, cwd)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            proc = subprocess.run(argv, cwd=where, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            walls[name].append(time.perf_counter() - t)
            wait_for_site_draws(where / STATE_DIR)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if proc.returncode not in (0, 1):
                print(proc.stdout.decode()[-2000:])
                raise SystemExit(f"{argv} failed")
    for name, (argv, _) in contenders.items():
        CPU[" ".join(argv[:4])] = statistics.median(cpus[name])
    return {name: statistics.median(times) for name, times in walls.items()}


def cpu_of(argv: list[str]) -> float:
    return CPU[" ".join(argv[:4])]


def write_project(root: Path, dag: dict[str, list[str]]) -> None:
    (root / "in").mkdir(parents=True)
    (root / "out").mkdir()
    lines = ["pipelines:", "  big:", "    concurrency: 2", "    tasks:"]
    for name, needs in dag.items():
        (root / "in" / f"{name}.txt").write_text(f"{name}\n")
        deps = " ".join(f"out/{d}.txt" for d in needs)
        lines += [
            f"      {name}:",
            f"        run: cat in/{name}.txt {deps} > out/{name}.txt",
            f"        needs: [{', '.join(needs)}]",
            f"        inputs: [in/{name}.txt]",
            f"        outputs: [out/{name}.txt]",
        ]
    (root / "flank.yml").write_text("\n".join(lines) + "\n")
    make = []
    for name, needs in dag.items():
        deps = " ".join(f"out/{d}.txt" for d in needs)
        make += [f"out/{name}.txt: in/{name}.txt {deps}", f"\tcat in/{name}.txt {deps} > out/{name}.txt"]
    make.insert(0, "all: " + " ".join(f"out/{n}.txt" for n in dag))
    (root / "Makefile").write_text("\n".join(make) + "\n")
    rules = [
        f"NEEDS = {dag!r}",
        "rule all:",
        f"    input: {[f'out/{n}.txt' for n in dag]!r}",
        "rule task:",
        "    input: lambda w: [f'in/{w.name}.txt'] + [f'out/{d}.txt' for d in NEEDS[w.name]]",
        "    output: 'out/{name}.txt'",
        "    shell: 'cat {input} > {output}'",
    ]
    (root / "Snakefile").write_text("\n".join(rules) + "\n")


def snakemake_binary(tmp: Path) -> Path | None:
    venv = tmp / "snakemake-venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "snakemake"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"  snakemake: skipped, it could not be installed ({exc})")
        return None
    return venv / "bin" / "snakemake"


def bench_noop(n: int, repeat: int, tmp: Path, with_snakemake: bool, baseline_src: str | None = None) -> None:
    from flank_ops.config.load import load_config_file
    from flank_ops.incremental import plan, up_to_date
    from flank_ops.paths import ProjectPaths

    print(f"1. no-change rerun, {n}-task layered DAG (median of {repeat}, alternated)")
    dag = layered_dag(n)
    root = tmp / "dag"
    write_project(root, dag)
    # flank as installed: pip byte-compiles it (PYTHONDONTWRITEBYTECODE would time compiling it each run)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"FLANK_HOME": str(tmp / "home")}
    up_to_date_file = ProjectPaths.for_local(root).up_to_date_file("big")
    t = time.perf_counter()
    subprocess.run([*FLANK, "run", "--local", "big"], cwd=root, env=env, stdout=subprocess.DEVNULL, check=True)
    print(f"  first flank run (every task runs):      {time.perf_counter() - t:8.2f} s")
    time.sleep(1.1)  # past the racy window: the outputs' hashes are cached from now on
    subprocess.run([*FLANK, "run", "--local", "big"], cwd=root, env=env, stdout=subprocess.DEVNULL, check=True)
    subprocess.run(["make", "-j2", "-s"], cwd=root, stdout=subprocess.DEVNULL, check=True)  # make's own first build
    # alternated, round after round, so a busy machine slows every contender alike
    contenders: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "make -q": (["make", "-q"], None),
        "make": (["make"], None),
        "python": ([sys.executable, "-c", "pass"], None),
        "flank run": ([*FLANK, "run", "--local", "big"], env),
        "flank plan": ([*FLANK, "plan", "--local", "big"], env),
        # the first run after a change (on the VM: after each push, a new release) decides every task
        "flank run, in full": (
            [
                "sh",
                "-c",
                'rm -f "$1" && shift && exec "$@"',
                "-",
                str(up_to_date_file),
                *FLANK,
                "run",
                "--local",
                "big",
            ],
            env,
        ),
    }
    baseline_argv: list[str] = []
    cwds: dict[str, Path] = {}
    if baseline_src:
        baseline_argv = ["env", f"PYTHONPATH={baseline_tree(baseline_src, tmp)}", *FLANK, "run", "--local", "big"]
        contenders["baseline"] = (baseline_argv, env)
        # a working copy of its own: in one shared .flank/, each version found the other's validated
        # flank.yml (keyed by flank's code) and validated it again, every run
        cwds["baseline"] = tmp / "dag-baseline"
        shutil.copytree(root, cwds["baseline"], symlinks=True)
        subprocess.run(baseline_argv, cwd=cwds["baseline"], env=env, stdout=subprocess.DEVNULL, check=True)
    walls = timed_alternated(contenders, root, repeat, cwds)
    flank_run, flank_plan, baseline_run = walls["flank run"], walls["flank plan"], walls.get("baseline")
    make_q, make_noop, python_start = walls["make -q"], walls["make"], walls["python"]
    config = load_config_file(root / "flank.yml")
    pipeline = config.pipelines["big"]
    order = pipeline.topological_order()
    paths = ProjectPaths.for_local(root)
    times, full = [], []
    for _ in range(repeat):
        up_to_date.forget(paths, "big")
        t = time.perf_counter()
        decided = plan.decide(paths, pipeline, config, root, order)  # in full, keeping its answer
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        decided = plan.decide(paths, pipeline, config, root, order)  # the kept answer, checked
        times.append(time.perf_counter() - t)
    in_process, in_full = statistics.median(times), statistics.median(full)
    assert all(d.action == plan.UP_TO_DATE for d in decided.values()), "not everything is up to date"
    make_cpu = cpu_of(["make"])

    def line(what: str, wall: float, argv: list[str] | None) -> None:
        cpu = cpu_of(argv) if argv else None
        ratio = f" = {wall / make_noop:5.1f}x make" if argv != ["make"] else ""
        cpu_text = f"   cpu {cpu * 1000:8.1f} ms = {cpu / make_cpu:5.1f}x make" if cpu is not None else ""
        print(f"  {what:<38} wall {wall * 1000:8.1f} ms{ratio}{cpu_text}")

    line("plain make -q", make_q, ["make", "-q"])
    line("plain make (Nothing to be done)", make_noop, ["make"])
    line("python start-up alone", python_start, [sys.executable, "-c", "pass"])
    line("flank run --local (all up to date)", flank_run, [*FLANK, "run", "--local", "big"])
    print(f"  {'':<38} (goal: flank run <= 2x make's no-op: now {flank_run / make_noop:.1f}x)")
    if baseline_run is not None:
        line("flank run --local, --baseline-src", baseline_run, baseline_argv)
    line("flank plan --local", flank_plan, [*FLANK, "plan", "--local", "big"])
    line(f"decide() in-process, in full ({n} checks)", in_full, None)
    line("decide() in-process, kept answer", in_process, None)
    line("flank run --local, deciding in full", walls["flank run, in full"], None)
    print(f"  {'':<38} (the first run after a change; + an sh and an rm)")
    if with_snakemake:
        snakemake = snakemake_binary(tmp)
        if snakemake is not None:
            subprocess.run(
                [str(snakemake), "--cores", "2", "-q"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            snake = timed([str(snakemake), "--cores", "1"], root, repeat)
            line("snakemake (Nothing to be done)", snake, [str(snakemake), "--cores", "1"])
            print(
                f"  flank run is {snake / flank_run:.1f}x faster than snakemake (wall), "
                f"{cpu_of([str(snakemake), '--cores', '1']) / cpu_of([*FLANK, 'run', '--local', 'big']):.1f}x (cpu)"
            )
    else:
        print("  snakemake: skipped (--no-snakemake)")


def bench_big_input(gb: float, tmp: Path) -> None:
    from flank_ops.incremental.fingerprints import HashCache

    size = int(gb * (1 << 30))
    print(f"2. a {size / (1 << 30):g} GB input")
    path = tmp / "big.bin"
    block = os.urandom(64 << 20)
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        f.write(block[: size % len(block)])
    time.sleep(1.1)  # past the racy window, so the hash is cached
    cache_file = tmp / "hash-cache.tsv"
    cache = HashCache(cache_file)
    t, c = time.perf_counter(), time.process_time()
    cache.digest(str(path), "big.bin")
    first, first_cpu = time.perf_counter() - t, time.process_time() - c
    cache.save()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        HashCache(cache_file).digest(str(path), "big.bin")  # a new process's view: load the cache, stat
        times.append(time.perf_counter() - t)
    print(
        f"  first check (xxh3-128 of the file, page cache): {size / first / 1e6:8.0f} MB/s ({first:.2f} s; "
        f"{size / max(first_cpu, 1e-9) / 1e6:.0f} MB per CPU second)"
    )
    print(f"  second check (cached: load cache + stat):       {statistics.median(times) * 1000:8.2f} ms")
    path.unlink()


def bench_watch(tmp: Path, repeat: int) -> None:
    print("3. flank watch: save -> the affected task starts")
    root = tmp / "watch"
    root.mkdir()
    (root / "in.txt").write_text("0\n")
    (root / "flank.yml").write_text(
        "pipelines:\n  w:\n    tasks:\n      stamp:\n        run: date +%s.%N > stamp.txt; cat in.txt >> stamp.txt\n"
        "        inputs: [in.txt]\n        outputs: [stamp.txt]\n"
    )
    env = {**os.environ, "FLANK_HOME": str(tmp / "home"), "PYTHONPATH": str(REPO)}
    log = open(tmp / "watch.log", "wb")
    watch = subprocess.Popen([*FLANK, "watch"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def wait_run(n: int) -> None:
            deadline = time.monotonic() + 60
            while (tmp / "watch.log").read_text().count(" success in ") < n:
                if time.monotonic() > deadline:
                    raise SystemExit("flank watch did not run: " + (tmp / "watch.log").read_text())
                time.sleep(0.02)

        wait_run(1)
        latencies = []
        for i in range(1, repeat + 1):
            saved = time.time()
            (root / "in.txt").write_text(f"{i}\n")
            wait_run(i + 1)
            latencies.append(float((root / "stamp.txt").read_text().split()[0]) - saved)
        print(
            f"  save to task start: median {statistics.median(latencies) * 1000:.0f} ms "
            f"(of {', '.join(f'{x * 1000:.0f}' for x in latencies)} ms; goal <= 250 ms)"
        )
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-snakemake", action="store_true")
    parser.add_argument(
        "--baseline-src",
        metavar="DIR",
        help="also time the no-change `flank run` of the flank_ops in DIR (an older checkout), for before/after",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="flank-bench-incremental-"))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    try:
        bench_big_input(args.gb, tmp)
        bench_watch(tmp, args.repeat)
        bench_noop(args.tasks, args.repeat, tmp, not args.no_snakemake, args.baseline_src)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
