"""What masking secrets costs per byte of a task's output, by number of secrets.

    python bench/masking.py [--mb 64] [--python-mb 8] [--rounds 3]

One task prints MB megabytes of log-like text (a line in 500 holds a secret value)
through the task launcher, with 0, 10 and 1,000 secrets in FLANK_SECRET_NAMES, and
1,000 secrets that share a prefix (as GitHub tokens share `ghp_`, while the text holds
many "gh": the worst case for an index on the first bytes). The baseline, measured in
the same run: the same task writing straight to a file, without a launcher.
Contenders alternate in every round; the median CPU time (user+sys of the launcher and
the task) is reported as nanoseconds per byte of output and as ratios. The compiled
launcher (task_exec.c) is the one that runs; the Python twin (used without a C compiler)
is measured on --python-mb. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from flank_ops.task import launcher  # noqa: E402
from flank_ops.task.task_exec import TaskSpec, encode_spec  # noqa: E402


def token(seed: str, size: int, prefix: str = "") -> str:
    return prefix + hashlib.sha256(seed.encode()).hexdigest()[: size - len(prefix)]


def secret_sets() -> dict[str, dict[str, str]]:
    return {
        "0 secrets": {},
        "10 secrets": {f"S{i}": token(f"s{i}", 24) for i in range(10)},
        "1,000 secrets": {f"S{i}": token(f"s{i}", 16 + i % 32) for i in range(1000)},
        "1,000 'ghp_' secrets": {f"S{i}": token(f"g{i}", 40, "ghp_") for i in range(1000)},
    }


def write_output(path: Path, megabytes: float, values: list[str]) -> None:
    """Log-like lines; every 500th holds one of `values` (the same file for every contender)."""
    target = int(megabytes * 1024 * 1024)
    with open(path, "w") as f:
        written = i = 0
        while written < target:
            line = (
                f"2026-11-26 02:00:{i % 60:02d} INFO step {i} processed {i * 37 % 100000} rows "
                f"from table_{i % 17} (high water mark {i * 7919 % 1000003}, through the night)\n"
            )
            if i % 500 == 0:
                line = f"connecting with {values[(i // 500) % len(values)]} as analyst\n"
            f.write(line)
            written += len(line)
            i += 1


def cpu_of(argv: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(name: str, launcher_argv: list[str], megabytes: float, rounds: int, work: Path) -> None:
    sets = secret_sets()
    data = work / "output.txt"
    write_output(data, megabytes, list(sets["1,000 secrets"].values()) + list(sets["1,000 'ghp_' secrets"].values()))
    size = data.stat().st_size
    spec = work / "t.spec"
    spec.write_bytes(encode_spec(TaskSpec(task="t", command=f"cat {data}", cwd=str(work), argv=("cat", str(data)))))
    times: dict[str, list[float]] = {"no launcher (cat > file)": []}
    times.update({label: [] for label in sets})
    for _ in range(rounds):
        out = work / "direct.log"
        times["no launcher (cat > file)"].append(cpu_of(["sh", "-c", f'cat "{data}" > "{out}"'], dict(os.environ)))
        out.unlink()
        for label, secrets in sets.items():
            env = dict(os.environ, **secrets, FLANK_SECRET_NAMES=",".join(secrets))
            run_dir = work / "run"
            times[label].append(cpu_of([*launcher_argv, str(spec), str(run_dir)], env))
            log = run_dir / "logs" / "t.log"
            if secrets and any(v.encode() in log.read_bytes()[:2_000_000] for v in list(secrets.values())[:50]):
                raise SystemExit(f"{label}: a secret was not masked")
            log.unlink()
            (run_dir / "logs" / "t.log.times").unlink()
    med = {label: statistics.median(values) for label, values in times.items()}
    per_byte = {label: med[label] / size * 1e9 for label in med}
    print(f"\n{name}: {size / 1e6:.0f} MB of output, median of {rounds} rounds (CPU, launcher + task)")
    for label in med:
        print(f"  {label:28s} {med[label]:7.3f} s   {per_byte[label]:6.2f} ns/byte")
    base = per_byte["0 secrets"]
    print(f"  1,000 secrets vs 0:          {per_byte['1,000 secrets'] / base:5.2f}x")
    print(f"  1,000 secrets vs 10:         {per_byte['1,000 secrets'] / per_byte['10 secrets']:5.2f}x")
    shared = per_byte["1,000 'ghp_' secrets"]
    print(f"  1,000 'ghp_' secrets vs 0:   {shared / base:5.2f}x")
    print(f"  0 secrets vs no launcher:    {base / per_byte['no launcher (cat > file)']:5.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=64)
    parser.add_argument("--python-mb", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flank-bench-masking-") as tmp:
        work = Path(tmp)
        binary = launcher.build_launcher()
        if binary is None:
            print("no C compiler: only the Python launcher is measured")
        else:
            measure("compiled launcher (task_exec.c)", [str(binary)], args.mb, args.rounds, work)
        measure("Python launcher (task_exec.py)", launcher.python_launcher_argv(), args.python_mb, args.rounds, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
