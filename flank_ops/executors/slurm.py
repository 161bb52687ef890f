"""`executor: slurm`: a task as a Slurm batch job (sbatch), waited for by remote.py.

The job runs the task's command in the same release folder, so FLANK_HOME must be on a
file system the nodes share (as HPC home folders are). Per attempt, in <run>/jobs/:
    <task>.<n>.sh    the job script: reads the environment file, deletes it, runs the command
    <task>.<n>.env   the task's environment and secrets (0600; gone once the job has read it)
    <task>-<jobid>.out   the job's stdout+stderr (remote.py tails it into logs/<task>.log)
sbatch itself gets a plain environment (PATH, HOME, the locale, SLURM_*): the job's record in
slurmctld holds no secret, and no secret is ever on a command line.

State from `scontrol show job` (kept by slurmctld for MinJobAge, 300 s by default), then
`sacct` when accounting is on (MaxRSS too). sbatch's options: partition, account, qos,
extra_args from flank.toml's [executors.slurm] and flank.yml's `slurm:`.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from flank_ops.executors.base import BackendError, JobRequest, JobState
from flank_ops.executors.shared_poll import SharedPoll

COMMAND_TIMEOUT_S = 60.0
# sbatch/squeue/scontrol stderr that means "down or full for now": the task stays queued.
TRANSIENT_ERRORS = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Connection refused",
    "temporarily unavailable",
    "Slurm temporarily unable",
    "MaxSubmit",
    "Zero Bytes were transmitted",
)
PENDING_STATES = ("PENDING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED")
LIVE_STATES = PENDING_STATES + ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "STOPPED")
# Pending reasons that mean the job can never start as asked (Slurm keeps it pending forever):
# the job is cancelled and the task fails with the reason.
NEVER_STARTS = (
    "PartitionConfig",
    "BadConstraints",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "InvalidAccount",
    "InvalidQOS",
    "QOSMaxCpuPerJobLimit",
    "QOSMaxMemoryPerJob",
    "QOSMaxWallDurationPerJobLimit",
    "AssocMaxCpuPerJobLimit",
    "AssocMaxWallDurationPerJobLimit",
    "ReqNodeNotAvail",
)
SAFE_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What sbatch keeps of flank's environment: enough to find the cluster, nothing of the task's.
SBATCH_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR")
JOBS_DIR = "jobs"


def _sbatch_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in SBATCH_ENV or k.startswith(("LC_", "SLURM_CONF", "SBATCH_"))}


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0], path=os.environ.get("PATH")) is None:
        raise BackendError(
            f"{argv[0]} is not installed on this VM: install Slurm's client commands "
            "(apt-get install slurm-client) and point SLURM_CONF at the cluster's slurm.conf"
        )
    try:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_sbatch_environment(),
            timeout=COMMAND_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise BackendError(f"{argv[0]} did not answer within {COMMAND_TIMEOUT_S:g}s", transient=True) from None


def _squeue_jobs(states: str) -> list[tuple[str, str]]:
    """(job id, job name) of every job squeue lists in `states` (squeue's -t list, or "all")."""
    proc = _run(["squeue", "-h", "-t", states, "-o", "%i|%j"])
    if proc.returncode != 0:
        raise _error(proc, "squeue failed")
    jobs = []
    for line in proc.stdout.splitlines():
        job_id, _, name = line.strip().partition("|")
        jobs.append((job_id, name))
    return jobs


def _error(proc: subprocess.CompletedProcess[str], what: str) -> BackendError:
    said = " ".join((proc.stderr or proc.stdout).split()) or f"exit {proc.returncode}"
    return BackendError(f"{what}: {said}", transient=any(t in said for t in TRANSIENT_ERRORS))


def _job_fields(line: str) -> dict[str, str]:
    """One line of `scontrol show job -o` as its KEY=VALUE fields."""
    return dict(item.partition("=")[::2] for item in line.split() if "=" in item)


def _array_members(fields: dict[str, str]) -> list[str]:
    """issue 26: the ids `4711_2` a line of `scontrol show job -o` stands for: one element of a job
    array, or (while they wait) several at once (ArrayTaskId=2-5%2, 1,3)."""
    array, tasks = fields.get("ArrayJobId"), fields.get("ArrayTaskId")
    if not array or not tasks:
        return []
    members = []
    for part in tasks.split("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            members += [f"{array}_{i}" for i in range(int(low), int(high or low) + 1)]
    return members


def _seconds(text: str) -> float | None:
    """Slurm's [D-]HH:MM:SS (RunTime) in seconds; None when it is not one."""
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if not days.isdigit() and days or not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return float(seconds + int(days or 0) * 86400)


def _exit_code(text: str) -> int | None:
    """Slurm's ExitCode 'code:signal' -> shell convention."""
    code, _, sig = text.partition(":")
    try:
        return 128 + int(sig) if sig and int(sig) else int(code)
    except ValueError:
        return None


def _rss_kb(text: str) -> int | None:
    match = re.fullmatch(r"([0-9.]+)([KMGT]?)", text.strip())
    if not match:
        return None
    return int(float(match.group(1)) * {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}[match.group(2)])


def env_file_text(env: dict[str, str], secrets: dict[str, str]) -> str:
    """`export NAME='value'` lines a POSIX shell sources (names a shell cannot set are left out)."""
    lines = [
        f"export {k}={shlex.quote(v)}"
        for k, v in {**env, **secrets}.items()
        if SAFE_ENV_NAME.match(k) and not k.startswith("SLURM_")
    ]
    return "\n".join(lines) + "\n"


def job_script(env_file: Path, cwd: str, command: str) -> str:
    return "\n".join(
        [
            "#!/bin/sh",
            "# written by flank: the task's environment comes from a file only its user can read, read once",
            f"set -a; . {shlex.quote(str(env_file))}; set +a",
            f"rm -f {shlex.quote(str(env_file))}",
            f'cd {shlex.quote(cwd)} || {{ echo "flank: cannot enter the task\'s directory {shlex.quote(cwd)}" >&2; exit 1; }}',
            f"exec /bin/sh -c {shlex.quote(command)}",
            "",
        ]
    )


def remove_env_files(run_dir: Path) -> None:
    """Remove every environment file of a run's jobs (whoever ends the run: nothing holding a secret
    outlives its job). A running job has read and removed its own already."""
    for path in (Path(run_dir) / JOBS_DIR).glob("*.env"):
        path.unlink(missing_ok=True)


def mask_outputs(run_dir: Path, secrets: Mapping[str, str]) -> None:
    """Mask the secrets in the raw outputs of a run whose launcher died before it copied them
    (masked) into the task's log: they stay for debugging, without the secrets."""
    from flank_ops.task.secrets import SecretMasker

    values = [os.fsencode(v) for v in secrets.values() if v]
    if not values:
        return
    for path in (Path(run_dir) / JOBS_DIR).glob("*.out"):
        masker = SecretMasker(values)
        tmp = path.with_name(f".{path.name}.masked")
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with open(path, "rb") as fin, open(out, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(masker.feed(chunk))
                fout.write(masker.feed(b"", final=True))
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            path.unlink(missing_ok=True)  # never keep a secret we could not mask


class SlurmBackend:
    kind = "slurm"
    shared_poll = True  # issue 26 (bench/poll.py turns it off to measure the old way)

    def __init__(self, options: dict[str, str]) -> None:
        self.options = dict(options)
        self.outputs: dict[str, Path] = {}
        self.env_files: dict[str, Path] = {}
        self.finished: set[str] = set()  # jobs seen done: their output file goes once read to the end
        self._accounting: bool | None = None
        self.shared: SharedPoll | None = None  # issue 26: set at the first submit (it knows the run)

    # --- submit ---------------------------------------------------------------------

    def sbatch_argv(self, job: JobRequest, script: Path, output: str) -> list[str]:
        options = {**self.options, **job.options}
        argv = [
            "sbatch",
            "--parsable",
            "--job-name",
            job.name,
            "--output",
            output,
            "--chdir",
            job.cwd,
            "--export",
            "ALL",
        ]  # ALL of sbatch's own plain environment (see _sbatch_environment)
        if job.memory_mb:
            argv += ["--mem", f"{job.memory_mb}M"]
        if job.cpus:
            argv += ["--cpus-per-task", str(job.cpus)]
        if job.timeout_s:
            argv += ["--time", str(max(1, math.ceil(job.timeout_s / 60)))]  # minutes
        for key in ("partition", "account", "qos", "gres"):  # gres: issue 26
            if options.get(key):
                argv += [f"--{key}", options[key]]
        argv += shlex.split(options.get("extra_args", ""))
        argv.append(str(script))
        return argv

    def submit(self, job: JobRequest) -> str:
        folder = Path(job.run_dir) / JOBS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        n = 1
        while (folder / f"{job.task}.{n}.sh").exists():
            n += 1
        env_file = folder / f"{job.task}.{n}.env"
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(env_file_text(job.env, job.secrets))
        script = folder / f"{job.task}.{n}.sh"
        script.write_text(job_script(env_file, job.cwd, job.command))
        output = str(folder / f"{job.task}-%j.out")
        try:
            proc = _run(self.sbatch_argv(job, script, output))
        except BackendError:
            env_file.unlink(missing_ok=True)
            script.unlink(missing_ok=True)
            raise
        if proc.returncode != 0:
            env_file.unlink(missing_ok=True)
            script.unlink(missing_ok=True)
            raise _error(proc, "sbatch refused the job")
        job_id = proc.stdout.strip().split(";")[0]
        self._track(folder, job_id, Path(output.replace("%j", job_id)), env_file)
        return job_id

    def _track(self, folder: Path, job_id: str, output: Path, env_file: Path | None) -> None:
        """From now on this process waits for the job: its output, its environment file, the shared poll."""
        self.outputs[job_id] = output
        if self.shared_poll:
            if self.shared is None:
                self.shared = SharedPoll(
                    folder, self.kind, self._fetch_all, lambda f: f.get("JobState") not in LIVE_STATES
                )
            try:
                self.shared.register(job_id)
            except OSError:
                self.shared = None  # the task asks about its job on its own
        if env_file is not None:
            self.env_files[job_id] = env_file

    # --- adoption (issue 26): a new runner takes over the jobs of a run whose runner died -------------

    def find_job(self, name: str) -> str | None:
        """The newest job slurmctld still knows (queued, running, or just ended) named `name`; None when
        there is none (it never got in, or ended long enough ago to be purged: MinJobAge)."""
        ids = [int(job_id) for job_id, job_name in _squeue_jobs("all") if job_name == name and job_id.isdigit()]
        return str(max(ids)) if ids else None

    def knows(self, job_id: str) -> bool:
        """slurmctld still knows job `job_id` (queued, running or just ended)."""
        proc = _run(["scontrol", "show", "job", "-o", job_id])
        return proc.returncode == 0 and bool(proc.stdout.strip())

    def attach(self, job: JobRequest, job_id: str, group: str = "") -> None:
        """Wait for job `job_id` of `job` (submitted by a launcher that is gone) as if submitted here:
        its output file, and the environment file its script reads (removed once it ends). A matrix
        instance's element `4711_2` of its task's (`group`) job array has the array's files."""
        folder = Path(job.run_dir) / JOBS_DIR
        env_file = None
        if "_" in job_id and group:
            self._track(folder, job_id, folder / f"{group}-{job_id}.out", None)
            return
        proc = _run(["scontrol", "show", "job", "-o", job_id])
        if proc.returncode == 0 and proc.stdout.strip():
            command = _job_fields(proc.stdout).get("Command", "")
            if command.endswith(".sh"):
                env_file = Path(command[: -len(".sh")] + ".env")
        self._track(folder, job_id, folder / f"{job.task}-{job_id}.out", env_file)

    # --- state -------------------------------------------------------------------------

    def poll(self, job_id: str) -> JobState:
        if self.shared is not None:  # issue 26: one `scontrol show job` for all the run's jobs
            try:
                known, fields = self.shared.state(job_id)
            except OSError:
                known, fields = False, None
            if known:
                return self._state(job_id, fields)
        proc = _run(["scontrol", "show", "job", "-o", job_id])
        if proc.returncode == 0 and proc.stdout.strip():
            return self._state(job_id, _job_fields(proc.stdout))
        return self._gone(job_id, proc)

    def _fetch_all(self, ids: list[str]) -> dict[str, dict[str, str]]:
        """SharedPoll's query: every job slurmctld knows, in one call; those of `ids` kept."""
        proc = _run(["scontrol", "show", "job", "-o"])
        if proc.returncode != 0:
            raise _error(proc, "scontrol could not tell the jobs' states")
        wanted = set(ids)
        found: dict[str, dict[str, str]] = {}
        for line in proc.stdout.splitlines():
            if not line.startswith("JobId="):
                continue
            fields = _job_fields(line)
            for key in (fields.get("JobId", ""), *_array_members(fields)):
                if key in wanted:
                    found[key] = fields
        return found

    def _state(self, job_id: str, fields: dict[str, str]) -> JobState:
        state = fields.get("JobState", "UNKNOWN")
        done = state not in LIVE_STATES
        host = fields.get("BatchHost") or None
        if host in ("(null)", "None"):
            host = None
        reason = fields.get("Reason")
        result = JobState(
            state=state,
            done=done,
            exit_code=_exit_code(fields.get("ExitCode", "")) if done else None,
            host=host,
            queue=fields.get("Partition") or None,
            max_rss_kb=self._max_rss(job_id) if done else None,
            reason=None if reason in (None, "None", "(null)") else reason,
            run_s=_seconds(fields.get("RunTime", "")),
        )
        if state == "PENDING" and result.reason in NEVER_STARTS:
            self.cancel(job_id)
            self._forget(job_id)
            return result._replace(
                state="CANCELLED",
                done=True,
                reason=(
                    f"Slurm can never start it as asked ({result.reason}): it asks for more than partition "
                    f"{result.queue} allows or has (memory:, cpus:, timeout:, or [executors.slurm] options)"
                ),
            )
        if done:
            self._forget(job_id)
        return result

    def _gone(self, job_id: str, proc: subprocess.CompletedProcess[str]) -> JobState:
        if proc.returncode != 0 and "Invalid job id" not in (proc.stderr or ""):
            raise _error(proc, "scontrol could not tell the job's state")
        accounted = self._from_sacct(job_id)
        if accounted is not None:
            self._forget(job_id)
            return accounted
        output = self.outputs.get(job_id)
        if output is not None and "_" in job_id:  # issue 26: an array element purged from slurmctld
            try:  # its exit code, written by its script beside its output (slurm_array.py)
                code = int(output.with_suffix(".rc").read_text().strip())
            except (OSError, ValueError):
                code = None
            if code is not None:
                self._forget(job_id)
                return JobState(state="COMPLETED" if code == 0 else "FAILED", done=True, exit_code=code)
        self._forget(job_id)
        return JobState(
            state="VANISHED",
            done=True,
            exit_code=None,
            reason=f"Slurm no longer knows job {job_id} (it left the queue without a final state "
            "flank could read: was it purged, or the controller's state lost?)",
        )

    def _forget(self, job_id: str) -> None:
        self.finished.add(job_id)
        env_file = self.env_files.pop(job_id, None)
        if env_file is not None:
            env_file.unlink(missing_ok=True)  # never ran (cancelled while queued): its secrets go too

    def accounting(self) -> bool:
        if self._accounting is None:
            proc = _run(["scontrol", "show", "config"])
            self._accounting = proc.returncode == 0 and "accounting_storage/none" not in proc.stdout
        return self._accounting

    def _sacct(self, job_id: str) -> list[list[str]]:
        if not self.accounting():
            return []
        proc = _run(["sacct", "-n", "-P", "-j", job_id, "--format=JobID,State,ExitCode,NodeList,Partition,MaxRSS"])
        if proc.returncode != 0:
            return []
        return [line.split("|") for line in proc.stdout.splitlines() if line.count("|") == 5]

    def _max_rss(self, job_id: str) -> int | None:
        rows = self._sacct(job_id)
        values = [_rss_kb(row[5]) for row in rows if row[5]]
        known = [v for v in values if v is not None]
        return max(known) if known else None

    def _from_sacct(self, job_id: str) -> JobState | None:
        rows = self._sacct(job_id)
        main = next((r for r in rows if r[0] == job_id), None)
        if main is None:
            return None
        state = main[1].split()[0] if main[1] else "UNKNOWN"
        known = [v for v in (_rss_kb(r[5]) for r in rows if r[5]) if v is not None]
        return JobState(
            state=state,
            done=state not in LIVE_STATES,
            exit_code=_exit_code(main[2]),
            host=main[3] or None,
            queue=main[4] or None,
            max_rss_kb=max(known) if known else None,
        )

    def read_output(self, job_id: str, offset: int) -> bytes:
        path = self.outputs.get(job_id)
        if path is None:
            return b""
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(1 << 20)
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise BackendError(f"cannot read the job's output {path}: {exc.strerror}") from None
        if not data and job_id in self.finished:
            # all read: the raw output (secrets unmasked) goes; the task's log holds it, masked
            path.unlink(missing_ok=True)
            path.with_suffix(".rc").unlink(missing_ok=True)  # an array element's exit code (issue 26)
            del self.outputs[job_id]
        return data

    def cancel(self, job_id: str) -> None:
        proc = _run(["scancel", job_id])
        if proc.returncode != 0:
            raise _error(proc, "scancel failed")
        env_file = self.env_files.pop(job_id, None)
        if env_file is not None:  # cancelled while queued, it will never read it
            env_file.unlink(missing_ok=True)

    def jobs_of_run(self, name_prefix: str) -> list[str]:
        # queued or running, not ending (a job cancelled a moment ago is COMPLETING: not left running)
        states = "pending,configuring,running,suspended,requeued,resizing"
        return [job_id for job_id, name in _squeue_jobs(states) if name.startswith(name_prefix)]

    def check(self) -> list[str]:
        try:
            proc = _run(["sinfo", "-h", "-o", "%P|%a"])
        except BackendError as exc:
            return [str(exc)]
        if proc.returncode != 0:
            return [f"{_error(proc, 'sinfo cannot reach the cluster')} (is SLURM_CONF set, munge running?)"]
        partitions = {}
        for line in proc.stdout.splitlines():
            name, _, avail = line.strip().partition("|")
            partitions[name.rstrip("*")] = avail
        wanted = self.options.get("partition")
        if wanted and wanted not in partitions:
            return [f"partition {wanted!r} does not exist on the cluster (it has: {', '.join(partitions) or 'none'})"]
        if wanted and partitions[wanted] != "up":
            return [f"partition {wanted!r} is {partitions[wanted]}"]
        return []
