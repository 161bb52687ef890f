"""The loop every remote executor shares: one task of a run, sent to a cluster and waited for.

    python -m flank_ops.executors SPEC_FILE RUN_DIR      (what make starts; see __main__.py)

It leaves in RUN_DIR what the local launcher leaves (run/task_exec.py states the format), so
records, the site, `flank logs --follow` and notifications see no difference:
    tasks/<task>.json   "queued" while the job waits for the cluster, "running" once it started,
                        then the final status; plus "executor" (kind, job_id, queue, host, state,
                        max_rss_kb) and the declared "memory_mb"/"cpus" (contract C2 of issue 14)
    logs/<task>.log     the job's stdout+stderr as it runs, secrets masked, the same .log.times
and, for the backend, jobs/ (JOBS_DIR): the job's script, its output file and, only until the
job has read it, its environment file (0600).

Retries resubmit. `timeout:` counts the job's running time, `queue_timeout:` its wait in the queue:
the job is cancelled and the task timed_out. `flank cancel` (and Ctrl-C) cancels the job. Any other
stop (the runner died or the VM shuts down: make passes SIGTERM on) leaves the job to the cluster
(issue 26 item 6, "adopt, don't cancel"): the task stays "running" with its job's id, and
jobs/<task>-<job id>.read keeps how many bytes of the job's output are in the task's log. A
launcher started for the same task of the same run (`flank run --resume N`) finds the job by its
name, re-attaches to it and goes on from there: the log gets each line once. A cluster that
cannot be reached, or refuses jobs for now, keeps the task queued (the reason in the log) until
its timeout. A job the cluster forgets fails the task.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flank_ops.clock import now_iso
from flank_ops.errors import UserError
from flank_ops.executors.base import (
    Backend,
    BackendError,
    JobRequest,
    JobState,
    can_adopt,
    executor_record,
    job_name,
)
from flank_ops.task.checked_task import Finish, start_checked
from flank_ops.task.secrets import SecretMasker, secret_values_from_env
from flank_ops.task.task_exec import EXIT_TIMED_OUT, MAKE_VARIABLES, TaskLog, TaskSpec, _write_result

JOBS_DIR = "jobs"
POLL_FIRST_S = 0.1  # polls start fast (a short job's end is seen at once) ...
POLL_MAX_S = 2.0  # ... and slow down to this
POLL_GROWTH = 1.25
SUBMIT_RETRY_S = 5.0  # a cluster that is down is asked again this often
CANCEL_WAIT_S = 30.0  # after scancel, how long to wait for the job's end before giving up on it
# Engine states that end a job, and what they make the task.
TIMED_OUT_STATES = ("TIMEOUT", "DEADLINE")
OUT_OF_MEMORY_STATES = ("OUT_OF_MEMORY",)

ENGINE_NAMES = {"slurm": "Slurm", "batch": "AWS Batch"}  # as the task's failure line names them
# issue 26: AWS Batch's statusReason when a spot instance is reclaimed under a job: resubmitted, at most
# MAX_SPOT_RETRIES times a task, without counting as one of its attempts
SPOT_REASON = re.compile(r"^Host EC2 \(instance [^)]*\) terminated")
MAX_SPOT_RETRIES = 3


def spot_taken_back(kind: str, state: JobState | None) -> bool:
    return kind == "batch" and state is not None and bool(SPOT_REASON.match(state.reason or ""))


def is_array_member(job_id: str) -> bool:
    """An element of a job array: Slurm's `4711_2`, AWS Batch's child `<array job id>:<index>`."""
    return "_" in job_id or ":" in job_id


def read_marker(run_dir: str, task: str, job_id: str) -> Path:
    """jobs/<task>-<job id>.read: how many bytes of the job's raw output are in the task's log."""
    return Path(run_dir) / JOBS_DIR / f"{task}-{job_id}.read"


def resume_hint(run_dir: str) -> str:
    """`flank run PROJECT PIPELINE --resume N` for the run in `run_dir` (…/runs/<pipeline>/<id>;
    a working copy's runs are under .flank/: `--local`)."""
    from flank_ops.hints import flank_command
    from flank_ops.paths import STATE_DIR

    folder = Path(run_dir).resolve()
    project = None if STATE_DIR in folder.parts else os.environ.get("FLANK_PROJECT") or None
    return flank_command("run", project, folder.parent.name, "--resume", folder.name)


_stop_signal = 0


def _on_stop(signum: int, frame: object) -> None:
    global _stop_signal
    _stop_signal = signum


class Loop:
    """One task's attempts; `wake_fd` wakes the waits when a stop signal arrives."""

    def __init__(
        self,
        spec: TaskSpec,
        run_dir: str,
        backend: Backend,
        job: JobRequest,
        wake_fd: int,
        checked: tuple[str, Finish] | None = None,
    ) -> None:
        self.spec, self.run_dir, self.backend, self.job, self.wake_fd = spec, run_dir, backend, job, wake_fd
        # issue 26: a task with outputs: why it runs, and the check of its outputs after a success
        self.extra: dict[str, str] = {"reason": checked[0]} if checked else {}
        self.finish: Finish | None = checked[1] if checked else None
        self.log = TaskLog(os.path.join(run_dir, "logs", f"{spec.task}.log"))
        self.started_at = now_iso()
        self.t0 = time.monotonic()
        self.declared = {"memory_mb": spec.memory_mb or None, "cpus": spec.cpus or None}
        self.failure = ""  # why the last attempt failed, when no exit code says it
        self.adopt: tuple[str, int] | None = None  # issue 26: (job id, its output's bytes in the log) to re-attach to
        self.array_spec: str | None = None  # issue 26: a Slurm matrix instance's spec file (its task's job array)

    def submit(self, attempt: int) -> str:
        """The job of this attempt: the instance's element of its matrix task's job array (the first
        attempt, when the instances go as one array: slurm_array.py), else a job of its own."""
        if attempt == 1 and self.array_spec is not None:
            from flank_ops.executors.slurm import SlurmBackend
            from flank_ops.executors.slurm_array import member_job

            spec_path, self.array_spec = self.array_spec, None  # asked once: a refused array is not asked again
            if isinstance(self.backend, SlurmBackend):
                job_id = member_job(self.backend, self.job, self.spec, spec_path, task_environment)
                if job_id is not None:
                    return job_id
        return self.backend.submit(self.job)

    def leave_job(self) -> bool:
        """Stopped: leave the job running for a new runner (not a cancel, not Ctrl-C)?"""
        from flank_ops.store import records

        return (
            can_adopt(self.backend)
            and _stop_signal != signal.SIGINT
            and not records.cancel_requested(Path(self.run_dir))
        )

    def save_read(self, job_id: str, size: int) -> None:
        with contextlib.suppress(OSError):
            from flank_ops.fileio import atomic_write_text

            atomic_write_text(read_marker(self.run_dir, self.spec.task, job_id), f"{size}\n", durable=False)
        remember = getattr(self.backend, "remember_read", None)
        if remember is not None:  # issue 26: Batch keeps its log stream's position at or before `size`
            remember(job_id, size)

    def find_adoptable(self) -> tuple[str, int, dict[str, Any]] | None:
        """(job id, bytes of its output in the log, the dead launcher's result) of the job a launcher of
        this task left running (`flank run --resume`), found by its name; None when there is none."""
        from flank_ops.store import records

        old = records.read_task_result(Path(self.run_dir), self.spec.task)
        if not can_adopt(self.backend) or old is None or old.get("status") not in ("queued", "running"):
            return None
        known = (old.get("executor") or {}).get("job_id")
        try:
            job_id = self.backend.find_job(self.job.name)  # type: ignore[attr-defined]
            if job_id is None and known and is_array_member(str(known)) and self.backend.knows(str(known)):  # type: ignore[attr-defined]
                job_id = str(known)  # an element of the matrix task's job array (named after the task)
        except BackendError as exc:
            self.say(f"could not look for job {self.job.name} on {self.backend.kind}: {exc}")
            return None
        if job_id is None:
            self.say(
                f"job {known or self.job.name} of the interrupted run is gone from {self.backend.kind}; "
                "running the task again"
            )
            let_go = getattr(self.backend, "let_go", None)
            if known and let_go is not None:  # issue 26: Batch: what the lost job left in S3 goes
                let_go(self.job, str(known))
            return None
        try:
            size = int(read_marker(self.run_dir, self.spec.task, job_id).read_text().strip() or 0)
        except (OSError, ValueError):
            size = 0
        return job_id, size, old

    def say(self, text: str) -> None:
        self.log.write(f"flank: {text}\n".encode())

    def write(self, result: dict[str, Any]) -> None:
        _write_result(self.run_dir, self.spec.task, {"task": self.spec.task, **result, **self.extra, **self.declared})

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        poller = select.poll()
        poller.register(self.wake_fd, select.POLLIN)
        while not _stop_signal and (left := end - time.monotonic()) > 0:
            if poller.poll(int(left * 1000) + 1):
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_fd, 4096)

    def deadline_passed(self, submitted: float) -> bool:
        """Before the engine took the job: queue_timeout, else timeout, bounds the wait."""
        limit = self.spec.queue_timeout_s or self.spec.timeout_s
        return bool(limit) and time.monotonic() - submitted >= limit

    def over_time(self, submitted: float, running_since: float | None) -> str:
        """issue 26: '' or why the job is cancelled: `timeout:` counts its running time, `queue_timeout:`
        its wait in the queue."""
        now = time.monotonic()
        if running_since is not None and self.spec.timeout_s and now - running_since >= self.spec.timeout_s:
            return f"timed out after {self.spec.timeout_s:g}s (running)"
        queue_limit = self.spec.queue_timeout_s
        if running_since is None and queue_limit and now - submitted >= queue_limit:
            return f"waited {queue_limit:g}s in the queue (queue_timeout: {queue_limit:g}s)"
        return ""

    # --- one attempt ---------------------------------------------------------------

    def attempt(self, attempt: int) -> tuple[str, JobState | None, str, int | None]:  # noqa: C901 - one job's life, each state a branch: next to split
        """(outcome, last state, job id, exit code); outcome: success|failed|timed_out|stopped."""
        kind = self.backend.kind
        queued_since = time.monotonic()
        job_id = ""
        said_waiting = ""
        offset = 0
        adopted = self.adopt is not None
        if self.adopt is not None:
            job_id, offset = self.adopt
            self.adopt = None
            try:
                self.backend.attach(self.job, job_id, self.spec.group)  # type: ignore[attr-defined]
            except BackendError as exc:
                self.say(f"could not re-attach to job {job_id}: {exc}")
                self.failure = f"could not re-attach to job {job_id}: {exc}"
                return "failed", None, job_id, None
            self.say(f"re-attached to job {job_id} ({self.job.name}) on {kind}; its output goes on from here")
        while not job_id:  # the cluster may be down or full for now: stay queued, ask again
            try:
                job_id = self.submit(attempt)
            except BackendError as exc:
                if not getattr(exc, "transient", False):
                    self.say(f"could not submit the job to {kind}: {exc}")
                    self.failure = f"could not submit the job to {kind}: {exc}"
                    return "failed", None, "", None
                if str(exc) != said_waiting:
                    said_waiting = str(exc)
                    self.say(f"{kind} does not take the job yet ({exc}); the task stays queued")
                    self.write(
                        {
                            "status": "queued",
                            "attempt": attempt,
                            "started_at": self.started_at,
                            "pid": os.getpid(),
                            "executor": {
                                "kind": kind,
                                "job_id": None,
                                "queue": None,
                                "host": None,
                                "state": "NOT_SUBMITTED",
                                "max_rss_kb": None,
                            },
                        }
                    )
                if self.deadline_passed(queued_since):
                    self.say(f"timed out after {self.spec.timeout_s:g}s without getting the job into {kind}")
                    return "timed_out", None, "", None
                self.sleep(SUBMIT_RETRY_S)
                if _stop_signal:
                    return "stopped", None, "", None
        if not adopted:
            self.say(f"submitted to {kind} as job {job_id} ({self.job.name})")
        self.write(
            {
                "status": "queued",
                "attempt": attempt,
                "started_at": self.started_at,
                "pid": os.getpid(),
                "executor": executor_record(kind, job_id, None),
            }
        )
        masker: SecretMasker[bytes] = SecretMasker(secret_values_from_env(os.environ))
        interval = POLL_FIRST_S
        running_written = False
        running_since: float | None = None  # issue 26: timeout: counts from here
        last_reason = ""
        cancelled_at = 0.0
        why_cancelled = ""
        state: JobState | None = None
        while True:
            try:
                state = self.backend.poll(job_id)
            except BackendError as exc:  # the cluster is unreachable for a moment: keep waiting
                if str(exc) != last_reason:
                    last_reason = str(exc)
                    self.say(f"cannot ask {kind} about job {job_id}: {exc}; waiting")
                state = None
            if state is not None:
                while True:  # all there is so far (at the end: all of it)
                    try:
                        data = self.backend.read_output(job_id, offset)
                    except BackendError:
                        data = b""
                    if not data:
                        break
                    offset += len(data)
                    self.log.write(masker.feed(data))
                    if can_adopt(self.backend):  # what a launcher re-attaching later goes on from
                        self.save_read(job_id, offset - masker.carry_len)
                    if not state.done:
                        break
                if not state.done and state.reason and state.reason != last_reason and not running_written:
                    last_reason = state.reason
                    self.write(
                        {
                            "status": "queued",
                            "attempt": attempt,
                            "started_at": self.started_at,
                            "pid": os.getpid(),
                            "executor": executor_record(kind, job_id, state),
                            "queued_reason": state.reason,
                        }
                    )
                if not running_written and (state.host or state.done):
                    running_written = True
                    # an adopted job has run a while already: `timeout:` counts that too (issue 26)
                    running_since = time.monotonic() - ((state.run_s or 0.0) if adopted else 0.0)
                    self.write(
                        {
                            "status": "running",
                            "attempt": attempt,
                            "started_at": self.started_at,
                            "pid": os.getpid(),
                            "executor": executor_record(kind, job_id, state),
                        }
                    )
                if state.done:
                    break
            if not cancelled_at and _stop_signal and self.leave_job():
                # issue 26: adopt, don't cancel; what the masker holds back is read again by the next launcher
                self.save_read(job_id, offset - masker.carry_len)
                where = "running" if running_written or offset else "queued"
                self.say(
                    f"the runner stopped (signal {_stop_signal}); job {job_id} stays {where} on {kind}: "
                    f"{resume_hint(self.run_dir)} re-attaches to it"
                )
                return "detached", state, job_id, None
            if not cancelled_at and _stop_signal:
                why_cancelled = "stopped"
                self.say(f"stopped (signal {_stop_signal}); cancelling job {job_id}")
            elif not cancelled_at and (over := self.over_time(queued_since, running_since)):
                why_cancelled = "timed_out"
                self.say(f"{over}; cancelling job {job_id}")
            if why_cancelled and not cancelled_at:
                cancelled_at = time.monotonic()
                interval = POLL_FIRST_S
                try:
                    self.backend.cancel(job_id)
                except BackendError as exc:
                    self.say(f"could not cancel job {job_id}: {exc}")
            if cancelled_at and time.monotonic() - cancelled_at > CANCEL_WAIT_S:
                self.say(f"job {job_id} did not end {CANCEL_WAIT_S:g}s after it was cancelled; not waiting for it")
                break
            if why_cancelled == "stopped":
                time.sleep(interval)  # the stop signal is already in; sleep() would return at once
            else:
                self.sleep(interval)
            interval = min(POLL_MAX_S, interval * POLL_GROWTH)
        self.log.write(masker.feed(b"", final=True))
        read_marker(self.run_dir, self.spec.task, job_id).unlink(missing_ok=True)
        exit_code = state.exit_code if state is not None else None
        if why_cancelled:
            # flank cancelled it: a job that never ran, or that Slurm reports 0 for, did not exit by itself
            if running_since is None or exit_code == 0:
                exit_code = None
            return why_cancelled, state, job_id, exit_code
        assert state is not None
        if state.state in TIMED_OUT_STATES:
            self.say(f"job {job_id} reached its time limit ({state.state})")
            return "timed_out", state, job_id, exit_code
        if state.state in OUT_OF_MEMORY_STATES:
            asked = f" (it asked for {self.job.memory_mb}M)" if self.job.memory_mb else ""
            self.say(f"job {job_id} ran out of memory{asked}: raise the task's memory:")
            return "failed", state, job_id, exit_code
        if exit_code == 0 and state.state in ("COMPLETED", "SUCCEEDED"):
            return "success", state, job_id, exit_code
        detail = f"exit {exit_code}" if exit_code is not None else "no exit code"
        self.say(f"job {job_id} ended {state.state} ({detail})" + (f": {state.reason}" if state.reason else ""))
        if exit_code is None:  # issue 26: the record and the run line say so, never "exit 1"
            self.failure = f"{ENGINE_NAMES.get(kind, kind)} job ended {state.state} without an exit code" + (
                f": {state.reason}" if state.reason else ""
            )
        return "failed", state, job_id, exit_code

    # --- the task ------------------------------------------------------------------

    def run(self) -> int:
        attempts_allowed = self.spec.retries + 1
        delay = self.spec.retry_delay_s
        outcome, state, job_id, exit_code = "failed", None, "", None
        attempt = 0
        spot_retries = 0
        max_rss: int | None = None
        first = 1
        found = self.find_adoptable()
        if found is not None:  # issue 26: `flank run --resume`: the job of the dead launcher goes on
            job_id, size, old = found
            self.adopt = (job_id, size)
            first = int(old.get("attempt") or old.get("attempts") or 1)
            self.started_at = str(old.get("started_at") or self.started_at)
            with contextlib.suppress(ValueError, TypeError):  # its duration counts from its first start
                since = datetime.now(UTC) - datetime.fromisoformat(self.started_at)
                self.t0 = time.monotonic() - max(0.0, since.total_seconds())
        for attempt in range(first, attempts_allowed + 1):
            if attempt > first:
                self.say(f"attempt {attempt} of {attempts_allowed} after {delay:g}s")
                self.write(
                    {
                        "status": "queued",
                        "attempt": attempt,
                        "started_at": self.started_at,
                        "pid": os.getpid(),
                        "executor": executor_record(self.backend.kind, job_id, state),
                    }
                )
                self.sleep(delay)
                delay *= 2
                if _stop_signal:
                    break
            if self.adopt is None:
                self.log.attempt_started(attempt)
            memory_mb = self.spec.memory_for_attempt(attempt)
            if memory_mb != (self.job.memory_mb or 0):  # issue 26: memory: [4G, 8G, 16G]
                if self.adopt is None:
                    self.say(f"attempt {attempt} asks for {memory_mb}M of memory")
                self.job = self.job._replace(memory_mb=memory_mb)
                self.declared["memory_mb"] = memory_mb
            outcome, state, job_id, exit_code = self.attempt(attempt)
            while outcome == "failed" and spot_taken_back(self.backend.kind, state) and not _stop_signal:
                if spot_retries >= MAX_SPOT_RETRIES:
                    self.say(f"the spot instance was taken back {spot_retries + 1} times; not resubmitting again")
                    break
                spot_retries += 1  # issue 26: not the task's fault, so not one of its attempts
                assert state is not None
                self.say(
                    f"AWS took the spot instance back ({state.reason}); resubmitting, not counted as an attempt "
                    f"({spot_retries} of {MAX_SPOT_RETRIES})"
                )
                self.failure = ""
                outcome, state, job_id, exit_code = self.attempt(attempt)
            if state is not None and state.max_rss_kb is not None:
                max_rss = max(max_rss or 0, state.max_rss_kb)
            if outcome in ("stopped", "detached"):
                if outcome == "stopped":
                    self.log.attempt_ended(attempt, exit_code, "interrupted")
                break
            self.log.attempt_ended(attempt, exit_code, outcome)
            if outcome == "success" or _stop_signal:
                break
        executor: dict[str, Any] = (
            executor_record(self.backend.kind, job_id, state)
            if job_id
            else {
                "kind": self.backend.kind,
                "job_id": None,
                "queue": None,
                "host": None,
                "state": state.state if state else None,
                "max_rss_kb": None,
            }
        )
        executor["max_rss_kb"] = max_rss
        if outcome in ("stopped", "detached") or _stop_signal:
            from flank_ops.store import records

            # A cancel is recorded as such; any other stop leaves "running" for the runner to mark interrupted.
            if records.cancel_requested(Path(self.run_dir)):
                self.write(
                    {
                        "status": "cancelled",
                        "attempts": attempt,
                        "exit_code": exit_code,
                        "started_at": self.started_at,
                        "ended_at": now_iso(),
                        "duration_s": round(time.monotonic() - self.t0, 3),
                        "log": f"logs/{self.spec.task}.log",
                        "executor": executor,
                    }
                )
            else:
                self.write(
                    {
                        "status": "running",
                        "attempt": attempt,
                        "started_at": self.started_at,
                        "pid": os.getpid(),
                        "executor": executor,
                    }
                )
            self.log.close()
            return 128 + (_stop_signal or signal.SIGTERM)
        status = outcome
        no_code = status == "failed" and exit_code is None
        # a job flank cancelled (timeout:, queue_timeout:) has no exit code of its own: its log says why
        keep_none = no_code or status == "timed_out"
        result: dict[str, Any] = {
            "status": status,
            "attempts": attempt,
            "exit_code": exit_code if exit_code is not None or keep_none else (0 if status == "success" else 1),
            "started_at": self.started_at,
            "ended_at": now_iso(),
            "duration_s": round(time.monotonic() - self.t0, 3),
            "peak_rss_kb": max_rss,
            "log": f"logs/{self.spec.task}.log",
            "executor": executor,
        }
        if no_code:  # issue 26: the reason stands in for the exit code (summary, run page)
            result["error"] = self.failure or "the job ended without an exit code"
        if self.finish is not None:  # issue 26: its outputs (back on the VM) checked, the fingerprint recorded
            result = self.finish(result, self.log)
            status = result["status"]
        self.write(result)
        self.log.close()
        if status == "timed_out":
            return EXIT_TIMED_OUT
        if status == "success":
            return 0
        code = result["exit_code"]
        return code if code is not None and 0 < code < 256 else 1


