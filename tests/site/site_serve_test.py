"""flank_ops/site/serve.py (+ `flank serve`): real HTTP on 127.0.0.1, a real server process."""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flank_ops import s3
from flank_ops.paths import Home
from flank_ops.site import serve
from helpers.cli import REPO_ROOT, run_flank
from helpers.ports import free_port
from helpers.serve import start_server
from helpers.site_records import make_project, make_run
from helpers.waiting import wait_for


@contextlib.contextmanager
def serving(*options: str) -> Iterator[int]:
    """`flank serve` on a free port of 127.0.0.1 for the duration; yields the port."""
    paths = make_project(Home())
    make_run(paths, logs={"extract": b"<script>x</script> \xff\n", "model": b"ok\n"})
    port = free_port()
    proc = start_server(port, *options)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def served_site(flank_home: Path) -> Iterator[int]:
    with serving() as port:
        yield port


def get(port: int, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type") or "", body


@pytest.mark.slow
def test_pages_css_and_raw_logs_have_the_right_content_types(served_site: int) -> None:
    port = served_site
    status, ctype, body = get(port, "/")
    assert status == 200 and ctype == "text/html; charset=utf-8" and b"nightly" in body
    assert get(port, "/demo/nightly/1/")[0] == 200  # the git note's link
    assert get(port, "/_static/style.css")[1] == "text/css; charset=utf-8"
    status, ctype, body = get(port, "/demo/nightly/1/logs/extract.txt")
    assert status == 200 and ctype == "text/plain; charset=utf-8" and body == b"<script>x</script> \xff\n"


@pytest.mark.slow
def test_no_path_traversal_and_no_directory_listings(served_site: int, flank_home: Path) -> None:
    port = served_site
    (flank_home / "secret.txt").write_text("top secret")
    os.symlink(flank_home / "secret.txt", flank_home / "site" / "link.txt")
    for path in (
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/demo/../../secret.txt",
        "/..%2fsecret.txt",
        "/link.txt",
        "/demo/nightly/1/logs/",
    ):
        status, _, body = get(port, path)
        assert status == 404, path
        assert b"top secret" not in body


@pytest.mark.slow
def test_a_taken_port_gets_one_clear_message(served_site: int) -> None:
    proc = run_flank("serve", "--port", str(served_site))
    assert proc.returncode == 1
    assert f"port {served_site} on 127.0.0.1 is already in use" in proc.stderr
    assert "--port" in proc.stderr and "Traceback" not in proc.stderr


# --- a server that cannot be starved (issue 9, item 9: Slowloris) -------------


def idle_connection(port: int, source: str = "127.0.0.1", partial: bytes = b"") -> socket.socket:
    """A connection that sends nothing (or the start of a request head) and waits."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    if partial:
        sock.sendall(partial)
    sock.setblocking(False)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False  # still open, nothing to read
    except ConnectionResetError:
        return True


def raise_open_files_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"this test opens {wanted} sockets; the open-files hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@pytest.mark.slow
def test_a_page_still_answers_while_1500_idle_connections_are_open(flank_home: Path) -> None:
    raise_open_files_limit(1700)
    with serving() as port, contextlib.ExitStack() as stack:
        idle = [stack.enter_context(idle_connection(port, source=f"127.0.0.{2 + i % 20}")) for i in range(1500)]
        status, _, body = get(port, "/")
        assert status == 200 and b"nightly" in body
        assert get(port, "/demo/nightly/1/logs/extract.txt")[2] == b"<script>x</script> \xff\n"
        # spread over 20 client addresses (75 each, under the per-client cap): none was dropped
        assert not any(closed_by_server(s) for s in idle)


@pytest.mark.slow
def test_an_idle_connection_and_a_never_finished_request_are_closed_after_the_timeout(flank_home: Path) -> None:
    with serving("--timeout", "0.5") as port:
        silent = idle_connection(port)
        slow = idle_connection(port, partial=b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
        with silent, slow:
            wait_for(lambda: closed_by_server(silent), "the server to close a silent connection", timeout=20)
            wait_for(lambda: closed_by_server(slow), "the server to close an unfinished request", timeout=20)
        assert get(port, "/")[0] == 200


@pytest.mark.slow
def test_one_client_beyond_its_cap_loses_its_oldest_idle_connections_and_others_keep_theirs(flank_home: Path) -> None:
    with serving("--per-client", "5") as port, contextlib.ExitStack() as stack:
        other = stack.enter_context(idle_connection(port, source="127.0.0.3"))
        first = [stack.enter_context(idle_connection(port, source="127.0.0.2")) for _ in range(5)]
        newer = [stack.enter_context(idle_connection(port, source="127.0.0.2")) for _ in range(3)]
        wait_for(
            lambda: all(closed_by_server(s) for s in first[:3]),
            "the client's three oldest idle connections to be closed",
            timeout=20,
        )
        assert not any(closed_by_server(s) for s in first[3:] + newer + [other])
        # a request from that same address is still answered (it displaces an idle one)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.2", 0))
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()


@pytest.mark.slow
def test_keep_alive_head_redirects_and_not_modified(served_site: int) -> None:
    port = served_site
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/demo")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 301 and resp.getheader("Location") == "/demo/"
    conn.request("GET", "//demo")  # never a Location of "//demo/", which browsers read as another host
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 301 and resp.getheader("Location") == "/demo/"
    conn.request("HEAD", "/_static/style.css")  # same connection (HTTP/1.1 keep-alive)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"" and int(resp.getheader("Content-Length")) > 0
    last_modified = resp.getheader("Last-Modified")
    conn.request("GET", "/_static/style.css", headers={"If-Modified-Since": last_modified})
    resp = conn.getresponse()
    assert resp.status == 304 and resp.read() == b""
    conn.request("POST", "/", body=b"x")
    assert conn.getresponse().status == 501
    conn.close()


def test_ipv6_loopback(flank_home: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port = s.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    make_project(Home())
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), FLANK_SERVE_QUIET="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flank_ops", "serve", "--host", "::1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert f"at http://[::1]:{port}/" in proc.stdout.readline()
        conn = http.client.HTTPConnection("::1", port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_the_printed_systemd_unit_serves_the_site(flank_home: Path, tmp_path: Path) -> None:
    make_project(Home())
    port = free_port()
    proc = run_flank("serve", "--port", str(port), "--print-systemd-unit")
    assert proc.returncode == 0, proc.stderr
    unit = proc.stdout
    assert "systemctl --user enable --now flank-serve.service" in unit
    assert 'loginctl enable-linger "$USER"' in unit
    assert f'Environment="FLANK_HOME={flank_home}"' in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    command = shlex.split(exec_start[len("ExecStart=") :])
    assert os.path.isabs(command[0]) and command[-3:] == ["serve", "--port", str(port)]
    if shutil.which("systemd-analyze"):
        (tmp_path / "flank-serve.service").write_text(unit)
        check = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / "flank-serve.service")], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
    # what systemd would start: that command, with that environment and no PATH
    server = subprocess.Popen(
        command,
        env={"FLANK_HOME": str(flank_home), "FLANK_SERVE_QUIET": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: server.poll() is not None or _answers(port), "the unit's command to serve", timeout=30)
        assert get(port, "/")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize(
    "name",
    ["index.html", "style.css", "run.json", "history.jsonl", "extract.txt", "extract.txt.gz", "dag.svg", "a.png"],
)
def test_a_site_file_has_the_same_content_type_from_flank_serve_and_from_s3(name: str) -> None:
    """The site published to S3 reads in a browser as it does from `flank serve` (a .jsonl is text, a big
    log's .txt.gz copy downloads as gzip rather than showing as garbled text)."""
    assert serve.content_type(name) == s3.content_type(name)
