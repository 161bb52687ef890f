"""AWS Batch executor (issue 14): a task's command runs in a Batch job, through boto3.

Settings: [executors.batch] of flank.toml (settings.batch_settings_from_table): job queue, job
definition, S3 bucket, region. What one task does:

* release: the release tree goes to S3 once per commit as `<prefix>releases/<project>/<sha>.tar.gz`
  (cached: uploaded only when that key does not exist yet; a laptop's working copy by its content hash);
* secrets: the task's secrets go to a per-job S3 object `<prefix>secrets/<job name>.<random>.env`
  (server-side encrypted), which flank deletes as soon as the job is over. The job gets a presigned GET
  URL of it (valid for the task's timeout plus a minute, 12 hours without one) in FLANK_SECRETS_URL: a key
  that reads that one object only, for a short time; the secrets themselves are never on a command line, in
  the job definition or in the job's parameters or environment;
* environment: flank.yml's env:, the FLANK_* run variables and TZ (container_env), nothing else of the VM's;
* submit_job with the job definition of the settings, containerOverrides holding the task's environment,
  FLANK_RELEASE_URL/FLANK_SECRETS_URL/FLANK_WORKDIR/FLANK_COMMAND for the entrypoint (batch_entrypoint.sh,
  which the job definition's container runs), resourceRequirements VCPU/MEMORY from cpus/memory_mb and
  timeout.attemptDurationSeconds from timeout: (Batch's minimum is 60 s; flank's own loop ends shorter
  ones). retryStrategy is 1 attempt: flank's loop does the retries, so each one is a job of its own;
* poll: describe_jobs, one call (100 ids) for all the run's jobs, shared by its tasks (shared_poll.py) (SUBMITTED/PENDING/RUNNABLE = queued, STARTING/RUNNING = running,
  SUCCEEDED/FAILED = done, exit code from container.exitCode, statusReason as the reason);
* output: the job's CloudWatch Logs stream (group /aws/batch/job unless log_group says otherwise),
  read forward with get_log_events' token; each event is one line of the task's log;
* cancel: terminate_job; interrupted runs: list_jobs on the queue filtered by the job name prefix.
* issue 26 item 6, adopt, don't cancel: a runner that dies leaves its jobs to Batch; `flank run --resume N`
  finds each task's job by its name (find_job: list_jobs per queue, the JOB_NAME filter; an array child by
  its id) and re-attaches to it (attach). What it needs is in jobs/<task>-<job id>.batch.json (job_state_file):
  the job's secrets and staging objects (still deleted when the job is over, its outputs pulled back
  first) and how far its log stream was read (the forward token at a byte position no later than what the
  task's log holds: the stream goes on from there, each line once).
* issue 26: the task's declared inputs:, outputs: and artifacts: through S3 (batch_staging.py); a matrix
  task's instances as one array job (batch_array.py); `batch: {image}`: a job definition like the
  project's with that image, registered once (job_definition_for).

boto3 is imported lazily (flank commands that never meet Batch do not pay for it).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import secrets as token_source
import shlex
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from flank_ops.config.model import Config, Task, instance_parts
from flank_ops.executors import batch_array as array
from flank_ops.executors import batch_staging as staging
from flank_ops.executors.base import BackendError, JobRequest, JobState
from flank_ops.executors.shared_poll import SharedPoll
from flank_ops.fileio import locked
from flank_ops.paths import STATE_DIR, local_project_name
from flank_ops.settings import BatchSettings, S3Settings, batch_settings_from_table
from flank_ops.settings_catalogue import default

QUEUED_STATES = ("SUBMITTED", "PENDING", "RUNNABLE")
RUNNING_STATES = ("STARTING", "RUNNING")
DONE_STATES = ("SUCCEEDED", "FAILED")
LIVE_STATES = QUEUED_STATES + RUNNING_STATES
VANISHED = "VANISHED"  # our word for a job describe_jobs no longer knows

THROTTLED = ("TooManyRequestsException", "ThrottlingException", "Throttling", "SlowDown", "RequestLimitExceeded")
MIN_JOB_TIMEOUT_S = 60  # AWS Batch refuses a shorter attemptDurationSeconds
DEFAULT_URL_EXPIRY_S = 12 * 3600  # presigned URLs of a task without a timeout:
MAX_URL_EXPIRY_S = 7 * 24 * 3600  # SigV4's limit
MAX_JOB_NAME = 128  # letters, digits, '-' and '_' only
DESCRIBE_JOBS_MAX = 100  # ids per describe_jobs call (AWS's limit)
# issue 26: what a task's image: definition takes over from the project's, besides containerProperties
DEFINITION_COPIED = ("parameters", "retryStrategy", "timeout", "platformCapabilities", "propagateTags", "tags")

# what the entrypoint reads (besides the task's own environment)
ENV_RELEASE_URL = "FLANK_RELEASE_URL"
ENV_SECRETS_URL = "FLANK_SECRETS_URL"
ENV_WORKDIR = "FLANK_WORKDIR"
ENV_COMMAND = "FLANK_COMMAND"
ENV_COMMIT = "FLANK_COMMIT"

ENTRYPOINT = Path(__file__).with_name("batch_entrypoint.sh")
# run variables that name places on the VM (the entrypoint sets FLANK_RELEASE to the unpacked release)
VM_ONLY_VARIABLES = frozenset(("FLANK_HOME", "FLANK_RELEASE", "FLANK_SECRET_NAMES"))


def vm_batch_settings() -> BatchSettings:
    """[executors.batch] of this VM's flank.toml; a BackendError (not a UserError) when missing or wrong."""
    from flank_ops.errors import UserError
    from flank_ops.executors.base import not_configured_message
    from flank_ops.paths import Home
    from flank_ops.settings import batch_settings, settings_for

    try:
        settings = batch_settings(settings_for(Home()))
    except UserError as exc:
        raise BackendError(str(exc)) from None
    if settings is None:
        raise BackendError(not_configured_message("batch"))
    return settings


def batch_job_name(name: str) -> str:
    """A job name AWS Batch accepts: letters, digits, '-' and '_', at most 128 characters."""
    clean = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in name)
    return clean[:MAX_JOB_NAME]


def release_key(settings: BatchSettings, project: str, commit: str) -> str:
    return f"{settings.prefix}releases/{project}/{commit}.tar.gz"


