"""Shared test fixtures: an isolated FLANK_HOME, real git repos, the real `flank` CLI.

Every test gets its own FLANK_HOME and a git identity through the environment, so
nothing touches the developer's ~/flank or ~/.gitconfig. The CLI runs as a real
subprocess (`python -m flank_ops`), exactly as a user or a git hook runs it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_REPO = REPO_ROOT / "examples" / "repo"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One user cache for the session (compiled task launcher, compiled templates),
    kept apart from the developer's own ~/.cache/flank."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Iterator[Path]:
    home = tmp_path / "flank-home"
    monkeypatch.setenv("FLANK_HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared_cache))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Ada Analyst")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "ada@example.org")
    (tmp_path / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    yield home
    left = _crontab_blocks_of(home)
    if left:
        pytest.fail(f"the test left {len(left)} crontab block(s) of its FLANK_HOME (removed now): "
                    f"{', '.join(left)} — push with [schedule] install_crontab = false in flank.toml, or use "
                    "the user_crontab fixture", pytrace=False)


def _crontab_blocks_of(home: Path) -> list[str]:
    """Tests never leave crontab lines: the blocks of this test's FLANK_HOME, taken out again."""
    from flank_ops.fileio import locked
    from flank_ops.schedule.crontab import (CrontabError, crontab_lock, installed_blocks, read_crontab,
                                            replace_block, write_crontab)

    try:
        with locked(crontab_lock()):
            current = read_crontab() or ""
            mine = [b for b in installed_blocks(current) if b.home == str(home)]
            updated = current
            for block in mine:
                updated = replace_block(updated, block.begin, block.end, "")
            if mine:
                write_crontab(updated or None)
    except (CrontabError, OSError):
        return []  # no crontab on this machine: nothing can be left in it
    return [b.project for b in mine]


@pytest.fixture
def flank_home(isolated_env: Path) -> Path:
    return isolated_env


def run_flank(*args: str, cwd: Path | None = None, input: str | None = None,
              env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; returns the finished process (text mode)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "flank_ops", *args],
        cwd=cwd, input=input, env=full_env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"flank {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def flank():
    return run_flank


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_DIR")}
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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


def wait_for(condition, what: str, timeout: float = 60.0, interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy (and return that); fail saying
    what never happened once `timeout` seconds have passed. Tests wait on conditions,
    never on fixed sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
