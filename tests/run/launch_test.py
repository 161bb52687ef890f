"""Runs started by a push: on_push pipelines and `git push -o run=PIPELINE`, fully detached."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.deployed import WAIT_FOR_GATE, deploy, history, open_gate, record, task_status
from helpers.repos import commit_all, git
from helpers.waiting import wait_for

pytestmark = pytest.mark.slow


def test_on_push_run_is_detached_so_the_push_does_not_wait(tmp_path: Path) -> None:
    yml = f"persist: [gate]\npipelines:\n  nightly:\n    on_push: true\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
    deploy(tmp_path, yml)  # the push returns although `hold` waits for the gate
    wait_for(lambda: task_status(1, "hold") == "running", "the on_push run to start")
    assert record(1)["trigger"] == "push" and record(1)["status"] == "running"
    open_gate()
    wait_for(history, "the run to finish")
    assert record(1)["status"] == "success"


def test_push_option_starts_a_pipeline(tmp_path: Path) -> None:
    clone = deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    commit_all(clone, "again")
    push = git("push", "-o", "run=nightly", "flank", "main", cwd=clone)
    assert "started nightly" in push.stderr
    wait_for(history, "the run to finish")
    rec = record(1)
    assert rec["status"] == "success" and rec["trigger"] == "push" and rec["commit"]["message"] == "again"
