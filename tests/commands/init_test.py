"""flank init NAME: bare repo, hook shims, state folders, and what the user is told to do next."""

from __future__ import annotations

import getpass
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flank_ops.remote.address import machine_name
from helpers.cli import run_flank
from helpers.repos import git


def git_config(bare: Path, key: str) -> str:
    return git("--git-dir", str(bare), "config", key, cwd=bare).stdout.strip()


def test_a_hint_never_names_this_machine_localhost(monkeypatch) -> None:
    """Third trial: with /etc/hosts saying `127.0.0.1 localhost vm`, `flank init` printed
    `git remote add flank ssh://tvm@localhost/...` (issue 19 bug 9): a URL that sends the laptop to
    itself. socket is patched: a test cannot give the machine another name; the tests below check
    init's real output against the same rule (address.machine_name)."""
    from flank_ops.remote import address

    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.setattr(address.socket, "getfqdn", lambda *a: "localhost")
    monkeypatch.setattr(address.socket, "gethostname", lambda: "vm3")
    assert address.vm_address({}, "ada").url("/home/ada/flank/p.git") == "ssh://ada@vm3/home/ada/flank/p.git"
    monkeypatch.setattr(address.socket, "getfqdn", lambda *a: "vm3.example.org")
    assert address.vm_address({}, "ada").host == "vm3.example.org"


@pytest.mark.slow
def test_init_creates_the_repo_hooks_and_folders_and_prints_the_next_steps(flank_home: Path) -> None:
    proc = run_flank("init", "myproj", env={"SSH_CONNECTION": ""})  # not logged in over ssh: the machine's name

    assert proc.returncode == 0, proc.stderr
    bare = flank_home / "myproj.git"
    assert git("--git-dir", str(bare), "symbolic-ref", "HEAD", cwd=flank_home).stdout.strip() == "refs/heads/main"
    assert git_config(bare, "core.bare") == "true"
    assert git_config(bare, "receive.advertisePushOptions") == "true"
    for hook in ("pre-receive", "post-receive"):
        shim = bare / "hooks" / hook
        assert os.access(shim, os.X_OK)
        text = shim.read_text()
        assert f'exec {sys.executable} -m flank_ops hook {hook} "$@"' in text
        assert len([line for line in text.splitlines() if not line.startswith("#")]) <= 2  # a shim, no logic
    for folder in ("releases", "persist", "pipelines", "runs"):
        assert (flank_home / "myproj" / folder).is_dir()
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()
    out = proc.stdout
    assert f"git remote add flank ssh://{user}@{machine_name()}{bare}" in out
    assert "git push flank main" in out
    assert "git config --add remote.flank.fetch '+refs/notes/flank:refs/notes/flank'" in out
    assert "git config notes.displayRef refs/notes/flank" in out


def test_init_branch_sets_the_deploy_branch(flank_home: Path) -> None:
    proc = run_flank("init", "p", "--branch", "deploy")
    assert proc.returncode == 0, proc.stderr
    bare = flank_home / "p.git"
    assert git("--git-dir", str(bare), "symbolic-ref", "HEAD", cwd=flank_home).stdout.strip() == "refs/heads/deploy"
    assert "git push flank deploy" in proc.stdout


@pytest.mark.slow
def test_running_init_again_repairs_the_hooks_and_touches_nothing_else(flank_home: Path) -> None:
    run_flank("init", "p", check=True)
    bare = flank_home / "p.git"
    (bare / "hooks" / "pre-receive").write_text("#!/bin/sh\nexec /old/venv/bin/python -m flank_ops hook\n")
    (bare / "hooks" / "post-receive").unlink()
    (flank_home / "p" / "secrets.env").write_text("TOKEN=x\n")
    (flank_home / "p" / "deploys.jsonl").write_text('{"status": "accepted"}\n')
    git("--git-dir", str(bare), "config", "user.custom", "kept", cwd=flank_home)

    proc = run_flank("init", "p")

    assert proc.returncode == 0, proc.stderr
    assert "exists; repaired its hooks (pre-receive, post-receive)" in proc.stdout
    assert sys.executable in (bare / "hooks" / "pre-receive").read_text()
    assert os.access(bare / "hooks" / "post-receive", os.X_OK)
    assert (flank_home / "p" / "secrets.env").read_text() == "TOKEN=x\n"
    assert (flank_home / "p" / "deploys.jsonl").read_text() == '{"status": "accepted"}\n'
    assert git_config(bare, "user.custom") == "kept"


