"""A real run's pages while it runs (issue 8, bug 2 and "Missing" 2): a run has its page as soon as it
starts, that page shows the running task's last lines and follows them, and a killed run's pages stop
saying "running"."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from flank_ops.paths import Home
from helpers.cli import run_flank, wait_for_site_draws
from helpers.deployed import CHATTY, deploy, gate_dir, history, open_gate, start_flank, task_status
from helpers.waiting import wait_for

YML = f"persist: [gate]\npipelines:\n  nightly:\n    tasks:\n      hold: '{CHATTY}'\n"


def _run_page(run_id: int = 1) -> Path:
    return Home().site_dir / "demo" / "nightly" / str(run_id) / "index.html"


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


@pytest.mark.slow
def test_a_run_has_its_page_at_once_and_it_follows_the_running_task(tmp_path: Path) -> None:
    deploy(tmp_path, YML)
    runner = start_flank("run", "demo", "nightly")
    try:
        wait_for(lambda: task_status(1, "hold") == "running", "hold to start")
        # the page exists while the only task has not changed status since it started
        wait_for(lambda: "▶ running" in _text(_run_page()), "the run's page")
        wait_for(lambda: "demo/nightly/1/index.html" in _text(Home().site_dir / "index.html"), "home links it")
        wait_for(lambda: "tidyverse attached" in _text(_run_page()), "the running task's last lines on the page")
        gate_dir().mkdir(parents=True, exist_ok=True)
        (gate_dir() / "more").write_text("")
        wait_for(lambda: "fitting glm" in _text(_run_page()), "new output on the page, with no status change")
        assert task_status(1, "hold") == "running"
    finally:
        open_gate()
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, out + err
    wait_for_site_draws(Home().root)  # the final page is drawn after `flank run` answered
    page = _text(_run_page())
    assert "✓ success" in page and 'http-equiv="refresh"' not in page and "Running now" not in page


@pytest.mark.slow
def test_a_killed_run_stops_saying_running_after_the_next_look(tmp_path: Path) -> None:
    deploy(tmp_path, YML)
    runner = start_flank("run", "demo", "nightly")
    try:
        wait_for(lambda: "▶ running" in _text(_run_page()), "the run's page")
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        open_gate()
    assert run_flank("status", "demo").returncode == 0
    assert [h["status"] for h in history()] == ["interrupted"]
    page = _text(_run_page())
    assert "! interrupted" in page and 'http-equiv="refresh"' not in page
    home = _text(Home().site_dir / "index.html")
    assert 'http-equiv="refresh"' not in home and "! interrupted" in home


@pytest.mark.slow
def test_a_webhook_outage_after_a_real_run_is_on_its_page(tmp_path: Path, flank_home: Path) -> None:
    import socket

    deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      model: echo fitting; exit 3\n")
    with socket.socket() as s:  # a port on 127.0.0.1 that refuses connections
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        (flank_home / "flank.toml").write_text(f'[notify.webhook]\nurl = "http://127.0.0.1:{port}/hook"\ntimeout = 5\n')
        proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1, proc.stderr
    page = _text(_run_page())
    assert "webhook failed (cannot connect to http://127.0.0.1" in page and 'role="alert"' in page
    assert "fitting" in page  # the failed task's last lines, too
