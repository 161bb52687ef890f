"""`flank serve --actions` over real HTTP (issue 23 items 1, 2, 5): sign-in, Run, Cancel, the live
streams, and every refusal — forged or missing CSRF token, wrong Origin, expired session, a user
without the role, an unknown project, a cancel of a finished run, brute force — with nothing
started or stopped. A real `flank serve` process, a real pushed project, real runs."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import urllib.parse
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from flank_ops.paths import Home
from helpers.cli import run_flank
from helpers.deployed import WAIT_FOR_GATE, deploy, history, open_gate, record, runs_dir
from helpers.ports import free_port
from helpers.serve import start_server
from helpers.waiting import wait_for

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
# "hold" prints a line, then waits for the gate (bounded); "after" needs it
YML = (
    "persist: [gate]\npipelines:\n  nightly:\n    tasks:\n"
    f"      hold: 'echo first line; {WAIT_FOR_GATE}'\n"
    "      after:\n        run: echo done\n        needs: [hold]\n"
)


class Client:
    """A browser's view of the API: cookies kept, Origin sent with every POST (as browsers do)."""

    def __init__(self, port: int, origin: str | None = "", headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}" if origin == "" else origin
        self.headers = headers or {}
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Host": f"127.0.0.1:{self.port}", **self.headers}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if method == "POST":
            if self.origin:
                headers["Origin"] = self.origin
            body = urllib.parse.urlencode(form or {})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        for raw in response.msg.get_all("Set-Cookie") or []:
            self.set_cookies.append(raw)
            name, _, rest = raw.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in raw:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        conn.close()
        return response.status, text

    def login(self, user: str, password: str) -> tuple[int, str]:
        status, page = self.request("GET", "/api/login?next=/demo/")
        assert status == 200 and 'name="password"' in page
        token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
        return self.request(
            "POST", "/api/login", {"token": token, "user": user, "password": password, "next": "/demo/"}
        )

    def session(self) -> dict[str, Any] | None:
        status, text = self.request("GET", "/api/session")
        assert status == 200, text
        answer = json.loads(text)
        return answer if answer["user"] else None

    def act(self, action: str, csrf: str | None = None, **fields: str) -> tuple[int, dict[str, Any]]:
        form = {"project": "demo", "pipeline": "nightly", "idem": os.urandom(8).hex(), **fields}
        if csrf is not None:
            form["csrf"] = csrf
        status, text = self.request("POST", f"/api/{action}", form)
        return status, json.loads(text)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[int]:
    deploy(tmp_path, YML)
    run_flank("init", "other", check=True)
    run_flank("users", "add", "ada", "--project", "demo", input=PASSWORD + "\n", check=True)
    run_flank("users", "add", "bob", "--project", "other", input=PASSWORD + "\n", check=True)
    port = free_port()
    proc = start_server(port, "--actions")
    try:
        yield port
    finally:
        open_gate()
        proc.terminate()
        proc.wait(timeout=10)


