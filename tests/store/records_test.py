"""Run records: reconcile marks runs whose runner died as interrupted, once."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

from flank_ops.paths import Home
from flank_ops.store import records
from flank_ops.store.model import Runner, RunRecord, RunStatus, RunTrigger, TaskResult, TaskStatus


def _dead_runner() -> Runner:
    """The identity of a process that has exited (a runner killed mid-run)."""
    proc = subprocess.Popen(["true"])
    identity = records.runner_identity()
    proc.wait()
    return replace(identity, pid=proc.pid, pid_start=1)


def _running_record(paths, runner: Runner) -> tuple[int, Path]:
    run_id, run_dir, _ = records.create_run(
        paths,
        "nightly",
        lambda run_id: RunRecord(
            project=paths.name,
            pipeline="nightly",
            run_id=run_id,
            trigger=RunTrigger.SCHEDULE,
            started_at=records.now_iso(),
            runner=runner,
            tasks={
                "a": TaskResult(status=TaskStatus.SUCCESS),
                "b": TaskResult(status=TaskStatus.RUNNING, needs=["a"]),
                "c": TaskResult(status=TaskStatus.PENDING, needs=["b"]),
            },
        ),
    )
    return run_id, run_dir


def test_reconcile_marks_dead_runs_interrupted_and_leaves_live_ones(flank_home: Path) -> None:
    paths = Home().project("demo")
    dead_id, dead_dir = _running_record(paths, _dead_runner())
    live_id, live_dir = _running_record(paths, records.runner_identity())

    assert records.reconcile(paths, "nightly", on_interrupted=None) == [dead_id]
    dead = records.read_record(dead_dir)
    assert dead.status == "interrupted" and dead.ended_at and dead.duration_s is not None
    assert {n: t.status for n, t in dead.tasks.items()} == {"a": "success", "b": "interrupted", "c": "pending"}
    assert records.read_record(live_dir).status == "running"
    assert [e["run_id"] for e in records.read_history(paths, "nightly")] == [dead_id]

    assert records.reconcile(paths, "nightly", on_interrupted=None) == []  # idempotent: no second history line
    assert len(list(records.read_history(paths, "nightly"))) == 1
    assert records.find_running(paths, "nightly")[0].run_id == live_id


def test_task_results_merge_into_the_record(tmp_path: Path) -> None:
    record = RunRecord("demo", "nightly", 1, tasks={"a": TaskResult(), "b": TaskResult()})
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "a.json").write_text('{"task": "a", "status": "failed", "attempt": 3, "exit_code": 1}')
    (tmp_path / "tasks" / "b.json").write_text('{"status": "runn')  # caught mid-write: ignored
    assert records.merge_task_results(tmp_path, record) == ["a"]
    a = record.tasks["a"].to_json()
    assert (a["status"], a["attempts"], a["exit_code"]) == ("failed", 3, 1)
    assert "task" not in a and "attempt" not in a  # the launcher's bookkeeping stays in tasks/a.json
    assert record.tasks["b"] == TaskResult()
    assert records.merge_task_results(tmp_path, record) == []


def test_every_key_a_launcher_writes_reaches_the_record_and_survives_a_rewrite(flank_home: Path) -> None:
    """Contract C2: a launcher's new keys (artifacts, executor, ...) need no change in records."""
    paths = Home().project("demo")
    run_id, run_dir = _running_record(paths, records.runner_identity())
    result = {
        "task": "b",
        "status": "success",
        "attempts": 1,
        "exit_code": 0,
        "reason": "ran: R/model.R changed",
        "executor": {
            "kind": "slurm",
            "job_id": "42",
            "queue": "short",
            "host": "n1",
            "state": "COMPLETED",
            "max_rss_kb": 2048,
        },
        "memory_mb": 512,
        "cpus": 2,
        "artifacts": [{"path": "out/plot.png", "size": 10, "kept": True, "note": None}],
        "artifact_warnings": ["out/big.csv: over the size limit"],
        "gpu_hours": 1.5,
    }
    (run_dir / "tasks").mkdir()
    (run_dir / "tasks" / "b.json").write_text(json.dumps(result))
    record = records.read_record(run_dir)
    assert records.merge_task_results(run_dir, record) == ["b"]
    records.write_record(run_dir, record)
    again = records.read_record(run_dir)
    assert again.tasks["b"].reason == "ran: R/model.R changed" and again.tasks["b"].cpus == 2
    assert again.tasks["b"].executor == result["executor"]
    assert again.tasks["b"].artifacts == result["artifacts"]
    stored = json.loads(records.record_path(run_dir).read_text())["tasks"]["b"]
    assert stored["gpu_hours"] == 1.5 and stored["artifact_warnings"] == result["artifact_warnings"]
    records.write_record(run_dir, again)  # an unknown key survives a rewrite
    assert json.loads(records.record_path(run_dir).read_text())["tasks"]["b"]["gpu_hours"] == 1.5


