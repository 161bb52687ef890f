"""Catch-up: a scheduled run missed while the VM was off runs once when it is back.

No test can reboot the machine under the cron daemon, so the outage is simulated by the
records (the last scheduled run is older than the missed minute) and the `@reboot`
command is run as cron would run it: by /bin/sh, from the generated block.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flank_ops.paths import Home
from flank_ops.store import records
from flank_ops.store.model import RunRecord, RunStatus, RunTrigger
from helpers.cli import run_flank
from helpers.cost_fixtures import write_toml
from helpers.deployed import deploy, history, record
from helpers.waiting import wait_for


def _scheduled_run(run_id: int, scheduled: datetime, pipeline: str = "nightly", trigger: str = "schedule") -> None:
    """A finished scheduled run, as the runner records it (through the record store)."""
    start = scheduled.astimezone(UTC)
    paths = Home().project("demo")

    def build(new_id: int) -> RunRecord:
        return RunRecord(
            project="demo",
            pipeline=pipeline,
            run_id=new_id,
            trigger=RunTrigger(trigger),
            scheduled_at=scheduled.isoformat(),
            status=RunStatus.SUCCESS,
            started_at=start.isoformat(),
            ended_at=(start + timedelta(seconds=1)).isoformat(),
            duration_s=1.0,
        )

    new_id, folder, made = records.create_run(paths, pipeline, build)
    assert new_id == run_id
    records.release_space(folder)
    records.append_history(paths, made)


def _deployed_earlier(by: timedelta, first_only: bool = False) -> None:
    """Move the deploys' lines in deploys.jsonl back in time (as if pushed `by` earlier)."""
    deploys = Home().project("demo").deploys_log
    lines = [json.loads(line) for line in deploys.read_text().splitlines()]
    for line in lines[:1] if first_only else lines:
        line["time"] = (datetime.fromisoformat(line["time"]) - by).isoformat()
    deploys.write_text("".join(json.dumps(line) + "\n" for line in lines))


YML = """\
pipelines:
  nightly:
    schedule: "0 2 * * *"
    timezone: Europe/London
{extra}    tasks:
      work: echo "scheduled for $FLANK_SCHEDULED_AT"
"""


@pytest.mark.slow
def test_missed_nightly_run_is_caught_up_once(tmp_path: Path) -> None:
    write_toml()
    deploy(tmp_path, YML.format(extra=""))
    _scheduled_run(1, datetime.fromisoformat("2026-11-25T02:00:00+00:00"))
    # the VM was off at 02:00 on the 26th and is back at 02:30
    out = run_flank("catchup", "demo", "--now", "2026-11-26T02:30:00+00:00", check=True).stdout
    assert "catching up demo nightly (missed Thu 26 Nov 02:00 GMT)" in out
    wait_for(lambda: len(history()) == 2, "the caught-up run to finish")
    rec = record(2)
    assert rec["trigger"] == "catchup" and rec["status"] == "success"
    assert datetime.fromisoformat(rec["scheduled_at"]) == datetime.fromisoformat("2026-11-26T02:00:00+00:00")
    # asking again (a second boot, or the scheduler starting) starts nothing: run 2 stands for 02:00
    again = run_flank("catchup", "demo", "--now", "2026-11-26T02:31:00+00:00", check=True).stdout
    assert "nothing to catch up" in again
    assert len(history()) == 2


@pytest.mark.slow
def test_outside_the_window_or_disabled_nothing_runs(tmp_path: Path) -> None:
    write_toml()
    clone = deploy(tmp_path, YML.format(extra=""))
    _scheduled_run(1, datetime.fromisoformat("2026-11-25T02:00:00+00:00"))
    late = run_flank("catchup", "demo", "--now", "2026-11-26T08:30:00+00:00", check=True).stdout
    assert "nothing to catch up" in late  # 6h30 after the missed 02:00: past the default 6h window
    from helpers.deployed import push

    push(clone, {"flank.yml": YML.format(extra="    catchup: 0\n")}, "no catch-up")
    off = run_flank("catchup", "demo", "--now", "2026-11-26T02:30:00+00:00", check=True).stdout
    assert "nothing to catch up" in off
    push(clone, {"flank.yml": YML.format(extra="    catchup: 12h\n")}, "longer window")
    wide = run_flank("catchup", "demo", "--dry-run", "--now", "2026-11-26T08:30:00+00:00", check=True).stdout
    assert "would catch up demo nightly (missed Thu 26 Nov 02:00 GMT)" in wide
    # issue 23: a backfill that ran the missed minute stands for it too
    _scheduled_run(2, datetime.fromisoformat("2026-11-26T02:00:00+00:00"), trigger="backfill")
    backfilled = run_flank("catchup", "demo", "--dry-run", "--now", "2026-11-26T08:30:00+00:00", check=True).stdout
    assert "would catch up" not in backfilled


@pytest.mark.slow
def test_many_missed_firings_give_one_run_for_the_latest(tmp_path: Path) -> None:
    write_toml()
    deploy(
        tmp_path,
        "pipelines:\n  hourly:\n    schedule: '0 * * * *'\n    timezone: UTC\n    tasks:\n      work: 'true'\n",
    )
    _scheduled_run(1, datetime.fromisoformat("2026-11-26T05:00:00+00:00"), pipeline="hourly")
    out = run_flank("catchup", "--now", "2026-11-26T09:20:00+00:00", check=True).stdout  # 06, 07, 08, 09 missed
    assert out.count("catching up") == 1 and "missed Thu 26 Nov 09:00 UTC" in out
    wait_for(lambda: len(history("hourly")) == 2, "the caught-up run")
    assert record(2, "hourly")["trigger"] == "catchup"


