"""flank run end to end: a real push deploys, real make runs the DAG, records land on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.deployed import (
    WAIT_FOR_GATE,
    deploy,
    history,
    open_gate,
    push,
    record,
    runs_dir,
    start_flank,
    task_status,
)
from helpers.waiting import process_gone, wait_for

FAILING = """\
pipelines:
  nightly:
    tasks:
      extract: echo extracted
      transform:
        run: echo transforming; exit 4
        needs: [extract]
      model:
        run: echo never
        needs: [transform]
      report:
        run: echo never either
        needs: [model]
      side: echo independent branch
"""


@pytest.mark.slow
def test_failure_marks_dependents_upstream_failed_and_finishes_independents(tmp_path: Path) -> None:
    deploy(tmp_path, FAILING)
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1, proc.stderr
    assert "nightly #1 failed" in proc.stdout
    assert "3/5 ok" not in proc.stdout and "2/5 ok; transform failed (exit 4)" in proc.stdout
    assert "flank logs demo nightly 1 transform" in proc.stdout
    rec = record(1)
    statuses = {name: t["status"] for name, t in rec["tasks"].items()}
    assert statuses == {
        "extract": "success",
        "transform": "failed",
        "model": "upstream_failed",
        "report": "upstream_failed",
        "side": "success",
    }
    assert rec["status"] == "failed" and rec["trigger"] == "manual"
    assert rec["tasks"]["transform"]["exit_code"] == 4
    assert rec["commit"]["message"] == "first" and rec["commit"]["author"] == "Ada Analyst"
    assert rec["ended_at"] and rec["duration_s"] is not None
    log = runs_dir() / "1" / rec["tasks"]["transform"]["log"]
    assert b"transforming" in log.read_bytes()
    assert not (runs_dir() / "1" / "logs" / "model.log").exists()  # it never started
    assert [(h["run_id"], h["status"]) for h in history()] == [(1, "failed")]


@pytest.mark.slow
def test_success_exits_zero_and_ids_are_sequential(tmp_path: Path) -> None:
    deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    for expected in (1, 2):
        proc = run_flank("run", "demo", "nightly")
        assert proc.returncode == 0, proc.stderr
        assert f"nightly #{expected} success" in proc.stdout
    assert [h["run_id"] for h in history()] == [1, 2]


@pytest.mark.slow
def test_task_from_and_rerun_select_tasks(tmp_path: Path) -> None:
    clone = deploy(tmp_path, FAILING)
    assert run_flank("run", "demo", "nightly").returncode == 1

    proc = run_flank("run", "demo", "nightly", "--task", "side")
    assert proc.returncode == 0, proc.stderr
    statuses = {n: t["status"] for n, t in record(2)["tasks"].items()}
    assert statuses == {
        "extract": "skipped",
        "transform": "skipped",
        "model": "skipped",
        "report": "skipped",
        "side": "success",
    }
    assert "1/1 ok" in proc.stdout

    # fix the bug, push, re-run only what failed or did not run in #1
    push(clone, {"flank.yml": FAILING.replace("exit 4", "exit 0")}, "fix transform")
    proc = run_flank("run", "demo", "nightly", "--rerun", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = record(3)
    assert rec["trigger"] == "rerun" and rec["selection"]["rerun_of"] == 1
    assert {n for n, t in rec["tasks"].items() if t["status"] == "success"} == {"transform", "model", "report"}
    assert rec["tasks"]["extract"]["status"] == "skipped"
    assert rec["commit"]["message"] == "fix transform"

    proc = run_flank("run", "demo", "nightly", "--from", "model")
    assert proc.returncode == 0
    assert {n for n, t in record(4)["tasks"].items() if t["status"] == "success"} == {"model", "report"}


@pytest.mark.slow
def test_bad_input_gets_one_clear_message(tmp_path: Path) -> None:
    run_flank("init", "empty", check=True)
    proc = run_flank("run", "empty", "nightly")
    assert proc.returncode == 1
    assert "has no deploy yet" in proc.stderr and "push first: git push flank main" in proc.stderr

    deploy(tmp_path, FAILING)
    cases = {
        ("run", "nope", "nightly"): "no project 'nope'",
        ("run", "demo", "nighty"): "did you mean 'nightly'?",
        ("run", "demo", "nightly", "--task", "modle"): "did you mean 'model'?",
        ("run", "demo", "nightly", "--from", "nothing"): "no task 'nothing' in pipeline 'nightly'",
        ("run", "demo", "nightly", "--rerun", "42"): "no run #42",
        ("run", "demo", "nightly", "--rerun", "last"): "--rerun takes a run id",
    }
    for args, message in cases.items():
        proc = run_flank(*args)
        assert proc.returncode == 1, args
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not runs_dir().exists() or not list(runs_dir().glob("[0-9]*"))  # no run was recorded


@pytest.mark.slow
def test_run_is_pinned_to_the_release_current_when_it_started(tmp_path: Path) -> None:
    yml = (
        "persist: [gate]\npipelines:\n  nightly:\n    tasks:\n"
        f"      hold: '{WAIT_FOR_GATE}'\n"
        "      show:\n        run: cat version.txt\n        needs: [hold]\n"
    )
    clone = deploy(tmp_path, yml, {"version.txt": "one\n"})
    runner = start_flank("run", "demo", "nightly")
    wait_for(lambda: task_status(1, "hold") == "running", "hold to start")
    push(clone, {"version.txt": "two\n"}, "second")  # switches `current` mid-run
    open_gate()
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, out + err
    assert (runs_dir() / "1" / "logs" / "show.log").read_text() == "one\n"
    assert record(1)["commit"]["message"] == "first"


@pytest.mark.slow
def test_runner_killed_is_marked_interrupted_by_the_next_look(tmp_path: Path) -> None:
    yml = f"persist: [gate]\npipelines:\n  nightly:\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
    deploy(tmp_path, yml)
    runner = start_flank("run", "demo", "nightly")
    try:
        wait_for(lambda: task_status(1, "hold") == "running", "hold to start")
        assert record(1)["status"] == "running"
        launcher = json.loads((runs_dir() / "1" / "tasks" / "hold.json").read_text())["pid"]
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
        # make dies with its runner (PR_SET_PDEATHSIG) and stops the tasks it started
        wait_for(lambda: process_gone(launcher), "the task's launcher to stop with its runner")
    finally:
        open_gate()  # whatever survived the runner finishes
    status = run_flank("status", "demo")
    assert status.returncode == 0, status.stderr
    assert "interrupted" in status.stdout
    rec = record(1)
    assert rec["status"] == "interrupted" and rec["ended_at"]
    assert rec["tasks"]["hold"]["status"] in ("interrupted", "failed", "success")
    assert [(h["run_id"], h["status"]) for h in history()] == [(1, "interrupted")]
    run_flank("status", "demo", check=True)  # looking again changes nothing
    assert len(history()) == 1


@pytest.mark.slow
def test_runner_killed_but_not_yet_reaped_is_not_running(tmp_path: Path) -> None:
    """A runner started by a long-lived parent (`flank scheduler`, a shell) stays a zombie after
    kill -9 until that parent reaps it: /proc still lists it, but it runs nothing."""
    yml = f"persist: [gate]\npipelines:\n  nightly:\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
    deploy(tmp_path, yml)
    runner = start_flank("run", "demo", "nightly")
    try:
        wait_for(lambda: task_status(1, "hold") == "running", "hold to start")
        os.kill(runner.pid, signal.SIGKILL)
        wait_for(lambda: _proc_state(runner.pid) == "Z", "the runner to die (a zombie: nobody reaped it yet)")
        status = run_flank("status", "demo")
        assert status.returncode == 0, status.stderr
        assert "interrupted" in status.stdout and "running" not in status.stdout
        assert record(1)["status"] == "interrupted"
    finally:
        runner.wait(timeout=30)
        open_gate()


def _proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.slow
def test_overlap_skip_records_the_skipped_triggers(tmp_path: Path) -> None:
    yml = f"persist: [gate]\npipelines:\n  nightly:\n    overlap: skip\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
    deploy(tmp_path, yml)
    first = start_flank("run", "demo", "nightly")
    wait_for(lambda: task_status(1, "hold") == "running", "the first run to start")
    # A cron firing, a push trigger and a manual run, all at once.
    others = [start_flank("run", "demo", "nightly", "--trigger", t) for t in ("schedule", "push", "manual")]
    results = [(p.communicate(timeout=60), p.returncode) for p in others]
    for (_, err), code in results:
        assert code == 1
        assert "skipped: nightly #1 was still running (overlap: skip)" in err
        assert "Traceback" not in err
    open_gate()
    first.communicate(timeout=60)
    assert first.returncode == 0
    skipped = [record(i) for i in (2, 3, 4)]
    assert {r["status"] for r in skipped} == {"skipped"}
    assert {r["trigger"] for r in skipped} == {"schedule", "push", "manual"}
    assert all(r["skipped_reason"] == "nightly #1 was still running (overlap: skip)" for r in skipped)
    assert sorted((h["run_id"], h["status"]) for h in history()) == [
        (1, "success"),
        (2, "skipped"),
        (3, "skipped"),
        (4, "skipped"),
    ]


@pytest.mark.slow
def test_overlap_queue_waits_for_the_running_run(tmp_path: Path) -> None:
    yml = f"persist: [gate]\npipelines:\n  nightly:\n    overlap: queue\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
    deploy(tmp_path, yml)
    first = start_flank("run", "demo", "nightly")
    wait_for(lambda: task_status(1, "hold") == "running", "the first run to start")
    second = start_flank("run", "demo", "nightly", "--trigger", "schedule")
    wait_for(
        lambda: (runs_dir() / "2" / "run.json").exists() and record(2).get("waiting_for") == 1,
        "the second run to queue",
    )
    assert task_status(2, "hold") is None  # it waits: nothing of it runs in parallel
    open_gate()
    for proc in (first, second):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
    one, two = record(1), record(2)
    assert two["status"] == "success" and "waiting_for" not in two
    assert two["started_at"] >= one["ended_at"]  # it started once the first had ended


@pytest.mark.slow
def test_non_utf8_output_without_final_newline_is_kept_byte_for_byte(tmp_path: Path) -> None:
    yml = "pipelines:\n  nightly:\n    tasks:\n      bytes: printf 'caf\\351 \\377\\376 end'\n"
    deploy(tmp_path, yml)
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 0, proc.stderr
    assert (runs_dir() / "1" / "logs" / "bytes.log").read_bytes() == b"caf\xe9 \xff\xfe end"
    shown = subprocess.run(
        ["python", "-m", "flank_ops", "logs", "demo", "nightly", "1", "bytes"],
        capture_output=True,
    )
    assert shown.returncode == 0 and shown.stdout == b"caf\xe9 \xff\xfe end"


@pytest.mark.slow
def test_retries_and_timeout_are_recorded(tmp_path: Path) -> None:
    yml = """\
