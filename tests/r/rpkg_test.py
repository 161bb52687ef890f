"""The R package `flank` (r/flank/): `R CMD build` and `R CMD check --no-manual` clean, and its
testthat tests against a real flank VM: a private sshd on 127.0.0.1 (tests/helpers/sshd.py), a real
`flank init`ed project pushed to over ssh, the R session on the "laptop" side with only git and ssh.
Skipped where R (r-base-dev, r-cran-jsonlite, r-cran-testthat) is not installed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from flank_ops.paths import Home
from helpers.cli import run_flank
from helpers.repos import git, make_repo
from helpers.sshd import PrivateSshd, sshd_available

PACKAGE = Path(__file__).resolve().parents[2] / "r" / "flank"


def _r_missing() -> str | None:
    if not shutil.which("Rscript"):
        return "R is not installed (apt-get install r-base-dev r-cran-jsonlite r-cran-testthat)"
    probe = subprocess.run(
        [
            "Rscript",
            "-e",
            "for (p in c('jsonlite', 'testthat')) if (!requireNamespace(p, quietly = TRUE)) q(status = 1)",
        ],
        capture_output=True,
    )
    return (
        "R lacks jsonlite or testthat (apt-get install r-cran-jsonlite r-cran-testthat)" if probe.returncode else None
    )


needs_r = pytest.mark.skipif(bool(_r_missing()), reason=_r_missing() or "")
needs_sshd = pytest.mark.skipif(bool(sshd_available()), reason=sshd_available() or "")

FLANK_YML = """\
pipelines:
  nightly:
    tasks:
      extract: echo extracted rows
      report:
        run: echo report done
        needs: [extract]
  slow:
    tasks:
      wait: sleep 60
  onpush:
    on_push: true
    tasks:
      hello: echo pushed
  broken:
    tasks:
      boom: "echo no such column >&2; exit 3"
  greet:
    params:
      who: world
      loud: false
    tasks:
      hello: echo "hello $FLANK_PARAM_WHO loud=$FLANK_PARAM_LOUD"
