"""What every remote executor implements (contract C4 of issue 14).

A task whose executor is not "local" is started by make through
`python -m flank_ops.executors SPEC RUN_DIR` instead of the C launcher. remote.py
runs the loop common to all backends (tasks/<task>.json, the log and its .log.times,
secret masking, retries, timeout, `flank cancel`); a backend only talks to its engine:

    submit(job) -> job id     poll(job id) -> JobState     read_output(job id, offset) -> bytes
    cancel(job id)            jobs_of_run(name prefix) -> live job ids     check() -> problems

Job names are `flank-<project>-<pipeline>-<run>-<task>` (job_name below), so the
interrupted-run cleanup finds a run's jobs by the prefix `flank-<project>-<pipeline>-<run>-`.
Secrets travel in `JobRequest.secrets`, apart from `env`: a backend must never put them
on a command line or in a job definition in clear.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol

# Executor names a task or pipeline may give in flank.yml ("local" = the VM's own launcher).
from flank_ops.config.model import EXECUTOR_NAMES, LOCAL, REMOTE_KINDS  # noqa: E402,F401 - flank.yml's values
from flank_ops.settings import CONFIG_EXAMPLES  # the flank.toml lines each executor needs

# issue 26: `python -m flank_ops.executors SPEC RUN_DIR --check CHECK_FILE`: a remote task with outputs
CHECK_OPTION = "--check"


class JobRequest(NamedTuple):
    name: str  # flank-<project>-<pipeline>-<run>-<task>
    command: str  # run by /bin/sh -c in cwd
    cwd: str
    env: dict[str, str]  # the task's environment (flank.yml env:), no secrets
    secrets: dict[str, str]  # never on a command line or in clear in a job definition
    memory_mb: int | None
    cpus: int | None
    timeout_s: float | None
    release_dir: str
    commit: str
    run_dir: str
    task: str
    options: dict[str, str]  # slurm: partition, account, qos, extra_args; batch: job_queue, ...
    # issue 26: the task's spec file (beside those of the run's other started tasks) and its check file
    spec_path: str = ""
    check_path: str = ""


class JobState(NamedTuple):
    state: str  # the engine's own word: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, SUCCEEDED, ...
    done: bool  # the job is over (exit_code then tells how, when the engine knows)
    exit_code: int | None
    host: str | None = None  # where it runs/ran
    queue: str | None = None  # partition or job queue
    max_rss_kb: int | None = None  # when the engine accounts it (Slurm: sacct)
    reason: str | None = None  # why it waits or failed, in the engine's words ("Resources", "vanished ...")
    run_s: float | None = None  # issue 26: how long it has run, when the engine says (Slurm: RunTime)


class Backend(Protocol):
    kind: str  # "slurm" | "batch"

    def submit(self, job: JobRequest) -> str: ...

    def poll(self, job_id: str) -> JobState: ...

    def read_output(self, job_id: str, offset: int) -> bytes: ...

    def cancel(self, job_id: str) -> None: ...

    def jobs_of_run(self, name_prefix: str) -> list[str]: ...

    def check(self) -> list[str]: ...


def can_adopt(backend: object) -> bool:
    """issue 26: whether the engine's jobs can be found by name and waited for by another launcher
    (`find_job(name) -> job id | None`, `attach(job, job id)`: Slurm, AWS Batch). A dead runner's jobs
    on an engine that cannot are cancelled, as before. Optional, for an engine whose output is not a
    file (Batch): `remember_read(job id, bytes in the task's log)` keeps where a re-attaching launcher
    reads on from, `let_go(job, job id)` drops what a job that is gone left behind."""
    return hasattr(backend, "find_job") and hasattr(backend, "attach")


class BackendError(Exception):
    """The engine could not be reached or refused a call; the message says it in words
    (remote.py writes it into the task's log and fails the task). `transient`: the engine
    is down or full for now (submit: the task stays queued and asks again until its timeout)."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


# What flank.toml needs for each executor: said when a task names an executor the VM lacks.


def not_configured_message(kind: str, settings_file: Path | str = "$FLANK_HOME/flank.toml") -> str:
    """`settings_file`: the flank.toml this machine reads (Home.settings_file), named as it is here."""
    lines = CONFIG_EXAMPLES.get(kind, f"[executors.{kind}]")
    return f"executor: {kind} is not configured on this VM: add to {settings_file}\n" + "\n".join(
        f"    {line}" for line in lines.split("\n")
    )


def job_name(project: str, pipeline: str, run: str, task: str) -> str:
    return f"{job_name_prefix(project, pipeline, run)}{task}"


def job_name_prefix(project: str, pipeline: str, run: str) -> str:
    return f"flank-{project}-{pipeline}-{run}-"


def executor_record(kind: str, job_id: str, state: JobState | None) -> dict[str, object]:
    """The "executor" entry of a task in tasks/<task>.json and run.json (contract C2)."""
    return {
        "kind": kind,
        "job_id": job_id,
        "queue": state.queue if state else None,
        "host": state.host if state else None,
        "state": state.state if state else None,
        "max_rss_kb": state.max_rss_kb if state else None,
    }
