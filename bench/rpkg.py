"""The R package `flank` (r/flank/) against a VM over ssh: what a call costs, and how late a followed line is.

    .venv/bin/python bench/rpkg.py [--rounds 10]

Through a private sshd on 127.0.0.1 (tests/helpers/sshd.py), a real project:
  - round trip: flank_status() in R vs `ssh vm true` (the baseline, the same ssh, measured in the
    same run), each without and with ssh connection sharing (ControlMaster=auto + ControlPersist):
    the ratio is what flank itself adds on top of ssh.
  - follow latency: a task prints its clock every 0.1 s; flank_run(follow = TRUE) prints it in the R
    console; the gap between the two clocks (median, p95) is how late a line reaches the analyst.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from push import REPO_ROOT, bench_env, sh

sys.path.insert(0, str(REPO_ROOT / "tests"))

FLANK_YML = """\
pipelines:
  nightly:
    tasks:
      extract: echo extracted
  ticks:
    tasks:
      clock: for i in $(seq 40); do date +%s.%N; sleep 0.1; done
"""

R_SCRIPT = r"""
library(flank)
rounds <- as.integer(commandArgs(TRUE)[1])
ssh <- flank:::ssh_argv(flank:::flank_target(), character())
probe <- c(ssh[seq_len(which(ssh == "--"))], ssh[which(ssh == "--") + 1], "true")
time_it <- function(f) { f(); vapply(seq_len(rounds), function(i) system.time(f())[["elapsed"]], 0) }
ssh_true <- time_it(function() system2(probe[1], shQuote(probe[-1]), stdout = FALSE, stderr = FALSE))
status <- time_it(function() flank_status())
stamps <- new.env()
stamps$got <- character()
trace("show_line", where = asNamespace("flank"), print = FALSE,
      tracer = quote(stamps$got <- c(stamps$got, paste(format(as.numeric(Sys.time()), nsmall = 6), line))))
invisible(capture.output(flank_run("ticks")))
lat <- vapply(strsplit(stamps$got, " "), function(w) {
  if (length(w) >= 4 && grepl("^[0-9]+\\.[0-9]+$", w[4])) as.numeric(w[1]) - as.numeric(w[4]) else NA_real_
}, 0)
cat(jsonlite::toJSON(list(ssh_true = ssh_true, status = status, follow = lat[!is.na(lat)]), digits = 6))
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    from helpers.sshd import PrivateSshd, sshd_available

    if sshd_available():
        sys.exit(sshd_available())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = bench_env(tmp)
        lib = tmp / "rlib"
        lib.mkdir()
        sh("R", "CMD", "INSTALL", "--no-test-load", "-l", str(lib), str(REPO_ROOT / "r" / "flank"))
        session_env = {k: v for k, v in env.items() if k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG_"))}
        with PrivateSshd(tmp / "sshd", env=session_env) as sshd:
            sh(sys.executable, "-m", "flank_ops", "init", "bench", env={**env, "PYTHONPATH": str(REPO_ROOT)})
            wc = tmp / "wc"
            wc.mkdir()
            (wc / "flank.yml").write_text(FLANK_YML)
            for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "first"]):
                sh("git", *cmd, cwd=wc, env=env)
            sh("git", "remote", "add", "flank", sshd.url(tmp / "home" / "bench.git"), cwd=wc, env=env)
            env["GIT_SSH_COMMAND"] = sshd.ssh_command
            sh("git", "push", "-q", "flank", "main", cwd=wc, env=env)
            shared = shlex.join(
                ["-o", "ControlMaster=auto", "-o", f"ControlPath={tmp}/cm-%C", "-o", "ControlPersist=60"]
            )
            print(f"R package flank over a private sshd on 127.0.0.1, {args.rounds} rounds each")
            for label, ssh in (
                ("one connection per call", sshd.ssh_command),
                ("ControlMaster", f"{sshd.ssh_command} {shared}"),
            ):
                r_env = {**env, "GIT_SSH_COMMAND": ssh, "R_LIBS": str(lib), "LANG": "C.UTF-8"}
                proc = subprocess.run(
                    ["Rscript", "-e", R_SCRIPT, str(args.rounds)], cwd=wc, env=r_env, capture_output=True, text=True
                )
                if proc.returncode:
                    sys.exit(proc.stderr)
                got = json.loads(proc.stdout.strip().splitlines()[-1])
                base, status, follow = pct(got["ssh_true"], 0.5), pct(got["status"], 0.5), got["follow"]
                print(f"\n{label}:")
                print(f"  ssh vm true       median {base * 1000:7.1f} ms  (baseline)")
                print(f"  flank_status()    median {status * 1000:7.1f} ms  ratio {status / base:5.2f}x")
                print(
                    f"  follow latency    median {pct(follow, 0.5) * 1000:7.1f} ms  p95 {pct(follow, 0.95) * 1000:7.1f} ms"
                    f"  ({len(follow)} lines)"
                )
            # the shared connection's master ends with the bench, not ControlPersist later
            stop = ["ssh", *sshd.ssh_options, "-p", str(sshd.port), "-o", f"ControlPath={tmp}/cm-%C", "-O", "exit"]
            subprocess.run([*stop, f"{sshd.user}@127.0.0.1"], capture_output=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
