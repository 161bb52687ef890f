"""flank run --local: the same runner in a laptop working copy, records under .flank/."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.repos import make_repo

YML = """\
pipelines:
  nightly:
    tasks:
      extract: echo "in $FLANK_PROJECT run $FLANK_RUN_ID" > out.txt
      report:
        run: cat out.txt
        needs: [extract]
"""


@pytest.mark.slow
def test_local_run_in_a_working_copy(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "myproj", {"flank.yml": YML, "R/.keep": ""})
    proc = run_flank("run", "--local", "nightly", cwd=repo / "R")  # from a subfolder, like RStudio's terminal
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nightly #1 success" in proc.stdout
    run_dir = repo / ".flank" / "runs" / "nightly" / "1"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "success" and record["local"] is True
    assert record["commit"]["message"] == "first"
    assert (run_dir / "logs" / "report.log").read_text() == "in myproj run 1\n"
    assert "after_run" in record and "note" not in record["after_run"]  # no bare repo, no note

    status = run_flank("status", "--local", cwd=repo, check=True).stdout
    assert "nightly" in status and "#1" in status and "success" in status
    assert run_flank("logs", "--local", "nightly", "report", cwd=repo, check=True).stdout == "in myproj run 1\n"


def test_local_without_flank_yml_and_wrong_arguments(tmp_path: Path) -> None:
    proc = run_flank("run", "--local", "nightly", cwd=tmp_path)
    assert proc.returncode == 1 and "no flank.yml in" in proc.stderr
    proc = run_flank("run", "demo")
    assert proc.returncode == 1 and "usage: flank run PROJECT PIPELINE" in proc.stderr


@pytest.mark.slow
def test_if_due_runs_only_when_the_schedule_is_due(tmp_path: Path) -> None:
    from datetime import datetime

    from helpers.deployed import deploy, history

    deploy(tmp_path, "pipelines:\n  nightly:\n    timezone: UTC\n    tasks:\n      only: echo hi\n")
    not_now = f"{(datetime.now(UTC).minute + 30) % 60} * * * *"
    proc = run_flank("run", "demo", "nightly", "--trigger", "schedule", "--if-due", not_now)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    assert history() == []
    proc = run_flank("run", "demo", "nightly", "--trigger", "schedule", "--if-due", "* * * * *")
    assert proc.returncode == 0, proc.stderr
    assert [(h["run_id"], h["trigger"]) for h in history()] == [(1, "schedule")]


TASK_CLOCK = (
    "pipelines:\n  nightly:\n    timezone: America/New_York\n    tasks:\n"
    '      clock: echo "TZ=$TZ AT=$FLANK_SCHEDULED_AT"\n'
)


@pytest.mark.slow
def test_tasks_get_the_pipelines_tz_and_the_minute_a_scheduled_run_stands_for(tmp_path: Path) -> None:
    import re

    from helpers.deployed import deploy, record, runs_dir

    deploy(tmp_path, TASK_CLOCK)

    def clock_line(run_id: int) -> str:
        return (runs_dir() / str(run_id) / "logs" / "clock.log").read_text()

    run_flank("run", "demo", "nightly", check=True)  # manual: no scheduled minute
    assert clock_line(1) == "TZ=America/New_York AT=\n"
    assert record(1)["scheduled_at"] is None

    # What cron starts: the minute it fired, in the pipeline's zone, with its offset.
    run_flank("run", "demo", "nightly", "--trigger", "schedule", "--if-due", "* * * * *", check=True)
    at = clock_line(2).strip().split("AT=", 1)[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00-0[45]:00", at), at
    assert record(2)["scheduled_at"] == at

    run_flank("run", "demo", "nightly", "--trigger", "schedule", "--scheduled-at", "2026-07-01T06:00+00:00", check=True)
    assert clock_line(3) == "TZ=America/New_York AT=2026-07-01T02:00:00-04:00\n"

    proc = run_flank("run", "demo", "nightly", "--scheduled-at", "2026-07-01T06:00+00:00")
    assert proc.returncode == 1 and "--scheduled-at goes with --trigger schedule" in proc.stderr


@pytest.mark.slow
def test_flank_scheduler_passes_the_due_minute_to_the_run(tmp_path: Path) -> None:
    from helpers.deployed import deploy, record, runs_dir
    from helpers.waiting import wait_for

    # deployed by a real push; no crontab: the scheduler is the clock here
    deploy(tmp_path, TASK_CLOCK.replace("    tasks:", "    schedule: '0 2 * * *'\n    tasks:"))

    proc = run_flank("scheduler", "--once", "--now", "2026-07-01T02:00-04:00", env={"TZ": "UTC"})
    assert proc.returncode == 0, proc.stderr
    assert "started demo nightly" in proc.stdout
    wait_for(
        lambda: (runs_dir() / "1" / "run.json").exists() and record(1)["status"] != "running",
        "the scheduled run to finish",
    )
    assert record(1)["trigger"] == "schedule" and record(1)["status"] == "success"
    assert (runs_dir() / "1" / "logs" / "clock.log").read_text() == "TZ=America/New_York AT=2026-07-01T02:00:00-04:00\n"


@pytest.mark.slow
def test_logs_show_the_runs_times_in_the_pipelines_zone(tmp_path: Path) -> None:
    import re

    from helpers.deployed import deploy

    deploy(tmp_path, "pipelines:\n  nightly:\n    timezone: Asia/Tokyo\n    tasks:\n      only: exit 3\n")
    assert run_flank("run", "demo", "nightly").returncode == 1
    lines = run_flank("logs", "demo", "nightly", env={"TZ": "UTC"}, check=True).stdout.splitlines()
    assert re.match(r"nightly #1 failed — started \w{3} \d\d \w{3} \d\d:\d\d JST — 0/1 ok", lines[0]), lines[0]
    assert re.match(r"  only  failed +\d\d:\d\d:\d\d JST ", lines[1]), lines[1]


SETUP_YML = """\
setup:
  run: mkdir -p built && cat deps.txt > built/stamp && echo x >> built/count && grep -qv fail deps.txt
  key: [deps.txt]
