"""Memory stays flat however much a task prints: peak RSS with 1 GB of output vs 1 KB.

    python bench/memory.py [--size-mb 1024] [--no-flank-run]

For each contender, one task prints SIZE of text (`head -c SIZE /dev/zero | tr`)
or 1 KB, and we read the peak RSS of the whole process tree we started (wait4's
ru_maxrss: the largest of the process and every descendant it waited for):

  launcher (c)             the compiled task launcher, output straight to the log file
  launcher (c) + masking   the same with a secret to mask: output flows through its pipe
  launcher (python) + masking   the pure-Python twin (no C compiler) through its pipe
  flank run                `flank run --local` of a one-task pipeline: runner + launcher

Prints both figures and the ratio (target: 1.0). Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GNU_TIME = "/usr/bin/time"
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))
from flank_ops.paths import STATE_DIR  # noqa: E402
from helpers.cli import wait_for_site_draws  # noqa: E402


def printer(size: int) -> str:
    return f"head -c {size} /dev/zero | tr '\\0' 'x'"


def peak_rss_kb(argv: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Through GNU time: a process forked from this (big) Python would inherit its
    high-water mark, since ru_maxrss survives fork and exec."""
    report = cwd / "rss.txt"
    proc = subprocess.run(
        [GNU_TIME, "-f", "%M", "-o", str(report), *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return int(report.read_text().split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--no-flank-run", action="store_true")
    args = parser.parse_args()
    big, small = args.size_mb * 1024 * 1024, 1024
    if not os.access(GNU_TIME, os.X_OK):
        sys.exit("bench/memory.py reads peak RSS with GNU time: apt-get install time")

    from flank_ops.paths import Home
    from flank_ops.task import launcher
    from flank_ops.task.task_exec import TaskSpec, encode_spec

    work = Path(tempfile.mkdtemp(prefix="flank-bench-memory-"))
    base_env = dict(
        os.environ,
        FLANK_HOME=str(work / "flank-home"),
        PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    masked_env = dict(base_env, BENCH_SECRET="not-in-the-output", FLANK_SECRET_NAMES="BENCH_SECRET")
    try:
        binary = launcher.build_launcher(Home(work / "flank-home"))
        contenders: list[tuple[str, list[str], dict[str, str]]] = []
        if binary is not None:
            contenders.append(("launcher (c)", [str(binary)], base_env))
            contenders.append(("launcher (c) + masking", [str(binary)], masked_env))
        contenders.append(("launcher (python) + masking", launcher.python_launcher_argv(), masked_env))

        print(f"peak RSS while one task prints {args.size_mb} MB vs 1 KB")
        print(f"{'':30} {'1 KB':>10} {f'{args.size_mb} MB':>10} {'ratio':>7}")
        for name, argv, env in contenders:
            figures = []
            for n, size in enumerate((small, big)):
                spec = work / f"t{n}.spec"
                spec.write_bytes(encode_spec(TaskSpec(task="t", command=printer(size), cwd=str(work))))
                run_dir = work / f"run-{n}"
                figures.append(peak_rss_kb([*argv, str(spec), str(run_dir)], work, env))
                log = run_dir / "logs" / "t.log"
                assert log.stat().st_size == size, f"{name}: the log has {log.stat().st_size} bytes, not {size}"
                shutil.rmtree(run_dir)
            print(f"{name:30} {figures[0]:>8}KB {figures[1]:>8}KB {figures[1] / figures[0]:>6.2f}x")

        if not args.no_flank_run:
            figures = []
            for n, size in enumerate((small, big)):
                wc = work / f"wc-{n}"
                wc.mkdir()
                (wc / "flank.yml").write_text(
                    f"pipelines:\n  p:\n    tasks:\n      print: {json.dumps(printer(size))}\n"
                )
                git_env = dict(
                    base_env,
                    GIT_AUTHOR_NAME="bench",
                    GIT_AUTHOR_EMAIL="b@x",
                    GIT_COMMITTER_NAME="bench",
                    GIT_COMMITTER_EMAIL="b@x",
                )
                for git_args in (["init", "-q", "-b", "main"], ["add", "flank.yml"], ["commit", "-qm", "bench"]):
                    subprocess.run(["git", *git_args], cwd=wc, env=git_env, check=True)
                figures.append(peak_rss_kb([sys.executable, "-m", "flank_ops", "run", "--local", "p"], wc, base_env))
                wait_for_site_draws(wc / STATE_DIR)  # its final draw goes on after `flank run` answered
                shutil.rmtree(wc)
            print(f"{'flank run --local':30} {figures[0]:>8}KB {figures[1]:>8}KB {figures[1] / figures[0]:>6.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
