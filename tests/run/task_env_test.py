"""What a task's environment holds: flank.yml's `env:` (the project's and the task's own), with a leading
`~` expanded as a shell would, with either launcher (issue 10 bug 2) and in a Makefile run by hand."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.deployed import deploy, runs_dir

FLANK_YML = """\
env:
  R_LIBS_USER: ~/R/library
  PLAIN: no~tilde
pipelines:
  nightly:
    tasks:
      show:
        run: printf '%s|%s|%s|%s\\n' "$R_LIBS_USER" "$PLAIN" "$MODEL_DIR" "$BY_NAME"
        env: {MODEL_DIR: ~/models, BY_NAME: ~root/x}
"""


def expected() -> str:
    return (
        "|".join(
            [
                os.path.expanduser("~/R/library"),
                "no~tilde",
                os.path.expanduser("~/models"),
                os.path.expanduser("~root/x"),
            ]
        )
        + "\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize("implementation", ["c", "python"])
def test_a_tilde_in_env_reaches_the_task_expanded(tmp_path: Path, implementation: str) -> None:
    deploy(tmp_path, FLANK_YML)
    proc = run_flank("run", "demo", "nightly", env={"FLANK_TASK_EXEC": implementation})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (runs_dir() / "1" / "logs" / "show.log").read_text() == expected()


@pytest.mark.slow
def test_a_makefile_run_by_hand_sees_the_same_environment(tmp_path: Path, flank_home: Path) -> None:
    deploy(tmp_path, FLANK_YML)
    run_dir = tmp_path / "by-hand"
    proc = subprocess.run(
        ["make", "-s", "-f", str(flank_home / "demo" / "pipelines" / "nightly.mk"), f"RUN_DIR={run_dir}"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (run_dir / "logs" / "show.log").read_text() == expected()
