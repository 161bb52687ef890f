"""flank status: one line per pipeline with its last run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.deployed import deploy

pytestmark = pytest.mark.slow

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
    from helpers.deployed import WAIT_FOR_GATE, open_gate, start_flank, task_status
    from helpers.waiting import wait_for

    deploy(
        tmp_path,
        f"persist: [gate]\npipelines:\n  stress:\n    overlap: skip\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n"
        f"  queued:\n    overlap: queue\n    tasks:\n      hold: '{WAIT_FOR_GATE}'\n",
    )
    first = start_flank("run", "demo", "stress")
    queued = waiting = None
    try:
        wait_for(lambda: task_status(1, "hold", "stress") == "running", "the first run to start")
        assert run_flank("run", "demo", "stress", "--trigger", "schedule").returncode == 1  # skipped: #2
        row = run_flank("status", "demo", check=True).stdout.splitlines()[1]
        assert row.split()[:5] == ["demo", "stress", "#1", "running;", "#2"]
        assert "running; #2 skipped" in row and "so far" in row
        # a trigger queued behind it is not the last run either (issue 19 bug 1)
        queued = start_flank("run", "demo", "queued")
        wait_for(lambda: task_status(1, "hold", "queued") == "running", "the queued pipeline's first run")
        waiting = start_flank("run", "demo", "queued")
        wait_for(lambda: "#2 queued" in run_flank("status", "demo").stdout, "the second trigger to queue")
        assert run_flank("logs", "demo", "queued", check=True).stdout.startswith("queued #1 running")
    finally:
        open_gate()
        first.communicate(timeout=60)
        for proc in (queued, waiting):
            if proc is not None:
                proc.communicate(timeout=60)
    # issue 19 bug 1: a skipped trigger never hides the last real run, for any reader
    row = run_flank("status", "demo", check=True).stdout.splitlines()[1]
    assert row.split()[:4] == ["demo", "stress", "#1", "success"], row
    assert "#2" not in row
    assert run_flank("logs", "demo", "stress", check=True).stdout.startswith("stress #1 success")
    follow = run_flank("logs", "demo", "stress", "--follow")
    assert follow.returncode == 0 and "flank: stress #1 success" in follow.stderr, follow.stderr
    run_flank("site", check=True)
    card = _card(Path(os.environ["FLANK_HOME"]) / "site" / "demo" / "index.html", "stress")
    assert ">#1</a>" in card and ">#2</a>" not in card, card
    from flank_ops.paths import Home
    from flank_ops.store import records

    paths = Home().project("demo")
    assert records.last_run(paths, "stress") == 1 and records.last_run(paths, "queued") == 2


def _card(page: Path, pipeline: str) -> str:
    """The head of a pipeline's card on a site page (its name, status badge and last run link)."""
    html = page.read_text()
    start = html.index(f">{pipeline}</a>", html.index('class="pl-name"'))
    return html[start : html.index("</div>", start)]


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


def test_a_rerun_that_fixes_the_failures_completes_its_run(tmp_path: Path) -> None:
    """Issue 19 friction 1: a successful `--rerun N` completes run N, so the pipeline is green again in
    `flank status`, on the site's card and in the git note (as GitHub Actions' "re-run failed jobs")."""
    import re

    from helpers.deployed import open_gate
    from helpers.repos import git

    clone = deploy(
        tmp_path,
        "persist: [gate]\npipelines:\n  nightly:\n    tasks:\n      a: echo a\n"
        '      b:\n        run: test -e "$FLANK_PERSIST_GATE/open"\n        needs: [a]\n',
    )
    assert run_flank("run", "demo", "nightly").returncode == 1
    assert run_flank("run", "demo", "nightly", "--rerun", "1").returncode == 1  # still broken: #2
    row = run_flank("status", "demo", check=True).stdout.splitlines()[1]
    assert "failed (partial: 1 of 2 tasks; last full run #1 failed)" in row, row
    open_gate()
    assert run_flank("run", "demo", "nightly", "--rerun", "2").returncode == 0  # a rerun of the rerun: #3
    row = run_flank("status", "demo", check=True).stdout.splitlines()[1]
    assert row.split()[2] == "#3", row
    assert "success (partial: 1 of 2 tasks; last full run #1 success, completed by this rerun)" in row, row

    home = Path(os.environ["FLANK_HOME"])
    html = (home / "site" / "demo" / "index.html").read_text()
    card = re.search(r'<li class="pipeline s-(\w+)">\s*<div class="pl-head">\s*<a class="pl-name"[^>]*>nightly<', html)
    assert card and card.group(1) == "success", html
    assert "completed by rerun #3" in html
    sha = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    note = git("--git-dir", str(home / "demo.git"), "notes", "--ref", "refs/notes/flank", "show", sha, cwd=clone)
    line = next(x for x in note.stdout.splitlines() if x.startswith("flank nightly #3 "))
    assert "completes #1" in line, note.stdout


def test_status_of_a_working_copy_shows_no_next_run(tmp_path: Path) -> None:
    """Issue 19 bug 10: a laptop's working copy is never scheduled, whatever its flank.yml says."""
    from helpers.repos import make_repo

    wc = make_repo(
        tmp_path / "wc",
        {"flank.yml": "pipelines:\n  nightly:\n    schedule: '0 2 * * *'\n    tasks:\n      a: echo a\n"},
    )
    run_flank("run", "--local", "nightly", cwd=wc, check=True)
    lines = run_flank("status", "--local", cwd=wc, check=True).stdout.splitlines()
    assert "NEXT RUN" not in lines[0] and lines[0].split()[-1] == "DURATION", lines
    assert lines[1].split()[1:4] == ["nightly", "#1", "success"] and "02:00" not in lines[1], lines


def test_after_a_failed_setup_status_says_the_deploy_failed_and_why_once(tmp_path: Path) -> None:
    """Issue 19 bug 7: the user pushed; a setup that failed is not "no deploy yet", and its reason is
    said once (not `deploy failed: deploy failed: setup exited 1`)."""
    from helpers.repos import git, make_repo

    home = Path(os.environ["FLANK_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    run_flank("init", "demo", check=True)
    clone = make_repo(
        tmp_path / "clone",
        {"flank.yml": "setup: echo no compiler; exit 1\npipelines:\n  p:\n    tasks:\n      a: echo a\n"},
    )
    git("remote", "add", "flank", str(home / "demo.git"), cwd=clone)
    git("push", "-q", "flank", "main", cwd=clone, check=False)  # refused or failed: either way not deployed

    proc = run_flank("status", "demo", check=True)
    row = proc.stdout.splitlines()[1]
    assert "no deploy yet" not in proc.stdout, proc.stdout
    assert row.split()[:2] == ["demo", "-"] and "not deployed: the last push (" in row, row
    assert "setup exited 1" in row, row
    assert "deploy failed: deploy failed" not in proc.stdout + proc.stderr
    # setup runs in pre-receive (issue 28 item 3): the push was refused and the branch did not move, so
    # the row is one line of the table, and there is nothing for `flank deploy` to retry
    assert len(proc.stdout.splitlines()) == 2, proc.stdout
    assert "was refused" in row and "flank deploy" not in proc.stdout, row
