"""flank status: one line per pipeline with its last run."""

from __future__ import annotations

from pathlib import Path

from helpers.cli import run_flank
from run.deployed import deploy

YML = """\
pipelines:
  nightly:
    tasks:
      only: echo hi
  weekly:
    tasks:
      broken: exit 1
"""


def test_status_table_shows_last_runs(tmp_path: Path) -> None:
    run_flank("init", "fresh", check=True)
    deploy(tmp_path, YML)
    run_flank("run", "demo", "nightly", check=True)
    run_flank("run", "demo", "nightly", check=True)
    assert run_flank("run", "demo", "weekly").returncode == 1

    proc = run_flank("status")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["PROJECT", "PIPELINE", "LAST", "RUN", "STATUS", "STARTED", "DURATION", "NEXT", "RUN"]
    rows = {tuple(line.split()[:4]) for line in lines[1:]}
    assert ("demo", "nightly", "#2", "success") in rows
    assert ("demo", "weekly", "#1", "failed") in rows
    assert any(line.startswith("fresh") and "no deploy yet (git push flank main)" in line for line in lines)

    only_demo = run_flank("status", "demo", check=True).stdout
    assert "fresh" not in only_demo and "nightly" in only_demo

    proc = run_flank("status", "nope")
    assert proc.returncode == 1 and "no project 'nope'" in proc.stderr and "known projects: demo, fresh" in proc.stderr


def test_a_running_run_is_shown_before_the_triggers_skipped_behind_it(tmp_path: Path) -> None:
    from helpers.waiting import wait_for
    from run.deployed import WAIT_FOR_GATE, open_gate, start_flank, task_status

    deploy(
        tmp_path,
        f"persist: [gate]\npipelines:\n  stress:\n    overlap: skip\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n",
    )
    first = start_flank("run", "demo", "stress")
    try:
        wait_for(lambda: task_status(1, "hold", "stress") == "running", "the first run to start")
        assert run_flank("run", "demo", "stress", "--trigger", "schedule").returncode == 1  # skipped: #2
        row = run_flank("status", "demo", check=True).stdout.splitlines()[1]
        assert row.split()[:5] == ["demo", "stress", "#1", "running;", "#2"]
        assert "running; #2 skipped" in row and "so far" in row
    finally:
        open_gate()
        first.communicate(timeout=60)
    row = run_flank("status", "demo", check=True).stdout.splitlines()[1]
    assert row.split()[:4] == ["demo", "stress", "#2", "skipped"]


def test_a_partial_run_says_so_and_shows_the_last_full_run(tmp_path: Path) -> None:
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    tasks:\n      a: echo a\n      b:\n        run: exit 1\n"
        "        needs: [a]\n      c: echo c\n",
    )
    assert run_flank("run", "demo", "nightly", "--task", "a").returncode == 0
    row = run_flank("status", "demo", check=True).stdout.splitlines()[1]
    assert row.split("#1", 1)[1].lstrip().startswith("success (partial: 1 of 3 tasks; no full run yet)  "), row
    assert run_flank("run", "demo", "nightly").returncode == 1
    assert run_flank("run", "demo", "nightly", "--task", "c").returncode == 0
    row = run_flank("status", "demo", check=True).stdout.splitlines()[1]
    assert row.split("#3", 1)[1].lstrip().startswith("success (partial: 1 of 3 tasks; last full run #2 failed)  "), row


def test_times_are_in_the_projects_zone_in_one_format_and_name_it(tmp_path: Path) -> None:
    """issue 19 bug 5: one zone per project (its pipelines' zone, the VM's when they differ), one date
    format in the table."""
    import re

    deploy(
        tmp_path,
        "pipelines:\n  ny:\n    timezone: America/New_York\n    schedule: '0 2 * * *'\n"
        "    tasks:\n      a: echo a\n  vm:\n    schedule: '0 3 * * *'\n    tasks:\n      b: echo b\n",
    )
    deploy(
        tmp_path / "nz",
        "pipelines:\n  nightly:\n    timezone: Pacific/Auckland\n    schedule: '0 2 * * *'\n"
        "    tasks:\n      a: echo a\n",
        project="nz",
    )
    for project, name in (("demo", "ny"), ("demo", "vm"), ("nz", "nightly")):
        run_flank("run", project, name, check=True)
    lines = run_flank("status", env={"TZ": "Asia/Tokyo"}, check=True).stdout.splitlines()
    ny, vm, nz = (next(line for line in lines if line.split()[1] == name) for name in ("ny", "vm", "nightly"))
    day = r"\d{4}-\d\d-\d\d"
    # demo's pipelines differ: the VM's zone for both, the next runs converted into it
    assert re.search(rf" {day} \d\d:\d\d JST .* {day} 1[56]:00 JST$", ny), ny  # 02:00 in New York
    assert re.search(rf" {day} \d\d:\d\d JST .* {day} 03:00 JST$", vm), vm
    # nz's only zone is Auckland: started and next run both there, in the same format
    assert re.search(rf" {day} \d\d:\d\d NZ[SD]T .* {day} 02:00 NZ[SD]T$", nz), nz
