"""A full disk costs a run its logs, never its outcome: the record says what happened (issue 9.11).

Every test runs FLANK_HOME on a real 4 MB tmpfs (tests/run/conftest.py `small_disk`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.deployed import deploy, history, leave_free, record, runs_dir

pytestmark = pytest.mark.slow

TWO_TASKS = (
    "pipelines:\n  nightly:\n    tasks:\n"
    "      first: echo first\n"
    "      second:\n        run: echo second\n        needs: [first]\n"
)


def _run_folders() -> list[Path]:
    return sorted(runs_dir().glob("[0-9]*"), key=lambda p: int(p.name)) if runs_dir().is_dir() else []


def _assert_no_leftovers(run_dir: Path) -> None:
    assert not list(run_dir.glob(".run.json.*")), "a temp file was left behind"
    assert not (run_dir / ".reserve").exists(), "the run's disk reserve was not freed"


def test_a_run_that_fills_the_disk_is_recorded_failed_disk_full(tmp_path: Path, small_disk: Path) -> None:
    yml = (
        "pipelines:\n  nightly:\n    tasks:\n"
        "      big: head -c 20000000 /dev/zero | tr '\\0' x\n"
        "      after:\n        run: echo after\n        needs: [big]\n"
    )
    deploy(tmp_path, yml)
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "nightly #1 failed" in proc.stdout and "disk full" in proc.stdout
    assert "Errno 28" not in proc.stderr  # after-run steps that could not write say so in words
    # The disk is still full: the record is final all the same, and says why.
    rec = json.loads((runs_dir() / "1" / "run.json").read_text())
    assert rec["status"] == "failed" and rec["ended_at"]
    assert rec["summary"].startswith("disk full; ")
    assert rec["error"].startswith("disk full")
    assert rec["tasks"]["big"]["status"] == "failed" and rec["tasks"]["after"]["status"] == "upstream_failed"
    assert [(h["run_id"], h["status"]) for h in history()] == [(1, "failed")]
    _assert_no_leftovers(runs_dir() / "1")

    status = run_flank("status", "demo")  # looking, on the full disk
    assert status.returncode == 0, status.stderr
    assert "failed" in status.stdout and "interrupted" not in status.stdout
    (runs_dir() / "1" / "logs" / "big.log").unlink()  # the user frees space
    # (the site's raw log is a hard link to it, published when the run's page was first drawn)
    for raw in (small_disk / "site").glob("demo/nightly/1/logs/big.txt*"):
        raw.unlink()
    run_flank("status", "demo", check=True)
    assert record(1)["status"] == "failed" and len(history()) == 1


def test_a_run_that_cannot_even_create_its_record_leaves_nothing(tmp_path: Path, small_disk: Path) -> None:
    deploy(tmp_path, TWO_TASKS)
    leave_free(small_disk, 0)
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("flank: cannot start a run of nightly: disk full")
    assert "free some disk space, then run it again" in proc.stderr
    assert _run_folders() == [] and not (runs_dir() / "last_id").exists()

    status = run_flank("status", "demo")
    assert status.returncode == 0, status.stderr
    assert "never run" in status.stdout

    (small_disk / "filler").unlink()
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 0, proc.stderr
    assert "nightly #1 success" in proc.stdout  # the refused attempt used no id


def test_on_a_nearly_full_disk_every_run_is_recorded_as_what_happened(tmp_path: Path, small_disk: Path) -> None:
    """Sweep the free space through the sizes where the record, the run's plan, the task logs and
    the results each stop fitting: whatever fits, no run is left "running", none is called
    "interrupted" (nothing was), no folder is unreadable, and each refusal is one clear message."""
    deploy(tmp_path, TWO_TASKS)
    started = 0
    for free_kb in [*range(0, 68, 4), 96, 128, 256]:
        leave_free(small_disk, free_kb * 1024)
        proc = run_flank("run", "demo", "nightly")
        seen = f"with {free_kb} KB free: {proc.stdout}{proc.stderr}"
        assert "Traceback" not in proc.stderr, seen
        if proc.returncode != 0:
            assert "disk full" in proc.stdout + proc.stderr, seen
        if "cannot start a run" not in proc.stderr:
            started += 1
        status = run_flank("status", "demo")
        assert status.returncode == 0, seen + status.stderr

        folders = _run_folders()
        assert [int(p.name) for p in folders] == list(range(1, started + 1)), seen
        for folder in folders:
            rec = json.loads((folder / "run.json").read_text())  # every folder holds a readable record
            assert rec["status"] in ("success", "failed"), (seen, rec["status"], rec.get("summary"))
            _assert_no_leftovers(folder)
        assert sorted(h["run_id"] for h in history()) == list(range(1, started + 1)), seen
    assert started >= 3  # the sweep did reach runs that started
    assert record(started)["status"] == "success"
