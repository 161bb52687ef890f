"""issue 26 item 6 on AWS Batch (moto's server on 127.0.0.1; a job's "container" is the stand-in of
helpers/batch_aws.py, a local process running flank's real entrypoint whose lines reach the job's
CloudWatch Logs stream as it prints them, as the awslogs driver does): adopt, don't cancel.

The runner is killed with `kill -9` while a task's Batch job runs; the job goes on, its secrets object
stays in S3 for it. `flank run … --resume N` finds the job by its name, re-attaches to it, reads its log
stream on from where the task's log stopped (each line once, never from the stream's head again), pulls
its declared outputs back, deletes its objects and finishes run N. `flank cancel … N` instead terminates
the jobs the dead runner left; a job Batch no longer has is said so, and the task runs again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_flank, wait_for

from helpers.batch_aws import CREDENTIALS, BatchAWS, batch_aws_for_a_test
from helpers.deployed import deploy, history, kill_runner_mid_job, record, runs_dir, start_flank, task_log

pytestmark = pytest.mark.slow  # real runs (make test-fast leaves them out)

# prints a line, another once the test creates $GATE/middle, ends once it creates $GATE/end (bounded)
GATED = (
    'echo "before the runner died"; '
    'for i in $(seq 1200); do [ -e "$GATE/middle" ] && break; sleep 0.1; done; echo "while nobody watched"; '
    'for i in $(seq 1200); do [ -e "$GATE/end" ] && break; sleep 0.1; done; echo "after the resume"'
)
LINES = ("before the runner died", "while nobody watched", "after the resume")


def flank_yml(gate: Path) -> str:
    return (
        f"env:\n  GATE: {gate}\n"
        "pipelines:\n  nightly:\n    executor: batch\n    tasks:\n"
        "      long:\n"
        f"        run: '{GATED}; echo token=$API_TOKEN; mkdir -p out; echo fitted > out/fit.txt'\n"
        "        outputs: [out/fit.txt]\n"
        "      report: {run: 'cat out/fit.txt; echo report ran', needs: long, executor: local}\n"
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, flank_home: Path, tmp_path: Path) -> Iterator[BatchAWS]:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    aws = batch_aws_for_a_test()  # what earlier tests of this process left does not count here
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n\n" + aws.toml())
    yield aws
    aws.release_jobs()
    gate = tmp_path / "gate"  # a test that fails half-way: its jobs end (the gated command exits)
    if gate.is_dir():
        for name in ("middle", "end"):
            (gate / name).touch()


def log_of(task: str, run_id: int = 1) -> str:
    return task_log(task, run_id)


def keys(aws: BatchAWS, prefix: str) -> list[str]:
    found = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=prefix).get("Contents", [])
    return [o["Key"] for o in found]


def job_of(aws: BatchAWS, job_id: str) -> dict[str, Any]:
    return dict(aws.client("batch").describe_jobs(jobs=[job_id])["jobs"][0])


def stream_text(aws: BatchAWS, job_id: str) -> str:
    """What the job's CloudWatch Logs stream holds so far."""
    name = f"{aws.job_definition}/default/{job_id}"
    try:
        events = aws.client("logs").get_log_events(
            logGroupName="/aws/batch/job", logStreamName=name, startFromHead=True
        )["events"]
    except Exception:  # the stream appears with the job's first line
        return ""
    return "".join(e["message"] + "\n" for e in events)


def job_id_of(task: str) -> str:
    """The job id the killed launcher left in its result (the record merges it at the next read)."""
    return str(json.loads((runs_dir() / "1" / "tasks" / f"{task}.json").read_text())["executor"]["job_id"])


def killed_mid_job(tmp_path: Path) -> Path:
    """Deploy, start run 1, kill -9 its runner once the job's first line is in the task's log; -> the gate."""
    gate = tmp_path / "gate"
    gate.mkdir()
    deploy(tmp_path, flank_yml(gate))
    run_flank("secrets", "set", "demo", "API_TOKEN", input="s3cr3t-value\n", check=True)
    kill_runner_mid_job("batch")
    return gate


