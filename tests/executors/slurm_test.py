"""executor: slurm (issue 14), on a real one-node cluster: tasks go through sbatch, flank waits."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from conftest import run_flank, wait_for

from flank_ops.executors.base import JobRequest
from flank_ops.store.model import TaskResult, TaskStatus
from helpers.deployed import deploy, record, runs_dir, start_flank, write_dead_run
from helpers.slurm_cluster import squeue_names

pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slow]


def flank_yml(tasks: str, pipeline_extra: str = "") -> str:
    return f"pipelines:\n  nightly:\n    executor: slurm\n{pipeline_extra}    tasks:\n{tasks}"


def log_of(run_id: int, task: str) -> str:
    return (runs_dir() / str(run_id) / "logs" / f"{task}.log").read_text()


def test_tasks_run_on_slurm_with_their_logs_dependents_and_job_ids(tmp_path: Path, slurm) -> None:
    deploy(
        tmp_path,
        flank_yml(
            "      extract: {run: 'echo extracting on $(hostname) in $PWD; echo to stderr >&2', memory: 200M, cpus: 1}\n"
            "      model: {run: 'echo model saw $GREETING and $FLANK_TASK', needs: extract}\n"
            "      local_one: {run: 'echo here', needs: model, executor: local}\n"
        ),
    )
    out = run_flank("run", "demo", "nightly", env={"GREETING": "hello"})
    assert out.returncode == 0, out.stdout + out.stderr
    rec = record(1)
    assert rec["status"] == "success"
    extract = rec["tasks"]["extract"]
    assert rec["tasks"]["model"]["executor"]["state"] == "COMPLETED"
    assert extract["executor"]["kind"] == "slurm" and extract["executor"]["job_id"]
    assert extract["executor"]["queue"] == slurm.partition
    assert extract["executor"]["host"] == slurm.host
    assert extract["executor"]["state"] == "COMPLETED"
    assert extract["memory_mb"] == 200 and extract["cpus"] == 1
    assert "executor" not in rec["tasks"]["local_one"] or not rec["tasks"]["local_one"].get("executor")
    text = log_of(1, "extract")
    assert "extracting on" in text and "to stderr" in text
    assert f"releases/{rec['commit']['sha']}" in text  # the same release folder
    assert "model saw hello and model" in log_of(1, "model")
    times = (runs_dir() / "1" / "logs" / "extract.log.times").read_text()
    assert "attempt 1 " in times and " 0 success" in times
    # the job's name says whose it is
    assert "flank-demo-nightly-1-extract" in text


def test_secrets_reach_the_job_masked_never_in_its_script_or_on_a_command_line(tmp_path: Path, slurm) -> None:
    deploy(tmp_path, flank_yml("      use: {run: 'echo token=$API_TOKEN'}\n"))
    run_flank("secrets", "set", "demo", "API_TOKEN", input="s3cr3t-value\n", check=True)
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 0, out.stdout + out.stderr
    text = log_of(1, "use")
    assert "token=***" in text and "s3cr3t-value" not in text
    jobs = runs_dir() / "1" / "jobs"
    for path in jobs.iterdir():
        assert "s3cr3t-value" not in path.read_text(errors="replace"), path.name
    assert not list(jobs.glob("*.env"))  # the environment file is gone once the job read it
    assert not list(jobs.glob("*.out"))  # the raw output too, once copied (masked) into the log
    assert "s3cr3t-value" not in (runs_dir() / "1" / "run.json").read_text()


def test_a_failing_job_is_retried_by_resubmitting_then_fails(tmp_path: Path, slurm) -> None:
    deploy(
        tmp_path,
        flank_yml(
            "      flaky: {run: 'echo try; exit 3', retries: 1, retry_delay: 1}\n"
            "      after: {run: 'echo never', needs: flaky}\n"
        ),
    )
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    rec = record(1)
    flaky = rec["tasks"]["flaky"]
    assert flaky["status"] == "failed" and flaky["exit_code"] == 3 and flaky["attempts"] == 2
    assert flaky["executor"]["state"] == "FAILED"
    assert rec["tasks"]["after"]["status"] == "upstream_failed"
    text = log_of(1, "flaky")
    assert text.count("try\n") == 2 and "attempt 2 of 2" in text
    assert text.count("submitted to slurm as job") == 2


def test_timeout_cancels_the_job(tmp_path: Path, slurm) -> None:
    deploy(tmp_path, flank_yml("      slow: {run: 'echo started; sleep 120', timeout: 3}\n"))
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    slow = record(1)["tasks"]["slow"]
    assert slow["status"] == "timed_out"
    assert "timed out after 3s" in log_of(1, "slow")
    wait_for(lambda: "flank-demo-nightly-1-slow" not in squeue_names(slurm), "the job to leave the queue")


def test_output_streams_into_the_log_while_the_job_runs_and_cancel_scancels(tmp_path: Path, slurm) -> None:
    deploy(tmp_path, flank_yml("      long: {run: 'echo first line; sleep 300'}\n"))
    proc = start_flank("run", "demo", "nightly")
    try:
        log = runs_dir() / "1" / "logs" / "long.log"
        wait_for(lambda: log.exists() and "first line" in log.read_text(), "the job's output in the log")
        wait_for(lambda: record(1)["tasks"]["long"]["status"] == "running", "the record to say running")
        assert "flank-demo-nightly-1-long" in squeue_names(slurm)
        out = run_flank("cancel", "demo", "nightly")
        assert out.returncode == 0, out.stdout + out.stderr
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    rec = record(1)
    assert rec["status"] == "cancelled" and rec["tasks"]["long"]["status"] == "cancelled"
    assert "cancelling job" in log_of(1, "long")
    wait_for(lambda: "flank-demo-nightly-1-long" not in squeue_names(slurm), "the job to leave the queue")


def test_a_task_asking_more_than_the_cluster_has_fails_with_slurms_words(tmp_path: Path, slurm) -> None:
    deploy(tmp_path, flank_yml("      huge: {run: 'echo no', cpus: 999}\n"))
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    text = log_of(1, "huge")
    assert "Slurm can never start it as asked (PartitionConfig)" in text
    assert record(1)["tasks"]["huge"]["status"] == "failed"


def test_a_cluster_that_cannot_be_reached_keeps_the_task_queued_until_its_timeout(
    tmp_path: Path, slurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = tmp_path / "down.conf"
    text = Path(slurm.env["SLURM_CONF"]).read_text()
    port = next(line for line in text.splitlines() if line.startswith("SlurmctldPort="))
    down.write_text(text.replace(port, "SlurmctldPort=9"))  # nobody listens there
    monkeypatch.setenv("SLURM_CONF", str(down))
    deploy(tmp_path, flank_yml("      waits: {run: 'echo never', timeout: 20}\n"))
    proc = start_flank("run", "demo", "nightly")
    try:
        wait_for(
            lambda: (
                (runs_dir() / "1" / "tasks" / "waits.json").exists()
                and json.loads((runs_dir() / "1" / "tasks" / "waits.json").read_text())["status"] == "queued"
            ),
            "the task to show queued",
        )
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    waits = record(1)["tasks"]["waits"]
    assert waits["status"] == "timed_out"
    assert "does not take the job yet" in log_of(1, "waits")


def test_an_executor_the_vm_does_not_configure_fails_the_task_with_the_lines_to_add(
    tmp_path: Path, slurm, flank_home: Path
) -> None:
    (flank_home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    deploy(tmp_path, flank_yml("      t: echo hi\n"))
    out = run_flank("run", "demo", "nightly")
    assert out.returncode == 1
    text = log_of(1, "t")
    assert "executor: slurm is not configured on this VM" in text and "[executors.slurm]" in text


def test_job_files_are_private(tmp_path: Path, slurm) -> None:
    from flank_ops.executors.slurm import SlurmBackend

    backend = SlurmBackend({"partition": slurm.partition})
    job = slurm_job(
        tmp_path, "flank-x-y-1-t", "sleep 30", run_dir=tmp_path, task="t", env={"A": "1"}, secrets={"S": "v"}
    )
    job_id = backend.submit(job)
    try:
        env_files = list((tmp_path / "jobs").glob("*.env"))
        for env_file in env_files:  # the job may already have read and removed it
            assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600
        assert backend.jobs_of_run("flank-x-y-1-") == [job_id]
    finally:
        backend.cancel(job_id)
    state = wait_for(lambda: (s := backend.poll(job_id)).done and s, "the cancelled job to end")
    assert state.state == "CANCELLED"
    assert not list((tmp_path / "jobs").glob("*.env"))


def test_the_run_page_shows_where_each_task_ran(tmp_path: Path, slurm, flank_home: Path) -> None:
    from flank_ops.site import layout

    deploy(tmp_path, flank_yml("      fit: {run: 'echo fit', memory: 100M}\n"))
    assert run_flank("run", "demo", "nightly").returncode == 0
    job = record(1)["tasks"]["fit"]["executor"]
    page = (flank_home / "site" / layout.url_run("demo", "nightly", 1)).read_text()
    assert "Where tasks ran" in page
    row = page[page.index("Where tasks ran") :]
    for text in (f">{job['job_id']}<", f">{slurm.partition}<", f">{slurm.host}<", ">COMPLETED<", ">slurm<"):
        assert text in row


def test_a_slurm_task_that_never_started_is_shown_as_meant_for_slurm(tmp_path: Path, flank_home: Path) -> None:
    # no cluster needed: the task it needs fails on this VM, so its job is never submitted
    from flank_ops.site import layout

    deploy(
        tmp_path,
        flank_yml(
            "      prepare: {run: 'exit 3', executor: local}\n"
            "      fit: {run: 'echo fit', needs: prepare, memory: 100M}\n"
            "      plot: {run: 'echo plot', needs: prepare}\n"
        ),
    )
    assert run_flank("run", "demo", "nightly").returncode != 0
    assert record(1)["tasks"]["fit"]["status"] == "upstream_failed"
    page = (flank_home / "site" / layout.url_run("demo", "nightly", 1)).read_text()
    table = page[page.index("Where tasks ran") :]
    table = table[: table.index("</table>")]
    rows = {
        m[0]: m[1]
        for m in re.findall(r'<td class="t-name">([^<]+)</td>\s*<td data-label="executor">([^<]+)</td>', table)
    }
    assert rows == {"fit": "slurm", "plot": "slurm"}
    assert "not started" in table


def test_a_dead_runners_jobs_are_left_running_until_the_interrupted_run_is_cancelled(tmp_path: Path, slurm) -> None:
    """issue 26 item 6: adopt, don't cancel (tests/executors/slurm_adopt_test.py resumes such a run)."""
    from flank_ops.executors.base import job_name
    from flank_ops.executors.slurm import SlurmBackend
    from flank_ops.paths import Home

    deploy(tmp_path, flank_yml("      t: echo\n"))
    paths = Home().project("demo")
    run_dir = paths.run_dir("nightly", 7)
    run_dir.mkdir(parents=True)
    backend = SlurmBackend({})
    name = job_name("demo", "nightly", "7", "t")
    job_id = backend.submit(slurm_job(tmp_path, name, "sleep 300", run_dir=run_dir, task="t"))
    write_dead_run(run_dir, 7, TaskResult(status=TaskStatus.QUEUED, executor={"kind": "slurm", "job_id": job_id}))
    (runs_dir() / "last_id").write_text("7\n")
    assert name in squeue_names(slurm)
    out = run_flank("status", "demo")
    assert out.returncode in (0, 1), out.stderr
    assert record(7)["status"] == "interrupted" and record(7)["tasks"]["t"]["status"] == "interrupted"
    assert "1 job still running on slurm: flank run demo nightly --resume 7" in record(7)["summary"]
    assert name in squeue_names(slurm)  # left for a new runner to adopt
    out = run_flank("cancel", "demo", "nightly", "7")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"cancelled (1 job it left running cancelled: {job_id})" in out.stdout
    wait_for(lambda: name not in squeue_names(slurm), "the dead runner's job to be cancelled")
    assert record(7)["status"] == "cancelled"


