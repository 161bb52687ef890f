"""issue 26 item 6 on the real one-node Slurm cluster: adopt, don't cancel.

The runner is killed with `kill -9` while a task's Slurm job runs; the job goes on. `flank status`
marks the run interrupted and says how to go on; `flank run … --resume N` re-attaches to the job by
its name, streams the rest of its output into the same log (each line once), runs what is left
of the DAG and finishes run N. `flank cancel … N` instead cancels the jobs the dead runner left.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import run_flank, wait_for

from helpers.deployed import deploy, history, kill_runner_mid_job, record, runs_dir, start_flank, task_log
from helpers.slurm_cluster import squeue_names

pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slow]

JOB = "flank-demo-nightly-1-long"
# prints a line, another once the test creates $GATE/middle, ends once it creates $GATE/end (bounded)
GATED = (
    'echo "before the runner died"; '
    'for i in $(seq 1200); do [ -e "$GATE/middle" ] && break; sleep 0.1; done; echo "while nobody watched"; '
    'for i in $(seq 1200); do [ -e "$GATE/end" ] && break; sleep 0.1; done; echo "after the resume"'
)
FLANK_YML = (
    "pipelines:\n  nightly:\n    executor: slurm\n    tasks:\n"
    f"      long: {{run: '{GATED}'}}\n"
    "      report: {run: 'echo report ran', needs: long, executor: local}\n"
)


@pytest.fixture(autouse=True)
def no_job_left(slurm) -> Iterator[None]:
    """A test that fails half-way must not leave its job to the next test (same name on the same cluster)."""
    yield
    env = {**os.environ, **slurm.env}
    subprocess.run(["scancel", "--name", JOB], env=env, capture_output=True, check=False)
    wait_for(lambda: JOB not in squeue_names(slurm), "the test's jobs to leave the queue")


def log_of(task: str) -> str:
    return task_log(task)


def killed_mid_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Deploy, start run 1, and kill -9 its runner once the job printed its first line; -> the gate folder."""
    gate = tmp_path / "gate"
    gate.mkdir()
    monkeypatch.setenv("GATE", str(gate))
    deploy(tmp_path, FLANK_YML)
    kill_runner_mid_job("slurm")
    return gate


