"""`flank scheduler`: which pipelines are due in a minute, and the real command starting them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flank_ops.config.load import load_config
from flank_ops.config.model import Config, Pipeline
from flank_ops.paths import Home
from flank_ops.schedule.scheduler import DueRun, command_for, due_at
from helpers.cli import REPO_ROOT, run_flank
from helpers.repos import git, make_repo
from helpers.user_crontab import user_crontab  # noqa: F401 - fixture
from helpers.waiting import wait_for

UTC = UTC

FLANK_YML = """\
pipelines:
  nightly:
    schedule: "0 2 * * *"
    timezone: Europe/London
    tasks:
      hello: echo hello from the schedule
  hourly:
    schedule: ["@hourly", "30 2 * * *"]
    tasks:
      tick: echo tick
  manual:
    tasks:
      only: echo never scheduled
"""


def deployed(home: Path, name: str, flank_yml: str) -> None:
    """A project as post-receive leaves it: a bare repo and current -> releases/<sha> holding flank.yml."""
    git("init", "-q", "--bare", str(home / f"{name}.git"), cwd=home.parent)
    release = home / name / "releases" / "abc123"
    release.mkdir(parents=True)
    (release / "flank.yml").write_text(flank_yml)
    validated = Home(home).project(name).release_config("abc123")  # the copy the deploy validated
    validated.parent.mkdir(parents=True, exist_ok=True)
    validated.write_text(flank_yml)
    os.symlink(release, home / name / "current")


def test_due_at_is_a_pure_function_of_the_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    configs = {
        "demo": load_config(FLANK_YML),
        "other": Config(
            pipelines={"p": Pipeline(name="p", tasks={}, schedule=("0 1 * * *",), timezone="Europe/London")}
        ),
    }
    assert due_at(configs, datetime(2026, 7, 1, 0, 0, tzinfo=UTC)) == [
        DueRun("demo", "hourly", "@hourly", None),
        DueRun("other", "p", "0 1 * * *", "Europe/London"),  # 01:00 BST
    ]
    assert due_at(configs, datetime(2026, 7, 1, 1, 0, tzinfo=UTC)) == [
        DueRun("demo", "nightly", "0 2 * * *", "Europe/London"),
        DueRun("demo", "hourly", "@hourly", None),
    ]
    assert due_at(configs, datetime(2026, 7, 1, 2, 30, tzinfo=UTC)) == [DueRun("demo", "hourly", "30 2 * * *", None)]
    assert due_at(configs, datetime(2026, 7, 1, 2, 31, tzinfo=UTC)) == []


def test_command_template_is_split_before_names_are_filled_in() -> None:
    run = DueRun("my proj", "night;ly", "0 2 * * *", None)
    assert command_for("/bin/flank run {project} {pipeline} --trigger schedule", run) == [
        "/bin/flank",
        "run",
        "my proj",
        "night;ly",
        "--trigger",
        "schedule",
    ]


def test_once_starts_each_due_pipeline_and_does_not_wait(
    flank_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flank_home.mkdir()
    deployed(flank_home, "demo", FLANK_YML)
    deployed(flank_home, "broken", "pipelines: [not, a, mapping]\n")
    (flank_home / "never-deployed.git").mkdir()  # `flank init` done, nothing pushed: skipped quietly
    markers = tmp_path / "markers"
    markers.mkdir()
    # The started process writes a marker we wait for; it holds its own output file open, proving we did not wait.
    command = (
        f"{sys.executable} -c \"import sys; open(sys.argv[1], 'w').write(' '.join(sys.argv[2:]))\" "
        f"{markers}/{{project}}-{{pipeline}} {{project}} {{pipeline}}"
    )
    proc = run_flank("scheduler", "--once", "--now", "2026-07-01T02:00+01:00", "--command", command, env={"TZ": "UTC"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert (
        lines[0]
        == "flank scheduler: broken: deployed flank.yml cannot be read: " + lines[0].split("cannot be read: ", 1)[1]
    )
    started = [line for line in lines if " started " in line]
    assert len(started) == 2
    assert started[0].startswith("2026-07-01 01:00 started demo nightly (schedule '0 2 * * *' in Europe/London, pid ")
    assert started[1].startswith("2026-07-01 01:00 started demo hourly (schedule '@hourly', pid ")
    wait_for(
        lambda: (markers / "demo-nightly").exists() and (markers / "demo-hourly").exists(), "two markers", timeout=30.0
    )
    wait_for(lambda: (markers / "demo-nightly").read_text() == "demo nightly", "marker content", timeout=30.0)
    assert sorted(p.name for p in markers.iterdir()) == ["demo-hourly", "demo-nightly"]


def test_nothing_due_starts_nothing(flank_home: Path) -> None:
    flank_home.mkdir()
    deployed(flank_home, "demo", FLANK_YML)
    proc = run_flank("scheduler", "--once", "--now", "2026-07-01T02:17+00:00", "--command", "false")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_bad_options_are_clear_errors() -> None:
    proc = run_flank("scheduler", "--now", "2026-07-01T02:00")
    assert proc.returncode == 1
    assert proc.stderr == "flank: --now works only with --once\n  e.g. flank scheduler --once --now 2026-11-24T02:00\n"
    proc = run_flank("scheduler", "--once", "--now", "tuesday")
    assert proc.returncode == 1
    assert proc.stderr.startswith("flank: --now 'tuesday' is not an ISO date and time\n")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_foreground_loop_stops_cleanly(flank_home: Path, signum: int) -> None:
    flank_home.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "flank_ops", "scheduler", "--command", "true"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()  # blocks until the loop has started
        assert first == f"flank scheduler: running the schedules of 0 projects in {flank_home} (Ctrl-C to stop)\n"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == "flank scheduler: stopped\n"
    assert err == ""


@pytest.mark.slow
def test_due_schedule_starts_a_real_flank_run(user_crontab, flank_home: Path, tmp_path: Path) -> None:  # noqa: F811
    """End to end: push through the real hooks, then one scheduler tick starts the real runner."""
    run_flank("init", "demo", check=True)
    wc = make_repo(tmp_path / "wc", {"flank.yml": FLANK_YML})
    git("remote", "add", "flank", str(flank_home / "demo.git"), cwd=wc)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_DIR")}
    push = subprocess.run(["git", "push", "-q", "flank", "main"], cwd=wc, env=env, capture_output=True, text=True)
    assert push.returncode == 0, push.stderr
    assert "nightly" in push.stderr and "0 2 * * * (Europe/London)" in push.stderr
    crontab = (flank_home / "demo" / "crontab").read_text()
    assert " run demo nightly --trigger schedule" in crontab
    proc = run_flank("scheduler", "--once", "--now", "2026-07-01T02:00+01:00")
    assert proc.returncode == 0, proc.stderr
    assert "started demo nightly (schedule '0 2 * * *' in Europe/London" in proc.stdout
    record_file = flank_home / "demo" / "runs" / "nightly" / "1" / "run.json"

    def finished():
        if not record_file.exists():
            return None
        record = json.loads(record_file.read_text())
        return record if record["status"] != "running" else None

    record = wait_for(finished, "the scheduled run to finish", timeout=60)
    assert record["trigger"] == "schedule"
    assert record["status"] == "success", record
    log = flank_home / "demo" / "runs" / "nightly" / "1" / "logs" / "hello.log"
    assert "hello from the schedule" in log.read_text()

    # The crontab line cron would fire every hour: under cron's bare environment, outside 02:00 London
    # time, the guard exits 0 without a word and starts nothing.
    (line,) = [x for x in crontab.splitlines() if "run demo nightly" in x and not x.startswith("#")]
    assert line.startswith("0 * * * * ") and line.endswith("--if-due '0 2 * * *'")
    from flank_ops.schedule.due import is_due

    nightly = load_config(FLANK_YML).pipelines["nightly"]
    if not is_due(nightly, "0 2 * * *"):  # (at 02:00 London it would rightly run)
        guard = subprocess.run(
            ["/bin/sh", "-c", line.split(" ", 5)[5]],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert (guard.returncode, guard.stdout, guard.stderr) == (0, "", "")
        assert sorted(p.name for p in record_file.parent.parent.iterdir() if p.name.isdigit()) == ["1"]
