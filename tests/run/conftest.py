"""Fixtures shared by the launcher, Makefile and runner tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from flank_ops.paths import Home
from flank_ops.task import launcher


@pytest.fixture(scope="session")
def built_launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compile task_exec.c once per session (each test has its own FLANK_HOME)."""
    binary = launcher.build_launcher(Home(tmp_path_factory.mktemp("launcher-cache")))
    if binary is None:
        pytest.skip("no C compiler on this machine")
    return binary


@pytest.fixture
def small_disk(flank_home: Path):
    """FLANK_HOME on a real 4 MB tmpfs, so a full disk is a real ENOSPC (needs root and mount rights)."""
    import subprocess

    flank_home.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(flank_home)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield flank_home
    finally:
        subprocess.run(["umount", "-l", str(flank_home)])
