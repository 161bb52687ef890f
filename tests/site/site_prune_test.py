"""flank_ops/commands/prune.py: `flank prune` removes old runs with their pages, keeps live ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flank_ops.paths import Home
from flank_ops.site import build
from flank_ops.store import records
from helpers.cli import run_flank
from helpers.site_records import make_project, make_run


@pytest.mark.slow
def test_prune_keeps_the_newest_n_and_removes_records_logs_and_pages(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    for _ in range(6):
        make_run(paths)
    build.rebuild_all(home)
    proc = run_flank("prune", "demo", "--keep", "2")
    assert proc.returncode == 0, proc.stderr
    assert "demo/nightly: removed 4 runs (#1–#4), kept 2" in proc.stdout
    assert records.list_run_ids(paths, "nightly") == [5, 6]
    assert [e["run_id"] for e in records.read_history(paths, "nightly")] == [5, 6]
    site = home.site_dir / "demo" / "nightly"
    assert not (site / "1").exists() and (site / "5" / "index.html").is_file()
    for page in ("index.html", "runs-1.html"):
        assert 'href="../../demo/nightly/1/index.html"' not in (site / page).read_text()
        assert "nightly/5/index.html" in (site / page).read_text()
    assert "nothing to remove (2 runs kept)" in run_flank("prune", "--keep", "2").stdout


@pytest.mark.slow
def test_keep_days_keeps_recent_runs_and_a_running_run_is_never_removed(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    now = datetime.now(UTC)
    make_run(paths, start=now - timedelta(days=40))
    live = make_run(paths, status="running", start=now - timedelta(days=35))
    make_run(paths, start=now - timedelta(days=1))
    proc = run_flank("prune", "--keep-days", "30")
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 run (#1), kept 2" in proc.stdout
    assert records.list_run_ids(paths, "nightly") == [live, 3]


@pytest.mark.slow
def test_prune_says_what_to_keep_and_knows_unknown_projects(flank_home: Path) -> None:
    make_project(Home())
    proc = run_flank("prune")
    assert proc.returncode == 1 and "say which runs to keep" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_flank("prune", "nope", "--keep", "3")
    assert proc.returncode == 1 and "no project 'nope'" in proc.stderr
    (flank_home / "flank.toml").write_text("[prune]\nkeep = 1\n")
    assert run_flank("prune").returncode == 0


def test_dry_run_removes_nothing(flank_home: Path) -> None:
    paths = make_project(Home())
    for _ in range(3):
        make_run(paths)
    proc = run_flank("prune", "--keep", "1", "--dry-run")
    assert "would remove 2 runs (#1–#2)" in proc.stdout
    assert records.list_run_ids(paths, "nightly") == [1, 2, 3]