@pytest.mark.slow
def test_rerun_with_another_branch_says_how_to_change_it(flank_home: Path) -> None:
    run_flank("init", "p", check=True)
    proc = run_flank("init", "p", "--branch", "prod")
    assert proc.returncode == 1
    assert "deploys branch 'main', not 'prod'" in proc.stderr
    assert "symbolic-ref HEAD refs/heads/prod" in proc.stderr


@pytest.mark.slow
def test_bad_names_are_refused_and_nothing_is_created(flank_home: Path) -> None:
    for name in ("bad name", "_x", "../up", "site", "a.git", "é"):
        proc = run_flank("init", name)
        assert proc.returncode == 1, name
        assert "invalid project name" in proc.stderr, name
        assert "Traceback" not in proc.stderr
    assert not flank_home.exists() or list(flank_home.iterdir()) == []


def test_bad_branch_is_refused(flank_home: Path) -> None:
    proc = run_flank("init", "p", "--branch", "a..b")
    assert proc.returncode == 1
    assert "invalid branch name 'a..b'" in proc.stderr
    assert not (flank_home / "p.git").exists()


def test_a_folder_in_the_way_is_not_taken_over(flank_home: Path) -> None:
    (flank_home / "p.git").mkdir(parents=True)
    (flank_home / "p.git" / "mine.txt").write_text("x")
    proc = run_flank("init", "p")
    assert proc.returncode == 1
    assert "exists but is not a bare git repository" in proc.stderr
    assert (flank_home / "p.git" / "mine.txt").read_text() == "x"


