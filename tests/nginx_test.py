"""The docs' nginx recipe (docs/operating/serving.md), served by a real nginx running as www-data, over TLS.

The server block is taken from the docs (docs/operating/serving.md) as written (only the port, the site folder, the
certificate (self-signed, made here), the password file and flank serve's port are put in),
so the recipe a user copies is the one tested.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.cli import REPO_ROOT, run_flank
from helpers.deployed import WAIT_FOR_GATE, deploy, open_gate, record, start_flank
from helpers.ports import free_port
from helpers.readable_site import project_with_a_run, traversable_home  # noqa: F401 - fixture
from helpers.waiting import process_gone, wait_for

pytestmark = pytest.mark.slow

PASSWORD = "correct horse"
BASIC = "Basic " + base64.b64encode(f"ada:{PASSWORD}".encode()).decode()


def readme_server_block() -> str:
    lines = (REPO_ROOT / "docs" / "operating" / "serving.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("**Serve it with nginx"))
    begin = lines.index("    server {", start)
    end = lines.index("    }", begin)
    return "\n".join(line[4:] for line in lines[begin : end + 1])


def put_in(block: str, old: str, new: str) -> str:
    assert old in block, f"the docs' nginx recipe no longer has {old!r}"
    return block.replace(old, new)


# our own certificate: the test's client trusts anything (the recipe's TLS is what is tested)
UNVERIFIED = ssl._create_unverified_context()  # noqa: S323


class Nginx:
    def __init__(self, port: int, state_port: int, flank_port: int) -> None:
        self.port = port
        self.state_port = state_port
        self.flank_port = flank_port  # where the recipe's /api/ goes (flank serve --actions)

    def csp(self, path: str) -> str | None:
        """The Content-Security-Policy header of GET path (status 200 asserted)."""
        request = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}")
        request.add_header("Authorization", BASIC)
        with urllib.request.urlopen(request, timeout=30, context=UNVERIFIED) as response:
            assert response.status == 200, path
            return response.headers.get("Content-Security-Policy")

    def get(self, path: str, *, auth: bool = True, port: int | None = None) -> tuple[int, str, str]:
        """(status, content type, body) of GET path (https on the recipe's port)."""
        scheme = "http" if port else "https"
        request = urllib.request.Request(f"{scheme}://127.0.0.1:{port or self.port}{path}")
        if auth:
            request.add_header("Authorization", BASIC)
        try:
            with urllib.request.urlopen(request, timeout=30, context=None if port else UNVERIFIED) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), ""


