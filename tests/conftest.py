"""Shared test fixtures: an isolated FLANK_HOME, a git identity, no crontab lines left behind.

Every test gets its own FLANK_HOME and a git identity through the environment, so
nothing touches the developer's ~/flank or ~/.gitconfig. The helpers tests call (the real
`flank` CLI, git working copies, polling) live in tests/helpers/; they are re-exported here
for tests that still say `from conftest import run_flank`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from flank_ops.paths import Home
from flank_ops.task import launcher
from helpers.cli import EXAMPLE_REPO, REPO_ROOT, run_flank
from helpers.repos import commit_all, git, make_repo, write_files
from helpers.waiting import process_gone, wait_for

__all__ = [
    "EXAMPLE_REPO",
    "REPO_ROOT",
    "commit_all",
    "git",
    "make_repo",
    "process_gone",
    "run_flank",
    "wait_for",
    "write_files",
]


# A skip that says a system package is missing ("… is not installed (apt-get install X)"). make test installs
# every package the suite needs (Makefile: TEST_PACKAGES), so in CI such a skip is a failure: a test that
# quietly stopped running is how a browser, nginx or Slurm path goes untested.
_MISSING_PACKAGE = re.compile(r"not installed|apt-get install|no \S+ command on this machine")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not (report.skipped and os.environ.get("CI") == "true"):
        return
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if _MISSING_PACKAGE.search(reason):
        report.outcome = "failed"
        report.longrepr = f"skipped for a missing system package, which CI must have: {reason}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Servers started once per test process (moto) end with it: xdist workers skip atexit."""
    import sys

    servers = sys.modules.get("helpers.servers")
    if servers is not None:
        servers.stop_all()


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
    umask = os.umask(0o022)  # a test that runs flank's main() in-process sets flank's 077 for the whole worker:
    os.umask(umask)  # each test gets back the umask it started with, so no test sees another's
    yield home
    os.umask(umask)
    left = _crontab_blocks_of(home)
    if left:
        pytest.fail(
            f"the test left {len(left)} crontab block(s) of its FLANK_HOME (removed now): "
            f"{', '.join(left)} — push with [schedule] install_crontab = false in flank.toml, or use "
            "the user_crontab fixture",
            pytrace=False,
        )


def _crontab_blocks_of(home: Path) -> list[str]:
    """Tests never leave crontab lines: the blocks of this test's FLANK_HOME, taken out again."""
    from flank_ops.fileio import locked
    from flank_ops.schedule.crontab import (
        CrontabError,
        crontab_lock,
        installed_blocks,
        read_crontab,
        replace_block,
        write_crontab,
    )

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


@pytest.fixture
def flank():
    return run_flank


@pytest.fixture(scope="session")
def built_launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The launcher tests (tests/task/) and the Makefile and runner tests (tests/run/) share it. Compile task_exec.c once per session (each test has its own FLANK_HOME)."""
    binary = launcher.build_launcher(Home(tmp_path_factory.mktemp("launcher-cache")))
    if binary is None:
        pytest.skip("no C compiler on this machine")
    return binary