def _audit() -> list[dict[str, Any]]:
    path = Home().actions_log
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_sign_in_run_once_on_a_double_click_and_cancel(served: int) -> None:
    ada = Client(served)
    status, _ = ada.login("ada", PASSWORD)
    assert status == 303
    cookie = next(c for c in ada.set_cookies if c.startswith("flank_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie and "Max-Age=" in cookie
    session = ada.session()
    assert session is not None and session["user"] == "ada" and session["projects"] == ["demo"]
    csrf = session["csrf"]

    # a double click: the same form (idempotency key) twice at once -> one run, the same answer twice
    form = {"project": "demo", "pipeline": "nightly", "idem": "form-key-0001", "csrf": csrf}
    conns = [http.client.HTTPConnection("127.0.0.1", served, timeout=60) for _ in range(2)]
    for conn in conns:
        conn.request(
            "POST",
            "/api/run",
            body=urllib.parse.urlencode(form),
            headers={
                "Origin": ada.origin,
                "Cookie": f"flank_session={ada.cookies['flank_session']}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
    answers = [json.loads(conn.getresponse().read()) for conn in conns]
    assert answers[0] == answers[1] == {"ok": True, "message": "nightly #1 started", "url": "demo/nightly/1/index.html"}
    wait_for(lambda: record(1)["tasks"]["hold"]["status"] == "running", "hold to start")
    assert sorted(p.name for p in runs_dir().iterdir() if p.name.isdigit()) == ["1"]
    assert record(1)["triggered_by"] == {"user": "ada", "via": "web"}

    # the live stream of the running run, and a log followed from where a reconnect left off
    events = sse(served, "/api/events/run?project=demo&pipeline=nightly&run=1", until=b"first line")
    assert b"event: run" in events and b'"hold":{"status":{"value":"running"' in events
    first = sse(served, "/api/events/log?project=demo&pipeline=nightly&run=1&task=hold&from=0", until=b"first line")
    offset = first.split(b"id: ", 1)[1].split(b"\n", 1)[0].decode()
    assert offset == str(len(b"first line\n"))

    # cancel: as `flank cancel` does; the run ends cancelled and the log stream says so
    status, answer = ada.act("cancel", csrf, run="1")
    assert (status, answer["ok"]) == (200, True), answer
    wait_for(lambda: record(1)["status"] == "cancelled", "the run to be cancelled")
    resumed = sse(
        served, "/api/events/log?project=demo&pipeline=nightly&run=1&task=hold", last_id=offset, until=b"event: end"
    )
    assert b"first line" not in resumed and b'"value": "cancelled"' in resumed
    # a cancel of a finished run: a clear answer, nothing else happens
    status, answer = ada.act("cancel", csrf, run="1")
    assert status == 409 and "nothing to cancel: nightly #1 is not running (it was cancelled)" in answer["message"]
    # the history line follows run.json a moment later (records: the record first, then its line)
    wait_for(lambda: [h["status"] for h in history()] == ["cancelled"], "the cancelled run's history line")

    # rerun what failed: a new run of what did not succeed, by the same path as `flank run --rerun`
    status, answer = ada.act("rerun", csrf, rerun="1")
    assert status == 200 and answer["message"] == "nightly #2 started", answer
    open_gate()
    wait_for(lambda: record(2)["status"] == "success", "the rerun to succeed")
    assert record(2)["trigger"] == "rerun" and record(2)["selection"]["rerun_of"] == 1
    actions = [(a["user"], a["action"], a["status"]) for a in _audit()]
    assert actions == [
        ("ada", "login", 303),
        ("ada", "run", 200),
        ("ada", "cancel", 200),
        ("ada", "cancel", 409),
        ("ada", "rerun", 200),
    ]


def sse(port: int, path: str, until: bytes, last_id: str | None = None) -> bytes:
    """Read an event stream until `until` arrives (the server's heartbeat bounds each wait)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        extra = f"Last-Event-ID: {last_id}\r\n" if last_id else ""
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{extra}\r\n".encode())
        data = b""
        while until not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert until in data, data
    assert b"Content-Type: text/event-stream" in data
    return data


def test_refusals_are_clear_and_start_or_stop_nothing(served: int) -> None:
    ada = Client(served)
    ada.login("ada", PASSWORD)
    csrf = ada.session()["csrf"]
    cases = [
        (ada.act("run", "forged-token"), 403, "security token is missing or wrong"),
        (ada.act("run", None), 403, "security token is missing or wrong"),
        (Client(served, origin="http://evil.example").act("run", csrf), 403, "not sent from this site"),
        (ada.act("run", csrf, project="nope"), 404, "no project 'nope'"),
        (ada.act("run", csrf, pipeline="nigthly"), 404, "did you mean 'nightly'"),
        (ada.act("run", csrf, task="hlod"), 400, "did you mean 'hold'"),
        (ada.act("run", csrf, project="other"), 403, "ada (runner) may not act on project 'other'"),
        (ada.act("cancel", csrf, run="7"), 409, "nothing to cancel: nightly has not run yet"),
        (ada.act("rerun", csrf, rerun="x"), 400, "rerun takes a run id"),
        (Client(served).act("run", csrf), 401, "not signed in"),
    ]
    for (status, answer), want_status, want in cases:
        assert (status, answer["ok"]) == (want_status, False), answer
        assert want in answer["message"], answer
    no_origin = Client(served, origin=None)
    no_origin.cookies = dict(ada.cookies)
    status, answer = no_origin.act("run", csrf)
    assert status == 403 and "not sent from this site" in answer["message"]
    assert not runs_dir().exists() or not any(p.name.isdigit() for p in runs_dir().iterdir())
    assert all(a["status"] >= 400 for a in _audit() if a["action"] != "login")

    # signed out: the session no longer acts
    assert ada.request("POST", "/api/logout", {"csrf": csrf})[0] == 200
    assert ada.session() is None


def test_failed_sign_ins_are_rate_limited_per_client(served: int) -> None:
    mallory = Client(served, headers={"X-Real-IP": "203.0.113.9"})  # as nginx on this machine says
    for _ in range(5):
        status, page = mallory.login("ada", "wrong password")
        assert status == 401 and "wrong user or password" in page
    status, page = mallory.login("ada", PASSWORD)  # even the right password waits now
    assert status == 429 and "too many failed sign-ins from 203.0.113.9" in page
    assert mallory.session() is None
    assert Client(served).login("ada", PASSWORD)[0] == 303  # another client is not locked out
    status, page = Client(served, origin="http://evil.example").login("ada", PASSWORD)
    assert status == 403 and "not sent from this site" in page
    assert [a["status"] for a in _audit() if a.get("client") == "203.0.113.9"] == [401] * 5 + [429]


def test_a_session_expires(tmp_path: Path) -> None:
    deploy(tmp_path, YML)
    with open(Home().settings_file, "a") as f:
        f.write("[serve]\nactions = true\nsession_hours = 0.001\n")  # 3.6 seconds
    run_flank("users", "add", "ada", "--project", "demo", input=PASSWORD + "\n", check=True)
    port = free_port()
    proc = start_server(port)  # actions from flank.toml
    try:
        ada = Client(port)
        assert ada.login("ada", PASSWORD)[0] == 303
        csrf = ada.session()["csrf"]
        wait_for(lambda: ada.session() is None, "the session to expire", timeout=30)
        status, answer = ada.act("run", csrf)
        assert status == 401 and "the session expired" in answer["message"]
        assert not runs_dir().exists() or not any(p.name.isdigit() for p in runs_dir().iterdir())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_actions_on_the_network_need_a_user_and_without_actions_nothing_changes(tmp_path: Path) -> None:
    deploy(tmp_path, YML)
    run_flank("run", "demo", "nightly", "--task", "after", check=True)
    site = Home().site_dir
    files = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert not any(b"flank-actions" in data or b"actions.js" in data for data in files.values())
    port = free_port()
    proc = start_server(port)
    try:
        assert Client(port).request("GET", "/api/session")[0] == 404  # no API without --actions
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    refused = run_flank("serve", "--actions", "--host", "0.0.0.0", "--port", str(free_port()))
    assert refused.returncode == 1 and "with no users" in refused.stderr and "flank users add" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not Home().serve_actions_marker.exists()  # refused before changing anything
    run_flank("users", "add", "ada", "--project", "demo", input=PASSWORD + "\n", check=True)
    port = free_port()
    proc = start_server(port, "--actions", "--host", "0.0.0.0")
    try:
        assert Client(port).session() is None  # the API answers: nobody signed in
        page = (site / "demo" / "nightly" / "1" / "index.html").read_text()
        assert 'id="flank-actions" hidden' in page and "_static/actions.js" in page  # hidden until JS asks
        assert (site / "_static" / "actions.js").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    (site / "_static" / "actions.js").unlink()  # e.g. a site copied without it: the next start puts it back
    proc = start_server(free_port(), "--actions")
    proc.terminate()
    proc.wait(timeout=10)
    assert (site / "_static" / "actions.js").exists()


# --- issue 23 items 3 and 4: the Run form's parameters, and the Backfill form -------------------------------

DAY = date.today() - timedelta(days=20)  # well in the past: a backfill never runs minutes still to come
PARAMS_YML = (
    "persist: [gate]\npipelines:\n  nightly:\n"
    '    schedule: "0 2 * * *"\n    timezone: Europe/Copenhagen\n'
    "    params:\n      n: 3\n"
    '      model: {type: choice, choices: [lm, glm], default: lm, description: "which fit"}\n'
    "      quick: {type: bool, default: true}\n      day: {type: date, default: 2026-11-01}\n"
    "    tasks:\n"
    f"      hold: 'echo n=$FLANK_PARAM_N model=$FLANK_PARAM_MODEL quick=$FLANK_PARAM_QUICK; {WAIT_FOR_GATE}'\n"
    "  adhoc:\n    tasks:\n      once: echo once\n"
)


@pytest.fixture
def served_params(tmp_path: Path) -> Iterator[int]:
    deploy(tmp_path, PARAMS_YML)
    run_flank("init", "other", check=True)
    run_flank("users", "add", "ada", "--project", "demo", input=PASSWORD + "\n", check=True)
    run_flank("users", "add", "bob", "--project", "other", input=PASSWORD + "\n", check=True)
    port = free_port()
    proc = start_server(port, "--actions")
    try:
        yield port
    finally:
        open_gate()
        proc.terminate()
        proc.wait(timeout=10)


def _signed_in(port: int, user: str = "ada") -> tuple[Client, str]:
    client = Client(port)
    assert client.login(user, PASSWORD)[0] == 303
    session = client.session()
    assert session is not None
    return client, session["csrf"]


def _pipeline_page() -> str:
    from flank_ops.site import layout

    path = Home().site_dir / layout.url_pipeline("demo", "nightly")
    return path.read_text() if path.exists() else ""


def _no_runs() -> bool:
    return not runs_dir().exists() or not any(p.name.isdigit() or p.name == "backfills" for p in runs_dir().iterdir())


def test_the_run_form_shows_and_sends_the_parameters(served_params: int) -> None:
    page = _pipeline_page()
    run_form = page.split('data-action="run"', 1)[1].split("</form>", 1)[0]
    assert '<input type="number" step="1" name="p.n" value="3">' in run_form
    assert '<select name="p.model"><option selected>lm</option><option>glm</option></select>' in run_form
    assert "which fit" in run_form  # the description
    assert '<input type="checkbox" name="p.quick" value="true" checked>' in run_form
    assert '<input type="date" name="p.day" value="2026-11-01">' in run_form

    ada, csrf = _signed_in(served_params)
    cases = [
        ({"p.n": "three"}, "parameter 'n' (int): 'three' is not a whole number (e.g. -p n=3)"),
        ({"p.nn": "4"}, "pipeline 'nightly' has no parameter 'nn' (did you mean 'n'?"),
        ({"p.model": "gml"}, "'gml' is not one of lm, glm (did you mean 'glm'?)"),
        ({"p.day": "2026-13-01"}, "'2026-13-01' is not a date like 2026-11-01"),
    ]
    for fields, want in cases:
        status, answer = ada.act("run", csrf, **fields)
        assert (status, answer["ok"]) == (400, False), answer
        assert want in answer["message"], answer
    assert _no_runs()  # nothing started

    status, answer = ada.act("run", csrf, **{"p.n": "7", "p.model": "glm", "p.quick": "false", "p.day": "2026-11-01"})
    assert (status, answer["message"]) == (200, "nightly #1 started"), answer
    wait_for(lambda: record(1)["tasks"]["hold"]["status"] == "running", "hold to start")
    r = record(1)
    assert r["params"] == {"n": 7, "model": "glm", "quick": False, "day": "2026-11-01"}
    assert r["non_default_params"] == ["n", "model", "quick"]
    log = runs_dir() / "1" / "logs" / "hold.log"
    wait_for(lambda: log.exists() and "n=7" in log.read_text(), "the task's line")
    assert log.read_text().startswith("n=7 model=glm quick=false\n")  # what tasks see, as with -p
    open_gate()
    wait_for(lambda: record(1)["status"] == "success", "the run to succeed")
    audit = [a for a in _audit() if a["action"] == "run"]
    assert [a["status"] for a in audit] == [400] * 4 + [200]
    assert audit[-1]["params"] == {"n": "7", "model": "glm", "quick": "false", "day": "2026-11-01"}


def test_backfill_from_the_page_refusals_and_cancel(served_params: int) -> None:
    page = _pipeline_page()
    form = page.split('data-action="backfill"', 1)[1].split("</form>", 1)[0]
    assert 'name="start"' in form and 'name="end"' in form and 'name="p.n"' in form and "more than 100 runs" in form

    ada, csrf = _signed_in(served_params)
    bob, bob_csrf = _signed_in(served_params, "bob")
    future = date.today() + timedelta(days=2)
    cases = [
        (ada.act("backfill", csrf, start=DAY.isoformat()), 400, "which range?"),
        (ada.act("backfill", csrf, start="yesterday", end=DAY.isoformat()), 400, "'yesterday' is not a date"),
        (
            ada.act("backfill", csrf, start=future.isoformat(), end=future.isoformat()),
            400,
            "nightly has no scheduled minute",
        ),
        (
            ada.act("backfill", csrf, start=(DAY - timedelta(days=200)).isoformat(), end=DAY.isoformat()),
            400,
            "that is 201 runs of nightly",
        ),
        (
            ada.act("backfill", csrf, start=(DAY - timedelta(days=200)).isoformat(), end=DAY.isoformat()),
            400,
            "(tick “Yes, more than 100 runs” and send it again)",
        ),
        (ada.act("backfill", csrf, start="1000-01-01", end=DAY.isoformat(), yes="yes"), 400, "more than 1000 runs"),
        (ada.act("backfill", csrf, start=DAY.isoformat(), end=DAY.isoformat(), parallel="x"), 400, "parallel must"),
        (ada.act("backfill", csrf, start=DAY.isoformat(), end=DAY.isoformat(), **{"p.n": "x"}), 400, "'x' is not"),
        (ada.act("backfill", csrf, pipeline="adhoc", start="2026-01-01", end="2026-01-02"), 400, "has no schedule"),
        (bob.act("backfill", bob_csrf, start=DAY.isoformat(), end=DAY.isoformat()), 403, "may not act on"),
        (ada.act("backfill", "forged", start=DAY.isoformat(), end=DAY.isoformat()), 403, "security token"),
    ]
    for (status, answer), want_status, want in cases:
        assert (status, answer["ok"]) == (want_status, False), answer
        assert want in answer["message"], answer
    assert _no_runs()  # nothing started, no backfill written

    status, answer = ada.act(
        "backfill", csrf, start=DAY.isoformat(), end=(DAY + timedelta(days=2)).isoformat(), **{"p.n": "5"}
    )
    assert status == 200 and "started: 3 runs" in answer["message"], answer
    assert answer["url"] == "demo/nightly/index.html"
    wait_for(lambda: record(1)["tasks"]["hold"]["status"] == "running", "the first run to start")
    r = record(1)
    assert r["trigger"] == "backfill" and r["triggered_by"] == {"user": "ada", "via": "web"}
    assert r["params"]["n"] == 5 and r["scheduled_at"].startswith(f"{DAY.isoformat()}T02:00:00+")
    backfill_id = r["backfill"]
    # the pipeline page offers to cancel it (as `flank cancel --backfill`)
    wait_for(lambda: f'name="backfill" value="{backfill_id}"' in _pipeline_page(), "the backfill's Cancel")
    status, answer = bob.act("cancel", bob_csrf, backfill=backfill_id)
    assert status == 403, answer
    status, answer = ada.act("cancel", csrf, backfill=backfill_id)
    assert status == 200 and f"asked backfill {backfill_id} to stop" in answer["message"], answer
    wait_for(lambda: record(1)["status"] == "cancelled", "its run to be cancelled")
    listed = run_flank("backfill", "demo", "nightly", "--list", check=True).stdout
    wait_for(lambda: "cancelled" in run_flank("backfill", "demo", "nightly", "--list").stdout, "the backfill to end")
    assert sorted(p.name for p in runs_dir().iterdir() if p.name.isdigit()) == ["1"]  # no more started
    status, answer = ada.act("cancel", csrf, backfill=backfill_id)
    assert status == 409 and "nothing to cancel" in answer["message"], answer
    assert backfill_id in listed
    audit = [(a["user"], a["action"], a["status"]) for a in _audit() if a["action"] in ("backfill", "cancel")]
    assert audit[-4:] == [
        ("ada", "backfill", 200),
        ("bob", "cancel", 403),
        ("ada", "cancel", 200),
        ("ada", "cancel", 409),
    ]
    assert ("bob", "backfill", 403) in audit
