"""Fixtures shared by the launcher and Makefile tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from flank_ops.paths import Home
from flank_ops.run import launcher


@pytest.fixture(scope="session")
def built_launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compile task_exec.c once per session (each test has its own FLANK_HOME)."""
    binary = launcher.build_launcher(Home(tmp_path_factory.mktemp("launcher-cache")))
    if binary is None:
        pytest.skip("no C compiler on this machine")
    return binary