def task_environment(spec: TaskSpec) -> tuple[dict[str, str], dict[str, str]]:
    """(env, secrets) of the task as the local launcher would give it: this process's
    environment (make's) without make's variables, the spec's env, FLANK_TASK; the
    secrets (FLANK_SECRET_NAMES) apart."""
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    env.update((k, v) for k, v in spec.env if k)
    env["FLANK_TASK"] = spec.task
    names = [n for n in env.get("FLANK_SECRET_NAMES", "").split(",") if n]
    secrets = {n: env.pop(n) for n in names if n in env}
    return env, secrets


def executor_options(kind: str, spec: TaskSpec, env: dict[str, str]) -> dict[str, str]:
    """flank.toml's [executors.<kind>] (the project's override applied), under flank.yml's options.
    Raises NotConfigured when flank.toml has no such table."""
    from flank_ops.executors.settings import executor_settings

    options = executor_settings(kind, env.get("FLANK_PROJECT") or None, env.get("FLANK_HOME") or None)
    options.update(dict(spec.options))
    return options


def run_remote(
    spec: TaskSpec, run_dir: str, check: dict[str, Any] | None = None, spec_path: str = "", check_path: str = ""
) -> int:
    """`check`: the runner's check file of a task with outputs (task/checked_task.py): fingerprinted
    first (up to date: never submitted), its outputs checked and its fingerprint recorded after."""
    from flank_ops.executors import backend as make_backend
    from flank_ops.executors.settings import NotConfigured

    os.makedirs(os.path.join(run_dir, "tasks"), exist_ok=True)
    os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
    checked = None
    if check is not None:
        started = start_checked(check, spec, run_dir)
        if isinstance(started, int):
            return started
        checked = started
    env, secrets = task_environment(spec)
    # the spec's env reaches this process too: SLURM_CONF, FLANK_HOME, ... are the backend's to use
    os.environ.update((k, v) for k, v in spec.env if k)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(stop, _on_stop)
    name = job_name(
        env.get("FLANK_PROJECT", "local"),
        env.get("FLANK_PIPELINE", "pipeline"),
        env.get("FLANK_RUN_ID", "0"),
        spec.task,
    )
    job = JobRequest(
        name=name,
        command=spec.command,
        cwd=spec.cwd,
        env=env,
        secrets=secrets,
        memory_mb=spec.memory_mb or None,
        cpus=spec.cpus or None,
        timeout_s=spec.timeout_s or None,
        release_dir=env.get("FLANK_RELEASE", spec.cwd),
        commit=env.get("FLANK_COMMIT", ""),
        run_dir=os.path.abspath(run_dir),
        task=spec.task,
        options={},
        spec_path=spec_path,
        check_path=check_path,
    )
    try:
        options = executor_options(spec.executor, spec, env)
        job = job._replace(options=options)
        backend = make_backend(spec.executor, options)
    except (NotConfigured, BackendError) as exc:
        return fail_at_once(spec, run_dir, str(exc))
    except UserError as exc:  # flank.toml unreadable
        return fail_at_once(spec, run_dir, exc.message)
    loop = Loop(spec, run_dir, backend, job, wake_r, checked)
    if spec_path and spec.group and spec.executor == "slurm":  # issue 26: one Slurm job array
        loop.array_spec = spec_path
    return loop.run()


def fail_at_once(spec: TaskSpec, run_dir: str, message: str) -> int:
    """The task cannot start (executor not configured, too big for the VM ...): said in its log, failed."""
    os.makedirs(os.path.join(run_dir, "tasks"), exist_ok=True)
    os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
    log = TaskLog(os.path.join(run_dir, "logs", f"{spec.task}.log"))
    started = now_iso()
    log.attempt_started(1)
    log.write(f"flank: {message}\n".encode())
    log.attempt_ended(1, None, "failed")
    log.close()
    _write_result(
        run_dir,
        spec.task,
        {
            "task": spec.task,
            "status": "failed",
            "attempts": 1,
            "exit_code": 1,
            "started_at": started,
            "ended_at": now_iso(),
            "duration_s": 0.0,
            "log": f"logs/{spec.task}.log",
            "error": message,
            "memory_mb": spec.memory_mb or None,
            "cpus": spec.cpus or None,
        },
    )
    return 1
