"""The machine user's real crontab, saved before a test and restored exactly after it.

Tests install real crontab blocks (that is the behaviour under test), so each
one saves the crontab first and puts it back afterwards, byte for byte ("no
crontab" included). A lock of their own serializes these tests across pytest
workers; install_schedule's lock cannot be held here, since it takes it itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flank_ops.fileio import locked
from flank_ops.schedule.crontab import crontab_lock, read_crontab, write_crontab

TESTS_LOCK = Path(tempfile.gettempdir()) / f"flank-crontab-tests-{os.getuid()}.lock"


@pytest.fixture
def user_crontab(flank_home: Path) -> Iterator[str | None]:
    """Yields the crontab as it was (None: the user had none)."""
    if shutil.which("crontab") is None:
        pytest.skip("no crontab command on this machine (apt-get install cron)")
    with locked(TESTS_LOCK):
        with locked(crontab_lock()):
            saved = read_crontab()
        try:
            yield saved
        finally:
            with locked(crontab_lock()):
                if read_crontab() != saved:
                    write_crontab(saved)