def test_doctor_checks_the_cluster_and_the_partition(tmp_path: Path, slurm, flank_home: Path) -> None:
    out = run_flank("doctor", "--no-cron")
    assert "OK    executor slurm: reachable, as configured" in out.stdout
    (flank_home / "flank.toml").write_text('[executors.slurm]\npartition = "gpu"\n')
    out = run_flank("doctor", "--no-cron")
    assert out.returncode == 1
    assert (
        "FAIL  executor slurm: partition 'gpu' does not exist on the cluster "
        f"(it has: {slurm.partition}, {slurm.second_partition})" in out.stdout
    )


def test_a_job_over_its_memory_is_killed_by_the_node_and_the_task_fails(tmp_path: Path, slurm) -> None:
    # the test cluster enforces --mem (JobAcctGatherParams=OverMemoryKill, sampled every second)
    deploy(
        tmp_path,
        flank_yml(
            "      greedy: {run: 'python3 -c \"x = bytearray(400 << 20); import time; time.sleep(8)\"', memory: 100M}\n"
        ),
    )
    assert run_flank("run", "demo", "nightly").returncode == 1
    greedy = record(1)["tasks"]["greedy"]
    assert greedy["status"] == "failed" and greedy["exit_code"] == 137  # SIGKILL
    assert greedy["executor"]["state"] in ("FAILED", "OUT_OF_MEMORY")
    assert "exceeded memory limit" in log_of(1, "greedy")