"""

SECRET = "s3cr3t-'$(id)-R-VALUE"


def recording_ssh(tmp_path: Path, log: Path) -> Path:
    """An ssh that appends its argv and the whole process table (`ps -eo args`) to `log`, then execs ssh."""
    script = tmp_path / "recording-ssh"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, subprocess, sys\n"
        "ps = subprocess.run(['ps', '-eo', 'args'], capture_output=True, text=True).stdout\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv[1:], 'ps': ps}) + '\\n')\n"
        "os.execvp('ssh', ['ssh', *sys.argv[1:]])\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture(scope="module")
def r_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package installed once for the module's tests, into a library of their own."""
    lib = tmp_path_factory.mktemp("rlib")
    proc = subprocess.run(["R", "CMD", "INSTALL", "--no-test-load", "-l", str(lib), str(PACKAGE)], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return lib


@pytest.mark.slow
@needs_r
def test_the_package_builds_and_checks_with_no_note(tmp_path: Path) -> None:
    build = subprocess.run(
        ["R", "CMD", "build", "--no-build-vignettes", str(PACKAGE)], cwd=tmp_path, capture_output=True
    )
    assert build.returncode == 0, build.stderr.decode()
    [tarball] = tmp_path.glob("flank_*.tar.gz")
    env = {**os.environ, "_R_CHECK_FORCE_SUGGESTS_": "false", "LANG": "C.UTF-8"}
    # --no-tests: the testthat tests run in the next test, against the VM they need
    check = subprocess.run(
        ["R", "CMD", "check", "--no-manual", "--no-tests", tarball.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    log = (tmp_path / "flank.Rcheck" / "00check.log").read_text()
    assert check.returncode == 0, log
    # no NOTE, WARNING or ERROR, but for Suggests this machine lacks (r-cran-rstudioapi, r-cran-askpass)
    found = re.findall(r"^\* (checking .*?) \.\.\. (NOTE|WARNING|ERROR)\n((?:(?!\* ).*\n)*)", log, re.M)
    assert all(level == "NOTE" and "suggested but not available" in text for _, level, text in found), log


@pytest.mark.slow
@needs_r
@needs_sshd
def test_the_package_drives_a_real_vm_over_ssh(tmp_path: Path, flank_home: Path, r_lib: Path) -> None:
    session_env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG_")) or k == "XDG_CACHE_HOME"
    }
    with PrivateSshd(tmp_path / "sshd", env=session_env) as sshd:
        run_flank("init", "demo", check=True)
        wc = make_repo(tmp_path / "clone", {"flank.yml": FLANK_YML, "README.md": "demo\n"})
        git("remote", "add", "flank", sshd.url(flank_home / "demo.git"), cwd=wc)
        log = tmp_path / "ssh-calls.jsonl"
        log.touch()
        # one shared connection (as ~/.ssh/config's ControlMaster would): the calls skip the handshake
        sockets = Path(tempfile.mkdtemp(prefix="cm", dir="/tmp"))  # a socket's path must be short
        shared = ["-o", "ControlMaster=auto", "-o", f"ControlPath={sockets}/%C", "-o", "ControlPersist=yes"]
        ssh = shlex.join([str(recording_ssh(tmp_path, log)), *sshd.ssh_options, *shared])
        laptop = {
            **os.environ,
            "GIT_SSH_COMMAND": ssh,
            "FLANK_HOME": str(tmp_path / "the-laptop-has-no-flank-home"),
            "R_LIBS": str(r_lib),
            "FLANK_TEST_CLONE": str(wc),
            "FLANK_TEST_BARE": str(flank_home / "demo.git"),
            "FLANK_TEST_SECRET": SECRET,
            "FLANK_TEST_DEAD_URL": f"ssh://{sshd.user}@127.0.0.1:{_closed_port()}/x/demo.git",
            "TMPDIR": str(tmp_path / "rtmp"),
            "LANG": "C.UTF-8",
        }
        (tmp_path / "rtmp").mkdir()
        push = subprocess.run(["git", "push", "flank", "main"], cwd=wc, env=laptop, capture_output=True, text=True)
        assert push.returncode == 0, push.stderr
        tests = PACKAGE / "tests" / "testthat"
        proc = subprocess.run(
            [
                "Rscript",
                "-e",
                "library(flank); res <- testthat::test_dir(commandArgs(TRUE)[1], reporter = 'summary', "
                "stop_on_failure = TRUE, package = 'flank', load_package = 'installed')",
                str(tests),
            ],
            env=laptop,
            capture_output=True,
            text=True,
        )
        master = ["ssh", *sshd.ssh_options, *shared, "-p", str(sshd.port), "-O", "exit", f"{sshd.user}@127.0.0.1"]
        subprocess.run(master, capture_output=True)  # the shared connection ends with the test
        shutil.rmtree(sockets, ignore_errors=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Skipped" not in proc.stdout, proc.stdout

    # the secret reached the VM, sent on stdin: never on a command line, in the process table or a file
    from flank_ops.task.secrets import load_secrets

    assert load_secrets(Home(flank_home).project("demo")) == {"API_TOKEN": SECRET}
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("API_TOKEN" in " ".join(c["argv"]) for c in calls)
    assert not any(SECRET in " ".join(c["argv"]) or SECRET in c["ps"] for c in calls)
    for path in (tmp_path / "rtmp").rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@needs_r
def test_r_runs_the_same_ssh_command_as_flank_remote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, r_lib: Path
) -> None:
    """One ssh invocation for both (the ssh gate on the VM sees the same command line from either)."""
    from flank_ops.remote.ssh import parse_remote_url, ssh_argv

    wc = make_repo(tmp_path / "clone", {"README.md": "x\n"})
    cases = [
        ("ssh://ada@127.0.0.1:2222/home/ada/flank/demo.git", ["logs", "demo", "nightly", "x$(touch y)'q\"", "--json"]),
        ("ada@vm:flank/my proj.git", ["status", "my proj", "--json"]),
        ("ssh://vm/~/flank/demo.git", ["secrets", "set", "demo", "API_TOKEN"]),
        ("ssh://ada@[::1]:2222/home/ada/flank/demo.git", ["status", "demo", "--json"]),
    ]
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i '/keys/a key' -o BatchMode=yes")
    env = {**os.environ, "R_LIBS": str(r_lib)}
    for url, args in cases:
        script = (
            "a <- commandArgs(TRUE); t <- flank:::parse_remote_url(a[1]); "
            "cat(jsonlite::toJSON(flank:::ssh_argv(t, a[-1])))"
        )
        proc = subprocess.run(["Rscript", "-e", script, url, *args], cwd=wc, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == ssh_argv(parse_remote_url(url), args), url