@pytest.mark.slow
def test_the_reboot_line_catches_up_as_cron_runs_it(tmp_path: Path) -> None:
    from flank_ops.config.load import load_config_file
    from flank_ops.schedule.crontab import reboot_line

    write_toml()

    deploy(tmp_path, "pipelines:\n  often:\n    schedule: '* * * * *'\n    tasks:\n      work: 'true'\n")
    _scheduled_run(1, datetime.now(UTC) - timedelta(minutes=30), pipeline="often")
    _deployed_earlier(timedelta(hours=1))  # the schedule was in force before the outage
    paths = Home().project("demo")
    reboot = reboot_line(paths, load_config_file(paths.current / "flank.yml"))
    assert reboot is not None and reboot.when == "@reboot" and reboot.command.endswith("catchup --boot demo")
    assert reboot.text() in paths.crontab_file.read_text()  # in the block the push wrote
    env = {"HOME": os.environ["HOME"], "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin", "LOGNAME": "root"}
    done = subprocess.run(["/bin/sh", "-c", reboot.command], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "catching up demo often" in done.stdout
    wait_for(lambda: len(history("often")) == 2, "the caught-up run")
    assert record(2, "often")["trigger"] == "catchup"


def test_catchup_values_are_validated_with_line_and_column(tmp_path: Path) -> None:
    from flank_ops.config.load import load_config_file

    def pipeline(value: str) -> Path:
        path = tmp_path / "flank.yml"
        path.write_text(
            f"pipelines:\n  nightly:\n    schedule: '0 2 * * *'\n    catchup: {value}\n    tasks:\n      a: 'true'\n"
        )
        return path

    assert load_config_file(pipeline("0")).pipelines["nightly"].catchup_s == 0
    assert load_config_file(pipeline("'0'")).pipelines["nightly"].catchup_s == 0
    assert load_config_file(pipeline("12h")).pipelines["nightly"].catchup_s == 12 * 3600
    proc = run_flank("validate", str(pipeline("2 hours")))
    assert proc.returncode == 1
    assert "flank.yml:4:14: catchup: '2 hours' is not a duration" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_a_firing_from_before_the_first_deploy_of_the_schedule_is_never_missed(tmp_path: Path) -> None:
    """Pushed at 08:51 with a 07:00 firing earlier that day: 07:00 was never this pipeline's to run."""
    write_toml()
    pushed = datetime.now(UTC)
    earlier = pushed - timedelta(minutes=10)  # a firing inside the catch-up window, before the push
    yml = f"pipelines:\n  daily:\n    schedule: '{earlier.minute} {earlier.hour} * * *'\n    timezone: UTC\n"
    clone = deploy(tmp_path, yml + "    tasks:\n      work: 'true'\n")
    _scheduled_run(1, pushed, pipeline="daily", trigger="manual")  # it ran once, by hand, after the push
    later = (pushed + timedelta(minutes=5)).isoformat()
    out = run_flank("catchup", "demo", "--dry-run", "--now", later, check=True).stdout
    assert "would catch up" not in out
    # a later push that keeps the schedule does not move where it began: with the first deploy a day
    # earlier (its deploys.jsonl line moved back), 07:00 was the schedule's and was missed
    from helpers.deployed import push

    push(clone, {"README": "docs\n"}, "same schedule")
    _deployed_earlier(timedelta(days=1), first_only=True)
    missed = run_flank("catchup", "demo", "--dry-run", "--now", later, check=True).stdout
    assert f"would catch up demo daily (missed {earlier:%a %d %b %H:%M} UTC)" in missed


@pytest.mark.slow
def test_at_boot_the_current_minute_counts_as_missed_once_its_zero_second_passed(tmp_path: Path) -> None:
    """Debian cron started mid-minute runs @reboot, then waits for the next minute: a VM back at
    02:00:30 would skip that night's 02:00. The @reboot line says --boot; by hand the current minute
    stays cron's (or the scheduler's) to run."""
    write_toml()
    deploy(tmp_path, YML.format(extra=""))
    _scheduled_run(1, datetime.fromisoformat("2026-11-25T02:00:00+00:00"))
    by_hand = run_flank("catchup", "demo", "--dry-run", "--now", "2026-11-26T02:00:30+00:00", check=True).stdout
    assert "would catch up" not in by_hand
    at_zero = run_flank("catchup", "demo", "--boot", "--dry-run", "--now", "2026-11-26T02:00:00+00:00").stdout
    assert "would catch up" not in at_zero  # cron starting at :00 runs this minute itself
    boot = run_flank("catchup", "demo", "--boot", "--now", "2026-11-26T02:00:30+00:00", check=True).stdout
    assert "catching up demo nightly (missed Thu 26 Nov 02:00 GMT)" in boot
    wait_for(lambda: len(history()) == 2, "the caught-up run")
    assert datetime.fromisoformat(record(2)["scheduled_at"]) == datetime.fromisoformat("2026-11-26T02:00:00+00:00")
