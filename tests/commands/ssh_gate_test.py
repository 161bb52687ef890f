"""flank ssh-gate (issue 20 item 6): a key whose authorized_keys line is the printed forced command
pushes, runs, follows logs and sets secrets of its projects over a real sshd — and nothing else."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from helpers.cli import run_flank
from helpers.repos import git, make_repo
from helpers.sshd import PrivateSshd, sshd_available

SECRET = "gated-s3cr3t"
FLANK_YML = "pipelines:\n  nightly:\n    tasks:\n      extract: echo extracted rows\n"

pytestmark = [pytest.mark.skipif(bool(sshd_available()), reason=sshd_available() or ""), pytest.mark.slow]


class Gated(NamedTuple):
    sshd: PrivateSshd
    home: Path  # the VM's FLANK_HOME
    clone: Path
    env: dict[str, str]  # the laptop's: GIT_SSH_COMMAND with the gated key

    def flank(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_flank(*args, cwd=self.clone, env=self.env, input=input)

    def ssh(self, *command: str) -> subprocess.CompletedProcess[str]:
        """A raw ssh request with the gated key, as an attacker holding it would send one."""
        argv = ["ssh", *self.sshd.ssh_options, "-T", "-p", str(self.sshd.port), f"{self.sshd.user}@127.0.0.1"]
        return subprocess.run([*argv, *command], capture_output=True, text=True, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gated]:
    """One VM for the module (its sshd, FLANK_HOME with projects demo and other); the key is gated to demo."""
    tmp = tmp_path_factory.mktemp("gate")
    home = tmp / "flank-home"
    home.mkdir()
    (home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    vm = {"FLANK_HOME": str(home)}
    run_flank("init", "demo", env=vm, check=True)
    run_flank("init", "other", env=vm, check=True)
    (home / "other" / "secrets.env").write_text(f"OTHER={SECRET}\n")
    session_env = {
        k: v for k, v in os.environ.items() if k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG_"))
    }
    with PrivateSshd(tmp / "sshd", env=session_env) as sshd:
        line = run_flank("ssh-gate", "--key", str(sshd.key) + ".pub", "demo", env=vm, check=True).stdout.strip()
        (sshd.dir / "authorized_keys").write_text(line + "\n")
        clone = make_repo(tmp / "clone", {"flank.yml": FLANK_YML})
        git("remote", "add", "flank", sshd.url(home / "demo.git"), cwd=clone)
        env = {"GIT_SSH_COMMAND": sshd.ssh_command, "FLANK_HOME": str(tmp / "laptop-has-no-flank-home")}
        yield Gated(sshd, home, clone, env)


def test_the_printed_line_is_a_forced_command_with_restrict(gated: Gated) -> None:
    line = (gated.sshd.dir / "authorized_keys").read_text()
    assert line.startswith('command="') and '",restrict ssh-ed25519 AAAA' in line
    assert "ssh-gate" in line and "demo" in line and "other" not in line


def test_the_gated_key_pushes_runs_follows_logs_and_sets_a_secret(gated: Gated) -> None:
    push = subprocess.run(
        ["git", "push", "flank", "main"],
        cwd=gated.clone,
        env={**os.environ, **gated.env},
        capture_output=True,
        text=True,
    )
    assert push.returncode == 0 and "deployed" in push.stderr, push.stderr
    fetch = subprocess.run(
        ["git", "fetch", "flank"], cwd=gated.clone, env={**os.environ, **gated.env}, capture_output=True, text=True
    )
    assert fetch.returncode == 0, fetch.stderr
    run = gated.flank("remote", "run", "nightly", "--task", "extract")
    assert run.returncode == 0, run.stderr
    logs = gated.flank("remote", "logs", "nightly", "1", "extract", "--follow")
    assert logs.returncode == 0 and "extracted rows" in logs.stdout, logs.stderr
    assert gated.flank("remote", "status").returncode == 0
    assert gated.flank("remote", "secrets", "set", "API_KEY", input="v4lue\n").returncode == 0
    listed = gated.flank("remote", "secrets", "list")
    assert listed.returncode == 0 and "API_KEY" in listed.stdout, listed.stderr


@pytest.mark.parametrize(
    "command",
    [
        [],  # a login shell
        ["cat", "{home}/other/secrets.env"],
        ["sh", "-c", "id"],
        ["flank status other"],  # another project
        ["flank", "secrets", "list", "other"],
        ["git-upload-pack '{home}/other.git'"],
        ["flank status demo; cat {home}/other/secrets.env"],  # injection through the words
        ["flank logs demo nightly --local"],  # an option flank remote never sends
        ["FLANK_HOME=x; export FLANK_HOME; cat {home}/other/secrets.env; eval 'exec flank' 'status demo'"],
        ["scp -f {home}/other/secrets.env"],
    ],
)
def test_the_gated_key_cannot_read_files_start_a_shell_or_reach_another_project(
    gated: Gated, command: list[str]
) -> None:
    proc = gated.ssh(*[c.format(home=gated.home) for c in command])
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "this key may only run flank remote" in proc.stderr and "Traceback" not in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


def test_arguments_never_reach_a_shell(gated: Gated, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    proc = gated.flank("remote", "logs", f"nightly; touch {marker}", "$(touch {marker})")
    assert proc.returncode != 0 and not marker.exists()
    assert "Traceback" not in proc.stderr


def test_a_bad_key_or_project_is_one_line(tmp_path: Path) -> None:
    run_flank("init", "demo", check=True)
    bad = tmp_path / "bad.pub"
    bad.write_text('command="sh" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ ada@laptop\n')
    proc = run_flank("ssh-gate", "--key", str(bad), "demo")
    assert proc.returncode == 1 and "is not one ssh public key" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_flank("ssh-gate", "--key", str(bad), "nope")
    assert proc.returncode == 1 and "nope" in proc.stderr and "Traceback" not in proc.stderr
