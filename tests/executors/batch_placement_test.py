"""issue 26 on AWS Batch (moto's server; the job's "container" is the stand-in of executors/batch_aws.py):
a task's own queue, and memory that grows per attempt."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import run_flank, wait_for

from helpers.batch_aws import CREDENTIALS, BatchAWS, batch_aws_for_a_test
from helpers.cli import wait_for_site_draws
from helpers.deployed import deploy, record, runs_dir, start_flank

pytestmark = pytest.mark.slow  # real runs (make test-fast leaves them out)

SECOND_QUEUE = "flank-queue-b"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, flank_home: Path) -> Any:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    aws = batch_aws_for_a_test()
    batch = aws.client("batch")
    if not batch.describe_job_queues(jobQueues=[SECOND_QUEUE])["jobQueues"]:
        env = batch.describe_compute_environments()["computeEnvironments"][0]["computeEnvironmentArn"]
        batch.create_job_queue(
            jobQueueName=SECOND_QUEUE,
            state="ENABLED",
            priority=2,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}],
        )
    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n\n" + aws.toml())
    yield aws
    aws.release_jobs()


def test_a_tasks_own_queue_and_memory_per_attempt(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: batch\n    tasks:\n"
        "      usual: {run: 'echo usual'}\n"
        f"      placed: {{run: 'echo placed; exit 3', batch: {{queue: {SECOND_QUEUE}}}, memory: [512M, 1G],"
        " retries: 1, retry_delay: 1}\n",
    )
    aws.start_recording()
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1, out.stdout + out.stderr
    submits = [json.loads(r["body"]) for r in aws.recorded() if r["path"].endswith("/v1/submitjob")]
    queues = {s["jobName"]: s["jobQueue"] for s in submits}
    assert queues == {"flank-demo-nightly-1-usual": aws.job_queue, "flank-demo-nightly-1-placed": SECOND_QUEUE}
    memory = [
        r["value"]
        for s in submits
        if s["jobName"].endswith("placed")
        for r in s["containerOverrides"]["resourceRequirements"]
        if r["type"] == "MEMORY"
    ]
    assert memory == ["512", "1024"]  # the retry asked for the next size
    rec = record(1)
    assert rec["tasks"]["placed"]["attempts"] == 2 and rec["tasks"]["placed"]["memory_mb"] == 1024
    assert rec["tasks"]["usual"]["status"] == "success"


def test_doctor_names_a_tasks_queue_that_does_not_exist(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: batch\n    tasks:\n"
        "      big: {run: 'echo', batch: {queue: no-such-queue}}\n",
    )
    out = run_flank("doctor", "--no-cron")
    assert out.returncode == 1
    assert "FAIL  executor batch (task nightly.big): AWS Batch job queue 'no-such-queue' does not exist" in out.stdout


def test_the_tasks_of_a_run_share_describe_jobs(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: batch\n    concurrency: 4\n    tasks:\n"
        "      fit: {run: 'sleep 2; echo fit $FLANK_MATRIX_VALUE', matrix: [a, b, c, d]}\n",
    )
    aws.start_recording()
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr
    rec = record(1)
    job_ids = {t["executor"]["job_id"] for t in rec["tasks"].values()}
    assert len(job_ids) == 4
    assert "fit c" in (runs_dir() / "1" / rec["tasks"]["fit[c]"]["log"]).read_text()
    described = [json.loads(r["body"])["jobs"] for r in aws.recorded() if r["path"].endswith("/v1/describejobs")]
    assert any(len(ids) > 1 for ids in described)  # one call asked about several tasks' jobs
    shared = json.loads((runs_dir() / "1" / "jobs" / "batch.poll.json").read_text())
    assert set(shared["states"]) == job_ids


def test_a_job_that_fails_without_an_exit_code_says_why_and_never_exit_1(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: batch\n    tasks:\n"
        "      fit: {run: 'echo never runs', env: {FAKE_DOCKER_CANNOT_START: '1'}}\n",
    )
    aws.hold_jobs_in_queue()
    proc = start_flank("run", "demo", "nightly")
    try:
        task_file = runs_dir() / "1" / "tasks" / "fit.json"
        queued = wait_for(
            lambda: task_file.exists() and (t := json.loads(task_file.read_text()))["executor"]["job_id"] and t,
            "the batch task to have its job",
        )
        # stopped by someone before its container started (the container here could not start anyway)
        reason = "stopped by an operator: wrong input data"
        aws.client("batch").terminate_job(jobId=queued["executor"]["job_id"], reason=reason)
        aws.release_jobs()  # moto's job moves on, and finds itself terminated
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, stdout + stderr
    fit = record(1)["tasks"]["fit"]
    assert fit["status"] == "failed" and fit["exit_code"] is None
    assert reason in fit["error"]
    assert f"fit failed (AWS Batch job ended FAILED without an exit code: {reason})" in stdout
    assert "exit 1" not in stdout
    log = (runs_dir() / "1" / "logs" / "fit.log").read_text()
    assert f"ended FAILED (no exit code): {reason}" in log
    wait_for_site_draws(Path(os.environ["FLANK_HOME"]))  # the final page is drawn after `flank run` answered
    page = (Path(os.environ["FLANK_HOME"]) / "site" / "demo" / "nightly" / "1" / "index.html").read_text()
    assert reason in page


def test_the_reason_joins_batchs_and_the_containers() -> None:
    from flank_ops.executors.batch import _reason

    info = {"statusReason": "Essential container in task exited"}
    assert (
        _reason(info, {"reason": "CannotPullContainerError: pull access denied"}, [])
        == "Essential container in task exited; CannotPullContainerError: pull access denied"
    )
    assert _reason({}, {}, [{"container": {"reason": "OutOfMemoryError"}}]) == "OutOfMemoryError"
    assert _reason({}, {}, []) is None


def test_a_spot_interruption_is_resubmitted_without_using_an_attempt(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(tmp_path, "pipelines:\n  nightly:\n    executor: batch\n    tasks:\n      fit: {run: 'echo fitted'}\n")
    aws.hold_jobs_in_queue()
    proc = start_flank("run", "demo", "nightly")
    try:
        task_file = runs_dir() / "1" / "tasks" / "fit.json"
        first = wait_for(
            lambda: task_file.exists() and json.loads(task_file.read_text())["executor"]["job_id"],
            "the batch task to have its job",
        )
        reason = "Host EC2 (instance i-0123456789abcdef0) terminated."
        aws.client("batch").terminate_job(jobId=first, reason=reason)
        aws.release_jobs()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stdout + stderr
    fit = record(1)["tasks"]["fit"]
    assert fit["status"] == "success" and fit["attempts"] == 1
    assert fit["executor"]["job_id"] != first
    log = (runs_dir() / "1" / "logs" / "fit.log").read_text()
    assert f"AWS took the spot instance back ({reason}); resubmitting, not counted as an attempt (1 of 3)" in log
    assert "fitted" in log


def test_a_tasks_own_image_gets_a_job_definition_like_the_projects_reused_after(tmp_path: Path, aws: BatchAWS) -> None:
    image = "ghcr.io/lab/r-geo:4.4"
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: batch\n    concurrency: 3\n    tasks:\n"
        "      usual: {run: 'echo usual'}\n"
        f"      geo: {{run: 'echo geo', batch: {{image: '{image}'}}}}\n"
        f"      map: {{run: 'echo map', batch: {{image: '{image}'}}}}\n",
    )
    aws.start_recording()
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr
    requests = aws.recorded()
    submits = {
        s["jobName"]: s["jobDefinition"]
        for s in (json.loads(r["body"]) for r in requests if r["path"].endswith("/v1/submitjob"))
    }
    assert submits["flank-demo-nightly-1-usual"] == aws.job_definition
    assert submits["flank-demo-nightly-1-geo"] == submits["flank-demo-nightly-1-map"] != aws.job_definition
    batch = aws.client("batch")
    name, revision = submits["flank-demo-nightly-1-geo"].split(":")
    made = [
        d
        for d in batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
        if str(d["revision"]) == revision
    ]
    assert [d["containerProperties"]["image"] for d in made] == [image]
    project_def = batch.describe_job_definitions(jobDefinitionName=aws.job_definition)["jobDefinitions"][0]
    assert made[0]["containerProperties"]["command"] == project_def["containerProperties"]["command"]  # the entrypoint
    assert len([r for r in requests if r["path"].endswith("/v1/registerjobdefinition")]) == 1

    # the next run finds it: nothing registered again
    aws.start_recording()
    assert run_flank("run", "demo", "nightly").returncode == 0
    requests = aws.recorded()
    assert not [r for r in requests if r["path"].endswith("/v1/registerjobdefinition")]
    again = {
        s["jobName"]: s["jobDefinition"]
        for s in (json.loads(r["body"]) for r in requests if r["path"].endswith("/v1/submitjob"))
    }
    assert again["flank-demo-nightly-2-geo"] == submits["flank-demo-nightly-1-geo"]


def test_a_matrix_task_goes_as_one_array_job_each_instance_with_its_cell_log_and_files(
    tmp_path: Path, aws: BatchAWS
) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: batch\n    concurrency: 2\n    tasks:\n"
        "      fit:\n"
        "        run: 'mkdir -p out; echo $FLANK_TASK > out/$FLANK_MATRIX_REGION.txt; echo fitted $FLANK_MATRIX_REGION;"
        " echo token=$API_TOKEN'\n"
        "        matrix: {region: [north, south, east]}\n"
        "        artifacts: ['out/*.txt']\n"
        "      report: {run: 'cat out/north.txt out/south.txt out/east.txt', needs: fit, executor: local}\n",
    )
    run_flank("secrets", "set", "demo", "API_TOKEN", input="s3cr3t-value\n", check=True)
    aws.start_recording()
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr
    submits = [json.loads(r["body"]) for r in aws.recorded() if r["path"].endswith("/v1/submitjob")]
    assert len(submits) == 1  # one array job for the three cells (with two make slots)
    assert submits[0]["arrayProperties"] == {"size": 3} and submits[0]["jobName"] == "flank-demo-nightly-1-fit"
    rec = record(1)
    parent = submits[0]
    children = set()
    for region in ("north", "south", "east"):
        task = rec["tasks"][f"fit[region={region}]"]
        assert task["status"] == "success", task
        children.add(task["executor"]["job_id"])
        log = (runs_dir() / "1" / task["log"]).read_text()
        assert f"fitted {region}\n" in log and not [
            r for r in ("north", "south", "east") if r != region and f"fitted {r}" in log
        ]
        assert "token=***\n" in log and "s3cr3t-value" not in log  # each child got the run's secrets
        kept = runs_dir() / "1" / "artifacts" / f"fit[region={region}]" / "out" / f"{region}.txt"
        assert kept.read_text() == f"fit[region={region}]\n"
    assert len(children) == 3 and len({c.rsplit(":", 1)[0] for c in children}) == 1  # <array id>:<index>
    assert parent["jobName"] == "flank-demo-nightly-1-fit"
    report = (runs_dir() / "1" / "logs" / "report.log").read_text()
    assert "fit[region=north]\nfit[region=south]\nfit[region=east]\n" in report
    # once the last child is over, the array's shared objects (cells, secrets) are gone from the bucket
    left = aws.client("s3").list_objects_v2(Bucket=aws.bucket).get("Contents", [])
    assert not [o["Key"] for o in left if "flank-demo-nightly-1-fit." in o["Key"]]


def test_a_matrix_task_with_max_parallel_sends_one_job_per_instance(tmp_path: Path, aws: BatchAWS) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    executor: batch\n    tasks:\n"
        "      fit: {run: 'echo fit $FLANK_MATRIX_VALUE', matrix: [a, b], max_parallel: 1}\n",
    )
    aws.start_recording()
    assert run_flank("run", "demo", "nightly").returncode == 0
    submits = [json.loads(r["body"]) for r in aws.recorded() if r["path"].endswith("/v1/submitjob")]
    assert sorted(s["jobName"] for s in submits) == ["flank-demo-nightly-1-fit_a_", "flank-demo-nightly-1-fit_b_"]
    assert not [s for s in submits if "arrayProperties" in s]
