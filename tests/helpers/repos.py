"""Real git working copies for tests (the git identity and config come from conftest's isolated_env)."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from pathlib import Path


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_DIR")}
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, text=True, capture_output=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_repo(path: Path, files: dict[str, str], message: str = "first") -> Path:
    """A working copy at `path` holding `files` (dedented), committed on main."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists():
        git("init", "-q", "-b", "main", cwd=path)
    write_files(path, files)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", message, cwd=path)
    return path


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(content))


def commit_all(path: Path, message: str) -> str:
    git("add", "-A", cwd=path)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=path)
    return git("rev-parse", "HEAD", cwd=path).stdout.strip()


def age(root: Path, seconds: float = 10.0) -> None:
    """Every file and folder under root, and root, as if saved `seconds` ago: out of the racy window
    in which flank trusts no file by its stat alone (fingerprints.RACY_S)."""
    then = time.time_ns() - int(seconds * 1e9)
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.utime(os.path.join(folder, name), ns=(then, then), follow_symlinks=False)
    os.utime(root, ns=(then, then))
