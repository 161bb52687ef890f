"""A real small disk: a tmpfs of a few MB mounted over a folder, so a full disk is a real ENOSPC."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def mount_small_tmpfs(where: Path, size: str = "4m") -> None:
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
