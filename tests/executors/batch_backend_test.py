"""The AWS Batch backend against moto's server on 127.0.0.1 (issue 14, item 3).

Real HTTP, real boto3, moto's own Batch states, CloudWatch Logs and S3. The one stand-in is the container:
moto would start it with Docker, which is not here, so batch_aws.py gives moto a `docker` module that runs
the job's command (flank's real entrypoint script) as a local process. Nothing in flank is mocked.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for

from flank_ops.errors import UserError
from flank_ops.executors.base import CONFIG_EXAMPLES, BackendError, JobRequest, JobState, job_name, job_name_prefix
from flank_ops.executors.batch import QUEUED_STATES, BatchBackend, project_of, release_key
from flank_ops.paths import Home, ProjectPaths
from flank_ops.settings import batch_settings, settings_for
from helpers.batch_aws import CREDENTIALS, BatchAWS, batch_aws_for_a_test
from helpers.servers import refused_port

# a task that runs until the test creates the file `open` in $GATE (bounded: never left running for long)
WAIT_FOR_GATE = 'for i in $(seq 600); do [ -e "$GATE/open" ] && exit 0; sleep 0.1; done; exit 9'


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    aws = batch_aws_for_a_test()
    yield aws
    aws.release_jobs()


FLANK_YML = "env:\n  MODE: default\n  GATE: none\npipelines:\n  nightly:\n    tasks:\n      model: {run: 'true'}\n"


def release(tmp_path: Path, commit: str = "c0ffee1") -> Path:
    """A deployed release as the runner leaves it: $FLANK_HOME/demo/releases/<sha>, beside the flank.yml
    the push validated (the job gets the variables it declares and FLANK_*, nothing else of the VM's)."""
    project = tmp_path / "home" / "demo"
    root = project / "releases" / commit
    (root / "R").mkdir(parents=True)
    (root / "R" / "data.txt").write_text("hello from the release\n")
    (root / "flank.yml").write_text(FLANK_YML.replace("MODE", "EDITED"))  # a checkout edited by hand: not read
    (project / "pipelines" / "validated").mkdir(parents=True, exist_ok=True)
    (project / "pipelines" / "validated" / f"{commit}.flank.yml").write_text(FLANK_YML)
    return root


def request(
    tmp_path: Path,
    command: str,
    *,
    task: str = "model",
    run: str = "1",
    commit: str = "c0ffee1",
    secrets: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    **kw: Any,
) -> JobRequest:
    root = tmp_path / "home" / "demo" / "releases" / commit
    if not root.exists():
        release(tmp_path, commit)
    fields: dict[str, Any] = dict(memory_mb=None, cpus=None, timeout_s=None)
    fields.update(kw)
    return JobRequest(
        name=job_name("demo", "nightly", run, task),
        command=command,
        cwd=str(root / "R"),
        env=env or {},
        secrets=secrets or {},
        release_dir=str(root),
        commit=commit,
        run_dir=str(tmp_path / "home" / "demo" / "runs" / "nightly" / run),
        task=task,
        options={},
        **fields,
    )


def now_ms() -> int:
    return int(time.time() * 1000)  # CloudWatch Logs refuses events older than its retention


def until_done(backend: BatchBackend, job_id: str) -> JobState:
    return wait_for(lambda: (s := backend.poll(job_id)).done and s, f"job {job_id} to end")


@pytest.mark.slow
def test_a_job_runs_the_task_in_the_release_with_its_secrets_and_resources(aws: BatchAWS, tmp_path: Path) -> None:
    backend = BatchBackend(aws.options())
    aws.start_recording()
    secret = "pa'ss w0rd$x"
    # the job prints a digest of the secret it got, so the value itself is in no command
    job = request(
        tmp_path,
        'cat data.txt; printf %s "$TOKEN" | sha256sum; echo "mode=$MODE"; echo oops >&2; exit 3',
        secrets={"TOKEN": secret},
        cpus=2,
        memory_mb=2048,
        timeout_s=90,
        env={
            "MODE": "full",
            "PATH": "/vm/bin",
            "AWS_SECRET_ACCESS_KEY": "vm-key",
            "FLANK_RUN_ID": "1",
            "FLANK_PIPELINE": "nightly",
            "FLANK_HOME": "/home/vm/flank",
            "FLANK_PERSIST": "/vm/p",
        },
    )
    job_id = backend.submit(job)

    state = until_done(backend, job_id)
    assert (state.state, state.exit_code, state.queue) == ("FAILED", 3, aws.job_queue)
    out = backend.read_output(job_id, 0).decode()
    digest = hashlib.sha256(secret.encode()).hexdigest()
    # stdout and stderr interleave by their timestamps
    assert sorted(out.splitlines()) == sorted(["hello from the release", f"{digest}  -", "mode=full", "oops"])

    requests = aws.recorded()
    submit = [json.loads(r["body"]) for r in requests if r["path"].endswith("/v1/submitjob")]
    assert len(submit) == 1
    sent = submit[0]
    assert sent["jobName"] == "flank-demo-nightly-1-model"
    assert (sent["jobQueue"], sent["jobDefinition"]) == (aws.job_queue, aws.job_definition)
    assert sent["containerOverrides"]["resourceRequirements"] == [
        {"type": "VCPU", "value": "2"},
        {"type": "MEMORY", "value": "2048"},
    ]
    assert sent["timeout"] == {"attemptDurationSeconds": 90}
    assert sent["retryStrategy"] == {"attempts": 1}  # flank's loop retries, each try a job of its own
    env = {e["name"]: e["value"] for e in sent["containerOverrides"]["environment"]}
    assert {k: v for k, v in env.items() if not k.endswith("_URL")} == {
        "MODE": "full",
        "FLANK_RUN_ID": "1",
        "FLANK_PIPELINE": "nightly",
        "FLANK_COMMIT": "c0ffee1",
        "FLANK_WORKDIR": "R",
        "FLANK_COMMAND": job.command,
    }
    assert sorted(k for k in env if k.endswith("_URL")) == ["FLANK_RELEASE_URL", "FLANK_SECRETS_URL"]
    # the secret is in no call to AWS Batch (submit, job definition) and on no command line
    batch_calls = [r for r in requests if "/v1/" in r["path"]]
    assert batch_calls and not [r for r in batch_calls if "w0rd" in r["body"]]
    definition = aws.client("batch").describe_job_definitions(jobDefinitionName=aws.job_definition)
    assert "w0rd" not in json.dumps(definition)
    # ... it went to S3 only, in its own object, which is gone once the job is over
    assert [r for r in requests if r["method"] == "PUT" and "/secrets/" in r["path"]]
    keys = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=aws.bucket).get("Contents", [])}
    assert not [k for k in keys if k.startswith("secrets/")]
    assert release_key(backend.settings, "demo", "c0ffee1") in keys


