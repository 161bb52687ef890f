"""S3: after every run, upload its record and logs, and publish the status site.

    s3://BUCKET/PREFIX/<project>/runs/<pipeline>/<run-id>/run.json, tasks/*.json, logs/*.log
    s3://SITE_BUCKET/SITE_PREFIX/...   the static site (only changed files; see site_publish.py)

An outage never fails or loses a run: the run goes on the pending list
(pending.py) before its upload starts and leaves it only when every file is up;
the next run or `flank sync` retries. Credentials come the standard boto3 way
(env, profile, instance role); flank never stores them. boto3 is imported lazily:
this module is on the path of every run's end.
"""
from __future__ import annotations

import mimetypes
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from flank_ops.errors import UserError
from flank_ops.fileio import locked
from flank_ops.paths import ProjectPaths
from flank_ops.settings import S3Settings, s3_settings, settings_for
from flank_ops.storage import pending

if TYPE_CHECKING:
    from flank_ops.run.records import RunRecord

MB = 1024 * 1024
RETRY_HINT = "will retry on the next run or `flank sync`"

# Types we serve ourselves; mimetypes' answers vary between machines.
CONTENT_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".log": "text/plain",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".svg": "image/svg+xml",
    ".xml": "application/xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
TEXTUAL = ("application/json", "application/x-ndjson", "image/svg+xml", "application/xml", "text/javascript")


class UploadResult(NamedTuple):
    runs: list[tuple[str, int]]  # (pipeline, run_id) fully uploaded
    files: int
    error: str | None  # why the upload stopped, or None
    still_pending: int


