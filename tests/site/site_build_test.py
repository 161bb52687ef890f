"""flank_ops/site/build.py (+ `flank site`): pages from synthesized run records.

Records are written with flank_ops.store.records, exactly as the runner writes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flank_ops.fileio import append_json_line
from flank_ops.paths import Home
from flank_ops.site import build
from flank_ops.store import records
from flank_ops.store.model import Runner, RunStatus
from helpers.cli import REPO_ROOT, run_flank
from helpers.site_records import CHAIN, make_many_runs, make_project, make_run


def _snapshot(site: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(site)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in site.rglob("*") if p.is_file()}


def _html(site: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))


def test_every_page_type_is_built_from_records(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    append_json_line(
        paths.deploys_log,
        {
            "time": "2026-11-25T09:00:00+00:00",
            "sha": "b" * 40,
            "short": "bbbbbbb",
            "message": "typo in needs",
            "author": "Ada Analyst",
            "ref": "refs/heads/main",
            "status": "rejected",
            "errors": ["flank.yml:7:16: unknown task 'extarct' in needs (did you mean 'extract'?)"],
            "pipelines": [],
        },
    )
    make_run(paths)
    make_run(paths, status="failed", task_status={"model": "failed", "report": "upstream_failed"})
    proc = run_flank("site")
    assert proc.returncode == 0, proc.stderr
    assert "site built" in proc.stdout
    site = home.site_dir
    for page in (
        "index.html",
        "_static/style.css",
        "demo/index.html",
        "demo/deploys.html",
        "demo/nightly/index.html",
        "demo/nightly/runs-1.html",
        "demo/nightly/2/index.html",
        "demo/nightly/2/logs/model.html",
        "demo/nightly/2/logs/model.txt",
    ):
        assert (site / page).is_file(), page
    home_page = (site / "index.html").read_text()
    assert "demo" in home_page and "nightly" in home_page and "✗ failed" in home_page
    assert "3f2a1c0" in home_page  # the deployed commit
    deploys = (site / "demo/deploys.html").read_text()
    assert "rejected" in deploys and "did you mean &#39;extract&#39;?" in deploys
    pipeline = (site / "demo/nightly/index.html").read_text()
    assert "0 2 * * *" in pipeline and "Europe/London" in pipeline and 'class="dag"' in pipeline
    run = (site / "demo/nightly/2/index.html").read_text()
    for text in ("✗ failed", "⊘ upstream failed", "Timeline", "50.0 MiB", "fix model formula", "Ada Analyst"):
        assert text in run
    assert (site / "demo/nightly/2/logs/model.txt").read_text() == "model: done\n"
    assert not [p for p in site.rglob("*.tmp")]


def test_html_in_logs_names_and_messages_is_inert(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    evil = "<script>document.title='pwned'</script>"
    make_run(
        paths,
        message=f'"quoted" {evil} ünïcödé',
        tasks={"ok": [], "<img src=x onerror=alert(1)>": ["ok"]},
        logs={"ok": f"{evil}\x1b[31mred\x1b[0m\x00\xff\n".encode("latin-1")},
    )
    build.rebuild_all(home)
    html = _html(home.site_dir)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "ünïcödé" in html


@pytest.mark.slow
def test_after_run_touches_only_that_runs_pages_and_the_summaries(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    for _ in range(5):
        make_run(paths)
    build.rebuild_all(home)
    before = _snapshot(home.site_dir)
    run_id = make_run(paths)
    build.draw_run(paths, "nightly", run_id)
    after = _snapshot(home.site_dir)
    changed = {p for p in after if before.get(p) != after[p]}
    expected_run_files = {f"demo/nightly/{run_id}/index.html"} | {
        f"demo/nightly/{run_id}/logs/{t}.{ext}" for t in CHAIN for ext in ("html", "txt")
    }
    assert changed == expected_run_files | {
        "index.html",
        "demo/index.html",
        "demo/resources.html",
        "demo/nightly/index.html",
        "demo/nightly/runs-1.html",
    }
    assert set(before) <= set(after)


def test_a_deploys_redraw_without_actions_imports_neither_params_nor_backfill(flank_home: Path) -> None:
    """Polish c: the Run/Backfill forms' helpers (config.params, schedule.backfill) are imported by the
    pages that show the forms, not by every draw: here a push's redraw, in a fresh interpreter as there."""
    paths = make_project(Home())
    make_run(paths)
    build.rebuild_all(Home())  # the site as a push finds it: its run pages drawn
    script = (
        "import sys\n"
        "from flank_ops.paths import Home\n"
        "from flank_ops.site import build\n"
        "build.after_deploy(Home(), 'demo')\n"
        "print(*sorted(m for m in sys.modules if m.startswith('flank_ops.')))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", script], env=env, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert "nightly" in (Home().site_dir / "demo/index.html").read_text(encoding="utf-8")
    imported = set(proc.stdout.split())
    assert "flank_ops.site.pages" in imported
    assert not {"flank_ops.config.params", "flank_ops.schedule.backfill"} & imported