def test_a_dead_queued_run_is_said_to_have_run_nothing(flank_home: Path) -> None:
    paths = Home().project("demo")
    run_id, run_dir = _running_record(paths, _dead_runner())
    record = records.read_record(run_dir)
    record.waiting_for = 3
    for entry in record.tasks.values():
        entry.status = TaskStatus.PENDING
    records.write_record(run_dir, record)
    assert records.reconcile(paths, "nightly", on_interrupted=None) == [run_id]
    dead = records.read_record(run_dir)
    assert dead.status == "interrupted" and "waiting_for" not in json.loads(records.record_path(run_dir).read_text())
    assert dead.summary == "interrupted: the runner stopped while it waited for #3; no task ran"


def test_an_empty_run_folder_left_by_an_older_version_is_removed(flank_home: Path) -> None:
    paths = Home().project("demo")
    kept_id, kept_dir = _running_record(paths, _dead_runner())
    # folders an older version made before their record came (no longer possible: create_run is all or nothing)
    empty_id, with_logs_id = kept_id + 1, kept_id + 2
    empty_dir, with_logs_dir = paths.run_dir("nightly", empty_id), paths.run_dir("nightly", with_logs_id)
    for run_id, run_dir in ((empty_id, empty_dir), (with_logs_id, with_logs_dir)):
        run_dir.mkdir()
        records._change_state(paths, "nightly", lambda state, run_id=run_id: state.created(run_id))
    (with_logs_dir / "logs").mkdir()  # not empty: someone's data, left alone
    records.reconcile(paths, "nightly", on_interrupted=None)
    assert records.list_run_ids(paths, "nightly") == [kept_id, with_logs_id]
    assert not empty_dir.exists()


def test_current_is_the_run_as_it_is_now_and_writes_nothing(flank_home: Path) -> None:
    paths = Home().project("demo")
    _, live_dir = _running_record(paths, records.runner_identity())
    records.task_result_path(live_dir, "b").parent.mkdir(parents=True, exist_ok=True)
    records.task_result_path(live_dir, "b").write_text(json.dumps({"task": "b", "status": "success", "attempt": 1}))
    now = records.current(live_dir)
    assert now.status == RunStatus.RUNNING and now.tasks["b"].status == TaskStatus.SUCCESS
    assert records.current(live_dir, names=[]).tasks["b"].status == TaskStatus.RUNNING  # asked for no task
    assert records.read_record(live_dir).tasks["b"].status == TaskStatus.RUNNING  # in memory only

    _, dead_dir = _running_record(paths, _dead_runner())
    dead = records.current(dead_dir)
    assert dead.status == RunStatus.INTERRUPTED and records.runner_gone(dead)
    assert records.read_record(dead_dir).status == RunStatus.RUNNING  # only reconcile writes it down
    records.reconcile(paths, "nightly", on_interrupted=None)
    recorded = records.current(dead_dir)
    assert recorded.status == RunStatus.INTERRUPTED and not records.runner_gone(recorded)
