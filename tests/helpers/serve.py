"""`flank serve` as a user starts it: a real server process on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from helpers.cli import REPO_ROOT


def start_server(port: int, *options: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), FLANK_SERVE_QUIET="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flank_ops", "serve", "--port", str(port), *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"flank serve exited: {proc.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)  # polling for the port, with a deadline
    proc.kill()
    raise AssertionError("flank serve did not start listening")
