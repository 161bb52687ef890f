"""flank ssh-gate: a forced command for authorized_keys, so a key can drive flank and nothing else.

    flank ssh-gate --key ada_laptop.pub PROJECT...   print the authorized_keys line for that key
    flank ssh-gate [--home DIR] PROJECT...           the forced command itself (sshd runs it)

`flank remote` needs an ssh login, and a plain key (even with `restrict`) runs anything: `cat
secrets.env`, a shell. The printed line, `command="… ssh-gate …",restrict ssh-ed25519 …`, makes sshd
run the gate whatever the client asked; the gate reads the request from SSH_ORIGINAL_COMMAND,
splits it into words (never given to a shell) and allows exactly:
  - what `flank remote` sends (remote/ssh.py `remote_shell_command`, checked by rebuilding it
    from its words), or the same verb as `flank VERB PROJECT ...`: status, logs [--follow],
    run [--task|--from|--rerun] [--detach], cancel, secrets set|list|unset — for its projects;
  - git-receive-pack / git-upload-pack of those projects' bare repos (git push, git fetch).
Anything else is refused with one line, exit 1.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import shlex
import sys
from pathlib import Path

from flank_ops.errors import UserError
from flank_ops.git.gitcmd import exec_git
from flank_ops.hints import host_and_port
from flank_ops.paths import Home
from flank_ops.remote.ssh import ADDRESS_ENV, DEFAULT_REMOTE, REMOTE_ENV, RemoteProject, remote_shell_command
from flank_ops.schedule.crontab import flank_command

KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
GIT_SERVICES = ("git-receive-pack", "git-upload-pack")
RUN_OPTIONS = ("--task", "--from", "--rerun")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("projects", nargs="+", metavar="PROJECT", help="the projects the key may reach")
    parser.add_argument(
        "--key", metavar="FILE", help="print the authorized_keys line for this public key ('-': stdin) and exit"
    )
    parser.add_argument("--home", metavar="DIR", help="the FLANK_HOME the key works in (default: this one)")


def run(args: argparse.Namespace) -> int:
    home = Home(Path(args.home)) if args.home else Home()
    for project in args.projects:
        home.project(project).require()
    if args.key is not None:
        print(authorized_keys_line(read_public_key(args.key), home.root, args.projects))
        return 0
    return gate(os.environ.get("SSH_ORIGINAL_COMMAND"), home.root, args.projects)


# --- the line for authorized_keys ------------------------------------------------


def read_public_key(source: str) -> str:
    """One public key line ('type base64 [comment]') from a .pub file, or '-' for stdin."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the public key {source}: {exc}", "give the key's .pub file") from None
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    words = lines[0].split() if len(lines) == 1 else []
    if len(words) < 2 or words[0] not in KEY_TYPES or not _is_base64(words[1]):
        raise UserError(
            f"{source} is not one ssh public key",
            "give the key's .pub file, one line like: ssh-ed25519 AAAA… ada@laptop (no options before it)",
        )
    return " ".join(words)


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def authorized_keys_line(public_key: str, home: Path, projects: list[str]) -> str:
    command = shlex.join([*flank_command(), "ssh-gate", "--home", str(home.resolve()), "--", *projects])
    quoted = command.replace("\\", "\\\\").replace('"', '\\"')  # sshd's command="…" quoting
    return f'command="{quoted}",restrict {public_key}'


# --- the gate ---------------------------------------------------------------------


def gate(original: str | None, home: Path, projects: list[str]) -> int:
    """Do what the ssh client asked if this key may, else say what it may (exit 1)."""
    allowed = ", ".join(projects)
    usage = (
        f"flank ssh-gate: this key may only run flank remote (status, logs, run, cancel, secrets) and "
        f"git push/fetch, for {allowed}"
    )
    if not original:
        print(f"{usage}; it has no shell", file=sys.stderr)
        return 1
    try:
        words = shlex.split(original)
    except ValueError:
        words = []
    if len(words) == 2 and words[0] in GIT_SERVICES:
        git_dir = _project_repo(words[1], home, projects)
        if git_dir is not None:
            exec_git([words[0].removeprefix("git-"), str(git_dir)])
    args = _flank_args(original, words)
    if args is not None and _allowed(args, projects):
        os.environ["FLANK_HOME"] = str(home)
        os.execv(sys.executable, [sys.executable, "-m", "flank_ops", *args])
    print(f"{usage}; refused: {original[:200]!r}", file=sys.stderr)
    return 1


def _project_repo(path: str, home: Path, projects: list[str]) -> Path | None:
    """The bare repo of an allowed project that `path` (as git sends it: absolute, ~/…, or relative
    to the home folder) names; None for any other path."""
    home_dir = Path.home()
    asked = Path(path[2:]) if path.startswith("~/") else Path(path)
    real = os.path.realpath(home_dir / asked)
    for project in projects:
        repo = home / f"{project}.git"
        if real == os.path.realpath(repo):
            return repo
    return None


def _flank_args(original: str, words: list[str]) -> list[str] | None:
    """The flank arguments of a request: `flank VERB ...`, or the line `flank remote` sends (accepted
    only when remote_shell_command rebuilds it exactly from the words found in it)."""
    if words and words[0] == "flank":
        return words[1:]
    if len(words) < 6 or not words[0].startswith("FLANK_HOME=") or not words[0].endswith(";"):
        return None
    git_dir = next((w.removeprefix("--git-dir=") for w in words if w.startswith("--git-dir=")), None)
    if git_dir is None:
        return None
    try:
        args = shlex.split(words[-1])
    except ValueError:
        return None
    # FLANK_REMOTE=<the clone's remote>; FLANK_SSH_ADDRESS=<host[:port]>: what the hints printed on the VM use
    assigned = {w.split("=", 1)[0]: w.split("=", 1)[1].removesuffix(";") for w in words[1:3] if "=" in w}
    remote_name = assigned.get(REMOTE_ENV, DEFAULT_REMOTE)
    host, port = host_and_port(assigned.get(ADDRESS_ENV, ""))
    flank_home = words[0].removeprefix("FLANK_HOME=").removesuffix(";")
    target = RemoteProject(host, port, git_dir, flank_home, "")
    return args if remote_shell_command(target, args, remote_name) == original else None


def _allowed(args: list[str], projects: list[str]) -> bool:
    """Exactly the shapes `flank remote` sends (commands/remote.py flank_args), for these projects."""
    if not args or any(not a or "\0" in a or "\n" in a for a in args):
        return False
    verb, rest = args[0], args[1:]
    if verb == "secrets":
        if len(rest) < 2 or rest[1] not in projects:
            return False
        action, values = rest[0], rest[2:]
        return (action == "list" and not values) or (action in ("set", "unset") and _plain(values, 1, 1))
    if not rest or rest[0] not in projects:
        return False
    rest = rest[1:]
    if verb == "status":
        return not rest
    if verb == "logs":
        if rest[-1:] == ["--follow"]:
            rest = rest[:-1]
        return _plain(rest, 1, 3)
    if verb == "cancel":
        return _plain(rest, 1, 2)
    if verb == "run":
        if rest[-1:] == ["--detach"]:
            rest = rest[:-1]
        if len(rest) == 3 and rest[1] in RUN_OPTIONS:
            rest = [rest[0], rest[2]]
        elif len(rest) != 1:
            return False
        return _plain(rest, 1, 2)
    return False


def _plain(values: list[str], least: int, most: int) -> bool:
    """`least` to `most` values, none of which could be read as an option."""
    return least <= len(values) <= most and all(not v.startswith("-") for v in values)
