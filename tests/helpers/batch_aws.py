"""AWS Batch for the tests: moto's server on 127.0.0.1 with a job queue, a job definition and a bucket.

moto implements Batch, CloudWatch Logs and S3 over real HTTP, but runs a job's container through Docker,
which this machine does not have. The server is started with batch_fake_docker/ first on its PYTHONPATH: a
stand-in `docker` package that runs the "container" as a local process (flank's real batch_entrypoint.sh,
which downloads the release and the secrets from moto's S3 through their presigned URLs and runs the task's
command). So the job states, exit codes, terminate_job and the CloudWatch log copy are moto's own; only the
container image and its isolation are not there (README, "Past one VM").

moto's recorder is on: `recorded()` gives every request the server received since `start_recording()`, so a
test can check what flank really sent (resource requirements, and that no secret is in any Batch call).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import urllib.request
import uuid
from pathlib import Path
from typing import Any, NamedTuple

from flank_ops.executors.batch import ENTRYPOINT
from helpers.servers import start_moto_server

FAKE_DOCKER = Path(__file__).resolve().parent / "batch_fake_docker"
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


class BatchAWS(NamedTuple):
    url: str
    job_queue: str
    job_definition: str
    bucket: str
    recording: Path

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def options(self, **over: Any) -> dict[str, Any]:
        """The [executors.batch] table of flank.toml for this server."""
        return {
            "job_queue": self.job_queue,
            "job_definition": self.job_definition,
            "bucket": self.bucket,
            "region": REGION,
            "endpoint_url": self.url,
            "poll_interval": 0.2,
            **over,
        }

    def toml(self) -> str:
        lines = [f"{k} = {json.dumps(v)}" for k, v in self.options().items()]
        return "[executors.batch]\n" + "\n".join(lines) + "\n"

    def _api(self, path: str, body: dict[str, Any] | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else b""
        with urllib.request.urlopen(urllib.request.Request(self.url + path, data=data, method="POST"), timeout=10) as r:
            return bytes(r.read())

    def hold_jobs_in_queue(self) -> None:
        """moto's state manager: new jobs stay SUBMITTED (one step per hour) until release_jobs()."""
        self._api(
            "/moto-api/state-manager/set-transition",
            {"model_name": "batch::job", "transition": {"progression": "time", "seconds": 3600}},
        )

    def release_jobs(self) -> None:
        """Jobs go through PENDING, RUNNABLE, STARTING to RUNNING as soon as moto looks at them."""
        self._api("/moto-api/state-manager/unset-transition", {"model_name": "batch::job"})

    def start_recording(self) -> None:
        self._api("/moto-api/recorder/reset-recording")
        self._api("/moto-api/recorder/start-recording")

    def recorded(self) -> list[dict[str, Any]]:
        """Requests received since start_recording(): method, path, headers, body (text)."""
        with urllib.request.urlopen(self.url + "/moto-api/recorder/download-recording", timeout=10) as r:
            lines = r.read().decode().splitlines()
        out = []
        for line in lines:
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded") and body:
                body = base64.b64decode(body).decode("utf-8", "replace")
            out.append(
                {
                    "method": entry.get("method"),
                    "path": entry.get("url", ""),
                    "headers": entry.get("headers") or {},
                    "body": body,
                }
            )
        return out


_aws: BatchAWS | None = None


def batch_aws_for_a_test() -> BatchAWS:
    """The process's moto server (batch_aws) with a bucket of the test's own: what an earlier test's jobs
    leave in S3, even after that test ended (a job still running uploads its results when it ends),
    is never seen by the next test's "nothing left in the bucket"."""
    aws = batch_aws()._replace(bucket=f"flank-batch-{uuid.uuid4().hex[:10]}")
    aws.client("s3").create_bucket(Bucket=aws.bucket)
    return aws


def batch_aws() -> BatchAWS:
    """One moto server per test process, with a compute environment, job queue, job definition and bucket."""
    global _aws
    if _aws is not None:
        return _aws
    recording = Path(tempfile.mkdtemp(prefix="flank-moto-rec-")) / "recording"
    url = start_moto_server(
        {"PYTHONPATH": str(FAKE_DOCKER), "MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(recording)}
    )
    aws = BatchAWS(url, "flank-queue", "flank-job", f"flank-batch-{uuid.uuid4().hex[:10]}", recording)
    iam, batch = aws.client("iam"), aws.client("batch")
    role = iam.create_role(RoleName="flank-batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    env = batch.create_compute_environment(
        computeEnvironmentName="flank-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    batch.create_job_queue(
        jobQueueName=aws.job_queue,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
    )
    # the job definition a user registers (README): its container runs flank's entrypoint
    batch.register_job_definition(
        jobDefinitionName=aws.job_definition,
        type="container",
        containerProperties={
            "image": "example.org/flank-runner:latest",
            "command": ["/bin/sh", str(ENTRYPOINT)],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
    )
    aws.client("s3").create_bucket(Bucket=aws.bucket)
    _aws = aws
    return aws
