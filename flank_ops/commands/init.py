"""flank init NAME: the bare repo a user pushes to, its hooks, the project's state folders.

Running it again on an existing project repairs the hook shims (e.g. after the
Python that flank lives in moved) and touches nothing else.

It also records in the bare repo how to start this flank (git config
flank.command, an absolute path), which `flank remote` on the laptop reads: ssh
commands get a short PATH (~/.local/bin is added by login shells only), and the
hooks already call flank by absolute path for the same reason.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import shutil
import subprocess
from typing import TYPE_CHECKING

from flank_ops.commands.serve import DEFAULT_PORT
from flank_ops.errors import UserError
from flank_ops.git.bare_repo import (
    DEFAULT_BRANCH,
    check_branch_name,
    create_bare_repo,
    deploy_branch,
    install_hooks,
)
from flank_ops.git.gitcmd import run_git
from flank_ops.git.notes import NOTES_REF
from flank_ops.paths import Home, ProjectPaths
from flank_ops.remote.address import login_user
from flank_ops.remote.address import vm_address as address
from flank_ops.remote.ssh import FLANK_COMMAND_KEY
from flank_ops.schedule.crontab import flank_command
from flank_ops.settings import settings_for, ssh_settings

if TYPE_CHECKING:
    from flank_ops.remote.address import SshAddress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="project name (letters, digits, '_', '-', '.')")
    parser.add_argument(
        "--branch", default=None, help=f"the branch whose pushes are deployed (default: {DEFAULT_BRANCH})"
    )


def run(args: argparse.Namespace) -> int:
    home = Home()
    paths = home.project(args.name)
    git_dir = paths.bare_repo
    if git_dir.exists():
        repair(paths, args.branch)
    else:
        branch = check_branch_name(args.branch or DEFAULT_BRANCH)
        home.root.mkdir(parents=True, exist_ok=True)
        create_bare_repo(git_dir, branch)
        record_flank_command(paths)
        make_state_dirs(paths)
        print(f"flank: created project {paths.name!r}")
        print(f"  bare repo  {git_dir}  (deploys branch {branch})")
        print(f"  state      {paths.dir}/")
    print_next_steps(paths)
    return 0


def repair(paths: ProjectPaths, branch: str | None) -> None:
    git_dir = paths.bare_repo
    if not (git_dir / "HEAD").is_file() or not (git_dir / "objects").is_dir():
        raise UserError(
            f"{git_dir} exists but is not a bare git repository",
            "move it away, or pick another project name",
        )
    current_branch = deploy_branch(git_dir)
    if branch is not None and branch != current_branch:
        raise UserError(
            f"project {paths.name!r} exists and deploys branch {current_branch!r}, not {branch!r}",
            f"to change it: git --git-dir={git_dir} symbolic-ref HEAD refs/heads/{branch}",
        )
    hooks = install_hooks(git_dir)
    record_flank_command(paths)
    make_state_dirs(paths)
    print(f"flank: project {paths.name!r} exists; repaired its hooks ({', '.join(hooks)})")


def make_state_dirs(paths: ProjectPaths) -> None:
    """Create the project's folders that are missing; existing ones are left as they are."""
    for folder in (
        paths.dir,
        paths.releases_dir,
        paths.persist_dir,
        paths.pipelines_dir,
        paths.runs_root,
        paths.locks_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True)


def record_flank_command(paths: ProjectPaths) -> None:
    """Write where this flank is into the bare repo, for `flank remote` (see flank_ops/remote/ssh.py)."""
    run_git(["config", FLANK_COMMAND_KEY, shlex.join(flank_command())], git_dir=paths.bare_repo)


def ssh_user() -> str:
    return login_user()


def vm_address(paths: ProjectPaths) -> SshAddress:
    """How the user reaches this VM (remote/address.py); a broken flank.toml: what ssh says."""
    try:
        settings = settings_for(paths.home, paths.name)
    except UserError:
        settings = {}
    return address(settings)


