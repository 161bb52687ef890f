"""flank status: one line per pipeline with its last run."""
from __future__ import annotations

from pathlib import Path

from conftest import run_flank
from run.deployed import deploy

YML = """\
pipelines:
  nightly:
    tasks:
      only: echo hi
  weekly:
    tasks:
      broken: exit 1
"""


def test_status_table_shows_last_runs(tmp_path: Path) -> None:
    run_flank("init", "fresh", check=True)
    deploy(tmp_path, YML)
    run_flank("run", "demo", "nightly", check=True)
    run_flank("run", "demo", "nightly", check=True)
    assert run_flank("run", "demo", "weekly").returncode == 1

    proc = run_flank("status")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["PROJECT", "PIPELINE", "LAST", "RUN", "STATUS", "STARTED", "DURATION", "NEXT", "RUN"]
    rows = {tuple(line.split()[:4]) for line in lines[1:]}
    assert ("demo", "nightly", "#2", "success") in rows
    assert ("demo", "weekly", "#1", "failed") in rows
    assert any(line.startswith("fresh") and "no deploy yet (git push flank main)" in line for line in lines)

    only_demo = run_flank("status", "demo", check=True).stdout
    assert "fresh" not in only_demo and "nightly" in only_demo

    proc = run_flank("status", "nope")
    assert proc.returncode == 1 and "no project 'nope'" in proc.stderr and "known projects: demo, fresh" in proc.stderr