pipelines:
  nightly:
    tasks:
      use: cat built/stamp > out.txt
"""


@pytest.mark.slow
def test_a_local_run_runs_setup_when_its_key_changes_like_a_push_would(tmp_path: Path) -> None:
    """issue 28 item 9: `flank run --local` (and so `flank watch`) runs setup: in the working copy,
    cached by the VM's key in .flank/; a failure says what failed and what to run."""
    from flank_ops.config.load import load_config_file
    from flank_ops.deploy.setup import compute_key, local_key
    from flank_ops.paths import ProjectPaths
    from flank_ops.store.deploy_log import release_setup_build
    from helpers.repos import git

    repo = make_repo(tmp_path / "myproj", {"flank.yml": SETUP_YML, "deps.txt": "v1\n"})

    first = run_flank("run", "--local", "nightly", cwd=repo)
    again = run_flank("run", "--local", "nightly", cwd=repo)

    assert first.returncode == 0, first.stdout + first.stderr
    assert "setup: running in this working copy (key changed (deps.txt))" in first.stderr
    assert "setup: $ mkdir -p built" in first.stderr
    assert again.returncode == 0 and "setup: running" not in again.stderr
    assert (repo / "out.txt").read_text() == "v1\n"
    assert (repo / "built" / "count").read_text() == "x\n"
    # The key is the one a push of these files computes on the VM.
    setup = load_config_file(repo / "flank.yml").setup
    assert setup is not None
    head = git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    key = compute_key(repo / ".git", head, setup)[0]
    assert local_key(repo, setup)[0] == key
    assert release_setup_build(ProjectPaths.for_local(repo), repo.resolve().name) == f"{key[:16]}-local"

    (repo / "deps.txt").write_text("v2\n")  # saved, not committed
    changed = run_flank("run", "--local", "nightly", cwd=repo)
    assert changed.returncode == 0 and "setup: running in this working copy (key changed (deps.txt))" in changed.stderr
    assert (repo / "out.txt").read_text() == "v2\n"

    (repo / "deps.txt").write_text("fail\n")
    failed = run_flank("run", "--local", "nightly", cwd=repo)
    assert failed.returncode == 1
    assert (
        "flank: setup exited 1 (its output is above), so nothing ran\n  fix it, or run it yourself in your terminal: "
        "mkdir -p built && cat deps.txt > built/stamp && echo x >> built/count && grep -qv fail deps.txt"
    ) in failed.stderr
    assert not (repo / ".flank" / "runs" / "nightly" / "4").exists()


FAILING_PY = """\
import os
for i in range(30):
    print(f"row {i} cleaned")  # stdout to a file: Python flushes it before it prints the traceback
print("token is", os.environ["API_TOKEN"], "remote is", os.environ.get("FLANK_REMOTE"))
raise KeyError("['Categry'] not in index")
"""