def ssh_remote_url(paths: ProjectPaths) -> str:
    return vm_address(paths).url(str(paths.bare_repo))


# The PATH sshd gives a command run as `ssh vm COMMAND` (Debian's and Ubuntu's build).
SSH_COMMAND_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/games"


def ssh_command_path(paths: ProjectPaths) -> str:
    """The PATH sshd gives `ssh vm COMMAND`: flank.toml's [ssh] command_path, else Debian's."""
    try:
        return ssh_settings(settings_for(paths.home, paths.name)).get("command_path") or SSH_COMMAND_PATH
    except UserError:
        return SSH_COMMAND_PATH


def flank_for_ssh_commands(command_path: str = SSH_COMMAND_PATH) -> str | None:
    """What `ssh vm flank` would run: the `flank` found on sshd's PATH, after ~/.bashrc when
    the login shell is bash (bash reads it for ssh commands, up to its interactive guard)."""
    env = {
        "HOME": os.path.expanduser("~"),
        "USER": ssh_user(),
        "PATH": command_path,
        "SSH_CLIENT": "127.0.0.1 22 22",
    }
    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        shell = ""
    if os.path.basename(shell) != "bash":
        return shutil.which("flank", path=command_path)
    try:
        proc = subprocess.run(
            [shell, "-c", "command -v flank"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = proc.stdout.strip().splitlines()
    return found[-1] if proc.returncode == 0 and found else None


def print_ssh_path_advice(paths: ProjectPaths) -> None:
    """Say how to make `ssh vm flank status` work, unless it already runs this flank."""
    mine = flank_command()
    command_path = ssh_command_path(paths)
    found = flank_for_ssh_commands(command_path)
    if found and len(mine) == 1 and os.path.realpath(found) == os.path.realpath(mine[0]):
        return
    print()
    ssh = vm_address(paths).ssh()
    if found:
        print(f"`{ssh} flank ...` would run {found}, a different flank than this one ({shlex.join(mine)}).")
    else:
        print(f"`{ssh} flank ...` will not find flank (ssh commands get PATH={command_path}).")
    if len(mine) == 1:
        print("To fix it, link this flank into /usr/local/bin:")
        print(f"  sudo ln -sf {shlex.quote(mine[0])} /usr/local/bin/flank")
        print("(or, without sudo, put this line at the TOP of ~/.bashrc, above its 'If not running interactively':")
        print(f'  export PATH={shlex.quote(os.path.dirname(mine[0]))}:"$PATH")')
    print("`flank remote ...` in your clone works either way: it finds this flank by its absolute path.")


def print_next_steps(paths: ProjectPaths) -> None:
    branch = deploy_branch(paths.bare_repo)
    print()
    print("In your clone (in your terminal), add this VM as a remote and push:")
    print(f"  git remote add flank {ssh_remote_url(paths)}")
    print(f"  git push flank {branch}")
    print()
    print("To see run summaries in git log (once per clone, then git fetch flank):")
    print(f"  git config --add remote.flank.fetch '+{NOTES_REF}:{NOTES_REF}'")
    print(f"  git config notes.displayRef {NOTES_REF}")
    print()
    print("From the clone on your laptop (with flank installed there too), without logging in here:")
    print("  flank remote status          flank remote run PIPELINE          flank remote logs PIPELINE")
    print_site_advice(paths)
    print_ssh_path_advice(paths)


def print_site_advice(paths: ProjectPaths) -> None:
    print()
    print("To see the status site, serve it on this VM (it listens on 127.0.0.1 only):")
    print("  flank serve")
    print("then, on your laptop, open an ssh tunnel and browse:")
    print(f"  {vm_address(paths).tunnel(DEFAULT_PORT)}")
    print(f"  http://127.0.0.1:{DEFAULT_PORT}/")
    print("To keep it running across reboots, as a systemd user service:")
    print("  flank serve --print-systemd-unit     (prints the unit and how to enable it)")
