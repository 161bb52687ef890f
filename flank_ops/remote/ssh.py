"""Every ssh call goes through here (as every git call goes through git/gitcmd.py).

`flank remote VERB ...` on the laptop runs `flank VERB PROJECT ...` on the VM. What
it needs comes from the clone's git remote, the one `git push flank` uses:

    ssh://user@vm[:port]/home/user/flank/NAME.git    or    user@vm:flank/NAME.git
      -> ssh destination user@vm (port), project NAME,
         FLANK_HOME /home/user/flank (the folder that holds NAME.git)

The ssh program is the one git uses for that push (GIT_SSH_COMMAND, core.sshCommand,
GIT_SSH, else `ssh`), so whatever makes the push work makes `flank remote` work.

Which flank on the VM: `flank init` records its own absolute command in the bare
repo (git config flank.command); the remote shell reads it, else falls back to
`flank` on the PATH. So ssh commands do not depend on ~/.local/bin being on the
PATH of non-login shells, and reinstalling flank then `flank init NAME` again
moves both the hooks and this. Every word sent is quoted for the remote shell
(a POSIX shell: sh, bash, dash, zsh); values that must stay secret travel on
ssh's stdin, never on a command line.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import PurePosixPath
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from flank_ops.errors import UserError
from flank_ops.git.gitcmd import run_git
from flank_ops.hints import ADDRESS_ENV, DEFAULT_REMOTE, REMOTE_ENV, laptop_hint

FLANK_COMMAND_KEY = "flank.command"  # in the VM's bare repo: how to start the flank that owns it


class RemoteProject(NamedTuple):
    destination: str  # [user@]host for ssh
    port: int | None
    git_dir: str  # absolute on the VM, or relative to the ssh user's home
    flank_home: str  # the folder holding NAME.git (same convention)
    project: str


def parse_remote_url(url: str) -> RemoteProject:
    """The VM, FLANK_HOME and project of a git remote URL (ssh:// or scp-like user@host:path)."""
    url = url.strip()
    scp = re.match(r"^(?P<dest>[^/:@]+@[^/:]+|[^/:]+):(?P<path>(?!//).+)$", url)
    if url.startswith(("ssh://", "git+ssh://", "ssh+git://")):
        parts = urlsplit(url)
        if not parts.hostname:
            raise UserError(f"no host in the remote URL {url!r}", "use ssh://user@vm/path/NAME.git")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        destination = f"{unquote(parts.username)}@{host}" if parts.username else host
        try:
            port = parts.port
        except ValueError:
            raise UserError(f"bad port in the remote URL {url!r}", "use ssh://user@vm:2222/path/NAME.git") from None
        path = unquote(parts.path)
        if path.startswith("/~"):  # ssh://vm/~/flank/p.git: relative to the home folder
            path = path[2:].lstrip("/") or "."
    elif scp and "://" not in url and not url.startswith("-"):
        destination, port, path = scp["dest"], None, scp["path"]
        if path.startswith("~/"):
            path = path[2:]
    else:
        raise UserError(
            f"the remote URL {url!r} is not an ssh URL",
            "flank remote works with ssh remotes: ssh://user@vm/home/user/flank/NAME.git or user@vm:flank/NAME.git",
        )
    git_dir = PurePosixPath(path.rstrip("/") or "/")
    if not git_dir.name.endswith(".git") or git_dir.name == ".git":
        raise UserError(
            f"the remote URL {url!r} does not end in NAME.git",
            "point the remote at the project's bare repo, as `flank init NAME` printed it",
        )
    project = git_dir.name[: -len(".git")]
    flank_home = str(git_dir.parent)
    return RemoteProject(destination, port, str(git_dir), flank_home, project)


def remote_url(remote: str) -> str:
    """The URL of the clone's git remote `remote` (in the current directory's repository)."""
    proc = run_git(["remote", "get-url", "--push", remote], check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip()
        if "not a git repository" in detail:
            raise UserError("not in a git clone", "run flank remote inside your project's clone")
        raise UserError(
            f"this clone has no git remote {remote!r}",
            "add the VM as printed by `flank init NAME` on the VM (git remote add flank ssh://...), "
            "or name another remote with --remote",
        )
    return proc.stdout.decode("utf-8", "replace").strip()


def clone_remote_hint(argv: list[str]) -> str | None:
    """In a clone whose git remote `flank` is a project's VM: the `flank remote` command that does
    what `flank ARGV` was asked here (where that project does not exist); else None."""
    try:
        target = parse_remote_url(remote_url(DEFAULT_REMOTE))
    except UserError:
        return None  # not a clone, no such remote, or not an ssh one (a clone on the VM itself)
    return laptop_hint(argv, target.project)


def ssh_program() -> list[str]:
    """The ssh command git itself would use for a push from here."""
    command = os.environ.get("GIT_SSH_COMMAND")
    if not command:
        proc = run_git(["config", "--get", "core.sshCommand"], check=False)
        command = proc.stdout.decode("utf-8", "replace").strip() if proc.returncode == 0 else ""
    if command:
        return shlex.split(command)
    return [os.environ.get("GIT_SSH") or "ssh"]


def remote_shell_command(target: RemoteProject, flank_args: list[str], remote_name: str = DEFAULT_REMOTE) -> str:
    """One line for the VM's shell: FLANK_HOME set, FLANK_REMOTE set to the clone's git remote (so
    the hints flank prints are `flank remote …` commands: hints.py), the recorded flank
    (else `flank`) run with the args.

    The recorded command is itself shell words (flank init wrote it with shlex.join), hence
    the eval; the args are quoted once for that eval and once more for the shell reading
    this line, so no argument is ever interpreted. A relative FLANK_HOME or git dir is
    relative to the ssh user's home folder, where the remote shell starts.
    """
    q = shlex.quote
    words = " ".join(q(a) for a in flank_args)
    return (
        f"FLANK_HOME={q(target.flank_home)}; {REMOTE_ENV}={q(remote_name)}; {ADDRESS_ENV}={q(host_port(target))}; "
        f"export FLANK_HOME {REMOTE_ENV} {ADDRESS_ENV}; "
        f"c=$(git --git-dir={q(target.git_dir)} config --get {FLANK_COMMAND_KEY} 2>/dev/null); "
        f'[ -n "$c" ] || c=flank; eval "exec $c" {q(words)}'
    )


def host_port(target: RemoteProject) -> str:
    """host[:port] of the remote URL as the user wrote it; an IPv6 address in brackets when a port follows
    ([::1]:2222), so the port is never lost (hints.host_and_port reads it back)."""
    host = target.destination.rpartition("@")[2].strip("[]")
    if not target.port:
        return host
    return f"[{host}]:{target.port}" if ":" in host else f"{host}:{target.port}"


def ssh_argv(
    target: RemoteProject, flank_args: list[str], *, tty: bool = False, remote_name: str = DEFAULT_REMOTE
) -> list[str]:
    argv = ssh_program()
    if target.port is not None:
        argv += ["-p", str(target.port)]
    argv.append("-t" if tty else "-T")
    # "--": the destination and the command are never read as ssh options
    return [*argv, "--", target.destination, remote_shell_command(target, flank_args, remote_name)]


def run_remote_flank(
    target: RemoteProject,
    flank_args: list[str],
    *,
    stdin: bytes | None = None,
    tty: bool = False,
    remote_name: str = DEFAULT_REMOTE,
) -> int:
    """Run `flank ARGS` on the VM, its output straight to ours; returns the remote exit code.

    `stdin` (e.g. a secret's value) is written to ssh's stdin, never put on a command line;
    without it ssh reads our stdin only for a terminal (`tty`: Ctrl-C then reaches the VM).
    """
    argv = ssh_argv(target, flank_args, tty=tty, remote_name=remote_name)
    try:
        if stdin is not None:
            proc = subprocess.run(argv, input=stdin)
        else:
            proc = subprocess.run(argv, stdin=None if tty else subprocess.DEVNULL)
    except FileNotFoundError:
        raise UserError(f"cannot run {argv[0]}", "install an ssh client: apt-get install openssh-client") from None
    except KeyboardInterrupt:
        return 130
    if proc.returncode == 255:
        raise UserError(
            f"ssh to {target.destination} failed (ssh said why, above)",
            f"check that the VM answers: {shlex.join([*argv[: argv.index('--')], '--', target.destination, 'true'])}",
        )
    if proc.returncode == 127:
        raise UserError(
            f"flank was not found on {target.destination}",
            f"on the VM, run `flank init {target.project}` once (it records where flank is), "
            "or link flank into /usr/local/bin",
        )
    return proc.returncode


def probe_remote_flank(target: RemoteProject, flank_args: list[str], timeout_s: float = 60) -> tuple[int, str]:
    """Run `flank ARGS` on a VM that may not answer yet (`flank up` waiting for a new VM): no prompts
    (a new host's key is accepted once, as the first push would ask to), output captured;
    returns (exit code, output). 255 = ssh itself failed."""
    argv = ssh_argv(target, flank_args)
    at = argv.index("--")
    argv[at:at] = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "StrictHostKeyChecking=accept-new"]
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout_s
        )
    except FileNotFoundError:
        raise UserError(f"cannot run {argv[0]}", "install an ssh client: apt-get install openssh-client") from None
    except subprocess.TimeoutExpired:
        return 255, "ssh timed out"
    return proc.returncode, proc.stdout.decode("utf-8", "replace")
