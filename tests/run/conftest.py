"""Fixtures shared by the launcher, Makefile and runner tests."""

from __future__ import annotations

from pathlib import Path

import pytest


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