def test_a_job_slurm_forgot_is_said_so(slurm) -> None:
    from flank_ops.executors.slurm import SlurmBackend

    state = SlurmBackend({}).poll("424242")
    assert state.done and state.state == "VANISHED" and state.exit_code is None
    assert "Slurm no longer knows job 424242" in (state.reason or "")


def test_a_full_cluster_shows_the_task_queued_with_slurms_reason_until_it_starts(tmp_path: Path, slurm) -> None:
    import subprocess

    env = {**os.environ, **slurm.env}
    filler = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--job-name",
            "filler",
            "-c",
            str(slurm.cpus),
            "-o",
            "/dev/null",
            "--wrap",
            "sleep 300",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        deploy(tmp_path, flank_yml("      waits: {run: 'echo got in'}\n"))
        proc = start_flank("run", "demo", "nightly")
        wait_for(
            lambda: (
                (runs_dir() / "1" / "run.json").exists()
                and record(1)["tasks"]["waits"]["status"] == "queued"
                and record(1)["tasks"]["waits"].get("queued_reason") == "Resources"
            ),
            "the task queued for Resources",
        )
    finally:
        subprocess.run(["scancel", filler], env=env, check=True)
    assert proc.wait(timeout=120) == 0
    waits = record(1)["tasks"]["waits"]
    assert waits["status"] == "success" and "got in" in log_of(1, "waits")