@pytest.mark.slow
def test_states_go_from_queued_to_running_to_done_and_the_log_is_copied_while_it_runs(
    aws: BatchAWS, tmp_path: Path
) -> None:
    backend = BatchBackend(aws.options())
    gate = tmp_path / "gate"
    gate.mkdir()
    aws.hold_jobs_in_queue()
    # the job prints nothing itself: moto would add its lines at the end with earlier timestamps, which
    # CloudWatch (moto's too) sorts before the test's own lines
    job_id = backend.submit(request(tmp_path, WAIT_FOR_GATE, env={"GATE": str(gate)}))
    queued = backend.poll(job_id)
    assert queued.state in QUEUED_STATES and not queued.done and queued.exit_code is None
    assert backend.read_output(job_id, 0) == b""  # nothing ran yet

    aws.release_jobs()
    running = wait_for(lambda: (s := backend.poll(job_id)).state == "RUNNING" and s, "the job to run")
    assert not running.done
    # moto copies a container's output to CloudWatch Logs only at its end; AWS's awslogs driver streams it.
    # So the test writes lines into the stream AWS names for the job (<definition>/default/<job id>), as
    # the driver would, and flank must copy them while the job still runs.
    logs = aws.client("logs")
    stream = f"{aws.job_definition}/default/{job_id}"
    if not logs.describe_log_groups(logGroupNamePrefix="/aws/batch/job")["logGroups"]:
        logs.create_log_group(logGroupName="/aws/batch/job")
    logs.create_log_stream(logGroupName="/aws/batch/job", logStreamName=stream)
    logs.put_log_events(
        logGroupName="/aws/batch/job",
        logStreamName=stream,
        logEvents=[{"timestamp": now_ms(), "message": "line one"}, {"timestamp": now_ms(), "message": "line two"}],
    )
    first = wait_for(lambda: backend.read_output(job_id, 0), "the first lines")
    assert first == b"line one\nline two\n"
    assert backend.read_output(job_id, len(first)) == b""  # nothing new: nothing twice
    logs.put_log_events(
        logGroupName="/aws/batch/job",
        logStreamName=stream,
        logEvents=[{"timestamp": now_ms(), "message": "line three"}],
    )
    # flank reads the stream at most once per poll_interval (0.2 s here): wait for the next read
    assert wait_for(lambda: backend.read_output(job_id, len(first)), "line three") == b"line three\n"
    assert backend.poll(job_id).state == "RUNNING"

    (gate / "open").write_text("")
    done = until_done(backend, job_id)
    assert (done.state, done.exit_code) == ("SUCCEEDED", 0)
    logs.put_log_events(
        logGroupName="/aws/batch/job", logStreamName=stream, logEvents=[{"timestamp": now_ms(), "message": "line four"}]
    )
    # after the end, the rest of the stream
    assert backend.read_output(job_id, len(first) + len(b"line three\n")) == b"line four\n"