def test_a_killed_runners_batch_job_goes_on_and_resume_adopts_it_and_finishes_the_run(
    tmp_path: Path, aws: BatchAWS
) -> None:
    gate = killed_mid_job(tmp_path)
    assert "flank run demo nightly --resume 1" in log_of("long")
    status = run_flank("status", "demo")
    rec = record(1)
    job_id = rec["tasks"]["long"]["executor"]["job_id"]
    assert rec["status"] == "interrupted"
    assert "1 job still running on batch: flank run demo nightly --resume 1" in rec["summary"]
    assert "1 job still running on batch" in status.stdout + status.stderr
    assert job_of(aws, job_id)["status"] == "RUNNING"  # not terminated
    assert len(keys(aws, "secrets/")) == 1  # kept for the job until it ends

    (gate / "middle").touch()  # the job prints while no runner is there
    wait_for(lambda: "while nobody watched" in stream_text(aws, job_id), "the job's line while nobody watched")
    aws.start_recording()
    resumed = start_flank("run", "demo", "nightly", "--resume", "1")
    try:
        wait_for(lambda: "while nobody watched" in log_of("long"), "the resumed runner to stream the job's log")
        assert record(1)["status"] == "running"
        (gate / "end").touch()
        out, err = resumed.communicate(timeout=120)
    finally:
        if resumed.poll() is None:
            resumed.kill()
            resumed.wait()
    assert resumed.returncode == 0, out + err
    assert "nightly #1 resumed" in out and "nightly #1 success" in out

    rec = record(1)
    assert rec["status"] == "success", rec["summary"]
    long = rec["tasks"]["long"]
    assert long["status"] == "success" and long["executor"]["job_id"] == job_id  # the same job, adopted
    text = log_of("long")
    for line in LINES:
        assert text.count(line) == 1, text  # complete, each line once
    assert "token=***" in text and "s3cr3t-value" not in text
    assert f"re-attached to job {job_id}" in text and text.count("submitted to batch as job") == 1
    assert "fitted\nreport ran" in log_of("report")  # the job's output pulled back onto the VM first
    assert [e["status"] for e in history() if e["run_id"] == 1] == ["success"]
    # the log stream was read on from the dead launcher's token, never from its head again
    reads = [json.loads(r["body"]) for r in aws.recorded() if "GetLogEvents" in str(r["headers"].get("X-Amz-Target"))]
    assert reads and all(r.get("nextToken") for r in reads), reads
    assert not keys(aws, "secrets/") and not keys(aws, "jobs/")  # its objects deleted once it ended
    assert not list((runs_dir() / "1" / "jobs").glob("*.batch.json"))


def test_the_catch_up_at_boot_resumes_a_run_whose_batch_job_went_on(tmp_path: Path, aws: BatchAWS) -> None:
    gate = killed_mid_job(tmp_path)
    out = run_flank("catchup", "demo", "--boot")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "resuming demo nightly #1 (its jobs are still on the cluster)" in out.stdout
    wait_for(lambda: "re-attached to job" in log_of("long"), "the resumed runner to re-attach")
    (gate / "middle").touch()
    (gate / "end").touch()
    wait_for(lambda: record(1)["status"] == "success", "run 1 to finish", timeout=120)
    text = log_of("long")
    for line in LINES:
        assert text.count(line) == 1, text
    assert "fitted\nreport ran" in log_of("report")