def test_a_reaped_jobs_env_file_with_secrets_is_removed(tmp_path: Path, slurm) -> None:
    """issue 20 item 2: the runner was killed (kill -9, its launcher too) while a job with a secret
    waited in the queue and another printed it. The interrupted-run detection leaves the jobs for a
    resume (issue 26: the queued one still needs its env file); cancelling the run cancels them,
    removes the env file and masks the raw output."""
    from flank_ops.executors.base import job_name
    from flank_ops.executors.slurm import SlurmBackend
    from flank_ops.paths import Home

    deploy(tmp_path, flank_yml("      t: echo\n"))
    paths = Home().project("demo")
    run_dir = paths.run_dir("nightly", 3)
    run_dir.mkdir(parents=True)
    name = job_name("demo", "nightly", "3", "t")
    job_id = SlurmBackend({}).submit(
        # stays queued: it never reads its env file
        slurm_job(
            tmp_path,
            name,
            "echo never",
            run_dir=run_dir,
            task="t",
            secrets={"API_TOKEN": "s3cr3t-value"},
            options={"extra_args": "--begin=now+3600"},
        )
    )
    env_files = list((run_dir / "jobs").glob("*.env"))
    assert env_files and "s3cr3t-value" in env_files[0].read_text()
    run_flank("secrets", "set", "demo", "API_TOKEN", input="s3cr3t-value\n", check=True)
    talker = job_name("demo", "nightly", "3", "talker")
    SlurmBackend({}).submit(  # a job that runs and prints the secret: its raw output holds it
        slurm_job(
            tmp_path,
            talker,
            "echo token=$API_TOKEN; sleep 300",
            run_dir=run_dir,
            task="talker",
            secrets={"API_TOKEN": "s3cr3t-value"},
        )
    )
    wait_for(
        lambda: any("token=s3cr3t-value" in p.read_text() for p in (run_dir / "jobs").glob("talker-*.out")),
        "the job to print the secret",
    )
    # the launcher died before it could write the job into the record: the jobs folder says Slurm
    write_dead_run(run_dir, 3, TaskResult(status=TaskStatus.QUEUED))
    (runs_dir() / "last_id").write_text("3\n")
    assert name in squeue_names(slurm)
    out = run_flank("status", "demo")
    assert out.returncode in (0, 1), out.stderr
    assert record(3)["status"] == "interrupted"
    assert "2 jobs still running on slurm" in out.stdout
    assert list((run_dir / "jobs").glob("*.env"))  # the queued job reads it when it starts
    assert run_flank("cancel", "demo", "nightly", "3").returncode == 0
    assert not list((run_dir / "jobs").glob("*.env"))
    outputs = list((run_dir / "jobs").glob("talker-*.out"))
    assert outputs and all("s3cr3t-value" not in p.read_text() for p in outputs)
    assert "token=***" in outputs[0].read_text()  # kept for debugging, masked
    wait_for(lambda: name not in squeue_names(slurm), f"job {job_id} to be cancelled")
    wait_for(lambda: talker not in squeue_names(slurm), "the running job to be cancelled")