@pytest.mark.slow
def test_terminate_a_running_job_and_find_live_jobs_by_run(aws: BatchAWS, tmp_path: Path) -> None:
    backend = BatchBackend(aws.options())
    gate = tmp_path / "gate"
    job_id = backend.submit(request(tmp_path, "echo waiting; " + WAIT_FOR_GATE, run="7", env={"GATE": str(gate)}))
    other = backend.submit(request(tmp_path, "true", run="8", task="other"))
    wait_for(lambda: backend.poll(job_id).state == "RUNNING", "the job to run")

    assert backend.jobs_of_run(job_name_prefix("demo", "nightly", "7")) == [job_id]
    backend.cancel(job_id)
    state = until_done(backend, job_id)
    assert state.state == "FAILED"
    assert state.reason == "cancelled by flank"
    assert state.exit_code == 137  # the container was killed
    assert backend.read_output(job_id, 0) == b"waiting\n"
    assert backend.jobs_of_run(job_name_prefix("demo", "nightly", "7")) == []
    until_done(backend, other)


@pytest.mark.slow
def test_the_release_goes_up_once_per_commit(aws: BatchAWS, tmp_path: Path) -> None:
    backend = BatchBackend(aws.options())
    aws.start_recording()
    first = backend.submit(request(tmp_path, "cat data.txt", task="a", commit="aaa111"))
    second = backend.submit(request(tmp_path, "cat data.txt", task="b", commit="aaa111"))
    third = BatchBackend(aws.options()).submit(request(tmp_path, "cat data.txt", task="c", commit="bbb222"))
    for job_id in (first, second, third):
        assert until_done(backend, job_id).exit_code == 0
        assert backend.read_output(job_id, 0) == b"hello from the release\n"
    puts = [r["path"] for r in aws.recorded() if r["method"] == "PUT" and "/releases/" in r["path"]]
    assert [p.split("/releases/")[1].split("?")[0] for p in puts] == ["demo/aaa111.tar.gz", "demo/bbb222.tar.gz"]


@pytest.mark.slow
def test_a_job_batch_no_longer_knows_has_vanished(aws: BatchAWS) -> None:
    state = BatchBackend(aws.options()).poll("00000000-0000-0000-0000-000000000000")
    assert state.done and state.exit_code is None and state.state == "VANISHED"
    assert "no longer knows" in (state.reason or "")


@pytest.mark.slow
def test_doctor_check(aws: BatchAWS) -> None:
    assert BatchBackend(aws.options()).check() == []
    problems = BatchBackend(aws.options(job_queue="nope", job_definition="missing", bucket="no-such-bucket")).check()
    assert any("job queue 'nope' does not exist" in p for p in problems)
    assert any("job definition 'missing' does not exist" in p for p in problems)
    assert any("no-such-bucket" in p for p in problems)

    batch = aws.client("batch")
    batch.update_job_queue(jobQueue=aws.job_queue, state="DISABLED")
    try:
        problems = BatchBackend(aws.options()).check()
    finally:
        batch.update_job_queue(jobQueue=aws.job_queue, state="ENABLED")
    assert len(problems) == 1 and f"job queue '{aws.job_queue}' is not usable: state DISABLED" in problems[0]


@pytest.mark.slow
def test_batch_unreachable_says_so(aws: BatchAWS, tmp_path: Path) -> None:
    with refused_port() as port:
        backend = BatchBackend(aws.options(endpoint_url=f"http://127.0.0.1:{port}", timeout=2))
        with pytest.raises(BackendError) as exc:
            backend.submit(request(tmp_path, "true"))
        assert str(exc.value) == f"could not check the release in S3: S3: cannot connect to http://127.0.0.1:{port}"
        with pytest.raises(BackendError) as exc:
            backend.poll("some-job")
        assert str(exc.value) == (
            f"could not ask AWS Batch about job some-job: cannot connect to AWS Batch at http://127.0.0.1:{port}"
        )
        problems = backend.check()
        assert problems and all(f"127.0.0.1:{port}" in p for p in problems)


