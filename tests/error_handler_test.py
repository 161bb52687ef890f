"""What a user sees when something goes wrong outside flank's own checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.cli import REPO_ROOT


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    # `flank schema | head -1`: the pipe closes while flank is still writing
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(
        f"{sys.executable} -m flank_ops schema | head -c 10",
        shell=True,
        env=env,
        text=True,
        capture_output=True,
    )
    assert proc.stdout == '{\n  "$sche'
    assert proc.stderr == ""


def test_a_full_disk_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    import errno
    import io
    from contextlib import redirect_stderr

    from flank_ops.error_handler import error_handler

    err = io.StringIO()
    with redirect_stderr(err):
        try:
            with error_handler():
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run.json"))
        except SystemExit as exc:
            code = exc.code
    assert code == 1
    assert (
        err.getvalue()
        == f"flank: no space left on the device ({tmp_path / 'run.json'})\n  free some disk space, then try again\n"
    )