def test_missing_git_is_one_clear_message(flank_home: Path, tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    proc = run_flank("init", "p", env={"PATH": str(empty_bin)})
    assert proc.returncode == 1
    assert "git is not installed on this machine" in proc.stderr
    assert "apt-get install git" in proc.stderr
    assert not (flank_home / "p.git").exists()
    assert shutil.which("git")  # the rest of the suite still has it


@pytest.mark.slow
def test_init_says_how_to_see_the_site_and_how_to_keep_it_served(flank_home: Path) -> None:
    proc = run_flank("init", "p", env={"SSH_CONNECTION": ""})
    assert proc.returncode == 0, proc.stderr
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()
    out = proc.stdout
    assert "\n  flank serve\n" in out
    assert f"ssh -L 8083:127.0.0.1:8083 {user}@{machine_name()}" in out
    assert "http://127.0.0.1:8083/" in out
    assert "flank serve --print-systemd-unit" in out
    assert "flank remote status" in out


@pytest.mark.slow
def test_init_records_the_absolute_command_of_this_flank_for_ssh_commands(flank_home: Path) -> None:
    run_flank("init", "p", check=True)
    command = shlex.split(git_config(flank_home / "p.git", "flank.command"))
    assert os.path.isabs(command[0])
    # it is this flank, and it runs with no PATH at all (as from a bare ssh session)
    proc = subprocess.run([*command, "--version"], env={"PATH": ""}, text=True, capture_output=True)
    assert proc.returncode == 0 and proc.stdout.startswith("flank ")
    # a second init (the repair) keeps it current
    git("--git-dir", str(flank_home / "p.git"), "config", "flank.command", "/old/venv/bin/flank", cwd=flank_home)
    run_flank("init", "p", check=True)
    assert shlex.split(git_config(flank_home / "p.git", "flank.command")) == command


@pytest.mark.slow
def test_init_says_how_to_make_ssh_commands_find_flank_and_is_quiet_once_they_do(
    flank_home: Path, tmp_path: Path
) -> None:
    """Whatever this machine has in /usr/local/bin (issue 19 bug 11): the PATH ssh commands get is
    this test's own ([ssh] command_path in flank.toml), first empty, then holding another flank."""
    from flank_ops.schedule.crontab import flank_command

    if os.path.basename(pwd.getpwuid(os.getuid()).pw_shell) != "bash" or len(flank_command()) != 1:
        pytest.skip("needs bash as the login shell and flank installed as a console script")
    system_bin = tmp_path / "system-bin"
    system_bin.mkdir()
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text(f'[ssh]\ncommand_path = "{system_bin}"\n')
    home = tmp_path / "user-home"
    home.mkdir()
    # Debian's ~/.bashrc: an ssh command reads it, and returns at the interactive guard
    guard = "case $- in\n    *i*) ;;\n      *) return;;\nesac\n"
    (home / ".bashrc").write_text(guard + 'export PATH="$HOME/.local/bin:$PATH"\n')
    (home / ".local" / "bin").mkdir(parents=True)
    os.symlink(flank_command()[0], home / ".local" / "bin" / "flank")

    proc = run_flank("init", "p", env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    assert "will not find flank" in proc.stdout
    assert f"sudo ln -sf {flank_command()[0]} /usr/local/bin/flank" in proc.stdout

    # the documented fix without sudo: the PATH line above the guard
    (home / ".bashrc").write_text('export PATH="$HOME/.local/bin:$PATH"\n' + guard)
    proc = run_flank("init", "p", env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    assert "will not find flank" not in proc.stdout and "ln -sf" not in proc.stdout

    # another flank earlier on the ssh PATH (an old install in /usr/local/bin): said, with the fix
    (home / ".bashrc").write_text(guard)
    other = system_bin / "flank"
    other.write_text("#!/bin/sh\necho old flank\n")
    other.chmod(0o755)
    proc = run_flank("init", "p", env={"HOME": str(home)})
    assert f"flank ...` would run {other}, a different flank than this one ({flank_command()[0]})" in proc.stdout
    assert f"sudo ln -sf {flank_command()[0]} /usr/local/bin/flank" in proc.stdout


@pytest.mark.slow
def test_connection_hints_use_the_address_the_user_connected_with_or_flank_toml(flank_home: Path) -> None:
    """Issue 19 bug 9: the ssh:// URL and the tunnel carry the host and port of the user's ssh session
    (SSH_CONNECTION), and flank.toml's [ssh] overrides both."""
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()
    session = {"SSH_CONNECTION": "10.1.2.3 51234 192.0.2.7 8322"}
    out = run_flank("init", "p", env=session, check=True).stdout
    assert f"git remote add flank ssh://{user}@192.0.2.7:8322{flank_home / 'p.git'}" in out
    assert f"ssh -L 8083:127.0.0.1:8083 -p 8322 {user}@192.0.2.7" in out

    # through `flank remote`, the host and port of the laptop's git remote (its ssh command passes them)
    out = run_flank("init", "p", env={**session, "FLANK_SSH_ADDRESS": "vm3.example:8322"}, check=True).stdout
    assert f"git remote add flank ssh://{user}@vm3.example:8322{flank_home / 'p.git'}" in out

    (flank_home / "flank.toml").write_text('[ssh]\nhost = "vm.example"\nport = 2222\nuser = "ada"\n')
    out = run_flank("init", "p", env=session, check=True).stdout
    assert f"git remote add flank ssh://ada@vm.example:2222{flank_home / 'p.git'}" in out
    assert "ssh -L 8083:127.0.0.1:8083 -p 2222 ada@vm.example" in out
