"""Real servers on 127.0.0.1 for the integration tests (S3, SMTP, HTTP), and their failure modes.

* moto's S3 server in a subprocess with IAM auth on: real HTTP and real SigV4
  signature checks, so wrong credentials fail the way they do on AWS.
* an HTTP server that records requests (webhooks, pings) and can answer 500 or
  hang past the client's timeout.
* aiosmtpd with STARTTLS (a throwaway self-signed certificate) and AUTH.
* a port where nothing listens (bound, never listening: connection refused).

Imported by the tests of storage, notify, sync and doctor as `from helpers.servers import …`.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

from helpers.ports import free_port
from helpers.waiting import wait_for


@contextmanager
def refused_port() -> Iterator[int]:
    """A port that is bound but never listens: every connection is refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


# --- S3 (moto server) -------------------------------------------------------------


class S3Server(NamedTuple):
    url: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """Credentials the standard boto3 way (env vars); no profile or instance role is consulted."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def new_bucket(self) -> str:
        name = f"flank-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, dict[str, Any]]:
        """key -> head_object response, for every object in the bucket."""
        client = self.client()
        keys = [
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])
        ]
        return {k: client.head_object(Bucket=bucket, Key=k) for k in keys}


_s3: S3Server | None = None
_started: list[subprocess.Popen[bytes]] = []  # stopped by stop_all at the end of the test session


def stop_all() -> None:
    """End every server this process started (conftest's pytest_sessionfinish: an xdist worker leaves by
    os._exit, so atexit alone left moto servers running after the suite)."""
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_moto_server(extra_env: dict[str, str] | None = None) -> str:
    """moto's server on a free 127.0.0.1 port, stopped when the test process exits; returns its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=dict(os.environ, **(extra_env or {})),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _started.append(proc)
    atexit.register(stop_all)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2).close()
            return True
        except OSError:
            assert proc.poll() is None, "moto server exited"
            return False

    wait_for(up, "the moto server to start", timeout=30.0)
    return url


def s3_server() -> S3Server:
    """One moto server per test process (started on first use, stopped at exit); tests use their own buckets."""
    global _s3
    if _s3 is not None:
        return _s3
    import boto3

    # the first 3 requests (creating the IAM user, key and policy below) need no auth; every later one does
    url = start_moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="flank")
    key = iam.create_access_key(UserName="flank")["AccessKey"]
    iam.put_user_policy(
        UserName="flank",
        PolicyName="s3",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    _s3 = S3Server(url, key["AccessKeyId"], key["SecretAccessKey"])
    return _s3


# --- HTTP (webhooks, pings, and a misbehaving S3) ------------------------------


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HTTPRecorder:
    """Records every request; answers `status`, or hangs until closed when `hang` is set."""

    def __init__(self, status: int = 200, hang: bool = False) -> None:
        self.status = status
        self.hang = hang
        self.requests: list[Request] = []
        self.released = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.requests.append(Request(self.command, self.path, dict(self.headers), body))
                if recorder.hang:
                    recorder.released.wait(60)
                    return
                payload = b"ok" if recorder.status < 400 else b"<Error><Code>InternalError</Code></Error>"
                self.send_response(recorder.status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def http_recorder(status: int = 200, hang: bool = False) -> Iterator[HTTPRecorder]:
    server = HTTPRecorder(status, hang)
    try:
        yield server
    finally:
        server.close()


# --- SMTP (aiosmtpd with STARTTLS + AUTH) -------------------------------------


class SMTPServer(NamedTuple):
    host: str
    port: int
    ca_file: str
    messages: list[Any]  # email.message.EmailMessage, as received
    logins: list[str]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return cert, key


@contextmanager
def smtp_server(directory: Path, username: str = "flank", password: str = "s3cret") -> Iterator[SMTPServer]:
    """A real SMTP server that requires STARTTLS before AUTH, and AUTH before mail."""
    import email
    import email.policy
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed_cert(directory)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    messages: list[Any] = []
    logins: list[str] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: ANN001 - aiosmtpd's hook
            messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == username
            and auth_data.password.decode() == password
        )
        if ok:
            logins.append(username)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    port = free_port()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        yield SMTPServer("127.0.0.1", port, str(cert), messages, logins)
    finally:
        controller.stop()
