"""Site build cost: rebuild after one run with 10 vs 10,000 past runs, and a full rebuild.

    python bench/site.py [--runs 10000] [--repeat 7]

Synthesized records (the real record format, tests/helpers/site_records.py) in a
temporary FLANK_HOME. Prints figures; asserts nothing. Target: ratio <= 1.5.
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

from flank_ops.paths import Home  # noqa: E402
from flank_ops.site import build  # noqa: E402
from helpers.site_records import make_many_runs, make_project, make_run  # noqa: E402


def one_home(root: Path, past_runs: int) -> tuple[Home, object]:
    os.environ["FLANK_HOME"] = str(root)
    home = Home(root)
    paths = make_project(home)
    make_many_runs(paths, "nightly", past_runs)
    return home, paths


def time_after_run(paths, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        run_id = make_run(paths)
        t = time.perf_counter()
        build.draw_run(paths, "nightly", run_id)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small_home, small = one_home(Path(tmp) / "small", 10)
        big_home, big = one_home(Path(tmp) / "big", args.runs)
        build.rebuild_all(small_home)
        build.draw_run(small, "nightly", 1)  # warm imports and template cache
        # 100 past runs: the first history page is full (50 rows), as it is with 10,000;
        # with 10 it holds 10 rows, so 10 vs 10,000 also measures 40 more rows drawn.
        mid_home, mid = one_home(Path(tmp) / "mid", 100)
        build.rebuild_all(mid_home)
        small_t = statistics.median(time_after_run(small, args.repeat))
        mid_t = statistics.median(time_after_run(mid, args.repeat))
        big_t = statistics.median(time_after_run(big, args.repeat))
        print(f"after_run, 10 past runs:      median {small_t * 1000:7.1f} ms of {args.repeat}")
        print(f"after_run, 100 past runs:     median {mid_t * 1000:7.1f} ms of {args.repeat}")
        print(f"after_run, {args.runs} past runs: median {big_t * 1000:7.1f} ms of {args.repeat}")
        print(f"ratio {args.runs} vs 10:  {big_t / small_t:.2f} (target <= 1.5)")
        print(f"ratio {args.runs} vs 100: {big_t / mid_t:.2f} (both with a full first history page)")
        t = time.perf_counter()
        stats = build.rebuild(big_home)
        full = time.perf_counter() - t
        print(
            f"full rebuild of {stats.runs} runs: {full:.1f} s, {stats.pages} pages "
            f"({full / max(1, stats.runs) * 1000:.1f} ms per run)"
        )
        t = time.perf_counter()
        stats = build.rebuild(big_home, only_changed=True)
        print(
            f"`flank site` with nothing changed: {time.perf_counter() - t:.1f} s ({stats.skipped_runs} runs unchanged)"
        )


if __name__ == "__main__":
    main()
