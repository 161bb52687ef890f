"""executor: batch (issue 14) through `flank run`: make starts the task's executor loop, which sends it to
AWS Batch (moto's server on 127.0.0.1) and waits; records, logs and dependents as for local tasks.

The job's "container" is a local process running flank's real entrypoint (see executors/batch_aws.py: moto
needs Docker for containers, and this machine has none); everything else is real: git push, make, boto3 over
HTTP, moto's Batch states, S3 and CloudWatch Logs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import run_flank, wait_for

from flank_ops.store.model import TaskResult, TaskStatus
from helpers.batch_aws import BatchAWS
from helpers.deployed import deploy, record, runs_dir, start_flank, write_dead_run

# a task that runs until the test creates $GATE/open (bounded: never left running for long)
WAIT_FOR_GATE = 'echo waiting; for i in $(seq 600); do [ -e "$GATE/open" ] && exit 0; sleep 0.1; done; exit 9'


def log_of(run_id: int, task: str) -> str:
    return (runs_dir() / str(run_id) / "logs" / f"{task}.log").read_text()


@pytest.mark.slow
def test_a_batch_task_runs_between_local_ones_with_its_log_secrets_and_job_id(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(
        tmp_path,
        (
            "env:\n  GREETING: hello\n"
            "pipelines:\n  nightly:\n    tasks:\n"
            "      prep: {run: 'echo prepared'}\n"
            "      fit:\n"
            "        run: 'cat data/in.txt; echo greeting=$GREETING task=$FLANK_TASK; echo token=$API_TOKEN; "
            'printf %s "$API_TOKEN" | sha256sum; echo to stderr >&2\'\n'
            "        needs: prep\n        executor: batch\n        memory: 1G\n        cpus: 2\n        timeout: 5m\n"
            "      report: {run: 'echo reported', needs: fit}\n"
        ),
        files={"data/in.txt": "rows from the repo\n"},
    )
    run_flank("secrets", "set", "demo", "API_TOKEN", input="s3cr3t-value\n", check=True)
    aws.start_recording()
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr

    rec = record(1)
    assert rec["status"] == "success"
    assert [rec["tasks"][t]["status"] for t in ("prep", "fit", "report")] == ["success"] * 3
    fit = rec["tasks"]["fit"]
    assert fit["executor"]["kind"] == "batch" and fit["executor"]["job_id"]
    assert (fit["executor"]["queue"], fit["executor"]["state"], fit["executor"]["host"]) == (
        aws.job_queue,
        "SUCCEEDED",
        "aws-batch",
    )
    assert (fit["memory_mb"], fit["cpus"], fit["exit_code"]) == (1024, 2, 0)
    text = log_of(1, "fit")
    assert f"submitted to batch as job {fit['executor']['job_id']} (flank-demo-nightly-1-fit)" in text
    assert "rows from the repo\n" in text and "greeting=hello task=fit\n" in text and "to stderr\n" in text
    assert "token=***\n" in text and "s3cr3t-value" not in text  # masked like a local task's log
    assert f"{hashlib.sha256(b's3cr3t-value').hexdigest()}  -" in text  # the job got the secret itself
    assert "attempt 1 " in (runs_dir() / "1" / "logs" / "fit.log.times").read_text()

    requests = aws.recorded()
    submit = [json.loads(r["body"]) for r in requests if r["path"].endswith("/v1/submitjob")]
    assert len(submit) == 1
    assert submit[0]["containerOverrides"]["resourceRequirements"] == [
        {"type": "VCPU", "value": "2"},
        {"type": "MEMORY", "value": "1024"},
    ]
    assert submit[0]["timeout"] == {"attemptDurationSeconds": 300}
    assert not [r for r in requests if "/v1/" in r["path"] and "s3cr3t" in r["body"]]
    assert "s3cr3t-value" not in (runs_dir() / "1" / "run.json").read_text()
    keys = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=aws.bucket).get("Contents", [])}
    assert f"releases/demo/{rec['commit']['sha']}.tar.gz" in keys
    assert not [k for k in keys if k.startswith("secrets/")]


@pytest.mark.slow
def test_a_failing_batch_job_is_retried_as_a_new_job_then_fails(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: batch\n    tasks:\n"
        "      flaky: {run: 'echo try; exit 3', retries: 1, retry_delay: 1}\n"
        "      after: {run: 'echo never', needs: flaky, executor: local}\n",
    )
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    rec = record(1)
    flaky = rec["tasks"]["flaky"]
    assert (flaky["status"], flaky["exit_code"], flaky["attempts"]) == ("failed", 3, 2)
    assert flaky["executor"]["state"] == "FAILED"
    assert rec["tasks"]["after"]["status"] == "upstream_failed"
    text = log_of(1, "flaky")
    assert text.count("try\n") == 2 and text.count("submitted to batch as job") == 2
    assert "ended FAILED (exit 3)" in text


@pytest.mark.slow
def test_a_batch_task_is_queued_then_running_and_flank_cancel_terminates_its_job(tmp_path: Path, aws: BatchAWS) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    deploy(
        tmp_path,
        f"env:\n  GATE: {gate}\npipelines:\n  nightly:\n    tasks:\n"
        f"      long: {{run: '{WAIT_FOR_GATE}', executor: batch}}\n",
    )
    aws.hold_jobs_in_queue()
    proc = start_flank("run", "demo", "nightly")
    try:
        task_file = runs_dir() / "1" / "tasks" / "long.json"
        # while Batch holds the job (SUBMITTED here), the task shows queued, with its job id
        queued = wait_for(
            lambda: (
                task_file.exists()
                and (t := json.loads(task_file.read_text()))["status"] == "queued"
                and t["executor"]["job_id"]
                and t
            ),
            "the batch task to show queued",
        )
        assert queued["executor"]["kind"] == "batch"
        aws.release_jobs()
        running = wait_for(
            lambda: task_file.exists() and (t := json.loads(task_file.read_text()))["status"] == "running" and t,
            "the batch task to run",
        )
        job_id = running["executor"]["job_id"]
        out = run_flank("cancel", "demo", "nightly")
        assert out.returncode == 0, out.stdout + out.stderr
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    job = aws.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
    assert (job["status"], job["statusReason"]) == ("FAILED", "cancelled by flank")
    assert record(1)["tasks"]["long"]["status"] == "cancelled"


@pytest.mark.slow
def test_a_timeout_terminates_the_batch_job(tmp_path: Path, aws: BatchAWS) -> None:
    gate = tmp_path / "gate"  # never opened
    deploy(
        tmp_path,
        f"env:\n  GATE: {gate}\npipelines:\n  nightly:\n    tasks:\n"
        f"      slow: {{run: '{WAIT_FOR_GATE}', executor: batch, timeout: 3}}\n",
    )
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    slow = record(1)["tasks"]["slow"]
    assert slow["status"] == "timed_out"
    assert "timed out after 3s" in log_of(1, "slow")
    job = aws.client("batch").describe_jobs(jobs=[slow["executor"]["job_id"]])["jobs"][0]
    assert (job["status"], job["statusReason"]) == ("FAILED", "cancelled by flank")


@pytest.mark.slow
def test_batch_unreachable_fails_the_task_in_words(tmp_path: Path, aws: BatchAWS, flank_home: Path) -> None:
    import socket

    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        (flank_home / "flank.toml").write_text(
            "[schedule]\ninstall_crontab = false\n\n" + aws.toml().replace(aws.url, f"http://127.0.0.1:{port}")
        )
        deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      fit: {run: 'echo never', executor: batch}\n")
        out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    fit = record(1)["tasks"]["fit"]
    assert fit["status"] == "failed"
    assert (
        f"flank: could not submit the job to batch: could not check the release in S3: S3: cannot connect to "
        f"http://127.0.0.1:{port}\n"
    ) in log_of(1, "fit")
    assert "Traceback" not in log_of(1, "fit")


@pytest.mark.slow
def test_an_unconfigured_batch_executor_says_what_to_add(tmp_path: Path, flank_home: Path) -> None:
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    clone = deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      fit: {run: 'echo never', executor: batch}\n")
    proc = run_flank("validate", cwd=clone)  # on the VM: a warning with the lines to add
    assert "warning: nightly.fit: executor: batch is not configured on this VM" in proc.stderr
    assert "[executors.batch]" in proc.stderr and "job_queue = " in proc.stderr
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    text = log_of(1, "fit")
    assert f"executor: batch is not configured on this VM: add to {flank_home / 'flank.toml'}\n" in text
    assert "[executors.batch]" in text and "job_queue = " in text
    assert record(1)["tasks"]["fit"]["status"] == "failed" and record(1)["status"] == "failed"


@pytest.mark.slow
def test_a_dead_runners_batch_jobs_are_left_running_when_the_run_is_marked_interrupted(
    tmp_path: Path, aws: BatchAWS
) -> None:
    """issue 26 item 6: adopt, don't cancel (tests/executors/batch_adopt_test.py resumes such a run)."""
    from flank_ops.executors.base import JobRequest, job_name
    from flank_ops.executors.batch import BatchBackend
    from flank_ops.paths import Home

    deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      t: {run: 'true', executor: batch}\n")
    paths = Home().project("demo")
    run_dir = paths.run_dir("nightly", 7)
    run_dir.mkdir(parents=True)
    release = paths.release_dir(paths.current_sha() or "")
    gate = tmp_path / "gate"  # never opened: the job runs until terminated (at most a minute)
    backend = BatchBackend(aws.options())
    job_id = backend.submit(
        JobRequest(
            name=job_name("demo", "nightly", "7", "t"),
            command=WAIT_FOR_GATE,
            cwd=str(release),
            env={"GATE": str(gate)},
            secrets={},
            memory_mb=None,
            cpus=None,
            timeout_s=None,
            release_dir=str(release),
            commit="c7",
            run_dir=str(run_dir),
            task="t",
            options={},
        )
    )
    wait_for(lambda: backend.poll(job_id).state == "RUNNING", "the job to run")
    write_dead_run(run_dir, 7, TaskResult(status=TaskStatus.RUNNING, executor={"kind": "batch", "job_id": job_id}))
    (runs_dir() / "last_id").write_text("7\n")
    out = run_flank("status", "demo")
    assert out.returncode in (0, 1), out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert record(7)["status"] == "interrupted", out.stdout + out.stderr
    assert record(7)["status"] == "interrupted" and record(7)["tasks"]["t"]["status"] == "interrupted"
    assert record(7)["summary"].endswith("1 job still running on batch: flank run demo nightly --resume 7")
    assert backend.poll(job_id).state == "RUNNING"  # left to run for a resume
    backend.cancel(job_id)
    wait_for(lambda: backend.poll(job_id).done, "the test's job to end")
