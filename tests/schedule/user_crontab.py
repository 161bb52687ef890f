"""The machine user's real crontab, saved before a test and restored after it.

Tests install real crontab blocks (that is the behaviour under test), so each
one saves the crontab first and puts it back afterwards. Other test processes
may install their own blocks meanwhile (pytest -n): then only this test's
blocks (those naming its FLANK_HOME) are taken out, and theirs are left alone.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from flank_ops.fileio import locked
from flank_ops.schedule.crontab import crontab_lock, read_crontab, write_crontab


def without_blocks_of(text: str, home: Path) -> str:
    kept: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\n")
        if bare.startswith("# >>> flank ") and bare.endswith(f" ({home}) >>>"):
            inside = True
        elif inside and bare.startswith("# <<< flank ") and bare.endswith(f" ({home}) <<<"):
            inside = False
        elif not inside:
            kept.append(line)
    return "".join(kept)


@pytest.fixture
def user_crontab(flank_home: Path, tmp_path: Path) -> Iterator[str | None]:
    """Yields the crontab as it was (None: the user had none)."""
    if shutil.which("crontab") is None:
        pytest.skip("no crontab command on this machine (apt-get install cron)")
    with locked(crontab_lock()):
        saved = read_crontab()
    yield saved
    with locked(crontab_lock()):
        current = read_crontab()
        cleaned = without_blocks_of(current or "", tmp_path)  # every FLANK_HOME a test makes is under tmp_path
        final = saved if cleaned == (saved or "") else (cleaned or None)
        if final != current:
            write_crontab(final)
