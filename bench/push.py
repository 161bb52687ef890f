"""How much do flank's hooks add to a `git push`?

Pushes the same commits of examples/repo (or a small generated project if it is
missing) into a flank project (`flank init`, real hooks, real deploy) and into a
plain bare repo with no hooks, alternating the two in each round, and prints both
medians and their ratio. Also prints the import time of the hook path.

    python bench/push.py [--rounds 15] [--ssh | --ssh root@127.0.0.1:2222 --ssh-key ~/.ssh/id_ed25519]
                         [--baseline-src DIR] [--plain-post-receive]

--baseline-src DIR also pushes, in the same rounds, into a flank project whose hooks run the
flank_ops of DIR (e.g. `git archive OLD_COMMIT | tar -x -C DIR`): before/after figures measured
under the same load.

With --ssh, both pushes go over ssh to this same machine, as an analyst's pushes
do: the fixed cost of a push then includes the ssh session, as in real use. Bare
--ssh starts a private sshd on 127.0.0.1 for the bench (tests/helpers/sshd.py, the one the
tests use); --ssh USER@HOST:PORT uses an sshd you run.

Everything happens in a temp dir with its own FLANK_HOME. The `schedule:` lines
are dropped from the copied flank.yml so the bench never installs anything into
this machine's crontab.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "examples" / "repo"
sys.path.insert(0, str(REPO_ROOT / "tests"))
from helpers.baseline_src import baseline_tree  # noqa: E402

GENERATED_FLANK_YML = """\
persist: [data]
pipelines:
  nightly:
    tasks:
      extract: Rscript R/extract.R
      clean: {run: Rscript R/clean.R, needs: [extract]}
      model: {run: Rscript R/model.R, needs: [clean]}
      report: {run: python3 py/report.py, needs: [model]}
"""


def bench_env(tmp: Path) -> dict[str, str]:
    """The benches' environment: FLANK_HOME under `tmp`, git with an empty config and a fixed author,
    none of the caller's GIT_* variables. Nor PYTHONDONTWRITEBYTECODE: the hooks run from compiled
    modules, as an installed flank's do (with it, a --baseline-src copy was compiled on every push)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        {
            "FLANK_HOME": str(tmp / "home"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(tmp / "gitconfig"),
            "GIT_AUTHOR_NAME": "Bench",
            "GIT_AUTHOR_EMAIL": "bench@example.org",
            "GIT_COMMITTER_NAME": "Bench",
            "GIT_COMMITTER_EMAIL": "bench@example.org",
        }
    )
    (tmp / "gitconfig").write_text("")
    return env