@pytest.fixture
def nginx(traversable_home: Path) -> Iterator[Nginx]:
    """nginx started as root, serving the site as www-data with the docs' server block."""
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if exe is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    if os.geteuid() != 0:
        pytest.skip("needs root: nginx switches to www-data (`user www-data;`) only when started as root")
    runtime = Path(tempfile.mkdtemp(prefix="flank-nginx-"))
    os.chmod(runtime, 0o755)  # www-data reads the password file here
    htpasswd = runtime / "flank.htpasswd"
    digest = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    htpasswd.write_text(f"ada:{{SHA}}{digest}\n")
    os.chmod(htpasswd, 0o644)
    port, state_port, flank_port = free_port(), free_port(), free_port()
    key, cert = runtime / "key.pem", runtime / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server = readme_server_block()
    server = put_in(server, "listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    server = put_in(server, "/etc/letsencrypt/live/vm.example/fullchain.pem", str(cert))
    server = put_in(server, "/etc/letsencrypt/live/vm.example/privkey.pem", str(key))
    server = put_in(server, "proxy_pass http://127.0.0.1:8083;", f"proxy_pass http://127.0.0.1:{flank_port};")
    server = put_in(server, "root /home/ada/flank/site;", f"root {traversable_home / 'site'};")
    server = put_in(server, "auth_basic_user_file /etc/nginx/flank.htpasswd;", f"auth_basic_user_file {htpasswd};")
    temp_paths = " ".join(
        f"{kind}_temp_path {runtime / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = runtime / "nginx.conf"
    conf.write_text(f"""
user www-data;
worker_processes 1;
daemon off;
pid {runtime / "nginx.pid"};
error_log {runtime / "error.log"};
events {{ worker_connections 64; }}
http {{
    access_log {runtime / "access.log"};
    {temp_paths}
{server}
    # Not in the docs: nginx pointed at the whole FLANK_HOME, to show www-data cannot read the state.
    server {{
        listen 127.0.0.1:{state_port};
        location /state/ {{ alias {traversable_home}/; }}
    }}
}}
""")
    proc = subprocess.Popen(
        [exe, "-c", str(conf), "-e", str(runtime / "error.log")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )

    def listening() -> bool:
        if proc.poll() is not None:
            log = (runtime / "error.log").read_text() if (runtime / "error.log").exists() else ""
            raise AssertionError(f"nginx exited {proc.returncode}: {proc.stdout.read().decode()} {log}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, "nginx to listen", timeout=30)
        yield Nginx(port, state_port, flank_port)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGQUIT)  # graceful stop: the master takes its workers down
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        assert process_gone(proc.pid)
        shutil.rmtree(runtime, ignore_errors=True)


def test_the_readme_recipe_serves_the_site_as_www_data(nginx: Nginx, traversable_home: Path, tmp_path: Path) -> None:
    home = traversable_home
    project_with_a_run(home, tmp_path)
    os.chmod(home, 0o711)  # the docs' `chmod 711 ~ ~/flank`

    status, _, body = nginx.get("/")
    assert status == 200 and "proj" in body
    for page in ("/proj/", "/proj/nightly/", "/proj/nightly/1/", "/proj/nightly/1/logs/extract.html"):
        status, content_type, body = nginx.get(page)
        assert (status, content_type.split(";")[0]) == (200, "text/html"), page
    status, content_type, body = nginx.get("/proj/nightly/1/logs/extract.txt")
    assert status == 200 and content_type.startswith("text/plain") and "extracted-rows" in body
    status, content_type, _ = nginx.get("/_static/style.css")
    assert (status, content_type) == (200, "text/css; charset=utf-8") or (status, content_type) == (200, "text/css")
    assert nginx.get("/", auth=False)[0] == 401  # the password of the recipe holds
    assert nginx.get("/proj/runs/nightly/1/logs/extract.log")[0] == 404  # state is not under the site root

    # Even pointed at the whole FLANK_HOME, www-data gets the site and nothing else.
    assert nginx.get("/state/site/index.html", port=nginx.state_port)[0] == 200
    for private in (
        "proj/runs/nightly/1/logs/extract.log",
        "proj/runs/nightly/1/run.json",
        "proj/deploys.jsonl",
        "proj/secrets.env",
        "proj/current/flank.yml",
        "proj.git/config",
    ):
        assert nginx.get(f"/state/{private}", port=nginx.state_port)[0] == 403, private


def test_the_readme_recipe_sandboxes_kept_files(nginx: Nginx, traversable_home: Path, tmp_path: Path) -> None:
    """issue 20 item 3: the recipe sends the same header as `flank serve` on kept files and latest/."""
    from flank_ops.site.layout import KEPT_FILE_CSP

    home = traversable_home
    project_with_a_run(home, tmp_path)
    os.chmod(home, 0o711)
    site = home / "site"
    for rel in ("proj/nightly/1/artifacts/report/results/report.html", "proj/nightly/latest/report/results/r.svg"):
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in [path.parent, *path.parent.parents]:
            if folder == site:
                break
            os.chmod(folder, 0o755)
        path.write_text("<html><script>fetch('/')</script></html>")
        os.chmod(path, 0o644)
        assert nginx.csp("/" + rel) == KEPT_FILE_CSP, rel
    for page in ("/", "/proj/nightly/1/", "/proj/nightly/1/logs/extract.txt"):
        assert nginx.csp(page) is None, page  # the site's own pages are not sandboxed


def _https(
    nginx: Nginx, method: str, path: str, cookies: dict[str, str], form: dict[str, str] | None = None
) -> tuple[int, dict[str, list[str]], str]:
    conn = http.client.HTTPSConnection("127.0.0.1", nginx.port, timeout=30, context=UNVERIFIED)
    headers = {"Authorization": BASIC, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    body = None
    if form is not None:
        headers |= {"Origin": f"https://127.0.0.1:{nginx.port}", "Content-Type": "application/x-www-form-urlencoded"}
        body = urllib.parse.urlencode(form)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    text = response.read().decode()
    set_cookies = response.msg.get_all("Set-Cookie") or []
    for raw in set_cookies:
        name, _, rest = raw.partition("=")
        cookies[name] = rest.split(";", 1)[0]
    conn.close()
    return response.status, {"set-cookie": set_cookies}, text


def test_the_recipe_passes_actions_and_live_events_to_flank_serve(
    nginx: Nginx, traversable_home: Path, tmp_path: Path
) -> None:
    deploy(tmp_path, f"persist: [gate]\npipelines:\n  nightly:\n    tasks:\n      hold: 'echo held; {WAIT_FOR_GATE}'\n")
    os.chmod(traversable_home, 0o711)
    run_flank("users", "add", "ada", "--project", "demo", input="flank password\n", check=True)
    proc = start_flank("serve", "--actions", "--port", str(nginx.flank_port))
    try:
        wait_for(lambda: nginx.get("/api/session")[0] == 200, "flank serve behind nginx")
        assert nginx.get("/_static/actions.js")[1].split(";")[0] in ("application/javascript", "text/javascript")
        cookies: dict[str, str] = {}
        status, _, page = _https(nginx, "GET", "/api/login?next=/demo/", cookies)
        assert status == 200 and 'name="password"' in page
        token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
        form = {"token": token, "user": "ada", "password": "flank password", "next": "/demo/"}
        status, headers, _ = _https(nginx, "POST", "/api/login", cookies, form)
        assert status == 303
        session_cookie = next(c for c in headers["set-cookie"] if c.startswith("flank_session="))
        assert "; Secure" in session_cookie and "HttpOnly" in session_cookie  # https, said by X-Forwarded-Proto
        session = json.loads(_https(nginx, "GET", "/api/session", cookies)[2])
        assert session["user"] == "ada"
        run = {"project": "demo", "pipeline": "nightly", "idem": "nginx-form-1", "csrf": session["csrf"]}
        status, _, answer = _https(nginx, "POST", "/api/run", cookies, run)
        assert status == 200 and json.loads(answer)["message"] == "nightly #1 started", answer

        # the live stream comes through while the run is still held: nginx does not buffer it
        raw = socket.create_connection(("127.0.0.1", nginx.port), timeout=30)
        with UNVERIFIED.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(
                (
                    "GET /api/events/run?project=demo&pipeline=nightly&run=1 HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{nginx.port}\r\nAuthorization: {BASIC}\r\n\r\n"
                ).encode()
            )
            data = b""
            while b'"live":{"hold":"held"}' not in data:
                chunk = sock.recv(65536)
                assert chunk, data
                data += chunk
        assert b"text/event-stream" in data
        assert record(1)["status"] == "running"  # it arrived before the run ended
    finally:
        open_gate()
        proc.terminate()
        proc.communicate(timeout=10)
    wait_for(lambda: record(1)["status"] == "success", "the run to end")