@pytest.mark.slow
def test_after_run_with_10000_past_runs_reads_only_the_newest(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    make_many_runs(paths, "nightly", 10_000, folders=False)
    # an old, damaged record: the incremental path must not even look at it
    paths.run_dir("nightly", 17).mkdir()
    records.record_path(paths.run_dir("nightly", 17)).write_text("{ not json")
    run_id = make_run(paths)
    build.draw_run(paths, "nightly", run_id)
    site = home.site_dir
    assert (site / f"demo/nightly/{run_id}/index.html").is_file()
    assert not (site / "demo/nightly/17").exists()
    pipeline = (site / "demo/nightly/index.html").read_text()
    assert f"#{run_id}" in pipeline and "#9951–10000" in pipeline and "#1–50" in pipeline
    assert f"#{run_id - 50}<" not in pipeline  # only the newest 50 runs on the first page
    assert (site / "demo/nightly/runs-201.html").is_file()


def test_a_corrupt_record_is_a_visible_warning_not_a_failed_build(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    make_run(paths)
    bad = make_run(paths)
    records.record_path(paths.run_dir("nightly", bad)).write_text('{"run_id": 2, "status": "succ')
    proc = run_flank("site", "--rebuild")
    assert proc.returncode == 0, proc.stderr
    assert f"#{bad}: skipped a damaged run record" in proc.stdout + proc.stderr
    assert "could not be read" in (home.site_dir / f"demo/nightly/{bad}/index.html").read_text()
    assert "skipped a damaged run record" in (home.site_dir / "index.html").read_text()
    assert (home.site_dir / "demo/nightly/1/index.html").is_file()


def test_a_running_run_refreshes_until_it_ends(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    run_id = make_run(paths, status="running")
    build.draw_run(paths, "nightly", run_id)
    page = home.site_dir / f"demo/nightly/{run_id}/index.html"
    assert 'http-equiv="refresh"' in page.read_text()
    assert "▶ running" in page.read_text()
    assert 'http-equiv="refresh"' in (home.site_dir / "index.html").read_text()
    record = records.read_record(paths.run_dir("nightly", run_id))
    record.status, record.ended_at, record.duration_s = RunStatus.SUCCESS, record.started_at, 60.0
    records.write_record(paths.run_dir("nightly", run_id), record)
    records.append_history(paths, record)
    build.draw_run(paths, "nightly", run_id)
    assert 'http-equiv="refresh"' not in page.read_text()
    assert 'http-equiv="refresh"' not in (home.site_dir / "index.html").read_text()


def test_a_run_whose_runner_died_is_not_shown_running(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    dead = Runner(pid=2**22 + 7, host="vm", boot_id="", pid_start=1)
    run_id = make_run(paths, status="running", runner=dead)
    build.rebuild_all(home)  # records.reconcile (when present) marks it; the page never says running
    page = (home.site_dir / f"demo/nightly/{run_id}/index.html").read_text()
    assert "! interrupted" in page and 'http-equiv="refresh"' not in page


@pytest.mark.slow
def test_flank_site_without_rebuild_redraws_only_changed_runs(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    for _ in range(3):
        make_run(paths)
    assert run_flank("site").returncode == 0
    proc = run_flank("site")
    assert "0 runs, 3 unchanged" in proc.stdout
    proc = run_flank("site", "--rebuild")
    assert "3 runs" in proc.stdout and "unchanged" not in proc.stdout


def test_a_pipeline_with_no_runs_and_an_empty_home(flank_home: Path) -> None:
    home = Home()
    build.rebuild_all(home)
    assert "No projects yet" in (home.site_dir / "index.html").read_text()
    make_project(home)
    build.after_deploy(home, "demo")
    assert "no runs yet" in (home.site_dir / "index.html").read_text()
    assert "No runs yet" in (home.site_dir / "demo/nightly/index.html").read_text()


def test_local_mode_builds_under_dot_flank(tmp_path: Path) -> None:
    from flank_ops.paths import ProjectPaths

    work = tmp_path / "my-analysis"
    work.mkdir()
    (work / "flank.yml").write_text("pipelines:\n  nightly:\n    tasks:\n      a: echo a\n")
    paths = ProjectPaths.for_local(work)
    run_id = make_run(paths, tasks={"a": []})
    build.draw_run(paths, "nightly", run_id)
    site = work / ".flank" / "site"
    assert "my-analysis" in (site / "index.html").read_text()
    assert (site / f"my-analysis/nightly/{run_id}/index.html").is_file()
    assert os.path.exists(site / "_static/style.css")


def test_every_run_id_page_is_reachable_though_each_page_links_only_a_few(flank_home: Path) -> None:
    import re

    home = Home()
    paths = make_project(home)
    make_many_runs(paths, "nightly", 1_000, folders=False)  # 20 run-id pages
    build.rebuild_all(home)
    folder = home.site_dir / "demo" / "nightly"
    links = lambda page: set(re.findall(r'href="[./a-z]*/(runs-\d+\.html)"', (folder / page).read_text()))  # noqa: E731
    assert len(links("index.html")) <= 12
    seen, todo = set(), ["index.html"]
    while todo:
        page = todo.pop()
        for target in links(page) - seen:
            seen.add(target)
            todo.append(target)
    assert seen == {f"runs-{n}.html" for n in range(1, 21)}
    assert "…" in (folder / "runs-10.html").read_text()
