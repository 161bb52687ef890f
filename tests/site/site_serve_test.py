"""flank_ops/site/serve.py (+ `flank serve`): real HTTP on 127.0.0.1, a real server process."""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, run_flank
from site_records import make_project, make_run

from flank_ops.paths import Home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), FLANK_SERVE_QUIET="1")
    proc = subprocess.Popen([sys.executable, "-m", "flank_ops", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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


@pytest.fixture
def served_site(flank_home: Path) -> Iterator[int]:
    paths = make_project(Home())
    make_run(paths, logs={"extract": b"<script>x</script> \xff\n", "model": b"ok\n"})
    port = free_port()
    proc = start_server(port)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(port: int, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type") or "", body


def test_pages_css_and_raw_logs_have_the_right_content_types(served_site: int) -> None:
    port = served_site
    status, ctype, body = get(port, "/")
    assert status == 200 and ctype == "text/html; charset=utf-8" and b"nightly" in body
    assert get(port, "/demo/nightly/1/")[0] == 200  # the git note's link
    assert get(port, "/_static/style.css")[1] == "text/css; charset=utf-8"
    status, ctype, body = get(port, "/demo/nightly/1/logs/extract.txt")
    assert status == 200 and ctype == "text/plain; charset=utf-8" and body == b"<script>x</script> \xff\n"


def test_no_path_traversal_and_no_directory_listings(served_site: int, flank_home: Path) -> None:
    port = served_site
    (flank_home / "secret.txt").write_text("top secret")
    os.symlink(flank_home / "secret.txt", flank_home / "site" / "link.txt")
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/demo/../../secret.txt", "/..%2fsecret.txt",
                 "/link.txt", "/demo/nightly/1/logs/"):
        status, _, body = get(port, path)
        assert status == 404, path
        assert b"top secret" not in body


def test_a_taken_port_gets_one_clear_message(served_site: int) -> None:
    proc = run_flank("serve", "--port", str(served_site))
    assert proc.returncode == 1
    assert f"port {served_site} on 127.0.0.1 is already in use" in proc.stderr
    assert "--port" in proc.stderr and "Traceback" not in proc.stderr