def release_tarball(release: Path, folder: Path) -> Path:
    """The release tree (without .git or flank's own .flank/) as folder/release.tar.gz; the same files give
    the same bytes (no time in the gzip header)."""
    path = folder / "release.tar.gz"
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for entry in sorted(os.listdir(release)):
            if entry not in (".git", STATE_DIR):
                tar.add(release / entry, arcname=entry)
    return path


def secrets_file_text(secrets: dict[str, str]) -> str:
    """NAME='value' lines the entrypoint sources with `set -a` (values quoted for sh)."""
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(secrets.items()))


def project_of(job: JobRequest) -> str:
    """The project's name: options["project"] or FLANK_PROJECT when given, else from the run folder
    (<home>/<project>/runs/<pipeline>/<run>; local mode: <working copy>/.flank/runs/...)."""
    if job.options.get("project"):
        return str(job.options["project"])
    if job.env.get("FLANK_PROJECT"):
        return job.env["FLANK_PROJECT"]
    project_dir = Path(job.run_dir).parents[2]
    return local_project_name(project_dir.parent) if project_dir.name == STATE_DIR else project_dir.name


def is_release_checkout(job: JobRequest) -> bool:
    """A deployed release, $FLANK_HOME/<project>/releases/<sha> (immutable), not a laptop's working copy."""
    release = Path(job.release_dir)
    return bool(job.commit) and release.name == job.commit and release.parent.name == "releases"


def job_config(job: JobRequest) -> tuple[Config | None, Task | None]:
    """The flank.yml the task comes from and its declaration there: the copy the push validated for a
    release (git/release_config), the working copy's flank.yml on a laptop; (None, None) when it cannot
    be read."""
    from flank_ops.config.load import FILENAME, load_config_file
    from flank_ops.errors import UserError
    from flank_ops.git.release_config import load_release_config
    from flank_ops.paths import Home, ProjectPaths

    release = Path(job.release_dir)
    try:
        if is_release_checkout(job):
            paths = ProjectPaths(Home(release.parents[2]), release.parents[1].name)
            config = load_release_config(paths, job.commit)
        else:
            config = load_config_file(release / FILENAME)
    except (UserError, OSError):
        return None, None
    pipeline = config.pipelines.get(job.env.get("FLANK_PIPELINE", ""))
    if pipeline is None:
        return config, None
    # an instance made at run time (not in flank.yml's expansion) has its matrix task's declaration
    parts = instance_parts(job.task)
    return config, pipeline.tasks.get(job.task) or (pipeline.tasks.get(parts[0]) if parts else None)


def declared_env_names(job: JobRequest) -> set[str]:
    """The names flank.yml's `env:` gives the task (the project's and the task's own); empty when
    flank.yml cannot be read (the job then gets the FLANK_* variables only)."""
    config, task = job_config(job)
    return set(config.env if config else ()) | set(task.env if task else ())


def container_env(job: JobRequest, declared: set[str] | None = None) -> dict[str, str]:
    """What of the task's environment goes into the job: flank.yml's `env:` (`declared`: its names, read
    from flank.yml when not given), the FLANK_* run variables and TZ. Nothing else of the VM's environment
    (AWS credentials, PATH, HOME...: the job's description is readable by anyone allowed
    batch:DescribeJobs, and the image has its own PATH), no VM paths."""
    if declared is None:
        declared = declared_env_names(job)
    return {
        k: v
        for k, v in job.env.items()
        if k in declared
        or k == "TZ"
        or (k.startswith("FLANK_") and k not in VM_ONLY_VARIABLES and not k.startswith("FLANK_PERSIST"))
    }


def url_expiry_s(timeout_s: float | None) -> int:
    if not timeout_s:
        return DEFAULT_URL_EXPIRY_S
    return max(MIN_JOB_TIMEOUT_S, min(MAX_URL_EXPIRY_S, int(timeout_s) + MIN_JOB_TIMEOUT_S))


def _arn_name(arn: str | None) -> str | None:
    """`arn:aws:batch:...:job-queue/name` -> name; `.../job-definition/name:3` -> name."""
    if not arn:
        return None
    return arn.rsplit("/", 1)[-1].split(":", 1)[0]


def where_it_runs(info: dict[str, Any]) -> str:
    """The ECS container instance or task the job runs in, when Batch says; else "aws-batch"."""
    container = info.get("container") or {}
    attempts = info.get("attempts") or []
    last = (attempts[-1].get("container") or {}) if attempts else {}
    for arn in (
        container.get("containerInstanceArn"),
        last.get("containerInstanceArn"),
        container.get("taskArn"),
        last.get("taskArn"),
    ):
        if isinstance(arn, str) and arn.startswith("arn:") and ":ecs:" in arn:
            return arn.rsplit("/", 1)[-1]
    return "aws-batch"


class _LogCursor:
    """How far a job's log stream was read: the forward token, and the bytes not yet handed out."""

    def __init__(self, token: str | None = None, base: int = 0) -> None:
        self.token: str | None = token
        self.read_at = 0.0  # time.monotonic() of the last get_log_events
        self.base = base  # offset of buf[0] in the task's output
        self.buf = b""
        # issue 26: (token, byte offset the stream goes on at with it): where a re-attaching launcher may start
        self.marks: list[tuple[str | None, int]] = [(token, base)]
        self.saved: tuple[str | None, int] | None = (token, base) if token else None


STATE_SUFFIX = ".batch.json"


def job_state_file(run_dir: str, task: str, job_id: str) -> Path:
    """issue 26: jobs/<task>-<job id>.batch.json: the job's S3 objects (secrets, inputs list, results) and
    how far its log was read ({"log": {"token", "at"}}), for a launcher that re-attaches to it."""
    return Path(run_dir) / "jobs" / f"{task}-{job_id}{STATE_SUFFIX}"


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _reason(info: dict[str, Any], container: dict[str, Any], attempts: list[Any]) -> str | None:
    """issue 26: the job's statusReason and its container's reason ("CannotPullContainerError: ..."),
    both when AWS gives both: the container's is often the one that says what went wrong."""
    own = container.get("reason") or ((attempts[-1].get("container") or {}).get("reason") if attempts else None)
    said = [str(r) for r in (info.get("statusReason"), own) if r]
    return "; ".join(dict.fromkeys(said)) or None


