"""What does a `setup:` whose key did not change add to a push? (issue 13: target <= 1.1x)

Two flank projects with the same files, one without `setup:`, one with a setup keyed on
deps.txt. The first push of the second runs its setup; every later round changes README.md
only (the key is unchanged), so its setup is reused: the cost measured is the cache check
(one `git ls-tree`) and linking the carried-over files into the release. Pushes alternate
between the two, local transport, and medians are printed with their ratio.

    python bench/setup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from push import bench_env, sh, timed_push  # noqa: E402 - the push bench's helpers

FLANK_YML = """\
{setup}persist: [data]
pipelines:
  nightly:
    tasks:
      extract: echo extract
      report: {{run: echo report, needs: [extract]}}
"""
SETUP = "setup:\n  run: mkdir -p built/lib && echo ok > built/lib/stamp\n  key: [deps.txt]\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    # The site is redrawn by a detached process after each push: it may still be writing at the end.
    with tempfile.TemporaryDirectory(prefix="flank-bench-setup-", ignore_cleanup_errors=True) as tmp_name:
        tmp = Path(tmp_name)
        env = bench_env(tmp)
        (tmp / "home").mkdir()
        (tmp / "home" / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
        copies = {}
        for name, setup in (("plain", ""), ("setup", SETUP)):
            sh(sys.executable, "-m", "flank_ops", "init", name, env=env)
            wc = tmp / f"wc-{name}"
            wc.mkdir()
            (wc / "flank.yml").write_text(FLANK_YML.format(setup=setup))
            (wc / "deps.txt").write_text("pkg==1.0\n")
            (wc / "README.md").write_text("bench\n")
            sh("git", "init", "-q", "-b", "main", cwd=wc, env=env)
            sh("git", "add", "-A", cwd=wc, env=env)
            sh("git", "commit", "-q", "-m", "first", cwd=wc, env=env)
            copies[name] = wc
        times: dict[str, list[float]] = {"plain": [], "setup": []}
        for i in range(args.rounds + 1):
            order = ["plain", "setup"] if i % 2 else ["setup", "plain"]
            for name in order:
                wc = copies[name]
                if i:
                    (wc / "README.md").open("a").write(f"round {i}\n")
                    sh("git", "commit", "-q", "-am", f"round {i}", cwd=wc, env=env)
                t = timed_push(wc, str(tmp / "home" / f"{name}.git"), env)
                if i:  # round 0 (the first push; the setup runs) is a warm-up, not counted
                    times[name].append(t)
        plain, cached = statistics.median(times["plain"]), statistics.median(times["setup"])
        print(f"rounds: {args.rounds}")
        print(f"push without setup:                 median {plain * 1000:7.1f} ms")
        print(f"push with setup:, key unchanged:    median {cached * 1000:7.1f} ms")
        print(f"ratio: {cached / plain:.2f}  (target: 1.1 or less)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