@pytest.mark.slow
def test_a_missing_queue_fails_the_submit_in_words(aws: BatchAWS, tmp_path: Path) -> None:
    backend = BatchBackend(aws.options(job_queue="no-queue"))
    with pytest.raises(BackendError) as exc:
        backend.submit(request(tmp_path, "true", secrets={"TOKEN": "x"}))
    assert str(exc.value).startswith("could not submit flank-demo-nightly-1-model to job queue no-queue: AWS Batch")
    assert "no-queue does not exist" in str(exc.value)
    keys = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=aws.bucket).get("Contents", [])}
    assert not [k for k in keys if k.startswith("secrets/")]  # the secrets object went with the failed submit


def test_unconfigured_or_wrong_settings_say_what_to_add(flank_home: Path) -> None:
    with pytest.raises(UserError) as exc:
        BatchBackend({"job_queue": "q"})
    text = str(exc.value)
    assert "[executors.batch] needs job_definition, bucket" in text
    assert "executor: batch is not configured on this VM" in text
    assert CONFIG_EXAMPLES["batch"] in text  # the lines to add
    # no table at all (the interrupted-run cleanup asks with {}): the VM's flank.toml has none either
    with pytest.raises(BackendError) as exc:
        BatchBackend({})
    assert str(exc.value).startswith("executor: batch is not configured on this VM: add to $FLANK_HOME/flank.toml")

    flank_home.mkdir(parents=True, exist_ok=True)
    (flank_home / "flank.toml").write_text(
        '[executors.batch]\njob_queue = "q"\njob_definition = "d"\nbucket = "b"\npoll_interval = "often"\n'
    )
    with pytest.raises(UserError) as exc:
        batch_settings(settings_for(Home(flank_home), "demo"))
    assert str(exc.value).startswith("flank.toml: [executors.batch] poll_interval must be a int or float, not 'often'")

    (flank_home / "flank.toml").write_text(
        '[executors.batch]\njob_queue = "q"\njob_definition = "d"\nbucket = "b"\n'
        '[projects.demo.executors.batch]\njob_queue = "big"\n'
    )
    settings = batch_settings(settings_for(Home(flank_home), "demo"))
    assert settings is not None and (settings.job_queue, settings.log_group) == ("big", "/aws/batch/job")
    assert batch_settings({}) is None


@pytest.mark.slow
def test_a_working_copy_goes_up_by_its_content(aws: BatchAWS, tmp_path: Path) -> None:
    """flank run --local: the "release" is the laptop's working copy, which a commit does not pin down."""
    copy = tmp_path / "work"
    (copy / "R").mkdir(parents=True)
    (copy / "R" / "data.txt").write_text("first version\n")
    (copy / ".flank").mkdir()
    (copy / ".flank" / "state").write_text("flank's own, not shipped\n")
    job = request(tmp_path, "cat data.txt; ls -a ..", commit="abc1234")._replace(
        release_dir=str(copy), cwd=str(copy / "R"), options={"project": "laptop"}
    )
    backend = BatchBackend(aws.options())
    aws.start_recording()
    first = backend.submit(job)
    second = backend.submit(job._replace(name=job.name + "-again"))
    (copy / "R" / "data.txt").write_text("second version\n")
    third = backend.submit(job._replace(name=job.name + "-changed"))
    outputs = []
    for job_id in (first, second, third):
        assert until_done(backend, job_id).exit_code == 0
        outputs.append(backend.read_output(job_id, 0).decode().splitlines()[0])
    assert outputs == ["first version", "first version", "second version"]
    assert ".flank" not in backend.read_output(third, 0).decode()
    puts = [
        r["path"].split("/releases/")[1].split("?")[0]
        for r in aws.recorded()
        if r["method"] == "PUT" and "/releases/" in r["path"]
    ]
    assert len(puts) == 2 and all(p.startswith("laptop/worktree-") for p in puts) and puts[0] != puts[1]


def test_a_working_copy_with_a_space_in_its_name_has_one_project_name(tmp_path: Path) -> None:
    """The S3 keys of a local run's jobs name the project as the run's own records do ("my proj" -> "my-proj")."""
    copy = tmp_path / "my proj"
    paths = ProjectPaths.for_local(copy)
    job = request(tmp_path, "true")._replace(
        release_dir=str(copy), run_dir=str(paths.dir / "runs" / "nightly" / "1"), env={}, options={}
    )
    assert project_of(job) == paths.name == "my-proj"
