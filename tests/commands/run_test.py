"""flank run --local: the same runner in a laptop working copy, records under .flank/."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import make_repo, run_flank

YML = """\
pipelines:
  nightly:
    tasks:
      extract: echo "in $FLANK_PROJECT run $FLANK_RUN_ID" > out.txt
      report:
        run: cat out.txt
        needs: [extract]
"""


def test_local_run_in_a_working_copy(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "myproj", {"flank.yml": YML, "R/.keep": ""})
    proc = run_flank("run", "--local", "nightly", cwd=repo / "R")  # from a subfolder, like RStudio's terminal
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nightly #1 success" in proc.stdout
    run_dir = repo / ".flank" / "runs" / "nightly" / "1"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "success" and record["local"] is True
    assert record["commit"]["message"] == "first"
    assert (run_dir / "logs" / "report.log").read_text() == "in myproj run 1\n"
    assert "after_run" in record and "note" not in record["after_run"]  # no bare repo, no note

    status = run_flank("status", "--local", cwd=repo, check=True).stdout
    assert "nightly" in status and "#1" in status and "success" in status
    assert run_flank("logs", "--local", "nightly", "report", cwd=repo, check=True).stdout == "in myproj run 1\n"


def test_local_without_flank_yml_and_wrong_arguments(tmp_path: Path) -> None:
    proc = run_flank("run", "--local", "nightly", cwd=tmp_path)
    assert proc.returncode == 1 and "no flank.yml in" in proc.stderr
    proc = run_flank("run", "demo")
    assert proc.returncode == 1 and "usage: flank run PROJECT PIPELINE" in proc.stderr


def test_if_due_runs_only_when_the_schedule_is_due(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from run.deployed import deploy, history

    deploy(tmp_path, "pipelines:\n  nightly:\n    timezone: UTC\n    tasks:\n      only: echo hi\n")
    not_now = f"{(datetime.now(timezone.utc).minute + 30) % 60} * * * *"
    proc = run_flank("run", "demo", "nightly", "--trigger", "schedule", "--if-due", not_now)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    assert history() == []
    proc = run_flank("run", "demo", "nightly", "--trigger", "schedule", "--if-due", "* * * * *")
    assert proc.returncode == 0, proc.stderr
    assert [(h["run_id"], h["trigger"]) for h in history()] == [(1, "schedule")]