def content_type(path: Path | str) -> str:
    """Content-Type for an uploaded file; logs are text/plain, text gets charset=utf-8."""
    ext = os.path.splitext(str(path))[1].lower()
    kind = CONTENT_TYPES.get(ext) or mimetypes.guess_type(str(path))[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in TEXTUAL:
        kind += "; charset=utf-8"
    return kind


def make_client(settings: S3Settings) -> Any:
    """A boto3 S3 client with short timeouts, so a slow S3 cannot hang the end of a run."""
    import boto3
    from botocore.config import Config as BotoConfig

    config = BotoConfig(
        connect_timeout=settings.timeout_s,
        read_timeout=settings.timeout_s,
        retries={"total_max_attempts": 2, "mode": "standard"},  # one retry, then report
        # S3-compatible servers are usually addressed by path (no wildcard DNS for buckets)
        s3={"addressing_style": "path"} if settings.endpoint_url else {},
    )
    session = boto3.session.Session(region_name=settings.region)
    return session.client("s3", endpoint_url=settings.endpoint_url, config=config)


def describe_error(exc: BaseException, settings: S3Settings) -> str:
    """One line saying what went wrong talking to S3."""
    from boto3.exceptions import S3UploadFailedError
    from botocore import exceptions as bx

    if isinstance(exc, S3UploadFailedError) and exc.__context__ is not None:
        exc = exc.__context__  # boto3 wraps the ClientError that says what happened
    where = settings.endpoint_url or "S3"
    if isinstance(exc, bx.NoCredentialsError):
        return "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or an instance role)"
    if isinstance(exc, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
        return f"{where} did not answer within {settings.timeout_s:g}s"
    if isinstance(exc, bx.EndpointConnectionError):
        return f"cannot connect to {where}"
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = err.get("Code") or status or "error"
        message = err.get("Message") or ""
        if str(code) in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            message = (message + " — check the AWS credentials and the bucket policy").strip(" —")
        return f"{code} from {where}" + (f": {message}" if message else "") + f" (bucket {settings.bucket})"
    if isinstance(exc, bx.BotoCoreError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def run_key(settings: S3Settings, project: str, pipeline: str, run_id: int, rel: str) -> str:
    return f"{settings.prefix}{project}/runs/{pipeline}/{run_id}/{rel}"


def upload_file(client: Any, settings: S3Settings, path: Path, bucket: str, key: str, extra: dict[str, str] | None = None) -> None:
    """Stream one file up; files over multipart_mb go as multipart, never read whole into memory."""
    from boto3.s3.transfer import TransferConfig

    part = settings.multipart_mb * MB
    transfer = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)
    args = {"ContentType": content_type(path), **(extra or {})}
    client.upload_file(str(path), bucket, key, ExtraArgs=args, Config=transfer)


def run_files(run_dir: Path) -> list[Path]:
    """Every file of a run, run.json last so a reader of the bucket never sees a record without its logs."""
    files = [p for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.name == "run.json", str(p)))


def upload_run(client: Any, settings: S3Settings, paths: ProjectPaths, pipeline: str, run_id: int) -> int:
    """Upload one run's folder; returns the number of files. Raises what boto3 raises."""
    run_dir = paths.run_dir(pipeline, run_id)
    files = run_files(run_dir)
    for path in files:
        rel = path.relative_to(run_dir).as_posix()
        upload_file(client, settings, path, settings.bucket, run_key(settings, paths.name, pipeline, run_id, rel))
    return len(files)


def upload_pending(paths: ProjectPaths, settings: S3Settings, client: Any | None = None) -> UploadResult:
    """Upload every run on the pending list, oldest first; stop at the first failure.

    The caller holds paths.lock_file("s3").
    """
    todo = pending.read_pending(paths)
    done: list[tuple[str, int]] = []
    files = 0
    for i, entry in enumerate(todo):
        pipeline, run_id = str(entry["pipeline"]), int(entry["run_id"])
        if not paths.run_dir(pipeline, run_id).is_dir():
            pending.remove_pending(paths, pipeline, run_id)  # pruned meanwhile: nothing left to lose
            continue
        try:
            client = client or make_client(settings)
            files += upload_run(client, settings, paths, pipeline, run_id)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the run pending
            error = describe_error(exc, settings)
            # S3 is down for all of them alike; say so on each entry the site shows
            for left in todo[i:]:
                pending.mark_failed(paths, str(left["pipeline"]), int(left["run_id"]), error)
            return UploadResult(done, files, error, len(pending.read_pending(paths)))
        pending.remove_pending(paths, pipeline, run_id)
        done.append((pipeline, run_id))
    return UploadResult(done, files, None, 0)


def pending_uploads(paths: ProjectPaths) -> list[dict[str, Any]]:
    """Runs not yet in S3, with the last error (for the site and `flank status`)."""
    return pending.read_pending(paths)


def after_run(paths: ProjectPaths, record: RunRecord) -> str | None:
    """Upload the run's record and logs (and publish the site); returns a status line or None if S3 is not configured.

    Never raises: an outage becomes a status line and the run stays pending.
    """
    try:
        settings = s3_settings(settings_for(paths.home, paths.name))
    except UserError as exc:
        return f"s3: not uploaded: {exc.message}"
    if settings is None:
        return None
    try:
        pipeline, run_id = record.pipeline, record.run_id
        with locked(paths.lock_file("s3")):
            pending.add_pending(paths, pipeline, run_id)
            result = upload_pending(paths, settings)
        if result.error:
            return f"s3: upload failed ({result.error}); {RETRY_HINT}"
        line = f"s3: uploaded {result.files} file{'s' if result.files != 1 else ''}"
        earlier = len([r for r in result.runs if r != (pipeline, run_id)])
        if earlier:
            line += f" (with {earlier} earlier pending run{'s' if earlier != 1 else ''})"
        if settings.publish_site:
            from flank_ops.storage.site_publish import publish_site, site_scope

            line += "; " + publish_site(paths.home, settings, projects=site_scope(paths.home, settings)).line()
        return line
    except Exception as exc:  # noqa: BLE001 - the end of a run must not fail because of S3
        return f"s3: upload failed ({describe_error(exc, settings)}); {RETRY_HINT}"


def probe(settings: S3Settings) -> str:
    """Write and delete a small object (for `flank doctor`); returns what was checked. Raises UserError."""
    key = f"{settings.prefix}.flank-doctor-probe-{socket.gethostname()}-{os.getpid()}"
    try:
        client = make_client(settings)
        client.put_object(Bucket=settings.bucket, Key=key, Body=b"flank doctor probe\n", ContentType="text/plain")
        client.delete_object(Bucket=settings.bucket, Key=key)
    except Exception as exc:  # noqa: BLE001 - every failure is a finding to report
        raise UserError(describe_error(exc, settings)) from None
    return f"s3://{settings.bucket}/{settings.prefix} writable"
