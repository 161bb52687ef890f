"""The S3 client: one file up (content type, multipart), a one-line reason for a failure, a probe.

What goes where and when is decided by uploads.py (a run's files, the pending list) and
site_publish.py (the status site); artifact uploads call upload_file the same way.
Credentials come the standard boto3 way (env, profile, instance role); flank never stores them.
boto3 is imported inside the functions that talk to S3: importing it costs ~150 ms (measured with
`python -X importtime`), and this module is imported at the end of every run, which uploads nothing
unless flank.toml has an [s3] table.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from flank_ops.content_types import content_type
from flank_ops.errors import UserError
from flank_ops.settings import S3Settings

MB = 1024 * 1024


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


def upload_file(
    client: Any, settings: S3Settings, path: Path, bucket: str, key: str, extra: dict[str, str] | None = None
) -> None:
    """Stream one file up; files over multipart_mb go as multipart, never read whole into memory."""
    from boto3.s3.transfer import TransferConfig

    part = settings.multipart_mb * MB
    transfer = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)
    args = {"ContentType": content_type(path), **(extra or {})}
    client.upload_file(str(path), bucket, key, ExtraArgs=args, Config=transfer)


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