def sh(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def make_working_copy(dest: Path, env: dict[str, str]) -> None:
    if EXAMPLE.is_dir() and (EXAMPLE / "flank.yml").is_file():
        shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".git", ".flank", "data", "output"))
        text = (dest / "flank.yml").read_text()
        (dest / "flank.yml").write_text(re.sub(r"(?m)^\s*schedule:.*\n", "", text))
    else:
        dest.mkdir()
        for rel in ("R/extract.R", "R/clean.R", "R/model.R", "py/report.py"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_text(f"# {rel}\n")
        (dest / "flank.yml").write_text(GENERATED_FLANK_YML)
    sh("git", "init", "-q", "-b", "main", cwd=dest, env=env)
    sh("git", "add", "-A", cwd=dest, env=env)
    sh("git", "commit", "-q", "-m", "first", cwd=dest, env=env)


def timed_push(wc: Path, remote: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    sh("git", "push", "-q", remote, "main", cwd=wc, env=env)
    return time.perf_counter() - start


def import_time_ms(bare: Path, env: dict[str, str]) -> float:
    """Sum of self import times of the hook path (a refused, no-op update: nothing deployed)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flank_ops", "hook", "pre-receive"],
        cwd=bare,
        env={**env, "GIT_DIR": str(bare)},
        input="",
        text=True,
        capture_output=True,
    )
    total_us = 0
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|", line)
        if m:
            total_us += int(m.group(1))
    return total_us / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--ssh",
        metavar="USER@HOST:PORT",
        nargs="?",
        const="private",
        help="push over ssh to this machine (alone: through a private sshd on 127.0.0.1)",
    )
    parser.add_argument("--ssh-key", metavar="FILE", help="the private key for --ssh")
    parser.add_argument(
        "--baseline-src",
        metavar="DIR",
        help="also push into a project whose hooks run the "
        "flank_ops of DIR (an older checkout), for before/after figures in one run",
    )
    parser.add_argument(
        "--plain-post-receive",
        action="store_true",
        help="also push, in the same rounds, into a flank project whose post-receive shim just runs "
        "`python -m flank_ops hook post-receive` (its own Python start-up; no deploy in pre-receive's "
        "child, no pipe): what the fork/FIFO machinery of deploy/hooks.py saves",
    )
    args = parser.parse_args()

    # The site is redrawn by a detached process after each push: it may still be writing at the end.
    with (
        tempfile.TemporaryDirectory(prefix="flank-bench-", ignore_cleanup_errors=True) as tmp_name,
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(tmp_name)
        env = bench_env(tmp)
        sh(sys.executable, "-m", "flank_ops", "init", "bench", env=env)
        flank_repo = tmp / "home" / "bench.git"
        baseline_repo = None
        if args.baseline_src:
            src = baseline_tree(args.baseline_src, tmp)
            sh(sys.executable, "-m", "flank_ops", "init", "baseline", env={**env, "PYTHONPATH": src})
            baseline_repo = tmp / "home" / "baseline.git"
            for hook in ("pre-receive", "post-receive"):
                shim = baseline_repo / "hooks" / hook
                shim.write_text(
                    shim.read_text().replace(
                        f"exec {sys.executable}", f"PYTHONPATH={shlex.quote(src)} exec {sys.executable}"
                    )
                )
        plain_hooks_repo = None
        if args.plain_post_receive:
            sh(sys.executable, "-m", "flank_ops", "init", "plainhooks", env=env)
            plain_hooks_repo = tmp / "home" / "plainhooks.git"
            shim = plain_hooks_repo / "hooks" / "post-receive"
            shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m flank_ops hook post-receive "$@"\n')
        plain_repo = tmp / "plain.git"
        sh("git", "init", "-q", "--bare", str(plain_repo), env=env)
        wc = tmp / "wc"
        make_working_copy(wc, env)
        url = str
        if args.ssh == "private":
            from helpers.sshd import PrivateSshd, sshd_available

            if sshd_available():
                sys.exit(f"--ssh: {sshd_available()}")
            session_env = {
                k: v for k, v in env.items() if k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG_"))
            }
            sshd = stack.enter_context(PrivateSshd(tmp / "sshd", env=session_env))
            env["GIT_SSH_COMMAND"] = sshd.ssh_command
            args.ssh = f"{sshd.user}@127.0.0.1:{sshd.port} (a private sshd)"
            url = sshd.url
        elif args.ssh:
            user_host, _, port = args.ssh.rpartition(":")
            key = f" -i {args.ssh_key}" if args.ssh_key else ""
            env["GIT_SSH_COMMAND"] = (
                f"ssh{key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
            )
            url = lambda repo: f"ssh://{user_host}:{port}{repo}"  # noqa: E731

        flank_times: list[float] = []
        plain_times: list[float] = []
        baseline_times: list[float] = []
        plain_hooks_times: list[float] = []
        for i in range(args.rounds + 1):
            if i:  # round 0 (the first push of the whole history) is a warm-up, not counted
                (wc / "README.md").open("a").write(f"\nround {i}\n")
                sh("git", "commit", "-q", "-am", f"round {i}", cwd=wc, env=env)
            # Alternate which goes first, so neither gets the warmer caches every time.
            order = [(url(flank_repo), flank_times), (url(plain_repo), plain_times)]
            if baseline_repo is not None:
                order.insert(1, (url(baseline_repo), baseline_times))
            if plain_hooks_repo is not None:
                order.insert(1, (url(plain_hooks_repo), plain_hooks_times))
            for remote, times in order if i % 2 else reversed(order):
                t = timed_push(wc, remote, env)
                if i:
                    times.append(t)

        flank_med = statistics.median(flank_times)
        plain_med = statistics.median(plain_times)
        print(f"transport: {'ssh to ' + args.ssh if args.ssh else 'local (file path)'}")
        print(
            f"rounds: {args.rounds} (each pushes one new commit of {'examples/repo' if EXAMPLE.is_dir() else 'a generated repo'})"
        )
        print(f"git push into a flank repo (hooks + deploy): median {flank_med * 1000:7.1f} ms")
        print(f"git push into a plain bare repo (no hooks):  median {plain_med * 1000:7.1f} ms")
        print(f"ratio: {flank_med / plain_med:.2f}  (goal: <= 1.3)")
        if baseline_times:
            baseline_med = statistics.median(baseline_times)
            print(
                f"git push into a flank repo of {args.baseline_src}: median {baseline_med * 1000:7.1f} ms, "
                f"ratio {baseline_med / plain_med:.2f}"
            )
        if plain_hooks_times:
            hooks_med = statistics.median(plain_hooks_times)
            print(
                f"git push into a flank repo, post-receive running Python itself: median {hooks_med * 1000:7.1f} ms, "
                f"ratio {hooks_med / plain_med:.2f} (the deploy in pre-receive's child saves "
                f"{(hooks_med - flank_med) * 1000:.0f} ms)"
            )
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
        print(
            f"hook path import time (python -X importtime, self times summed): {import_time_ms(flank_repo, env):.1f} ms"
        )
        startup = []
        for _ in range(5):
            start = time.perf_counter()
            sh(sys.executable, "-c", "pass", env=env)
            startup.append(time.perf_counter() - start)
        print(
            f"bare python startup for comparison: median {statistics.median(startup) * 1000:.1f} ms "
            "(a push starts one: pre-receive deploys from a forked child; the post-receive shim copies its output)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