class _JobFiles(NamedTuple):
    """issue 26: a job's staging objects in S3, and where its results go on the VM."""

    inputs_key: str | None
    results_key: str | None
    release_dir: str


class _Staged(NamedTuple):
    """issue 26: what stage_files sent: the inputs list, the results objects (one per cell) and their
    presigned PUTs, the job's variables for them."""

    inputs_key: str | None
    results_keys: list[str]
    results_urls: list[str]
    env: dict[str, str]


class BatchBackend:
    kind = "batch"
    shared_poll = True  # issue 26 (bench/poll.py turns it off to measure the old way)

    def __init__(self, options: dict[str, Any] | BatchSettings) -> None:
        """options: the [executors.batch] table of flank.toml (or its parsed BatchSettings); empty: the
        VM-wide table of $FLANK_HOME/flank.toml (the interrupted-run cleanup asks so), and a BackendError
        when there is none."""
        if isinstance(options, BatchSettings):
            self.settings = options
        elif options:
            self.settings = batch_settings_from_table(options)
        else:
            self.settings = vm_batch_settings()
        self._clients: dict[str, Any] = {}
        self._cursors: dict[str, _LogCursor] = {}
        self._streams: dict[str, str] = {}
        self._secret_keys: dict[str, str] = {}
        self._job_files: dict[str, _JobFiles] = {}  # issue 26: job id -> its staging objects
        self._image_definitions: dict[str, str] = {}  # issue 26: image -> job definition name:revision
        self._array_tried = False  # issue 26: a matrix instance's first submit may join an array job
        self._array_children: dict[str, tuple[str, str, str]] = {}  # child id -> (run dir, group, instance)
        self._polled: dict[str, tuple[float, JobState]] = {}  # job id -> (when, what describe_jobs said)
        self._states: dict[str, tuple[Path, dict[str, Any]]] = {}  # issue 26: job id -> its job_state_file
        self.extra_queues: list[str] = []  # issue 26: queues a run's tasks named (looked in for its jobs too)
        self.shared: SharedPoll | None = None  # issue 26: set at the first submit (it knows the run)

    # --- clients and errors ----------------------------------------------
    def s3_settings(self) -> S3Settings:
        s = self.settings
        return S3Settings(
            bucket=s.bucket,
            prefix=s.prefix,
            region=s.region,
            endpoint_url=s.endpoint_url,
            publish_site=False,
            site_bucket=s.bucket,
            site_prefix=s.prefix,
            multipart_mb=default("s3", "multipart_mb"),
            timeout_s=s.timeout_s,
        )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            if service == "s3":
                from flank_ops.s3 import make_client

                self._clients[service] = make_client(self.s3_settings())
            else:
                import boto3
                from botocore.config import Config as BotoConfig

                config = BotoConfig(
                    connect_timeout=self.settings.timeout_s,
                    read_timeout=self.settings.timeout_s,
                    retries={"total_max_attempts": 3, "mode": "standard"},
                )
                session = boto3.session.Session(region_name=self.settings.region)
                self._clients[service] = session.client(service, endpoint_url=self.settings.endpoint_url, config=config)
        return self._clients[service]

    def describe(self, exc: BaseException, service: str) -> str:
        """One line saying what went wrong talking to AWS."""
        from botocore import exceptions as bx

        if service == "s3":
            from flank_ops.s3 import describe_error

            return "S3: " + describe_error(exc, self.s3_settings())
        where = {"batch": "AWS Batch", "logs": "CloudWatch Logs"}.get(service, service)
        if self.settings.endpoint_url:
            where += f" at {self.settings.endpoint_url}"
        if isinstance(exc, bx.NoCredentialsError):
            return f"{where}: no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or an instance role)"
        if isinstance(exc, bx.NoRegionError):
            return f"{where}: no AWS region (set region in [executors.batch] of flank.toml)"
        if isinstance(exc, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
            return f"{where} did not answer within {self.settings.timeout_s:g}s"
        if isinstance(exc, bx.EndpointConnectionError):
            return f"cannot connect to {where}"
        if isinstance(exc, bx.ClientError):
            err = exc.response.get("Error", {})
            code = err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "error"
            message = err.get("Message") or ""
            if str(code) in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "403"):
                message = (message + " — check the AWS credentials and the IAM permissions in the README").strip(" —")
            return f"{where}: {code}" + (f": {message}" if message else "")
        if isinstance(exc, bx.BotoCoreError):
            return f"{where}: {exc}"
        return f"{where}: {type(exc).__name__}: {exc}"

    def call(self, service: str, what: str, method: str, **kwargs: Any) -> Any:
        """client(service).method(**kwargs); any failure becomes a BackendError saying `what` failed."""
        from botocore import exceptions as bx

        try:
            return getattr(self.client(service), method)(**kwargs)
        except (bx.BotoCoreError, bx.ClientError) as exc:
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, bx.ClientError) else None
            # throttled even after boto3's retries: for now only (a submit is tried again, the task queued)
            raise BackendError(f"{what}: {self.describe(exc, service)}", transient=code in THROTTLED) from None

    # --- the release, once per commit ------------------------------------
    def ensure_release(self, job: JobRequest) -> str:
        """Upload the release tree as a tarball unless this commit's is already in the bucket; its key.
        Parallel tasks of one run take turns (a lock in the run folder), so the first uploads, the rest find it."""
        with locked(Path(job.run_dir) / ".batch-release.lock"):
            return self._ensure_release(job)

    def _ensure_release(self, job: JobRequest) -> str:
        project = project_of(job)
        release = Path(job.release_dir)
        if is_release_checkout(job):
            # a deployed release (releases/<sha>) never changes: its commit names it
            key = release_key(self.settings, project, job.commit)
            if not self._exists(key):
                with tempfile.TemporaryDirectory(prefix="flank-batch-") as tmp:
                    self._upload(release_tarball(release, Path(tmp)), key)
            return key
        # a laptop's working copy (flank run --local): what is in it decides
        with tempfile.TemporaryDirectory(prefix="flank-batch-") as tmp:
            tarball = release_tarball(release, Path(tmp))
            digest = hashlib.sha256(tarball.read_bytes()).hexdigest()[:20]
            key = release_key(self.settings, project, f"worktree-{digest}")
            if not self._exists(key):
                self._upload(tarball, key)
        return key

    def _exists(self, key: str, what: str = "the release") -> bool:
        from botocore import exceptions as bx

        try:
            self.client("s3").head_object(Bucket=self.settings.bucket, Key=key)
            return True
        except bx.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise BackendError(f"could not check {what} in S3: {self.describe(exc, 's3')}") from None
        except bx.BotoCoreError as exc:
            raise BackendError(f"could not check {what} in S3: {self.describe(exc, 's3')}") from None

    def _upload(self, path: Path, key: str, what: str = "the release", content_type: str = "application/gzip") -> None:
        from flank_ops.s3 import upload_file

        try:
            # another run (of the same commit) may upload the same content at the same time: last writer wins
            upload_file(
                self.client("s3"), self.s3_settings(), path, self.settings.bucket, key, {"ContentType": content_type}
            )
        except Exception as exc:  # boto3 wraps ClientErrors in S3UploadFailedError
            raise BackendError(f"could not upload {what} to S3: {self.describe(exc, 's3')}") from None

    def presign(self, key: str, expiry_s: int) -> str:
        return str(
            self.client("s3").generate_presigned_url(
                "get_object", Params={"Bucket": self.settings.bucket, "Key": key}, ExpiresIn=expiry_s
            )
        )

    def _drop_secrets(self, job_id: str) -> None:
        key = self._secret_keys.pop(job_id, None)
        if key:
            self._delete_object(key)

    def _delete_object(self, key: str) -> None:
        from botocore import exceptions as bx

        try:
            self.client("s3").delete_object(Bucket=self.settings.bucket, Key=key)
        except (bx.BotoCoreError, bx.ClientError):
            pass  # its presigned URL expires anyway; a bucket lifecycle rule on secrets/ cleans up (README)

    # --- issue 26: a task's own image ---------------------------------------
    def job_definition_for(self, job: JobRequest) -> str:
        """The job definition a task is submitted with: its own `batch: {job_definition}`, or for
        `batch: {image}` one like the project's with that image (found, or registered once), else the
        project's."""
        image = job.options.get("image")
        if not image:
            return job.options.get("job_definition") or self.settings.job_definition
        if image not in self._image_definitions:
            with locked(Path(job.run_dir) / ".batch-definition.lock"):  # parallel tasks: one registers
                self._image_definitions[image] = self._definition_with_image(image)
        return self._image_definitions[image]

    def _definition_with_image(self, image: str) -> str:
        """`<project's definition>-img-<hash>`: an ACTIVE revision with this image when there is one,
        else a new one with the project's definition's container properties and `image` (so its
        container still runs flank's entrypoint)."""
        base = self.settings.job_definition
        base_name = _arn_name(base) if base.startswith("arn:") else base.split(":", 1)[0]
        name = batch_job_name(f"{base_name}-img-{hashlib.sha256(image.encode()).hexdigest()[:12]}")
        existing = self.call(
            "batch",
            f"could not look for a job definition with image {image}",
            "describe_job_definitions",
            jobDefinitionName=name,
            status="ACTIVE",
        ).get("jobDefinitions")
        for definition in sorted(existing or [], key=lambda d: -int(d.get("revision") or 0)):
            if (definition.get("containerProperties") or {}).get("image") == image:
                return f"{name}:{definition['revision']}"
        found = self.call(
            "batch",
            f"could not describe job definition {base}",
            "describe_job_definitions",
            **self._definition_query(base),
        ).get("jobDefinitions")
        active = sorted(
            (d for d in found or [] if d.get("status") == "ACTIVE"), key=lambda d: -int(d.get("revision") or 0)
        )
        if not active or not active[0].get("containerProperties"):
            raise BackendError(
                f"AWS Batch job definition {base!r} does not exist or is no container definition: "
                f"a task's image: is registered like it"
            )
        model = active[0]
        registered = self.call(
            "batch",
            f"could not register a job definition with image {image}",
            "register_job_definition",
            jobDefinitionName=name,
            type="container",
            containerProperties={**model["containerProperties"], "image": image},
            **{k: model[k] for k in DEFINITION_COPIED if model.get(k)},
        )
        return f"{name}:{registered['revision']}"

    # --- issue 26: the task's declared files --------------------------------
    def stage_files(self, job: JobRequest, task: Task | None, folder: str, expiry_s: int, cells: int = 1) -> _Staged:
        """The task's inputs into the bucket (by content: only those not there yet) and the list the
        entrypoint fetches them by; a results object (and presigned PUT) per cell when it declares
        outputs: or artifacts:."""
        try:
            declared = staging.task_staging(task, job.release_dir)
        except staging.StagingError as exc:
            raise BackendError(f"cannot send the task's files: {exc}") from None
        env: dict[str, str] = {}
        inputs_key = None
        from flank_ops.incremental.fingerprints import FingerprintError, HashCache

        entries = [(staging.TREE, self.presign(key, expiry_s), name) for name, key in self.ship_setup(job)]
        cache_file = staging.hash_cache_file(job.release_dir, job.commit, job.check_path)
        cache = HashCache(cache_file or Path(os.devnull))
        for rel in declared.inputs:
            path = Path(job.release_dir) / rel
            try:
                key = staging.content_key(self.settings.prefix, cache.digest(str(path), f"the input {rel}"))
            except FingerprintError as exc:
                raise BackendError(f"cannot send the task's files: {exc}") from None
            if not self._exists(key, f"the input {rel}"):
                self._upload(path, key, f"the input {rel}", "application/octet-stream")
            entries.append((staging.FILE, self.presign(key, expiry_s), rel))
        if cache_file is not None:
            cache.save()
        if entries:
            inputs_key = folder + "inputs.txt"
            self._put_text(inputs_key, staging.inputs_list_text(entries), "the list of the task's inputs")
            env[staging.ENV_STAGE_URL] = self.presign(inputs_key, expiry_s)
        keys: list[str] = []
        urls: list[str] = []
        if declared.results:
            env[staging.ENV_RESULTS] = "\n".join(declared.results)
            keys = [folder + ("results.tar.gz" if cells == 1 else f"results-{i}.tar.gz") for i in range(cells)]
            urls = [
                str(
                    self.client("s3").generate_presigned_url(
                        "put_object", Params={"Bucket": self.settings.bucket, "Key": key}, ExpiresIn=expiry_s
                    )
                )
                for key in keys
            ]
        return _Staged(inputs_key, keys, urls, env)

    def ship_setup(self, job: JobRequest) -> list[tuple[str, str]]:
        """With ship_setup: [(name, object key)] of the release's setup products, each uploaded once per
        setup build (parallel tasks take turns, as for the release)."""
        if not self.settings.ship_setup:
            return []
        build, products = staging.setup_products(job.release_dir, job.commit)
        if not build:
            return []
        shipped = []
        with locked(Path(job.run_dir) / ".batch-release.lock"):
            for name, target in products:
                key = f"{self.settings.prefix}setup/{project_of(job)}/{build}/{name}.tar.gz"
                if not self._exists(key, f"setup's {name}"):
                    with tempfile.TemporaryDirectory(prefix="flank-batch-") as tmp:
                        self._upload(staging.product_tarball(name, target, Path(tmp)), key, f"setup's {name}")
                shipped.append((name, key))
        return shipped

    def _put_text(self, key: str, text: str, what: str) -> None:
        self.call(
            "s3",
            f"could not store {what} in S3",
            "put_object",
            Bucket=self.settings.bucket,
            Key=key,
            Body=text.encode(),
            ContentType="text/plain",
        )

    def bring_back(self, job_id: str, succeeded: bool) -> str | None:
        """The job's outputs and artifacts into the release on the VM; None, or why the task fails
        (a success whose results did not reach S3 or cannot be unpacked)."""
        from botocore import exceptions as bx

        files = self._job_files.pop(job_id, None)
        if files is None or files.results_key is None:
            self._drop_job_files(files)
            return None
        problem = None
        with tempfile.TemporaryDirectory(prefix="flank-batch-") as tmp:
            tarball = Path(tmp) / "results.tar.gz"
            try:
                self.client("s3").download_file(self.settings.bucket, files.results_key, str(tarball))
                staging.unpack_results(tarball, Path(files.release_dir))
            except bx.ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code"))
                if code not in ("404", "NoSuchKey", "NotFound"):
                    problem = f"could not fetch its outputs from S3: {self.describe(exc, 's3')}"
                elif succeeded:
                    problem = "its outputs never reached S3 (see the entrypoint's lines in the log)"
            except bx.BotoCoreError as exc:
                problem = f"could not fetch its outputs from S3: {self.describe(exc, 's3')}"
            except (OSError, tarfile.TarError, staging.StagingError) as exc:
                problem = f"could not unpack its outputs: {exc}"
        self._drop_job_files(files)
        return problem if succeeded else None

    def _drop_job_files(self, files: _JobFiles | None) -> None:
        for key in (files.inputs_key, files.results_key) if files else ():
            if key:
                self._delete_object(key)

    # --- Backend ---------------------------------------------------------
    def submit(self, job: JobRequest) -> str:
        config, task = job_config(job)
        if task is not None and task.group and not self._array_tried:
            # issue 26: the instances of a matrix task go as one array job (batch_array.py); a retry alone
            self._array_tried = True
            group = task.group
            array.lock_file(job.run_dir, group).parent.mkdir(parents=True, exist_ok=True)
            with locked(array.lock_file(job.run_dir, group)):
                sent = array.read(job.run_dir, group)
                if sent is not None:
                    child = array.child_id(sent, job.task)
                    if child is not None:
                        return self._attach(job, group, sent, child)
                else:
                    members = array.members(job, config, task)
                    if job.task in members:
                        assert config is not None
                        return self._submit(job, config, task, (group, members))
        return self._submit(job, config, task, None)

    def _attach(self, job: JobRequest, group: str, sent: dict[str, Any], child: str) -> str:
        index = int(child.rsplit(":", 1)[1])
        results = sent.get("results_keys") or []
        self._job_files[child] = _JobFiles(None, results[index] if results else None, job.release_dir)
        self._array_children[child] = (job.run_dir, group, job.task)
        self._states[child] = (job_state_file(job.run_dir, job.task, child), {})
        self._register(job, child)
        return child

    def _submit(
        self, job: JobRequest, config: Config | None, task: Task | None, cells: tuple[str, list[str]] | None
    ) -> str:
        """One job, or with `cells` (matrix task, its instances) one array job; the id of `job`'s own."""
        expiry = url_expiry_s(job.timeout_s)
        release_url = self.presign(self.ensure_release(job), expiry)
        name = batch_job_name(job.name[: len(job.name) - len(job.task)] + cells[0] if cells else job.name)
        workdir = os.path.relpath(job.cwd, job.release_dir) if job.cwd else "."
        if workdir.startswith(".."):
            workdir = "."
        declared = set(config.env if config else ()) | set(task.env if task else ())
        folder = f"{self.settings.prefix}{staging.JOBS_PREFIX}{name}.{token_source.token_hex(8)}/"
        staged = self.stage_files(job, task, folder, expiry, len(cells[1]) if cells else 1)
        env = {
            **container_env(job, declared),
            **staged.env,
            ENV_RELEASE_URL: release_url,
            ENV_WORKDIR: workdir,
            ENV_COMMAND: job.command,
            ENV_COMMIT: job.commit,
        }
        shared: list[str] = []  # objects all children read (an array's)
        if cells:
            assert config is not None
            env = {k: v for k, v in env.items() if not array.is_cell_variable(k)}
            pipeline = job.env.get("FLANK_PIPELINE", "")
            cells_key = folder + "cells.txt"
            self._put_text(cells_key, array.cells_text(config, pipeline, cells[1], staged.results_urls), "the cells")
            env[array.ENV_CELLS_URL] = self.presign(cells_key, expiry)
            shared = [k for k in (cells_key, staged.inputs_key) if k]
        elif staged.results_urls:
            env[staging.ENV_RESULTS_URL] = staged.results_urls[0]
        secrets_key = None
        if job.secrets:
            secrets_key = f"{self.settings.prefix}secrets/{name}.{token_source.token_hex(16)}.env"
            self.call(
                "s3",
                "could not store the task's secrets in S3",
                "put_object",
                Bucket=self.settings.bucket,
                Key=secrets_key,
                Body=secrets_file_text(job.secrets).encode(),
                ServerSideEncryption="AES256",
                ContentType="text/plain",
            )
            env[ENV_SECRETS_URL] = self.presign(secrets_key, expiry)
        overrides: dict[str, Any] = {"environment": [{"name": k, "value": v} for k, v in sorted(env.items())]}
        resources = []
        if job.cpus:
            resources.append({"type": "VCPU", "value": str(job.cpus)})
        if job.memory_mb:
            resources.append({"type": "MEMORY", "value": str(job.memory_mb)})
        if resources:
            overrides["resourceRequirements"] = resources
        kwargs: dict[str, Any] = {
            "jobName": name,
            "jobQueue": job.options.get("job_queue") or self.settings.job_queue,
            "jobDefinition": self.job_definition_for(job),
            "containerOverrides": overrides,
            "retryStrategy": {"attempts": 1},
        }
        if cells:
            kwargs["arrayProperties"] = {"size": len(cells[1])}
        if job.timeout_s:
            kwargs["timeout"] = {"attemptDurationSeconds": max(MIN_JOB_TIMEOUT_S, int(job.timeout_s + 0.999))}
        try:
            answer = self.call(
                "batch", f"could not submit {name} to job queue {kwargs['jobQueue']}", "submit_job", **kwargs
            )
        except BackendError:
            for key in (secrets_key, staged.inputs_key, *shared):
                if key:
                    self._delete_object(key)
            raise
        job_id = str(answer["jobId"])
        if cells:
            sent = {
                "job_id": job_id,
                "job_name": name,
                "members": cells[1],
                "results_keys": staged.results_keys,
                "shared_keys": [*shared, *([secrets_key] if secrets_key else [])],
                "done": [],
            }
            array.write(job.run_dir, cells[0], sent)
            child = array.child_id(sent, job.task)
            assert child is not None
            self._say_array(job, sent)
            return self._attach(job, cells[0], sent, child)
        if secrets_key:
            self._secret_keys[job_id] = secrets_key
        results = staged.results_keys[0] if staged.results_keys else None
        if staged.inputs_key or staged.results_keys:
            self._job_files[job_id] = _JobFiles(staged.inputs_key, results, job.release_dir)
        # issue 26: what a launcher re-attaching to the job needs (its objects go when the job is over)
        state = {"secrets_key": secrets_key, "inputs_key": staged.inputs_key, "results_key": results}
        self._states[job_id] = (job_state_file(job.run_dir, job.task, job_id), state)
        self._save_state(job_id)
        self._register(job, job_id)
        return job_id

    # --- issue 26: adoption: a new runner takes over the jobs of a run whose runner died ---------------
    def _save_state(self, job_id: str) -> None:
        from flank_ops.fileio import atomic_write_json

        path, state = self._states[job_id]
        try:
            atomic_write_json(path, state)
        except OSError:
            pass  # a re-attaching launcher then reads the log from its head (and skips what it has)

    def _forget_state(self, job_id: str) -> None:
        known = self._states.pop(job_id, None)
        if known is not None:
            known[0].unlink(missing_ok=True)

    def queues(self) -> list[str]:
        return list(dict.fromkeys([self.settings.job_queue, *self.extra_queues]))

    def _summaries(self, queue: str, name_filter: str) -> Iterator[dict[str, Any]]:
        """list_jobs of `queue` with the JOB_NAME filter (`prefix*` or a whole name): every status, all pages."""
        kwargs: dict[str, Any] = {"jobQueue": queue, "filters": [{"name": "JOB_NAME", "values": [name_filter]}]}
        while True:
            page = self.call("batch", f"could not list the jobs of queue {queue}", "list_jobs", **kwargs)
            yield from page.get("jobSummaryList") or []
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]

    def find_job(self, name: str) -> str | None:
        """The newest job named `name` Batch still knows (queued, running or ended since: its rest of the log
        and its outputs are still to be had); None when there is none."""
        wanted = batch_job_name(name)
        newest: dict[str, Any] | None = None
        for queue in self.queues():
            for summary in self._summaries(queue, wanted):
                if summary.get("jobName") == wanted and (
                    newest is None or int(summary.get("createdAt") or 0) > int(newest.get("createdAt") or 0)
                ):
                    newest = summary
        return str(newest["jobId"]) if newest else None

    def knows(self, job_id: str) -> bool:
        """Batch still knows job `job_id` (an array child `<array id>:<index>` too)."""
        answer = self.call("batch", f"could not ask AWS Batch about job {job_id}", "describe_jobs", jobs=[job_id])
        return bool(answer.get("jobs"))

    def attach(self, job: JobRequest, job_id: str, group: str = "") -> None:
        """Wait for job `job_id` of `job` (submitted by a launcher that is gone) as if submitted here: its
        objects in S3 (deleted when it is over, its outputs pulled back first), its log stream from where
        the dead launcher's cursor was, a matrix instance's child of its task's (`group`) array job."""
        self._array_tried = True  # a retry after this job is a job of its own
        if ":" in job_id and group:
            sent = array.read(job.run_dir, group)
            if sent is None or array.child_id(sent, job.task) != job_id:
                raise BackendError(f"the run has no record of array job {job_id.rsplit(':', 1)[0]} (jobs/)")
            self._attach(job, group, sent, job_id)
        path = job_state_file(job.run_dir, job.task, job_id)
        state = _read_json(path)
        self._states[job_id] = (path, state)
        if state.get("secrets_key"):
            self._secret_keys[job_id] = str(state["secrets_key"])
        if job_id not in self._job_files and (state.get("inputs_key") or state.get("results_key")):
            self._job_files[job_id] = _JobFiles(state.get("inputs_key"), state.get("results_key"), job.release_dir)
        log = state.get("log")
        if isinstance(log, dict) and log.get("token") and isinstance(log.get("at"), int):
            self._cursors[job_id] = _LogCursor(str(log["token"]), int(log["at"]))
        if job_id not in self._array_children:
            self._register(job, job_id)

    def let_go(self, job: JobRequest, job_id: str) -> None:
        """Job `job_id` of `job` is gone from Batch: the objects it left in S3 (its secrets) go, and its file."""
        path = job_state_file(job.run_dir, job.task, job_id)
        state = _read_json(path)
        for key in ("secrets_key", "inputs_key", "results_key"):
            if state.get(key):
                self._delete_object(str(state[key]))
        path.unlink(missing_ok=True)

    def drop_run_objects(self, run_dir: Path, secrets_only: bool) -> None:
        """No job of the run is left: its jobs' secrets objects go (`secrets_only`: a resume may still
        pull back the outputs of a job that ended), else every object its jobs left and their files."""
        folder = Path(run_dir) / "jobs"
        secrets_prefix = f"{self.settings.prefix}secrets/"
        for path in sorted(folder.glob(f"*{STATE_SUFFIX}")):
            state = _read_json(path)
            keys = [state.get("secrets_key")] if secrets_only else [state.get(k) for k in state if k.endswith("_key")]
            for key in keys:
                if key:
                    self._delete_object(str(key))
            if not secrets_only:
                path.unlink(missing_ok=True)
            elif state.pop("secrets_key", None):
                from flank_ops.fileio import atomic_write_json

                atomic_write_json(path, state)
        for path in sorted(folder.glob("batch-array-*.json")):
            sent = _read_json(path)
            keys = [*(sent.get("shared_keys") or []), *([] if secrets_only else sent.get("results_keys") or [])]
            for key in keys:
                if isinstance(key, str) and (not secrets_only or key.startswith(secrets_prefix)):
                    self._delete_object(key)

    def remember_read(self, job_id: str, size: int) -> None:
        """The task's log holds the job's first `size` bytes: keep the newest stream position at or before
        them (a launcher re-attaching later reads on from there, skipping what the log already has)."""
        cursor = self._cursors.get(job_id)
        if cursor is None or job_id not in self._states:
            return
        before = [mark for mark in cursor.marks if mark[1] <= size]
        if not before:
            return
        cursor.marks = [before[-1], *(mark for mark in cursor.marks if mark[1] > size)]
        if before[-1] == cursor.saved or before[-1][0] is None:
            return
        cursor.saved = before[-1]
        self._states[job_id][1]["log"] = {"token": before[-1][0], "at": before[-1][1]}
        self._save_state(job_id)

    def _say_array(self, job: JobRequest, sent: dict[str, Any]) -> None:
        """A line in the submitting instance's log: which array job its siblings are in."""
        from flank_ops.task.task_exec import TaskLog

        log = TaskLog(os.path.join(job.run_dir, "logs", f"{job.task}.log"))
        try:
            log.write(
                f"flank: the {len(sent['members'])} instances go as AWS Batch array job {sent['job_id']} "
                f"({sent['job_name']}); each follows its own child <array job id>:<index>\n".encode()
            )
        finally:
            log.close()

    def _register(self, job: JobRequest, job_id: str) -> None:
        if self.shared_poll and job.run_dir:  # issue 26: one describe_jobs for all the run's jobs
            if self.shared is None:
                self.shared = SharedPoll(
                    Path(job.run_dir) / "jobs",
                    self.kind,
                    self._describe_all,
                    lambda info: info.get("status") in DONE_STATES,
                    max_age_s=self.settings.poll_interval_s,
                )
            try:
                self.shared.register(job_id)
            except OSError:
                self.shared = None

    def _child_over(self, job_id: str) -> None:
        """An array child is over: when it is the last of its array, the shared objects go."""
        member = self._array_children.pop(job_id, None)
        if member is None:
            return
        run_dir, group, task = member
        try:
            with locked(array.lock_file(run_dir, group)):
                keys = array.mark_done(run_dir, group, task)
        except OSError:
            return
        for key in keys:
            self._delete_object(key)

    def _describe_all(self, ids: list[str]) -> dict[str, Any]:
        """SharedPoll's query: describe_jobs, DESCRIBE_JOBS_MAX ids a call."""
        found: dict[str, Any] = {}
        for start in range(0, len(ids), DESCRIBE_JOBS_MAX):
            chunk = ids[start : start + DESCRIBE_JOBS_MAX]
            answer = self.call("batch", "could not ask AWS Batch about the run's jobs", "describe_jobs", jobs=chunk)
            found.update((str(info.get("jobId")), info) for info in answer.get("jobs") or [])
        return found

    def _describe_job(self, job_id: str) -> dict[str, Any] | None:
        if self.shared is not None:
            try:
                known, info = self.shared.state(job_id)
            except OSError:
                known, info = False, None
            if known:
                return dict(info)
        jobs = self.call("batch", f"could not ask AWS Batch about job {job_id}", "describe_jobs", jobs=[job_id])
        found = jobs.get("jobs") or []
        return found[0] if found else None

    def poll(self, job_id: str) -> JobState:
        """describe_jobs, at most once per poll_interval for a job (the loop asks more often; AWS's API
        limits are per account, and fifty tasks in parallel must not exhaust them)."""
        now = time.monotonic()
        last = self._polled.get(job_id)
        if last is not None and not last[1].done and now - last[0] < self.settings.poll_interval_s:
            return last[1]
        state = self._poll(job_id)
        self._polled[job_id] = (now, state)
        return state

    def _poll(self, job_id: str) -> JobState:
        info = self._describe_job(job_id)
        if info is None:
            self._drop_secrets(job_id)
            self._child_over(job_id)
            self._drop_job_files(self._job_files.pop(job_id, None))
            self._forget_state(job_id)
            return JobState(VANISHED, True, None, reason=f"job {job_id} vanished: AWS Batch no longer knows it")
        status = str(info.get("status"))
        container = info.get("container") or {}
        attempts = info.get("attempts") or []
        stream = container.get("logStreamName") or (
            (attempts[-1].get("container") or {}).get("logStreamName") if attempts else None
        )
        if stream:
            self._streams[job_id] = stream
        elif status in RUNNING_STATES + DONE_STATES:
            # AWS's own name for the awslogs driver's stream, when describe_jobs does not give it yet
            self._streams.setdefault(job_id, f"{_arn_name(info.get('jobDefinition'))}/default/{job_id}")
        done = status in DONE_STATES
        if done:
            self._drop_secrets(job_id)
            self._child_over(job_id)
        exit_code = container.get("exitCode")
        if exit_code is None and attempts:
            exit_code = (attempts[-1].get("container") or {}).get("exitCode")
        if exit_code is None and done:
            exit_code = self._exit_code_from_list(info)
        reason = _reason(info, container, attempts)
        if done and job_id in self._job_files:  # issue 26: its files back on the VM before it counts as done
            problem = self.bring_back(job_id, status == "SUCCEEDED")
            if problem:
                status, exit_code, reason = "FAILED", None, problem
        if done:
            self._forget_state(job_id)
        started = info.get("startedAt")
        return JobState(
            state=status,
            done=done,
            exit_code=int(exit_code) if exit_code is not None else None,
            host=where_it_runs(info) if status not in QUEUED_STATES else None,
            queue=_arn_name(info.get("jobQueue")),
            reason=reason,
            # issue 26: an adopted job's timeout: counts the time it ran before the re-attachment
            run_s=max(0.0, time.time() - int(started) / 1000) if isinstance(started, int) and not done else None,
        )

    def _exit_code_from_list(self, info: dict[str, Any]) -> int | None:
        """list_jobs' summary of a finished job also carries container.exitCode (moto's describe_jobs
        leaves it out); None when the job never ran a container (terminated in the queue, timed out)."""
        queue = info.get("jobQueue") or self.settings.job_queue
        try:
            page = self.call(
                "batch",
                "could not list the job's queue",
                "list_jobs",
                jobQueue=queue,
                filters=[{"name": "JOB_NAME", "values": [str(info.get("jobName"))]}],
            )
        except BackendError:
            return None
        for summary in page.get("jobSummaryList") or []:
            if summary.get("jobId") == info.get("jobId"):
                code = (summary.get("container") or {}).get("exitCode")
                return int(code) if code is not None else None
        return None

    def read_output(self, job_id: str, offset: int) -> bytes:
        from botocore import exceptions as bx

        stream = self._streams.get(job_id)
        if stream is None:
            return b""  # not started yet (poll learns the stream's name)
        cursor = self._cursors.setdefault(job_id, _LogCursor())
        if offset < cursor.base:  # a reader starting over: read the stream again from its head
            cursor = self._cursors[job_id] = _LogCursor()
        last = self._polled.get(job_id)
        now = time.monotonic()
        if cursor.read_at and now - cursor.read_at < self.settings.poll_interval_s and not (last and last[1].done):
            return self._hand_out(cursor, offset)  # read again at the next interval (the end: at once)
        cursor.read_at = now
        logs = self.client("logs")
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": self.settings.log_group,
                "logStreamName": stream,
                "startFromHead": True,
            }
            if cursor.token:
                kwargs["nextToken"] = cursor.token
            try:
                page = logs.get_log_events(**kwargs)
            except bx.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    break  # the stream appears with the container's first line
                raise BackendError(f"could not read the log of job {job_id}: {self.describe(exc, 'logs')}") from None
            except bx.BotoCoreError as exc:
                raise BackendError(f"could not read the log of job {job_id}: {self.describe(exc, 'logs')}") from None
            events = page.get("events") or []
            cursor.buf += b"".join(str(e.get("message", "")).encode() + b"\n" for e in events)
            token = page.get("nextForwardToken")
            if events and token:  # issue 26: the stream goes on after these events with this token
                cursor.marks.append((token, cursor.base + len(cursor.buf)))
            if not events or not token or token == cursor.token:
                cursor.token = token or cursor.token
                break
            cursor.token = token
        return self._hand_out(cursor, offset)

    @staticmethod
    def _hand_out(cursor: _LogCursor, offset: int) -> bytes:
        """The bytes after `offset`; what is before it is handed out and forgotten."""
        skip = max(0, offset - cursor.base)
        out = cursor.buf[skip:]
        cursor.base += skip
        cursor.buf = out
        return out

    def cancel(self, job_id: str) -> None:
        self.call(
            "batch", f"could not terminate job {job_id}", "terminate_job", jobId=job_id, reason="cancelled by flank"
        )
        member = self._array_children.get(job_id)
        if member is not None:  # issue 26: a cancelled run takes the whole array (children make never started)
            from flank_ops.store.records import cancel_requested

            parent = job_id.rsplit(":", 1)[0]
            if cancel_requested(Path(member[0])):
                self.call(
                    "batch",
                    f"could not terminate job {parent}",
                    "terminate_job",
                    jobId=parent,
                    reason="cancelled by flank",
                )

    def jobs_of_run(self, name_prefix: str) -> list[str]:
        prefix = batch_job_name(name_prefix)
        ids: list[str] = []
        for queue in self.queues():
            for summary in self._summaries(queue, prefix + "*"):
                # with filters AWS lists jobs of every status: keep the live ones
                if str(summary.get("jobName", "")).startswith(prefix) and summary.get("status") in LIVE_STATES:
                    ids.append(str(summary["jobId"]))
        return list(dict.fromkeys(ids))

    def check(self) -> list[str]:
        """For `flank doctor`: the queue and job definition exist and are usable, the bucket answers."""
        s = self.settings
        problems: list[str] = []
        try:
            queues = (
                self.call(
                    "batch", "could not describe the job queue", "describe_job_queues", jobQueues=[s.job_queue]
                ).get("jobQueues")
                or []
            )
            if not queues:
                problems.append(f"AWS Batch job queue {s.job_queue!r} does not exist (region {self.region()})")
            else:
                q = queues[0]
                if q.get("state") != "ENABLED" or q.get("status") not in ("VALID", "UPDATING", None):
                    problems.append(
                        f"AWS Batch job queue {s.job_queue!r} is not usable: state {q.get('state')}, "
                        f"status {q.get('status')}" + (f" ({q['statusReason']})" if q.get("statusReason") else "")
                    )
            definitions = (
                self.call(
                    "batch",
                    "could not describe the job definition",
                    "describe_job_definitions",
                    **self._definition_query(s.job_definition),
                ).get("jobDefinitions")
                or []
            )
            active = [d for d in definitions if d.get("status") == "ACTIVE"]
            if not active:
                problems.append(
                    f"AWS Batch job definition {s.job_definition!r} does not exist or is not ACTIVE "
                    "(register one whose container runs flank's entrypoint: see the README)"
                )
            elif active[0].get("type") not in ("container", None):
                problems.append(
                    f"AWS Batch job definition {s.job_definition!r} is of type {active[0].get('type')}; "
                    "flank needs a container job definition"
                )
        except BackendError as exc:
            problems.append(str(exc))
        try:
            self.call("s3", f"bucket {s.bucket!r} for Batch releases", "head_bucket", Bucket=s.bucket)
        except BackendError as exc:
            problems.append(str(exc))
        return problems

    def region(self) -> str:
        return str(self.settings.region or self.client("batch").meta.region_name)

    @staticmethod
    def _definition_query(name: str) -> dict[str, Any]:
        """describe_job_definitions arguments for a name, name:revision or ARN."""
        if name.startswith("arn:") or ":" in name:
            return {"jobDefinitions": [name]}
        return {"jobDefinitionName": name, "status": "ACTIVE"}
