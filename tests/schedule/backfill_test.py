"""issue 23 item 4: flank backfill — real pushes, real make, real runs; nothing touches the crontab."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from helpers.cli import run_flank
from helpers.deployed import WAIT_FOR_GATE, deploy, history, open_gate, record, runs_dir, start_flank, task_status
from helpers.waiting import wait_for

pytestmark = pytest.mark.slow  # real runs (make test-fast leaves them out)

# A day well in the past, whatever today is: backfills never run minutes still to come.
DAY = date.today() - timedelta(days=20)

PIPELINE = """\
pipelines:
  nightly:
    schedule: "0 2 * * *"
    timezone: Europe/Copenhagen
    params:
      n: 3
    tasks:
      report: echo "for $FLANK_SCHEDULED_AT n=$FLANK_PARAM_N"
"""


def log(run_id: int) -> str:
    return (runs_dir() / str(run_id) / "logs" / "report.log").read_text()


def test_one_run_per_scheduled_minute_oldest_first(tmp_path: Path) -> None:
    deploy(tmp_path, PIPELINE)
    last = DAY + timedelta(days=2)
    proc = run_flank("backfill", "demo", "nightly", "--from", DAY.isoformat(), "--to", last.isoformat(), "-p", "n=5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 runs of nightly" in proc.stdout and "3/3 runs succeeded" in proc.stdout
    # every time it prints, in one format: the pipeline's zone, named (not ISO here and weekdays there)
    first = datetime.combine(DAY, time(2), ZoneInfo("Europe/Copenhagen"))
    said = f"{DAY.isoformat()} 02:00 {first.tzname()}"
    assert f"3 runs of nightly, {said} to " in proc.stdout, proc.stdout
    assert f"  {said}  #1 success" in proc.stdout, proc.stdout
    assert "T02:00" not in proc.stdout
    for run_id, day in enumerate([DAY, DAY + timedelta(days=1), last], start=1):
        r = record(run_id)
        assert r["trigger"] == "backfill" and r["status"] == "success"
        assert r["scheduled_at"].startswith(f"{day.isoformat()}T02:00:00+")  # in the pipeline's zone
        assert log(run_id) == f"for {r['scheduled_at']} n=5\n"
        assert r["params"] == {"n": 5} and r["non_default_params"] == ["n"]
    backfill_id = record(1)["backfill"]
    assert {record(i)["backfill"] for i in (1, 2, 3)} == {backfill_id}
    listed = run_flank("backfill", "demo", "nightly", "--list", check=True).stdout
    assert backfill_id in listed and "done" in listed and "3/3 runs" in listed
    assert f"3/3 runs  {said} to " in listed and "T02:00" not in listed, listed
    # the pipeline page groups them
    import os

    from flank_ops.site import layout

    page = (Path(os.environ["FLANK_HOME"]) / "site" / layout.url_pipeline("demo", "nightly")).read_text()
    assert f"Backfill {backfill_id}" in page and "3 of 3 runs" in page
    run_page = (Path(os.environ["FLANK_HOME"]) / "site" / layout.url_run("demo", "nightly", 1)).read_text()
    assert f"<dt>Trigger</dt><dd>backfill {backfill_id}, for " in run_page


def test_bad_backfills_start_nothing(tmp_path: Path) -> None:
    deploy(tmp_path, PIPELINE.replace('    schedule: "0 2 * * *"\n', '    schedule: "0 2 1 1 *"\n'))
    today = date.today()
    cases = [
        (["--from", "2026-11-01"], "flank: which range?"),
        (["--from", "yesterday", "--to", "2026-11-01"], "flank: --from 'yesterday' is not a date"),
        (["--from", DAY.isoformat(), "--to", (DAY - timedelta(days=1)).isoformat()], "flank: --to"),
        (
            ["--from", (today + timedelta(days=1)).isoformat(), "--to", (today + timedelta(days=2)).isoformat()],
            "flank: nightly has no scheduled minute",
        ),
        (["--from", "1000-01-01", "--to", "2025-01-01", "--yes"], "flank: that is more than 1000 runs"),
        (["--from", "1900-01-01", "--to", "2000-01-01", "-p", "m=1"], "flank: pipeline 'nightly' has no parameter 'm'"),
        (["--from", "1900-01-01", "--to", "2000-01-01", "--parallel", "0"], "flank: --parallel must be 1 to 16"),
    ]
    for args, message in cases:
        proc = run_flank("backfill", "demo", "nightly", *args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(message), (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not runs_dir().exists()  # no run, no backfill file
    proc = run_flank("backfill", "demo", "nightly", "--from", "1900-01-01", "--to", "2000-12-31")
    assert proc.stderr.startswith("flank: that is 101 runs of nightly"), proc.stderr
    assert "add --yes to start them all" in proc.stderr


def test_cancel_stops_the_running_run_and_starts_no_more(tmp_path: Path) -> None:
    yml = (
        "persist: [gate]\npipelines:\n  nightly:\n    schedule: '0 2 * * *'\n"
        f"    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
    )
    deploy(tmp_path, yml)
    driver = start_flank(
        "backfill", "demo", "nightly", "--from", DAY.isoformat(), "--to", (DAY + timedelta(days=4)).isoformat()
    )
    try:
        wait_for(lambda: task_status(1, "hold") == "running", "the first run's task to start")
        backfill_id = record(1)["backfill"]
        proc = run_flank("cancel", "demo", "nightly", "--backfill", backfill_id)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"flank: backfill {backfill_id} cancelled (1 runs started, 4 not started)" in proc.stdout
        out, err = driver.communicate(timeout=60)
    finally:
        open_gate()
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 1, out + err
    assert "cancelled (4 not started)" in out
    assert record(1)["status"] == "cancelled"
    assert [h["run_id"] for h in history()] == [1]  # no second run
    again = run_flank("cancel", "demo", "nightly", "--backfill", backfill_id)
    assert again.returncode == 3 and "is not running (it is cancelled)" in again.stderr


def test_parallel_runs_go_side_by_side_in_the_background(tmp_path: Path) -> None:
    """--detach starts the driver the web form starts (start_backfill); --parallel 2: two runs at once."""
    yml = (
        "persist: [gate]\npipelines:\n  nightly:\n    schedule: '0 2 * * *'\n"
        f"    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
    )
    deploy(tmp_path, yml)
    last = DAY + timedelta(days=2)
    proc = run_flank(
        "backfill",
        "demo",
        "nightly",
        "--from",
        DAY.isoformat(),
        "--to",
        last.isoformat(),
        "--parallel",
        "2",
        "--detach",
    )
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "started in the background: 3 runs of nightly" in proc.stdout
        wait_for(lambda: task_status(1, "hold") == "running" and task_status(2, "hold") == "running", "two runs")
        assert task_status(3, "hold") is None  # the third waits for a free slot
    finally:
        open_gate()
    backfill_id = record(1)["backfill"]
    wait_for(
        lambda: f"{backfill_id}  done" in run_flank("backfill", "demo", "nightly", "--list").stdout,
        "the backfill to end",
    )
    assert [record(i)["status"] for i in (1, 2, 3)] == ["success"] * 3
    assert [record(i)["scheduled_at"][:10] for i in (1, 2, 3)] == [
        (DAY + timedelta(days=i)).isoformat() for i in range(3)
    ]
