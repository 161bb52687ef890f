"""Every call to the git command goes through here.

Hooks run with GIT_DIR, GIT_INDEX_FILE, GIT_QUARANTINE_PATH... exported; those
must not leak into git commands aimed at another repo or work tree, so `run_git`
starts from an environment with every GIT_* variable removed unless asked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

from flank_ops.errors import UserError


def clean_env(extra: dict[str, str] | None = None, keep_git: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if keep_git or not k.startswith("GIT_")}
    if extra:
        env.update(extra)
    return env


QUARANTINE_VARS = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")


def quarantine_env() -> dict[str, str]:
    """Inside pre-receive, what makes the pushed (still quarantined) objects readable, and only that
    (a checkout there must not inherit GIT_DIR or GIT_INDEX_FILE); empty elsewhere."""
    # Made absolute: git may give them relative to the hook's folder (the bare repo).
    return {
        k: ":".join(os.path.abspath(p) for p in os.environ[k].split(":")) for k in QUARANTINE_VARS if os.environ.get(k)
    }


def git_executable() -> str:
    exe = shutil.which("git")
    if exe is None:
        raise UserError("git is not installed on this machine", "install it: apt-get install git")
    return exe


def exec_git(args: list[str]) -> NoReturn:
    """Become `git ARGS` (a push or fetch served by `flank ssh-gate`): stdin and stdout are the ssh
    client's. The environment stays as the session has it (the push's hooks read its identity)."""
    exe = git_executable()
    os.execv(exe, [exe, *args])


def cat_file_batch(git_dir: Path) -> subprocess.Popen[bytes]:
    """`git cat-file --batch` on the repo, started (read it with git/push_check.py object_reader).
    Keeps the hook's GIT_* environment, so quarantined (just pushed) objects are visible."""
    return subprocess.Popen(
        [git_executable(), f"--git-dir={git_dir}", "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=clean_env(keep_git=True),
    )


def run_git(
    args: list[str],
    *,
    git_dir: Path | None = None,
    cwd: Path | None = None,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    keep_git_env: bool = False,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run git; raise UserError with git's own message when it fails and check is set."""
    cmd = [git_executable()]
    if git_dir is not None:
        cmd.append(f"--git-dir={git_dir}")
    cmd += args
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        input=input,
        env=clean_env(env, keep_git=keep_git_env),
        capture_output=True,
    )
    if check and proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
        raise UserError(f"git {args[0]} failed: {detail}")
    return proc


def commit_info(git_dir: Path, sha: str, *, keep_git_env: bool = False) -> dict[str, str]:
    """sha, short sha, subject line, author name and ISO date of a commit.

    keep_git_env=True inside a pre-receive hook: the pushed commit is still in quarantine.
    """
    out = run_git(
        ["log", "-1", "--format=%H%x00%h%x00%s%x00%an%x00%aI", sha, "--"],
        git_dir=git_dir,
        keep_git_env=keep_git_env,
    ).stdout.decode("utf-8", "replace")
    full, short, subject, author, date = (out.rstrip("\n").split("\x00") + [""] * 5)[:5]
    return {"sha": full, "short": short[:7], "message": subject, "author": author, "date": date}


def work_tree_changed(work_tree: Path) -> bool:
    """Whether the work tree's tracked files differ from its HEAD: edits not committed yet."""
    return run_git(["diff", "--quiet", "HEAD", "--"], cwd=work_tree, check=False).returncode == 1


def ignored_paths(work_tree: Path, paths: set[str]) -> set[str]:
    """Which of `paths` (in `work_tree`) git ignores: .gitignore, .git/info/exclude, core.excludesFile.
    Tracked files are never ignored; outside a git repo nothing is."""
    if not paths:
        return set()
    proc = run_git(
        ["check-ignore", "-z", "--stdin"],
        cwd=work_tree,
        input=b"\0".join(os.fsencode(p) for p in paths) + b"\0",
        check=False,
    )
    if proc.returncode != 0:  # 1: none ignored; 128: not a repo
        return set()
    return {os.fsdecode(p) for p in proc.stdout.split(b"\0") if p}


def tracked_paths(work_tree: Path, paths: set[str]) -> set[str]:
    """Which of `paths` (absolute, in `work_tree`) git tracks; outside a git repo none."""
    if not paths:
        return set()
    proc = run_git(["ls-files", "-z", "--", *sorted(paths)], cwd=work_tree, check=False)
    if proc.returncode != 0:
        return set()
    # ls-files names them relative to the directory it runs in
    tracked = {os.path.normpath(os.path.join(work_tree, os.fsdecode(p))) for p in proc.stdout.split(b"\0") if p}
    return {p for p in paths if os.path.normpath(p) in tracked}
