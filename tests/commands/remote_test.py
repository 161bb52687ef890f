"""flank remote (flank_ops/commands/remote.py, flank_ops/remote/ssh.py): a laptop clone driving the
VM's flank over a real ssh connection to a private sshd on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from flank_ops.errors import UserError
from flank_ops.paths import Home
from flank_ops.remote.ssh import RemoteProject, parse_remote_url
from helpers.cli import run_flank
from helpers.repos import git, make_repo
from helpers.sshd import PrivateSshd, sshd_available

FLANK_YML = """\
pipelines:
  nightly:
    tasks:
      extract: echo extracted rows
      report:
        run: echo report done
        needs: [extract]
"""

needs_sshd = pytest.mark.skipif(bool(sshd_available()), reason=sshd_available() or "")


class Laptop(NamedTuple):
    wc: Path  # the clone, remote "flank" = ssh://...@127.0.0.1:PORT/.../demo.git
    env: dict[str, str]  # GIT_SSH_COMMAND: the recording ssh wrapper
    ssh_calls: Path  # one JSON line per ssh invocation: its argv
    sshd: PrivateSshd

    def flank(self, *args: str, input: str | None = None):
        return run_flank(*args, cwd=self.wc, env=self.env, input=input)

    def recorded_argvs(self) -> list[list[str]]:
        return [json.loads(line) for line in self.ssh_calls.read_text().splitlines()]


def recording_ssh(tmp_path: Path, log: Path) -> Path:
    """An ssh that appends its argv (as the process table shows it) to `log`, then execs ssh."""
    script = tmp_path / "recording-ssh"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "os.execvp('ssh', ['ssh', *sys.argv[1:]])\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def laptop(tmp_path: Path, flank_home: Path) -> Iterator[Laptop]:
    # what an ssh session on the "VM" sees: this test's isolated git identity and caches
    session_env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG_")) or k == "XDG_CACHE_HOME"
    }
    with PrivateSshd(tmp_path / "sshd", env=session_env) as sshd:
        run_flank("init", "demo", check=True)
        wc = make_repo(tmp_path / "clone", {"flank.yml": FLANK_YML})
        git("remote", "add", "flank", sshd.url(flank_home / "demo.git"), cwd=wc)
        log = tmp_path / "ssh-calls.jsonl"
        log.touch()
        ssh = shlex.join([str(recording_ssh(tmp_path, log)), *sshd.ssh_options])
        env = {"GIT_SSH_COMMAND": ssh, "FLANK_HOME": str(tmp_path / "laptop-has-no-flank-home")}
        proc = subprocess.run(
            ["git", "push", "flank", "main"], cwd=wc, text=True, env={**os.environ, **env}, capture_output=True
        )
        assert proc.returncode == 0, proc.stderr
        assert "deployed" in proc.stderr
        yield Laptop(wc, env, log, sshd)


@pytest.mark.slow
@needs_sshd
def test_remote_status_run_and_logs_run_the_vms_flank_over_ssh(laptop: Laptop) -> None:
    proc = laptop.flank("remote", "status")
    assert proc.returncode == 0, proc.stderr
    assert "demo" in proc.stdout and "nightly" in proc.stdout and "never run" in proc.stdout

    proc = laptop.flank("remote", "run", "nightly", "--task", "extract")
    assert proc.returncode == 0, proc.stderr

    proc = laptop.flank("remote", "logs", "nightly", "1", "extract")
    assert proc.returncode == 0, proc.stderr
    assert "extracted rows" in proc.stdout
    status = laptop.flank("remote", "status").stdout
    assert "#1" in status and "success" in status
    # every call went to the VM through ssh, with the remote's port
    argvs = laptop.recorded_argvs()
    assert len(argvs) >= 4 and all(["-p", str(laptop.sshd.port)] == a[a.index("-p") : a.index("-p") + 2] for a in argvs)


@pytest.mark.slow
@needs_sshd
def test_the_remote_exit_code_and_message_come_back(laptop: Laptop) -> None:
    here = run_flank("logs", "demo", "nosuch")  # the same command, run on the VM itself
    proc = laptop.flank("remote", "logs", "nosuch")
    assert here.returncode != 0
    assert proc.returncode == here.returncode
    assert here.stderr.strip() and here.stderr.strip() in proc.stderr

    # issue 23: -p and backfill reach the VM's flank, checked there against the deployed flank.yml
    proc = laptop.flank("remote", "run", "nightly", "-p", "n=1")
    assert proc.returncode == 1 and "pipeline 'nightly' has no parameter 'n' (it has no parameters)" in proc.stderr
    proc = laptop.flank("remote", "backfill", "nightly", "--from", "2026-11-01", "--to", "2026-11-02", "-p", "n=1")
    assert proc.returncode == 1 and "pipeline 'nightly' has no schedule: there is nothing to backfill" in proc.stderr


@pytest.mark.slow
@needs_sshd
def test_arguments_reach_the_vm_as_words_never_as_shell_code(laptop: Laptop, tmp_path: Path) -> None:
    mark = tmp_path / "pwned"
    proc = laptop.flank("remote", "logs", f"x$(touch {mark});touch {mark} 'q\"")
    assert proc.returncode != 0
    assert not mark.exists()
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@needs_sshd
def test_secrets_set_sends_the_value_on_stdin_never_on_a_command_line(laptop: Laptop, flank_home: Path) -> None:
    value = "s3cr3t-'$(id)-VALUE"
    proc = laptop.flank("remote", "secrets", "set", "API_TOKEN", input=value + "\n")
    assert proc.returncode == 0, proc.stderr
    assert "set API_TOKEN for demo" in proc.stdout

    from flank_ops.task.secrets import load_secrets

    assert load_secrets(Home(flank_home).project("demo")) == {"API_TOKEN": value}
    argvs = laptop.recorded_argvs()
    assert argvs and any("API_TOKEN" in " ".join(a) for a in argvs)
    assert not any("s3cr3t" in word for a in argvs for word in a)
    assert "s3cr3t" not in proc.stdout + proc.stderr

    listed = laptop.flank("remote", "secrets", "list")
    assert listed.returncode == 0 and listed.stdout.split() == ["API_TOKEN"]


@pytest.mark.slow
@needs_sshd
def test_another_git_remote_with_scp_syntax(laptop: Laptop, tmp_path: Path, flank_home: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(f"Host thevm\n  HostName 127.0.0.1\n  Port {laptop.sshd.port}\n  User {laptop.sshd.user}\n")
    env = dict(laptop.env, GIT_SSH_COMMAND=laptop.env["GIT_SSH_COMMAND"].replace(f"-F {os.devnull}", f"-F {config}"))
    git("remote", "add", "vm2", f"thevm:{flank_home}/demo.git", cwd=laptop.wc)
    proc = run_flank("remote", "--remote", "vm2", "status", cwd=laptop.wc, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "nightly" in proc.stdout
    proc = run_flank("remote", "status", "--remote", "nosuch", cwd=laptop.wc, env=env)
    assert proc.returncode == 1 and "this clone has no git remote 'nosuch'" in proc.stderr


def test_outside_a_clone_and_with_a_local_remote_it_says_what_to_do(tmp_path: Path) -> None:
    proc = run_flank("remote", "status", cwd=tmp_path)
    assert proc.returncode == 1 and "not in a git clone" in proc.stderr
    wc = make_repo(tmp_path / "wc", {"a": "b"})
    git("remote", "add", "flank", "/srv/flank/demo.git", cwd=wc)
    proc = run_flank("remote", "status", cwd=wc)
    assert proc.returncode == 1 and "is not an ssh URL" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "url, expected",
    [
        (
            "ssh://ada@vm.example/home/ada/flank/demo.git",
            RemoteProject("ada@vm.example", None, "/home/ada/flank/demo.git", "/home/ada/flank", "demo"),
        ),
        (
            "ssh://ada@vm.example:2222/srv/f/my.proj.git/",
            RemoteProject("ada@vm.example", 2222, "/srv/f/my.proj.git", "/srv/f", "my.proj"),
        ),
        ("ssh://vm/~/flank/demo.git", RemoteProject("vm", None, "flank/demo.git", "flank", "demo")),
        ("ssh://ada@[::1]:22/x/demo.git", RemoteProject("ada@[::1]", 22, "/x/demo.git", "/x", "demo")),
        ("ada@vm.example:flank/demo.git", RemoteProject("ada@vm.example", None, "flank/demo.git", "flank", "demo")),
        (
            "vm:/home/ada/flank/demo.git",
            RemoteProject("vm", None, "/home/ada/flank/demo.git", "/home/ada/flank", "demo"),
        ),
        ("ada@vm:~/demo.git", RemoteProject("ada@vm", None, "demo.git", ".", "demo")),
    ],
)
def test_parse_remote_url(url: str, expected: RemoteProject) -> None:
    assert parse_remote_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "/srv/flank/demo.git",
        "https://github.com/x/demo.git",
        "ssh://vm/srv/demo",
        "file:///srv/demo.git",
        "-oProxyCommand=x:demo.git",
    ],
)
def test_parse_remote_url_refuses_what_is_not_an_ssh_project_repo(url: str) -> None:
    with pytest.raises(UserError):
        parse_remote_url(url)


@pytest.mark.slow
@needs_sshd
def test_a_vm_flank_that_moved_gets_a_message_saying_how_to_repair_it(laptop: Laptop, flank_home: Path) -> None:
    git(
        "--git-dir",
        str(flank_home / "demo.git"),
        "config",
        "flank.command",
        "/nonexistent/venv/bin/flank",
        cwd=flank_home,
    )
    proc = laptop.flank("remote", "status")
    assert proc.returncode == 1
    assert "flank was not found on" in proc.stderr
    assert "run `flank init demo` once" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@needs_sshd
def test_remote_cancel_and_follow_reach_the_vms_commands(laptop: Laptop) -> None:
    # nothing is running: the VM's `flank cancel` says so and exits 3, and that comes back as is
    proc = laptop.flank("remote", "cancel", "nightly")
    assert proc.returncode == 3, proc.stderr
    assert "nothing to cancel: nightly has not run yet" in proc.stderr

    assert laptop.flank("remote", "run", "nightly", "--task", "extract").returncode == 0
    # --follow of a finished task prints its log and its end, with the task's outcome as exit code
    proc = laptop.flank("remote", "logs", "nightly", "1", "extract", "--follow")
    assert proc.returncode == 0, proc.stderr
    assert "extracted rows" in proc.stdout and "flank: extract success" in proc.stderr


@pytest.mark.slow
@needs_sshd
def test_remote_logs_json_gives_the_laptop_addresses_not_vm_paths(laptop: Laptop, flank_home: Path) -> None:
    """Polish g: `flank remote logs --json` (and the R package, which asks the same over ssh) names each
    log by its address on the status site, which the laptop can open, and says so; on the VM, files."""
    assert laptop.flank("remote", "run", "nightly").returncode == 0
    proc = laptop.flank("remote", "logs", "nightly", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["logs_are"] == "urls"
    url = answer["logs"]["extract"]
    assert url == "http://127.0.0.1:8083/demo/nightly/1/logs/extract.txt"
    # the file that address serves (flank serve, nginx: the site folder)
    published = flank_home / "site" / url.removeprefix("http://127.0.0.1:8083/")
    assert published.read_text().strip() == "extracted rows"
    on_vm = json.loads(run_flank("logs", "demo", "nightly", "1", "--json", check=True).stdout)
    assert on_vm["logs_are"] == "files" and Path(on_vm["logs"]["extract"]).read_text().strip() == "extracted rows"


@pytest.mark.slow
@needs_sshd
def test_hints_printed_through_remote_work_on_the_laptop_as_printed(laptop: Laptop) -> None:
    """Issue 19 bug 2: `flank remote run --detach` says how to follow the run from the laptop, and that
    command, typed as printed, does it."""
    proc = laptop.flank("remote", "run", "nightly", "--detach")
    assert proc.returncode == 0, proc.stderr
    hint = next(line for line in proc.stdout.splitlines() if "follow it:" in line).split("follow it: ", 1)[1]
    assert hint == "flank remote logs nightly 1 --follow"
    followed = laptop.flank(*shlex.split(hint)[1:])
    assert followed.returncode == 0, followed.stderr
    assert "flank: nightly #1 success" in followed.stderr


@pytest.mark.slow
def test_a_vm_command_typed_in_a_laptop_clone_points_at_flank_remote(tmp_path: Path) -> None:
    """Issue 19 bug 2: on the laptop, `flank logs prostate …` must not offer `flank init prostate`."""
    wc = make_repo(tmp_path / "wc", {"flank.yml": FLANK_YML})
    git("remote", "add", "flank", "ssh://ada@vm.example:2222/home/ada/flank/prostate.git", cwd=wc)
    cases = {
        ("logs", "prostate", "nightly", "5", "article_plot"): "flank remote logs nightly 5 article_plot",
        ("run", "prostate", "nightly", "--rerun", "5"): "flank remote run nightly --rerun 5",
        ("status", "prostate"): "flank remote status",
        ("secrets", "set", "prostate", "KEY"): "flank remote secrets set KEY",
        ("deploy", "prostate"): "flank remote deploy",
        ("status",): "flank remote status",
    }
    for argv, expected in cases.items():
        proc = run_flank(*argv, cwd=wc, env={"FLANK_HOME": str(tmp_path / "laptop-home")}, input="")
        assert proc.returncode == 1 and proc.stderr.rstrip().endswith(expected), proc.stderr
        assert "flank init" not in proc.stderr


@pytest.mark.slow
@needs_sshd
def test_read_only_verbs_and_every_run_option_work_through_remote(laptop: Laptop) -> None:
    """Issue 19 friction 3: `flank remote plan`, `report`, `doctor`, `cost plan`; `run --force`, `--force-task`."""
    proc = laptop.flank("remote", "plan", "nightly")
    assert proc.returncode == 0, proc.stderr
    assert "extract" in proc.stdout and "report" in proc.stdout
    proc = laptop.flank("remote", "run", "nightly", "--force-task", "extract")
    assert proc.returncode == 0, proc.stderr
    proc = laptop.flank("remote", "run", "nightly", "--from", "report", "--force")
    assert proc.returncode == 0 and "nightly #2 success" in proc.stdout, proc.stdout + proc.stderr
    argvs = laptop.recorded_argvs()
    assert "nightly --force-task extract'" in argvs[-2][-1] and "nightly --from report --force'" in argvs[-1][-1]
    proc = laptop.flank("remote", "report", "resources")
    assert proc.returncode == 0 and "nightly" in proc.stdout, proc.stderr
    proc = laptop.flank("remote", "deploy")  # what a failed deploy's hint says to run
    assert proc.returncode == 0 and "deployed" in proc.stdout + proc.stderr, proc.stderr
    for argv in (("doctor", "--no-cron"), ("cost", "plan")):  # VM-wide, read-only: they answer from the VM
        proc = laptop.flank("remote", *argv)
        assert "Traceback" not in proc.stderr and "unrecognized arguments" not in proc.stderr, proc.stderr
        assert proc.stdout.strip() or proc.stderr.strip()
    # polish d: the plan's hint for current prices is a laptop command, and typed as printed it reaches
    # the VM's `flank cost prices` (here with a region the VM refuses before asking AWS)
    hint = laptop.flank("remote", "cost", "plan").stdout.split("current prices: ", 1)[1].split(")")[0]
    assert hint == "flank remote cost prices --region us-east-1"
    proc = laptop.flank(*shlex.split(hint)[1:-1], "no_such_region")
    assert proc.returncode == 1 and "'no_such_region' is not an AWS region name" in proc.stderr, proc.stderr


@pytest.mark.slow
@needs_sshd
def test_a_push_over_ssh_says_how_to_tunnel_to_the_site_with_the_port_it_came_in_on(laptop: Laptop) -> None:
    """Issue 19 bug 9: the tunnel hint names the host and port this push reached the VM by (here a
    private sshd on 127.0.0.1 and a port of its own), so it works when typed on the laptop."""
    from helpers.repos import commit_all

    commit_all(laptop.wc, "again")
    proc = subprocess.run(
        ["git", "push", "flank", "main"],
        cwd=laptop.wc,
        text=True,
        env={**os.environ, **laptop.env},
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr
    tunnel = f"ssh -L 8083:127.0.0.1:8083 -p {laptop.sshd.port} {laptop.sshd.user}@127.0.0.1"
    assert f"from your laptop: {tunnel} and open" in proc.stderr, proc.stderr