persist: [state]
pipelines:
  nightly:
    tasks:
      flaky:
        run: 'n=$(cat "$FLANK_PERSIST_STATE/n" 2>/dev/null || echo 0); echo $((n+1)) > "$FLANK_PERSIST_STATE/n"; [ "$n" -ge 1 ]'
        retries: 2
        retry_delay: 1s
      slow:
        run: sleep 30
        timeout: 1s
"""
    deploy(tmp_path, yml)
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1
    rec = record(1)
    assert rec["tasks"]["flaky"]["status"] == "success" and rec["tasks"]["flaky"]["attempts"] == 2
    assert rec["tasks"]["slow"]["status"] == "timed_out"
    assert "slow timed out" in rec["summary"]


@pytest.mark.slow
def test_secrets_reach_tasks_and_never_the_log_record_or_note(tmp_path: Path) -> None:
    yml = (
        "pipelines:\n  nightly:\n    tasks:\n"
        '      leak: \'echo "token is $API_TOKEN"; printf "%s" "$API_TOKEN" | cut -c1-5; '
        "printf s3cr3t-; sleep 0.3; printf value; exit 2'\n"
    )  # split across two writes
    deploy(tmp_path, yml)
    run_flank("secrets", "set", "demo", "API_TOKEN", input="s3cr3t-value\n", check=True)
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1
    log = (runs_dir() / "1" / "logs" / "leak.log").read_text()
    assert "token is ***" in log and "s3cr3t-value" not in log
    assert log.endswith("***")
    assert "s3cr3\n" in log  # a fragment is not the secret; only whole values are masked
    assert "s3cr3t-value" not in (runs_dir() / "1" / "run.json").read_text()
    note = subprocess.run(
        [
            "git",
            "--git-dir",
            str(Path(os.environ["FLANK_HOME"]) / "demo.git"),
            "notes",
            "--ref=flank",
            "show",
            record(1)["commit"]["sha"],
        ],
        text=True,
        stdout=subprocess.PIPE,
    )
    assert "flank nightly #1 failed" in note.stdout and "s3cr3t-value" not in note.stdout


@pytest.mark.slow
def test_after_run_failure_is_reported_and_the_record_kept(tmp_path: Path, flank_home: Path) -> None:
    deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    (flank_home / "flank.toml").write_text("site_url = [broken\n")
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 0, proc.stderr  # the run itself succeeded
    assert "after the run, note failed" in proc.stderr
    rec = record(1)
    assert rec["status"] == "success"
    assert rec["after_run"]["note"].startswith("error: ")
    assert history()[0]["status"] == "success"


@pytest.mark.slow
def test_detach_returns_at_once_and_the_run_completes(tmp_path: Path) -> None:
    yml = f"persist: [gate]\npipelines:\n  nightly:\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
    deploy(tmp_path, yml)
    proc = run_flank("run", "demo", "nightly", "--detach")  # returns while `hold` still waits
    assert proc.returncode == 0, proc.stderr
    assert "nightly #1 started in the background" in proc.stdout
    assert "/demo/nightly/1/" in proc.stdout
    wait_for(lambda: task_status(1, "hold") == "running", "the detached run to start")
    open_gate()
    wait_for(lambda: history(), "the detached run to finish")
    assert record(1)["status"] == "success"


@pytest.mark.slow
def test_runner_stopped_with_sigterm_stops_its_tasks_and_records_interrupted(tmp_path: Path) -> None:
    # e.g. `systemctl stop`, or a shutdown: the run ends now, recorded, with nothing left running
    pid_file = tmp_path / "task.pid"
    yml = (
        f"persist: [gate]\npipelines:\n  nightly:\n    tasks:\n"
        f"      hold: 'echo $$ > {pid_file}; {WAIT_FOR_GATE}'\n"
        "      after:\n        run: 'true'\n        needs: [hold]\n"
    )
    deploy(tmp_path, yml)
    runner = start_flank("run", "demo", "nightly")
    wait_for(
        lambda: task_status(1, "hold") == "running" and pid_file.exists() and pid_file.read_text().strip(),
        "hold to start",
    )
    task_pid = int(pid_file.read_text())
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, out + err
    assert "Traceback" not in err
    rec = record(1)
    assert rec["status"] == "interrupted" and rec["ended_at"]
    assert rec["tasks"]["hold"]["status"] == "interrupted"
    assert rec["tasks"]["after"]["status"] != "success"
    assert [(h["run_id"], h["status"]) for h in history()] == [(1, "interrupted")]
    wait_for(lambda: process_gone(task_pid), "the task's process to end")


@pytest.mark.slow
def test_runs_of_pipelines_foo_and_id_foo_do_not_wait_for_each_other(tmp_path: Path) -> None:
    # Their locks were both .locks/run-id-foo.lock: a long id-foo run stalled every foo run, invisibly.
    yml = (
        f"persist: [gate]\npipelines:\n  id-foo:\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
        "  foo:\n    tasks:\n      only: echo foo\n"
    )
    deploy(tmp_path, yml)
    long = start_flank("run", "demo", "id-foo")
    try:
        wait_for(lambda: task_status(1, "hold", "id-foo") == "running", "id-foo to start")
        foo = start_flank("run", "demo", "foo")
        wait_for(lambda: foo.poll() is not None, "foo to finish while id-foo runs")
        out, err = foo.communicate()
        assert foo.returncode == 0, out + err
        assert task_status(1, "hold", "id-foo") == "running"
    finally:
        open_gate()
        long.communicate(timeout=60)
    assert long.returncode == 0


ANALYSIS = """\
persist: [state]
pipelines:
  nightly:
    tasks:
      clean: echo clean
      pca:
        run: echo pca
        needs: [clean]
      slides:
        run: 'test -e "$FLANK_PERSIST_STATE/fixed"'
        needs: [pca]
      logreg:
        run: echo logreg
        needs: [clean]