def test_slurms_run_time_is_read_so_an_adopted_jobs_timeout_counts_it() -> None:
    """issue 26: a job a resumed run re-attaches to has run a while; `timeout:` counts that time
    (remote.py starts its clock RunTime back). Parsed from `scontrol show job`'s own words."""
    from flank_ops.executors.slurm import SlurmBackend

    line = "JobId=7 JobName=x JobState=RUNNING Reason=None RunTime=1-02:03:04 BatchHost=vm Partition=flank"
    state = SlurmBackend({})._state("7", dict(item.partition("=")[::2] for item in line.split()))
    assert state.run_s == 93784.0 and state.host == "vm"
    pending = SlurmBackend({})._state("8", {"JobState": "PENDING", "RunTime": "00:00:00", "Reason": "Priority"})
    assert pending.run_s == 0.0 and not pending.done


def slurm_job(
    tmp_path: Path,
    name: str,
    command: str,
    *,
    run_dir: Path,
    task: str,
    env: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
) -> JobRequest:
    """A job as a launcher asks for it, with no resources of its own, from a release at `tmp_path`."""
    return JobRequest(
        name=name,
        command=command,
        cwd=str(tmp_path),
        env=env or {},
        secrets=secrets or {},
        memory_mb=None,
        cpus=None,
        timeout_s=None,
        release_dir=str(tmp_path),
        commit="",
        run_dir=str(run_dir),
        task=task,
        options=options or {},
    )
