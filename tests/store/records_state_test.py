"""The pipeline state file (run/state.py): kept with the records, rebuilt from them when missing.

What `flank status`, notifications and reconcile answer must be the same whether the state file
was kept run by run, is missing (a FLANK_HOME from before it), damaged, or stale (runs handed out
by an older flank that did not keep it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flank_ops.paths import Home
from flank_ops.store import records
from flank_ops.store.model import RunRecord, RunStatus, finish, history_entry

FIXTURES = Path(__file__).parent / "fixtures" / "release_f82f4d3"


def _run(paths, status: str, *, task: str | None = None, history: bool = True) -> int:
    """A run as the runner leaves it: created (the state lists it running), then finished."""

    def build(run_id: int) -> RunRecord:
        return records.start_record(
            project=paths.name,
            pipeline="nightly",
            run_id=run_id,
            trigger="manual",
            local=False,
            commit={},
            release="/nowhere",
            selection={"task": task, "from": None, "rerun_of": None},
            tasks=[("a", []), ("b", ["a"])],
            selected=[task] if task else ["a", "b"],
            scheduled_at=None,
            timezone=None,
            concurrency=1,
        )

    run_id, run_dir, record = records.create_run(paths, "nightly", build)
    assert records.read_state(paths, "nightly").running[-1] == run_id
    if status != "running":
        finish(record, RunStatus(status), status)
        records.release_space(run_dir)
        records.write_record(run_dir, record)
        if history:
            records.append_history(paths, record)
    return run_id


def _answers(paths) -> tuple:
    state = records.read_state(paths, "nightly")
    return (
        records.last_run_id(paths, "nightly"),
        sorted(state.running),
        state.last_finished,
        state.last_success,
        records.last_full_run(paths, "nightly"),
        records.previous_outcome(paths, "nightly", state.last_id),
        records.last_run(paths, "nightly"),
    )


def test_the_state_follows_the_runs_and_a_rebuild_gives_the_same_answers(flank_home: Path) -> None:
    paths = Home().project("demo")
    assert (
        records.reconcile(paths, "nightly", on_interrupted=None) == []
        and records.read_state(paths, "nightly").running == []
    )
    ok = _run(paths, "success")
    failed = _run(paths, "failed")
    partial = _run(paths, "success", task="a")
    skipped = _run(paths, "skipped")
    last = _run(paths, "success")
    state = records.read_state(paths, "nightly")
    assert state.running == [] and state.last_id == last
    assert state.last_finished == {"run_id": last, "status": "success"} and state.last_success == last
    assert records.last_full_run(paths, "nightly", before=last) == {"run_id": failed, "status": "failed"}
    assert records.last_full_run(paths, "nightly", before=failed) == {"run_id": ok, "status": "success"}
    # what a notification compares the last success with: the partial success (skips say nothing)
    assert records.previous_outcome(paths, "nightly", last) == {"run_id": partial, "status": "success"}
    assert skipped not in state.running
    assert records.last_run(paths, "nightly") == last
    refused = _run(paths, "skipped")  # a trigger refused after it: the last run stays `last` (issue 19 bug 1)
    assert records.last_run(paths, "nightly") == last and records.last_run_id(paths, "nightly") == refused
    assert records.previous_outcome(paths, "nightly", last) == {"run_id": partial, "status": "success"}
    kept = _answers(paths)

    state_file = paths.runs_dir("nightly") / records.STATE_FILE
    state_file.unlink()  # a FLANK_HOME from before the state file
    assert _answers(paths) == kept and state_file.exists()
    state_file.write_text('{"format": 1, "last_id": ')  # damaged
    assert _answers(paths) == kept
    assert json.loads(state_file.read_text())["last_id"] == refused


def test_runs_handed_out_without_the_state_file_are_seen(flank_home: Path) -> None:
    """An older flank (or a copy of old run folders) moves the id counter but not the state: stale."""
    paths = Home().project("demo")
    _run(paths, "success")
    runs = paths.runs_dir("nightly")
    for run_id in ("2", "3"):  # run folders as the release before the state file wrote them
        shutil.copytree(FIXTURES / "nightly" / run_id, runs / run_id)
        entry = history_entry(records.read_record(runs / run_id))
        with open(runs / records.HISTORY_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    shutil.copytree(FIXTURES / "hold" / "1", runs / "4")  # a killed run, never marked
    killed = records.read_record(runs / "4")
    killed.pipeline, killed.run_id, killed.status = "nightly", 4, RunStatus.RUNNING
    killed.ended_at = killed.duration_s = killed.summary = None
    records.write_record(runs / "4", killed)
    (runs / records.LAST_ID_FILE).write_text("4\n")

    assert records.read_state(paths, "nightly").running == [4]
    assert records.last_full_run(paths, "nightly") == {"run_id": 1, "status": "success"}  # 2 and 3 are partial
    assert records.reconcile(paths, "nightly", on_interrupted=None) == [4]
    assert records.read_record(runs / "4").status == RunStatus.INTERRUPTED
    state = records.read_state(paths, "nightly")
    assert state.running == [] and state.last_finished == {"run_id": 4, "status": "interrupted"}
    assert records.last_full_run(paths, "nightly") == {"run_id": 4, "status": "interrupted"}


def test_a_finished_run_whose_history_line_was_lost_gets_it_back_once(flank_home: Path) -> None:
    paths = Home().project("demo")
    lost = _run(paths, "failed", history=False)  # the runner died between its last two writes
    record = records.read_record(paths.run_dir("nightly", lost))
    assert record.runner is not None
    record.runner.pid_start = -1  # ... so its runner is gone
    records.write_record(paths.run_dir("nightly", lost), record)
    assert records.read_state(paths, "nightly").running == [lost]
    assert records.reconcile(paths, "nightly", on_interrupted=None) == []  # not interrupted: it had finished
    assert [(e["run_id"], e["status"]) for e in records.read_history(paths, "nightly")] == [(lost, "failed")]
    assert records.read_state(paths, "nightly").running == []
    assert records.reconcile(paths, "nightly", on_interrupted=None) == []
    assert len(list(records.read_history(paths, "nightly"))) == 1


def test_a_success_that_finished_before_a_later_failure_compares_with_the_run_before_it(flank_home: Path) -> None:
    """Notifications compare a success with the run that ended before it, whatever ended after."""
    paths = Home().project("demo")
    first = _run(paths, "failed")
    success = _run(paths, "success")
    _run(paths, "failed")  # ends before the success's notification is sent
    assert records.previous_outcome(paths, "nightly", success) == {"run_id": first, "status": "failed"}


@pytest.mark.slow
def test_status_with_a_state_file_missing_and_a_run_going(tmp_path: Path, flank_home: Path) -> None:
    """`flank status` on run folders of the release before the state file: the same table."""
    from conftest import run_flank

    from helpers.deployed import deploy

    deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: 'true'\n")
    paths = Home().project("demo")
    # The folders appear at once, as runs written under the lock would: the push's redraw of the
    # site, after its answer, may still be reading (and rebuilding) the state while a copy is half done.
    staged = tmp_path / "staged-runs"
    shutil.copytree(FIXTURES / "nightly", staged)
    staged.rename(paths.runs_dir("nightly"))
    assert not (paths.runs_dir("nightly") / records.STATE_FILE).exists()
    proc = run_flank("status", "demo")
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if " nightly " in line)
    assert "#3" in row and "failed (partial: 3 of 5 tasks; last full run #1 failed)" in row
    assert records.read_state(paths, "nightly").last_full == {"run_id": 1, "status": "failed"}
