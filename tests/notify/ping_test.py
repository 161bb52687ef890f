"""Dead-man's switch pings to a real HTTP server: /start, success, /fail, and outages."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from flank_ops.notify import ping
from helpers.sample_runs import finished_run, make_project, notify_and_ping, run_context
from helpers.servers import http_recorder, refused_port


def pinged_project(ping_url: str, settings_toml: str | None = None):
    # notify: left to its default (failure): a notify: written with nowhere to send is recorded as such
    return make_project(
        flank_yml=f"""\
        pipelines:
          nightly:
            ping_url: {ping_url}
            tasks:
              extract: Rscript R/extract.R
              model: {{run: Rscript R/model.R, needs: [extract]}}
        """,
        settings_toml=settings_toml,
    )


def test_start_success_and_fail_pings() -> None:
    with http_recorder() as hc:
        paths = pinged_project(hc.url + "/ping/8f2e-uuid")
        failed = finished_run(paths)
        ping.ping_started(run_context(paths), dataclasses.replace(failed, status="running"))
        assert notify_and_ping(paths, failed) == "ping /fail sent"
        ok = finished_run(paths, status="success")
        ping.ping_started(run_context(paths), dataclasses.replace(ok, status="running"))
        assert notify_and_ping(paths, ok) == "ping sent"
        requests = [(r.method, r.path) for r in hc.requests]
        bodies = [r.body.decode() for r in hc.requests]
    assert requests == [
        ("POST", "/ping/8f2e-uuid/start"),
        ("POST", "/ping/8f2e-uuid/fail"),
        ("POST", "/ping/8f2e-uuid/start"),
        ("POST", "/ping/8f2e-uuid"),
    ]
    assert bodies[0] == "demo nightly #1 started\n"
    # the service keeps the body: the summary and the run page are there when the alert comes
    assert "demo nightly #1 failed — 1/2 ok; model failed (exit 1, 3 attempts)" in bodies[1]
    assert "run page: http://127.0.0.1:8083/demo/nightly/1/" in bodies[1]


def test_ping_and_notification_together() -> None:
    with http_recorder() as hc:
        paths = pinged_project(hc.url + "/p", settings_toml=f'[notify.webhook]\nurl = "{hc.url}/hook"\n')
        assert notify_and_ping(paths, finished_run(paths)) == "notify failure: webhook sent; ping /fail sent"
        assert [r.path for r in hc.requests] == ["/hook", "/p/fail"]


def test_query_string_is_kept() -> None:
    assert ping.signal_url("https://hc.example/p/abc?create=1", "start") == "https://hc.example/p/abc/start?create=1"
    assert ping.signal_url("https://hc.example/p/abc/", "fail") == "https://hc.example/p/abc/fail"
    assert ping.signal_url("https://hc.example/p/abc", "") == "https://hc.example/p/abc"


def test_ping_service_down_is_reported_not_raised(capsys) -> None:
    with refused_port() as port:
        paths = pinged_project(f"http://127.0.0.1:{port}/ping/uuid")
        record = finished_run(paths)
        ping.ping_started(run_context(paths), record)  # must not raise
        line = notify_and_ping(paths, record)
        assert f"flank: start ping failed: cannot connect to http://127.0.0.1:{port}" in capsys.readouterr().err
    refused = f"cannot connect to http://127.0.0.1:{port} (connection refused)"
    # the start ping's failure is kept with the finish ping's, in run.json and `flank status`
    assert line == f"ping /start failed ({refused}); ping /fail failed ({refused})"


@pytest.mark.slow
def test_slow_ping_service_times_out() -> None:
    with http_recorder(hang=True) as slow:
        paths = pinged_project(slow.url + "/ping/uuid", settings_toml="[ping]\ntimeout = 0.5\n")
        line = notify_and_ping(paths, finished_run(paths, status="success"))
    assert line == f"ping failed ({slow.url} did not answer within 0.5s)"


def test_wrong_ping_url_404_and_500_are_failures() -> None:
    with http_recorder(status=404) as hc:
        paths = pinged_project(hc.url + "/ping/typo")
        assert notify_and_ping(paths, finished_run(paths)) == f"ping /fail failed (HTTP 404 from {hc.url})"
        hc.status = 500
        assert notify_and_ping(paths, finished_run(paths)) == f"ping /fail failed (HTTP 500 from {hc.url})"


def test_no_ping_url_sends_nothing() -> None:
    paths = make_project()
    record = finished_run(paths)
    ping.ping_started(run_context(paths), record)
    assert "ping" not in (notify_and_ping(paths, record) or "")


@pytest.mark.slow
def test_a_hanging_start_ping_never_delays_the_first_task(tmp_path: Path) -> None:
    """The monitor hangs on /start for as long as the test likes: the task starts anyway."""
    from helpers.deployed import deploy, record, start_flank
    from helpers.waiting import wait_for

    marker = tmp_path / "task-started"
    with http_recorder(hang=True) as monitor:
        deploy(
            tmp_path,
            f"""\
            pipelines:
              nightly:
                ping_url: {monitor.url}/ping/uuid
                tasks:
                  first: touch {marker}
            """,
        )
        Path(os.environ["FLANK_HOME"], "flank.toml").write_text("[ping]\ntimeout = 600\n")
        proc = start_flank("run", "demo", "nightly")
        try:
            wait_for(lambda: monitor.requests, "the start ping to reach the monitor")
            # Event order: the task ran while the /start request was still unanswered.
            wait_for(marker.exists, "the first task to start while the start ping hangs")
            assert [r.path for r in monitor.requests] == ["/ping/uuid/start"]
        finally:
            monitor.hang = False
            monitor.released.set()  # the hanging handler now closes without an answer
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert [r.path for r in monitor.requests] == ["/ping/uuid/start", "/ping/uuid"]
    ping_line = record(1)["after_run"]["ping"]
    assert ping_line.startswith("ping /start failed (") and ping_line.endswith("; ping sent")