def test_a_job_that_ended_while_nobody_watched_loses_its_secrets_and_a_resume_still_takes_its_output(
    tmp_path: Path, aws: BatchAWS
) -> None:
    gate = killed_mid_job(tmp_path)
    job_id = job_id_of("long")
    (gate / "middle").touch()
    (gate / "end").touch()
    wait_for(lambda: job_of(aws, job_id)["status"] == "SUCCEEDED", "the job to end with no runner")
    run_flank("status", "demo")
    rec = record(1)
    assert rec["status"] == "interrupted" and "still running" not in (rec["summary"] or "")
    assert not keys(aws, "secrets/")  # no job of the run is left: its secrets object goes at once
    out = run_flank("run", "demo", "nightly", "--resume", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert record(1)["status"] == "success" and record(1)["tasks"]["long"]["executor"]["job_id"] == job_id
    text = log_of("long")
    for line in LINES:
        assert text.count(line) == 1, text
    assert "fitted\nreport ran" in log_of("report")  # its outputs were still in S3, pulled back
    assert not keys(aws, "jobs/")


def test_cancel_of_the_interrupted_run_terminates_the_batch_jobs_it_left(tmp_path: Path, aws: BatchAWS) -> None:
    killed_mid_job(tmp_path)
    job_id = job_id_of("long")
    out = run_flank("cancel", "demo", "nightly", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nightly #1 cancelled (1 job it left running cancelled" in out.stdout
    state = wait_for(lambda: (j := job_of(aws, job_id))["status"] in ("SUCCEEDED", "FAILED") and j, "the job's end")
    assert (state["status"], state["statusReason"]) == ("FAILED", "cancelled by flank")
    rec = record(1)
    assert rec["status"] == "cancelled" and rec["tasks"]["long"]["status"] == "cancelled"
    assert [e["status"] for e in history() if e["run_id"] == 1] == ["cancelled"]
    assert not keys(aws, "secrets/") and not keys(aws, "jobs/")  # nothing it left stays in the bucket


def test_a_job_batch_no_longer_has_is_said_so_and_the_task_runs_again(tmp_path: Path, aws: BatchAWS) -> None:
    """Batch forgets a job some time after it ended; moto never does, so here the job is out of flank's
    sight by pointing the VM's flank.toml at another queue before the resume (where the new job goes)."""
    gate = killed_mid_job(tmp_path)
    old_id = job_id_of("long")
    batch = aws.client("batch")
    if not batch.describe_job_queues(jobQueues=["flank-queue-2"])["jobQueues"]:
        first = batch.describe_job_queues(jobQueues=[aws.job_queue])["jobQueues"][0]
        batch.create_job_queue(
            jobQueueName="flank-queue-2",
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=first["computeEnvironmentOrder"],
        )
    home = Path(os.environ["FLANK_HOME"])
    toml = home / "flank.toml"
    toml.write_text(toml.read_text().replace(f'job_queue = "{aws.job_queue}"', 'job_queue = "flank-queue-2"'))
    (gate / "middle").touch()
    (gate / "end").touch()
    out = run_flank("run", "demo", "nightly", "--resume", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    text = log_of("long")
    assert f"flank: job {old_id} of the interrupted run is gone from batch; running the task again\n" in text
    assert text.count("submitted to batch as job") == 2
    rec = record(1)
    assert rec["status"] == "success" and rec["tasks"]["long"]["executor"]["job_id"] != old_id
    assert rec["tasks"]["long"]["executor"]["queue"] == "flank-queue-2"
    wait_for(lambda: job_of(aws, old_id)["status"] == "SUCCEEDED", "the old job to end (its gate is open)")
    assert not keys(aws, "secrets/")  # the lost job's secrets object went when the task ran again


def test_resume_re_attaches_to_each_child_of_a_matrix_tasks_array_job(tmp_path: Path, aws: BatchAWS) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    deploy(
        tmp_path,
        f"env:\n  GATE: {gate}\n"
        "pipelines:\n  nightly:\n    executor: batch\n    concurrency: 2\n    tasks:\n"
        f"      long:\n        run: '{GATED}; mkdir -p out; echo $FLANK_TASK > out/$FLANK_MATRIX_VALUE.txt'\n"
        "        matrix: [a, b]\n        artifacts: ['out/*.txt']\n",
    )
    tasks = [f"long[{cell}]" for cell in "ab"]
    kill_runner_mid_job("batch", tuple(tasks))
    ids = [job_id_of(task) for task in tasks]
    assert ids[0].endswith(":0") and ids[1].endswith(":1") and len({i.split(":")[0] for i in ids}) == 1
    resumed = start_flank("run", "demo", "nightly", "--resume", "1")
    try:
        for task in tasks:
            wait_for(lambda task=task: "re-attached to job" in log_of(task), "the resumed runner to re-attach")
        (gate / "middle").touch()
        (gate / "end").touch()
        out, err = resumed.communicate(timeout=120)
    finally:
        if resumed.poll() is None:
            resumed.kill()
            resumed.wait()
    assert resumed.returncode == 0, out + err
    rec = record(1)
    assert rec["status"] == "success"
    for cell, task, job_id in zip("ab", tasks, ids, strict=True):
        assert rec["tasks"][task]["executor"]["job_id"] == job_id
        text = log_of(task)
        for line in LINES:
            assert text.count(line) == 1, text
        kept = runs_dir() / "1" / "artifacts" / task / "out" / f"{cell}.txt"
        assert kept.read_text() == f"{task}\n"  # each child's files pulled back
    assert not keys(aws, "jobs/")  # the array's shared objects went with its last child
