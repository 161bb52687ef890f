"""flank logs: a task's log, or a run's tasks and the failed task's log."""

from __future__ import annotations

from pathlib import Path

import pytest

from flank_ops.store.model import RunRecord, TaskStatus
from helpers.cli import run_flank
from helpers.deployed import deploy

YML = """\
pipelines:
  nightly:
    tasks:
      extract: echo rows=42
      model:
        run: "echo 'Error in glm() - object not found' >&2; exit 1"
        needs: [extract]
"""


@pytest.mark.slow
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


def test_logs_through_flank_remote_name_each_log_by_the_laptop_command_that_prints_it(tmp_path: Path) -> None:
    """Third trial: `flank remote logs nightly` printed the VM's log paths (/home/vm/flank/…/model.log),
    which do not exist on the laptop it is printed on. Through `flank remote` (FLANK_REMOTE set, as
    remote/ssh.py does on the VM side; tests/commands/remote_test.py runs it over a real sshd) each task's
    log is named by the command that prints it there."""
    deploy(tmp_path, YML)
    assert run_flank("run", "demo", "nightly").returncode == 1

    proc = run_flank("logs", "demo", "nightly", env={"FLANK_REMOTE": "flank"})
    assert proc.returncode == 0, proc.stderr
    assert str(tmp_path) not in proc.stdout
    table = {line.split()[0]: line for line in proc.stdout.splitlines()[1:3]}
    assert table["extract"].endswith("flank remote logs nightly 1 extract")
    assert table["model"].endswith("flank remote logs nightly 1 model")
    assert "--- log of model (flank remote logs nightly 1 model) ---" in proc.stdout
    assert "Error in glm() - object not found" in proc.stdout

    on_the_vm = run_flank("logs", "demo", "nightly").stdout  # on the VM, the files themselves
    assert "runs/nightly/1/logs/model.log" in on_the_vm and "flank remote" not in on_the_vm


# --- flank logs --follow ------------------------------------------------------


def _read_until(proc, text: bytes, got: bytearray) -> bool:
    """Non-blocking: append what the follower printed so far; True once `text` is in it."""
    import os
    import select

    while select.select([proc.stdout], [], [], 0)[0]:
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        got.extend(chunk)
    return text in got


def _start_follow(*args: str):
    import os
    import subprocess
    import sys

    from helpers.cli import REPO_ROOT

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", "flank_ops", "logs", *args, "--follow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


FOLLOW_YML = """\
persist: [gate]
pipelines:
  nightly:
    tasks:
      hold: sh hold.sh
      after:
        run: "echo after-ran; exit 4"
        needs: [hold]
"""
HOLD_SH = "echo first line\n{wait}\necho second line\n"


@pytest.mark.slow
def test_follow_prints_a_running_tasks_output_as_it_comes_and_its_end(tmp_path: Path) -> None:
    from helpers.deployed import WAIT_FOR_GATE, open_gate, start_flank, task_status
    from helpers.waiting import wait_for

    deploy(
        tmp_path,
        FOLLOW_YML,
        files={"hold.sh": HOLD_SH.format(wait=WAIT_FOR_GATE.replace("exit 0", "break").replace("; exit 9", ""))},
    )
    runner = start_flank("run", "demo", "nightly")
    follower = None
    try:
        wait_for(lambda: task_status(1, "hold") == "running", "hold to start")
        follower = _start_follow("demo", "nightly", "hold")
        got = bytearray()
        wait_for(lambda: _read_until(follower, b"first line\n", got), "the first line, while hold still runs")
        assert follower.poll() is None and task_status(1, "hold") == "running"
        assert b"second line" not in got
    finally:
        open_gate()
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert bytes(got) + out == b"first line\nsecond line\n"
    assert err.decode().strip().endswith("flank: hold success (exit 0)")
    runner.communicate(timeout=60)

    # Without TASK: the whole run, each line prefixed by its task; exit 1 as the run failed.
    whole = run_flank("logs", "demo", "nightly", "1", "--follow")
    assert whole.returncode == 1
    assert "hold | first line\nhold | second line\n" in whole.stdout
    assert "after | after-ran\n" in whole.stdout
    assert "flank: nightly #1 failed" in whole.stderr


@pytest.mark.slow
def test_follow_ends_when_the_runner_dies(tmp_path: Path) -> None:
    import os
    import signal

    from helpers.deployed import WAIT_FOR_GATE, open_gate, record, start_flank, task_status
    from helpers.waiting import wait_for

    deploy(
        tmp_path,
        FOLLOW_YML,
        files={"hold.sh": HOLD_SH.format(wait=WAIT_FOR_GATE.replace("exit 0", "break").replace("; exit 9", ""))},
    )
    runner = start_flank("run", "demo", "nightly")
    try:
        wait_for(lambda: task_status(1, "hold") == "running", "hold to start")
        follower = _start_follow("demo", "nightly")
        got = bytearray()
        wait_for(lambda: _read_until(follower, b"hold | first line\n", got), "the first line")
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
        out, err = follower.communicate(timeout=60)
    finally:
        open_gate()
    assert follower.returncode == 1
    assert "flank: nightly #1 interrupted" in err.decode()
    assert record(1)["status"] == "interrupted"


@pytest.mark.slow
def test_follow_of_a_finished_task_prints_it_and_its_status(tmp_path: Path) -> None:
    deploy(tmp_path, YML)
    run_flank("run", "demo", "nightly")
    done = run_flank("logs", "demo", "nightly", "model", "--follow")
    assert done.returncode == 1
    assert done.stdout == "Error in glm() - object not found\n"
    assert done.stderr.strip() == "flank: model failed (exit 1)"
    assert run_flank("logs", "demo", "nightly", "modle", "--follow").returncode == 1


@pytest.mark.slow
def test_follow_reports_a_task_ended_by_its_launcher_before_run_json_says_so(flank_home: Path) -> None:
    """Issue 28 item 4: the launcher's result (tasks/<task>.json) is written a moment before the runner
    merges it into run.json. A follow caught in between must print the task's real end, not `running`.
    The moment is made to last: a run folder as a live runner leaves it mid-merge (this test process
    stands for the runner, so the follow sees it alive)."""
    import json

    from flank_ops.paths import Home
    from flank_ops.store import records

    run_flank("init", "demo", check=True)
    paths = Home().project("demo")

    def build(run_id: int) -> RunRecord:
        return records.start_record(
            project="demo",
            pipeline="nightly",
            run_id=run_id,
            trigger="manual",
            local=False,
            commit={},
            release="/nowhere",
            selection={"task": None, "from": None, "rerun_of": None},
            tasks=[("plots", [])],
            selected=["plots"],
            scheduled_at=None,
            timezone=None,
            concurrency=1,
        )

    _, run_dir, record = records.create_run(paths, "nightly", build)
    record.tasks["plots"].status = TaskStatus.RUNNING
    records.write_record(run_dir, record)
    (run_dir / "logs").mkdir()
    (run_dir / "logs" / "plots.log").write_text("66 plots drawn\n")
    (run_dir / "tasks").mkdir()
    result = {"task": "plots", "status": "success", "attempt": 1, "exit_code": 0, "pid": 1}
    (run_dir / "tasks" / "plots.json").write_text(json.dumps(result))

    proc = run_flank("logs", "demo", "nightly", "1", "plots", "--follow")
    assert proc.stdout == "66 plots drawn\n"
    assert proc.stderr.strip() == "flank: plots success (exit 0)" and proc.returncode == 0, proc.stderr