@pytest.mark.slow
def test_a_failed_run_prints_the_tasks_last_lines_and_hints_that_work_where_they_are_printed(tmp_path: Path) -> None:
    """Issue 28 item 6: the terminal says why a task failed (its last lines, secrets masked), and issue 19
    bug 2: through `flank remote` (FLANK_REMOTE set by the laptop's ssh command) every hint is a
    `flank remote …` command, and the tasks never see that variable."""
    from helpers.deployed import deploy

    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    tasks:\n      summarise: python3 summarise.py\n",
        files={"summarise.py": FAILING_PY},
    )
    run_flank("secrets", "set", "demo", "API_TOKEN", input="hunter2-secret", check=True)
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  summarise, last 15 lines of its log:"))
    assert lines[at - 1].startswith("flank: nightly #1 failed"), proc.stdout
    tail = lines[at + 1 : at + 16]
    assert all(line.startswith("    | ") for line in tail) and not lines[at + 16].startswith("    | "), proc.stdout
    assert tail[-1] == """    | KeyError: "['Categry'] not in index\"""", proc.stdout
    assert "    | token is *** remote is None" in tail and "hunter2" not in proc.stdout
    assert "row 29 cleaned" in proc.stdout and "row 10 cleaned" not in proc.stdout
    assert "  log:  flank logs demo nightly 1 summarise" in lines
    assert "  rerun the failures: flank run demo nightly --rerun 1" in lines

    proc = run_flank("run", "demo", "nightly", env={"FLANK_REMOTE": "flank"})  # as `flank remote run` runs it
    assert "    | token is *** remote is None" in proc.stdout  # the task did not inherit it
    assert "  log:  flank remote logs nightly 2 summarise" in proc.stdout.splitlines()
    assert "  rerun the failures: flank remote run nightly --rerun 2" in proc.stdout.splitlines()
    proc = run_flank("run", "demo", "nightly", "--rerun", "x", env={"FLANK_REMOTE": "vm2"})
    assert "see the ids with: flank remote status --remote vm2" in proc.stderr


def test_detach_says_what_is_wrong_with_a_force_task(tmp_path: Path) -> None:
    """Found by the third trial: a --force-task naming no task, with --detach, printed only 'the
    background run did not start' and to run it in the foreground to see why."""
    repo = make_repo(tmp_path / "myproj", {"flank.yml": YML})
    proc = run_flank("run", "--local", "nightly", "--force-task", "reprot", "--detach", cwd=repo)
    assert proc.returncode == 1
    assert proc.stderr.startswith("flank: no task 'reprot' in pipeline 'nightly'"), proc.stderr
    assert "did not start" not in proc.stderr
    assert not (repo / ".flank" / "runs" / "nightly" / "1").exists()  # nothing started


def test_a_detached_run_that_did_not_start_hints_the_users_own_command(tmp_path: Path) -> None:
    """Found by a trial: the hint dropped the options, so the run it suggested was another run."""
    from helpers.deployed import leave_free
    from helpers.small_disk import mount_small_tmpfs

    disk = tmp_path / "disk"
    mount_small_tmpfs(disk)
    try:
        repo = make_repo(disk / "myproj", {"flank.yml": YML})
        (repo / ".flank").mkdir()
        leave_free(disk, 0)  # the background run cannot even create its record (a real ENOSPC)
        proc = run_flank(
            "run", "--local", "nightly", "--task", "report", "--force-task", "report", "--detach", cwd=repo
        )
        assert proc.returncode == 1
        assert proc.stderr.startswith("flank: the background run did not start"), proc.stderr
        want = "run it in the foreground to see why: flank run --local nightly --task report --force-task report"
        assert want in proc.stderr.splitlines()[1], proc.stderr
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_working_copys_pipeline_page_says_how_to_start_it_there(tmp_path: Path) -> None:
    # the page's hint must work where the page is (a working copy: --local), not name a VM project
    repo = make_repo(tmp_path / "myproj", {"flank.yml": YML})
    run_flank("run", "--local", "nightly", cwd=repo, check=True)
    (page,) = [p for p in (repo / ".flank" / "site").rglob("index.html") if p.parent.name == "nightly"]
    text = page.read_text()
    assert "Start it with <code>flank run --local nightly</code>" in text
    assert "flank run myproj nightly" not in text


def test_task_lines_come_in_the_pipelines_order_when_several_end_at_once(tmp_path: Path) -> None:
    # a matrix_from: task's instances end moments after the task that writes their cells: the
    # runner sees both at once, and the writer's line must still come first (it printed last)
    yml = (
        "pipelines:\n  p:\n    tasks:\n"
        "      cells:\n        run: printf 'a\\nb\\nc\\n' > cells.txt\n        outputs: [cells.txt]\n"
        "      work:\n        run: echo $FLANK_MATRIX_VALUE\n        needs: [cells]\n        matrix_from: cells.txt\n"
        "      after:\n        run: echo done\n        needs: [work]\n"
    )
    repo = make_repo(tmp_path / "proj", {"flank.yml": yml})
    out = run_flank("run", "--local", "p", cwd=repo, check=True).stdout
    names = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert names == ["cells", "work[a]", "work[b]", "work[c]", "after"], out