def test_a_killed_runners_job_goes_on_and_resume_adopts_it_and_finishes_the_run(
    tmp_path: Path, slurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = killed_mid_job(tmp_path, monkeypatch)
    assert JOB in squeue_names(slurm)  # not cancelled
    assert "flank run demo nightly --resume 1" in log_of("long")

    status = run_flank("status", "demo")
    rec = record(1)
    job_id = rec["tasks"]["long"]["executor"]["job_id"]
    assert rec["status"] == "interrupted"
    assert "1 job still running on slurm: flank run demo nightly --resume 1" in rec["summary"]
    assert "1 job still running on slurm" in status.stdout + status.stderr

    (gate / "middle").write_text("")  # the job prints while no runner is there
    jobs = runs_dir() / "1" / "jobs"
    wait_for(
        lambda: any("while nobody watched" in p.read_text() for p in jobs.glob("long-*.out")),
        "the job's output while nobody watched",
    )
    resume_started = datetime.now(UTC)
    resumed = start_flank("run", "demo", "nightly", "--resume", "1")
    try:
        wait_for(lambda: "while nobody watched" in log_of("long"), "the resumed runner to stream the job's output")
        assert record(1)["status"] == "running"
        (gate / "end").write_text("")
        out, err = resumed.communicate(timeout=120)
    finally:
        if resumed.poll() is None:
            resumed.kill()
    assert resumed.returncode == 0, out + err
    assert "nightly #1 resumed" in out and "nightly #1 success" in out

    rec = record(1)
    assert rec["status"] == "success", rec["summary"]
    long = rec["tasks"]["long"]
    assert long["status"] == "success" and long["executor"]["job_id"] == job_id  # the same job, adopted
    first_start = datetime.fromisoformat(long["started_at"])
    assert long["duration_s"] >= (resume_started - first_start).total_seconds()  # counted from its first start
    assert rec["tasks"]["report"]["status"] == "success"
    text = log_of("long")
    for line in ("before the runner died", "while nobody watched", "after the resume"):
        assert text.count(line) == 1, text  # complete, each line once
    assert f"re-attached to job {job_id}" in text and text.count("submitted to slurm as job") == 1
    assert "report ran" in log_of("report")
    assert [e["status"] for e in history() if e["run_id"] == 1] == ["success"]  # one line, the last
    assert not list(jobs.glob("*.env")) and not list(jobs.glob("*.out"))
    wait_for(lambda: JOB not in squeue_names(slurm), "the job to leave the queue")


def test_cancel_of_the_interrupted_run_cancels_the_jobs_it_left(
    tmp_path: Path, slurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    killed_mid_job(tmp_path, monkeypatch)
    assert JOB in squeue_names(slurm)
    out = run_flank("cancel", "demo", "nightly", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nightly #1 cancelled (1 job it left running cancelled" in out.stdout
    wait_for(lambda: JOB not in squeue_names(slurm), "the left job to be cancelled")
    rec = record(1)
    assert rec["status"] == "cancelled" and rec["tasks"]["long"]["status"] == "cancelled"
    assert [e["status"] for e in history() if e["run_id"] == 1] == ["cancelled"]
    assert not list((runs_dir() / "1" / "jobs").glob("*.env"))
    again = run_flank("run", "demo", "nightly", "--resume", "1")
    assert again.returncode == 1 and "only an interrupted run can be resumed" in again.stderr
    assert "--rerun 1" in again.stderr


def test_the_catch_up_at_boot_resumes_a_run_whose_jobs_went_on(
    tmp_path: Path, slurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = killed_mid_job(tmp_path, monkeypatch)
    out = run_flank("catchup", "demo", "--boot")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "resuming demo nightly #1 (its jobs are still on the cluster)" in out.stdout
    wait_for(lambda: "re-attached to job" in log_of("long"), "the resumed runner to re-attach")
    (gate / "middle").write_text("")
    (gate / "end").write_text("")
    wait_for(lambda: record(1)["status"] == "success", "run 1 to finish", timeout=120)
    text = log_of("long")
    for line in ("before the runner died", "while nobody watched", "after the resume"):
        assert text.count(line) == 1, text
    assert record(1)["tasks"]["report"]["status"] == "success"
    again = run_flank("catchup", "demo", "--boot")
    assert "resuming" not in again.stdout  # nothing left to resume


def test_resume_re_attaches_to_the_elements_of_a_matrix_tasks_job_array(
    tmp_path: Path, slurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    monkeypatch.setenv("GATE", str(gate))
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: slurm\n    concurrency: 2\n    tasks:\n"
        f"      long: {{run: '{GATED}', matrix: [a, b]}}\n",
    )
    kill_runner_mid_job("slurm", ("long[a]", "long[b]"))
    logs = [runs_dir() / "1" / "logs" / f"long[{cell}].log" for cell in "ab"]
    assert run_flank("status", "demo").returncode == 0
    ids = [record(1)["tasks"][f"long[{cell}]"]["executor"]["job_id"] for cell in "ab"]
    assert ids[0].endswith("_0") and ids[1].endswith("_1")  # elements of one array
    resumed = start_flank("run", "demo", "nightly", "--resume", "1")
    try:
        for log in logs:
            wait_for(lambda log=log: "re-attached to job" in log.read_text(), "the resumed runner to re-attach")
        (gate / "middle").write_text("")
        (gate / "end").write_text("")
        out, err = resumed.communicate(timeout=120)
    finally:
        if resumed.poll() is None:
            resumed.kill()
    assert resumed.returncode == 0, out + err
    rec = record(1)
    assert rec["status"] == "success"
    for cell, job_id, log in zip("ab", ids, logs, strict=True):
        assert rec["tasks"][f"long[{cell}]"]["executor"]["job_id"] == job_id
        text = log.read_text()
        for line in ("before the runner died", "while nobody watched", "after the resume"):
            assert text.count(line) == 1, text
        assert text.count("submitted to slurm as job") == 1


def test_a_runner_stopped_by_a_shutdown_leaves_its_jobs_and_says_how_to_resume(
    tmp_path: Path, slurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM without `flank cancel` (the VM shutting down): the run ends interrupted, its job goes on."""
    gate = tmp_path / "gate"
    gate.mkdir()
    monkeypatch.setenv("GATE", str(gate))
    deploy(tmp_path, FLANK_YML)
    proc = start_flank("run", "demo", "nightly")
    try:
        wait_for(lambda: (runs_dir() / "1" / "logs" / "long.log").exists(), "the task's log")
        wait_for(lambda: "before the runner died" in log_of("long"), "the job's first line in the log")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    rec = record(1)
    assert rec["status"] == "interrupted" and rec["tasks"]["long"]["status"] == "interrupted"
    assert rec["summary"].endswith("; 1 job still running on slurm: flank run demo nightly --resume 1")
    assert JOB in squeue_names(slurm)
    assert list((runs_dir() / "1" / "jobs").glob("*.sh"))  # its files stay for the resume
