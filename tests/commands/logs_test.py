"""flank logs: a task's log, or a run's tasks and the failed task's log."""
from __future__ import annotations

from pathlib import Path

from conftest import run_flank
from run.deployed import deploy

YML = """\
pipelines:
  nightly:
    tasks:
      extract: echo rows=42
      model:
        run: "echo 'Error in glm() - object not found' >&2; exit 1"
        needs: [extract]
"""


def test_logs_of_the_last_run_and_of_one_task(tmp_path: Path) -> None:
    deploy(tmp_path, YML)
    assert run_flank("run", "demo", "nightly").returncode == 1

    overview = run_flank("logs", "demo", "nightly")
    assert overview.returncode == 0, overview.stderr
    assert "nightly #1 failed" in overview.stdout
    assert "extract" in overview.stdout and "success" in overview.stdout
    assert "runs/nightly/1/logs/model.log" in overview.stdout
    assert "Error in glm() - object not found" in overview.stdout  # the failed task's log follows

    assert run_flank("logs", "demo", "nightly", "1", "extract", check=True).stdout == "rows=42\n"
    assert run_flank("logs", "demo", "nightly", "extract", check=True).stdout == "rows=42\n"  # last run

    cases = {
        ("logs", "demo", "nightly", "7"): "no run #7 of nightly",
        ("logs", "demo", "nightly", "1", "modle"): "did you mean 'model'?",
        ("logs", "demo", "weekly"): "no pipeline 'weekly'",
        ("logs", "demo"): "which pipeline?",
    }
    for args, message in cases.items():
        proc = run_flank(*args)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
