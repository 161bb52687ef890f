"""A stand-in for the `docker` package, loaded by the moto server of tests/executors/batch_*_test.py only
(its folder is put first on that server's PYTHONPATH).

moto's AWS Batch runs each job's container through docker-py; this machine has no Docker daemon, and
without one moto fails every job at once. Here a "container" is a plain local process running the job
definition's command (flank's batch_entrypoint.sh) with the job's environment, in a fresh folder: so moto
drives the real job states, terminate_job kills the process, the exit code is the process's. Each line the
process prints goes into the job's CloudWatch Logs stream as it is printed (moto's own logs backend, the
stream moto itself would write at the end), as AWS's awslogs driver does: a reader sees a running job's
lines (issue 26: a re-attached launcher goes on from where the log stopped). What this cannot show is a
real image: no isolation, no image pull.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any

_put_lock = threading.Lock()  # one writer at a time: the stream's events stay in the order they were put


class _Types:
    class LogConfig:
        class types:
            JSON = "json-file"

        def __init__(self, type: str = "json-file", config: dict[str, Any] | None = None) -> None:
            self.type = type

    class Mount:
        def __init__(self, target: str, source: str, type: str = "bind", read_only: bool = False) -> None:
            self.target, self.source = target, source


types = _Types


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Container:
    def __init__(self, command: Any, environment: dict[str, str], name: str) -> None:
        self.name = name
        self.attrs: dict[str, Any] = {"NetworkSettings": {"Networks": {}, "IPAddress": "127.0.0.1"}}
        self.dir = tempfile.mkdtemp(prefix="fake-container-")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dir, "TMPDIR": self.dir}
        env.update({k: str(v) for k, v in environment.items()})
        # what AWS Batch gives an array job's child (moto names the child <array id>:<index>, sets no index)
        array_id, colon, index = env.get("AWS_BATCH_JOB_ID", "").rpartition(":")
        if colon and array_id and index.isdigit():
            env.setdefault("AWS_BATCH_JOB_ARRAY_INDEX", index)
        argv = command if isinstance(command, list) else ["/bin/sh", "-c", command]
        self.proc = subprocess.Popen(
            argv,
            cwd=self.dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.stream = _job_stream(env.get("AWS_BATCH_JOB_ID", ""))
        self.last_ms = 0
        self.readers = [
            threading.Thread(target=self._read, args=(pipe, kind), daemon=True)
            for pipe, kind in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr"))
        ]
        for reader in self.readers:
            reader.start()
        self.status = "running"

    def _read(self, pipe: Any, kind: str) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode(errors="replace").rstrip(chr(10))
            if self.stream is None or not self._put(line):
                self.lines[kind].append(f"{_stamp()} {line}")

    def _put(self, line: str) -> bool:
        """The line into the job's stream now (awslogs' way); False when moto's backend refused it."""
        assert self.stream is not None
        logs, group, name = self.stream
        with _put_lock:
            # never earlier than the last event: moto orders a stream by timestamp, and a reader's token counts events
            self.last_ms = max(self.last_ms, int(time.time() * 1000))
            try:
                logs.ensure_log_group(group)
                logs.ensure_log_stream(group, name)
                logs.put_log_events(group, name, [{"timestamp": self.last_ms, "message": line.strip()}])
            except Exception:
                return False
        return True

    def reload(self) -> None:
        self.status = "running" if self.proc.poll() is None else "exited"

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reload()

    def wait(self) -> dict[str, int]:
        code = self.proc.wait()
        for reader in self.readers:
            reader.join(5)
        return {"StatusCode": code if code >= 0 else 128 - code}

    def logs(self, stdout: bool = True, stderr: bool = True, timestamps: bool = True, since: Any = None) -> bytes:
        self.wait()
        lines = (self.lines["stdout"] if stdout else []) + (self.lines["stderr"] if stderr else [])
        return "\n".join(lines).encode()

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _job_stream(job_id: str) -> tuple[Any, str, str] | None:
    """(moto's logs backend, log group, stream name) of job `job_id`, as moto writes them at the job's end."""
    try:
        from moto.batch.models import batch_backends
    except ImportError:
        return None
    for regions in list(batch_backends.values()):
        for backend in list(regions.values()):
            job = backend.get_job_by_id(job_id)
            if job is not None:
                return job._log_backend, job._log_group, job._stream_name
    return None


class _Containers:
    def run(
        self, image: str, command: Any = None, environment: dict[str, str] | None = None, name: str = "", **_: Any
    ) -> Container:
        if (environment or {}).get("FAKE_DOCKER_CANNOT_START"):  # a container that never starts (no exit code)
            raise RuntimeError("CannotStartContainerError: the stand-in was asked to fail")
        return Container(command, environment or {}, name)


class _Images:
    def get(self, name: str) -> None:
        return None

    def pull(self, name: str) -> None:
        return None


class DockerClient:
    def __init__(self) -> None:
        self.containers = _Containers()
        self.images = _Images()


def from_env(**_: Any) -> DockerClient:
    return DockerClient()