"""


@pytest.mark.slow
def test_rerun_runs_only_what_did_not_succeed_within_that_runs_selection(tmp_path: Path) -> None:
    deploy(tmp_path, ANALYSIS)
    proc = run_flank("run", "demo", "nightly", "--from", "pca")  # pca ok, slides fails
    assert proc.returncode == 1
    assert "--rerun 1" in proc.stdout
    (Path(os.environ["FLANK_HOME"]) / "demo" / "persist" / "state" / "fixed").write_text("")

    proc = run_flank("run", "demo", "nightly", "--rerun", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1/1 ok" in proc.stdout
    statuses = {n: t["status"] for n, t in record(2)["tasks"].items()}
    assert statuses == {"clean": "skipped", "pca": "skipped", "slides": "success", "logreg": "skipped"}

    proc = run_flank("run", "demo", "nightly", "--task", "pca")
    assert proc.returncode == 0, proc.stderr
    for run_id in (2, 3):  # a rerun that succeeded, a --task run that succeeded
        proc = run_flank("run", "demo", "nightly", "--rerun", str(run_id))
        assert (proc.returncode, proc.stdout, proc.stderr) == (
            0,
            f"flank: nothing to rerun: run {run_id} succeeded\n",
            "",
        )
    assert sorted(int(p.name) for p in runs_dir().glob("[0-9]*")) == [1, 2, 3]  # no run was created

    # Partial runs say so in the history, with how much of the pipeline they ran.
    assert [(h["run_id"], h["partial"], h["selected"], h["total"]) for h in history()] == [
        (1, True, 2, 4),
        (2, True, 1, 4),
        (3, True, 1, 4),
    ]
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert (history()[-1]["partial"], history()[-1]["selected"]) == (False, 4)


def test_rerun_takes_every_kind_of_not_success_and_nothing_outside_the_selection() -> None:
    from flank_ops.config.load import load_config
    from flank_ops.run.runner import NothingToRerun, rerun_selection
    from flank_ops.store.model import RunRecord, RunStatus, Selection, TaskResult, TaskStatus

    names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
    yml = "pipelines:\n  p:\n    tasks:\n" + "".join(f"      {n}: 'true'\n" for n in names)
    pipeline = load_config(yml).pipelines["p"]
    statuses = dict(
        zip(
            names,
            [
                "success",
                "failed",
                "timed_out",
                "upstream_failed",
                "interrupted",
                "cancelled",
                "pending",
                "skipped",
                "success",
            ],
        )
    )
    old = RunRecord(
        project="demo",
        pipeline="p",
        run_id=7,
        status=RunStatus.FAILED,
        selection=Selection(from_="a"),
        selected_tasks=names[:8],
        tasks={n: TaskResult(status=TaskStatus(s)) for n, s in statuses.items()},
    )
    # h was selected and never started (the run stopped first); i was outside the selection.
    assert rerun_selection(pipeline, old) == ["b", "c", "d", "e", "f", "g", "h"]
    old.selected_tasks = ["a", "i"]
    with pytest.raises(NothingToRerun, match="^nothing to rerun: run 7 succeeded$"):
        rerun_selection(pipeline, old)
