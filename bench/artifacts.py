"""Cost of keeping a task's artifacts (issue 11), against `cp -r` of the same files, on one file system.

    python bench/artifacts.py [--big-mb 2048] [--small 1000] [--dir /path/on/the/fs/to/test]

A task makes 1,000 small files (4 KB) and one big file (2 GB by default). Measured, each time with
the wall time and the disk really used (free space before and after, synced):
  cp -r           the baseline: a plain copy of the results folder
  keep, run 1     flank keeps them the first time (reflink where the file system can, else a copy)
  keep, run 2     the next run, files untouched since run 1: links to run 1's kept copies
  keep, run 3     the next run after the task rewrote the small files in place (R's write.csv does):
                  the small files are copied again, the unchanged big file is linked
  hard links      what plain hard links would cost (NOT what flank does: a task rewriting a file in
                  place would change the kept copy; shown as the floor)
Prints figures and ratios against cp -r; asserts nothing. Page cache is warm (the task just wrote
the files), as it is when a task ends.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from flank_ops.config.model import Task  # noqa: E402
from flank_ops.store import artifacts  # noqa: E402

MB = 1024 * 1024


def free_bytes(folder: Path) -> int:
    os.sync()
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def measure(label: str, folder: Path, action) -> tuple[float, int]:
    before = free_bytes(folder)
    began = time.perf_counter()
    action()
    took = time.perf_counter() - began
    used = max(0, before - free_bytes(folder))
    return took, used


def make_results(release: Path, small: int, big_mb: int) -> None:
    results = release / "results"
    (results / "tables").mkdir(parents=True)
    block = os.urandom(4096)
    for i in range(small):
        (results / "tables" / f"t{i:04d}.csv").write_bytes(block[i % 64 :] + block[: i % 64])
    chunk = os.urandom(MB)
    with open(results / "big.bin", "wb") as f:
        for i in range(big_mb):
            f.write(chunk[i % 1024 :] + chunk[: i % 1024])


def rewrite_small_in_place(release: Path) -> None:
    for p in sorted((release / "results" / "tables").iterdir()):
        with open(p, "r+b") as f:  # same inode, new bytes: what O_TRUNC writers do
            f.write(b"x")


def reflink_supported(folder: Path) -> bool:
    a, b = folder / ".probe-a", folder / ".probe-b"
    a.write_bytes(b"probe")
    try:
        with open(a, "rb") as fin, open(b, "wb") as fout:
            fcntl.ioctl(fout.fileno(), artifacts.FICLONE, fin.fileno())
        return True
    except OSError:
        return False
    finally:
        a.unlink(missing_ok=True)
        b.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mb", type=int, default=2048)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=None, help="where to work (default: the temp folder)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="flank-bench-artifacts-", dir=args.dir))
    try:
        need = (args.big_mb * MB + args.small * 4096) * 4
        if free_bytes(root) < need:
            print(
                f"not enough free disk in {root} for --big-mb {args.big_mb}: need ~{need // MB} MB; "
                "use a smaller --big-mb"
            )
            return
        release, runs = root / "release", root / "runs" / "nightly"
        release.mkdir()
        runs.mkdir(parents=True)
        make_results(release, args.small, args.big_mb)
        task = Task(name="model", run="true", artifacts=("results/**/*.csv", "results/big.bin"))
        budget = artifacts.Budget(max_bytes=1 << 60, used=0)
        print(
            f"{args.small} files of 4 KB + one of {args.big_mb} MB in {root} "
            f"({'reflinks supported' if reflink_supported(root) else 'no reflinks on this file system: copies'})"
        )

        rows: list[tuple[str, float, int]] = []
        t, u = measure(
            "cp -r", root, lambda: subprocess.run(["cp", "-r", str(release / "results"), str(root / "cp")], check=True)
        )
        rows.append(("cp -r", t, u))
        shutil.rmtree(root / "cp")

        def keep(run_id: int) -> None:
            kept, warnings = artifacts.keep_task(
                runs / str(run_id), run_id, "model", task, release, root / "persist", budget
            )
            assert len(kept) == args.small + 1 and all(k["kept"] for k in kept), warnings

        for run_id in (1, 2):
            (runs / str(run_id)).mkdir()
            t, u = measure(f"keep, run {run_id}", root, lambda: keep(run_id))
            rows.append((f"keep, run {run_id}" + (" (first time)" if run_id == 1 else " (untouched: linked)"), t, u))
        rewrite_small_in_place(release)
        (runs / "3").mkdir()
        t, u = measure("keep, run 3", root, lambda: keep(3))
        rows.append(("keep, run 3 (small files rewritten)", t, u))

        def hard_links() -> None:
            for src in (release / "results").rglob("*"):
                if src.is_file():
                    dst = root / "links" / src.relative_to(release)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.link(src, dst)

        t, u = measure("hard links", root, hard_links)
        rows.append(("hard links (unsafe floor)", t, u))

        base_t, base_u = rows[0][1], max(rows[0][2], 1)
        print(f"{'':38} {'time':>9} {'x cp -r':>8} {'disk':>10} {'x cp -r':>8}")
        for label, t, u in rows:
            print(f"{label:38} {t:8.3f}s {t / base_t:8.3f} {u / MB:8.1f}MB {u / base_u:8.3f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
