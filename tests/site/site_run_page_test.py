"""The run page answers "why did it fail" at a glance, the log page per attempt, partial runs say so,
every time is in the pipeline's zone, big logs download, and no page links to a 404 (issues 8 and 9)."""

from __future__ import annotations

import gzip
import itertools
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flank_ops.fileio import append_json_line
from flank_ops.paths import Home
from flank_ops.site import build, layout
from flank_ops.store import records
from flank_ops.store.model import Runner, history_entry
from helpers.cli import run_flank
from helpers.site_records import T0, make_project, make_run, write_times

T0_MS = int(T0.timestamp() * 1000)


def _page(site: Path, url: str) -> str:
    return (site / url).read_text(encoding="utf-8")


def _section(html: str, start: str, end: str) -> str:
    i = html.index(start)
    return html[i : html.index(end, i)]


def test_a_failed_tasks_last_lines_are_under_the_status_with_a_link_to_the_full_log(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    lines = [f"fitting step {i}" for i in range(1, 101)]
    lines[-2] = "\x1b[1;31mError in glm(): <b>bad</b> formula, token ***\x1b[0m"
    run_id = make_run(
        paths,
        status="failed",
        task_status={"model": "failed", "report": "upstream_failed"},
        logs={"extract": b"ok\n", "model": ("\n".join(lines) + "\n").encode()},
        errors={"report": "did not start: make exited 2 (see make.log)"},
    )
    build.rebuild_all(home)
    page = _page(home.site_dir, f"demo/nightly/{run_id}/index.html")
    failed = _section(page, '<section class="failures"', "</section>")
    assert page.index('class="failures"') < page.index('<table class="tasks')  # above the table
    assert "fitting step 100" in failed and "fitting step 71" in failed and "fitting step 70" not in failed
    assert '<span class="fg-1 a-bold">Error in glm(): &lt;b&gt;bad&lt;/b&gt; formula, token ***</span>' in failed
    assert "\x1b" not in failed
    assert re.search(r'href="[^"]*/logs/model\.html">Full log</a>', failed)
    assert re.search(r'href="[^"]*/logs/model\.txt" download="model\.log"', failed)
    assert "extract" not in failed  # it succeeded
    # report never ran: no lines, but the reason flank recorded
    assert "did not start: make exited 2 (see make.log)" not in failed  # upstream failed is not a failure of its own
    assert "⊘ upstream failed" in page


def test_the_log_page_separates_attempts_with_elapsed_time_per_line(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    run_id = make_run(paths, status="failed", task_status={"model": "failed", "report": "upstream_failed"})
    log = records.task_log_path(paths.run_dir("nightly", run_id), "model")
    write_times(
        log,
        [
            (b"loading data\nfirst try breaks\n", 5, 1, "failed"),
            (b"loading data\nfitting\n\x1b[31mError: singular fit\x1b[0m\n", 12, 2, "failed"),
        ],
        start_ms=T0_MS,
    )
    build.rebuild_all(home)
    site = home.site_dir
    page = _page(site, f"demo/nightly/{run_id}/logs/model.html")
    attempts = re.findall(r'<details class="attempt[^"]*"( open)?>\s*<summary>(.*?)</summary>', page, re.S)
    assert [bool(is_open) for is_open, _ in attempts] == [False, True]  # earlier folded, the last open
    first, last = attempts[0][1], attempts[1][1]
    assert "Attempt 1" in first and "exit 1" in first and "took 5.0s" in first and "02:00" in first
    assert "Attempt 2" in last and "exit 2" in last and "took 12s" in last and "02:00" in last
    second = page[page.index("Attempt 2") :]
    # each line with the time since its attempt began (1.5 s between lines in the fixture)
    assert re.search(r'<span class="t">0\.0s</span>loading data', second)
    assert re.search(r'<span class="t">1\.5s</span>fitting', second)
    assert re.search(r'<span class="t">3\.0s</span><span class="fg-1">Error: singular fit</span>', second)
    assert "first try breaks" in page[: page.index("Attempt 2")]
    # the raw log holds the task's output only: no timestamps in it
    assert (site / f"demo/nightly/{run_id}/logs/model.txt").read_bytes().count(b"loading data") == 2
    # the run page's excerpt is the last attempt's
    run_page = _page(site, f"demo/nightly/{run_id}/index.html")
    excerpt = _section(run_page, '<section class="failures"', "</section>")
    assert "singular fit" in excerpt and "first try breaks" not in excerpt


def test_a_log_without_times_is_shown_whole_without_attempts(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    run_id = make_run(paths, logs={"extract": b"one\ntwo\n"})
    build.rebuild_all(home)
    page = _page(home.site_dir, f"demo/nightly/{run_id}/logs/extract.html")
    assert "<details" not in page and '<pre class="log">one\ntwo</pre>' in page


def test_a_broken_times_file_degrades_not_crashes(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    run_id = make_run(paths, logs={"extract": b"one\ntwo\n"})
    times = records.task_log_path(paths.run_dir("nightly", run_id), "extract").with_name("extract.log.times")
    times.write_bytes(b"attempt x y\n\xff\xfe garbage\nend 1\n12 \n")
    build.rebuild_all(home)
    page = _page(home.site_dir, f"demo/nightly/{run_id}/logs/extract.html")
    assert "one\ntwo" in page


def test_a_running_tasks_last_lines_are_on_the_run_page(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    run_id = make_run(paths, status="running", logs={"extract": "".join(f"row {i}\n" for i in range(40)).encode()})
    build.draw_run(paths, "nightly", run_id)
    page = _page(home.site_dir, f"demo/nightly/{run_id}/index.html")
    live = _section(page, '<section class="live"', "</section>")
    assert "row 39" in live and "row 28" in live and "row 27" not in live
    assert '<meta http-equiv="refresh"' in page


def _history_line(paths, run_id: int, **scope) -> None:
    rec = records.read_record(paths.run_dir("nightly", run_id))
    append_json_line(paths.runs_dir("nightly") / records.HISTORY_FILE, {**history_entry(rec), **scope})


def test_a_partial_run_is_marked_and_the_last_full_runs_status_stays_visible(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    full = make_run(paths, status="failed", task_status={"model": "failed", "report": "upstream_failed"}, history=False)
    _history_line(paths, full, partial=False, selected=4, total=4)
    skipped = {"extract": "skipped", "transform": "skipped", "report": "skipped"}
    part = make_run(paths, task_status=skipped, selection={"task": "model"}, history=False)
    _history_line(paths, part, partial=True, selected=1, total=4)
    build.rebuild_all(home)
    site = home.site_dir
    card = _section(_page(site, "index.html"), '<li class="pipeline', "</li>")
    assert card.startswith('<li class="pipeline s-failed">')  # the card keeps the last full run's colour
    assert "✓ success" in card and "◐ partial" in card and "1 of 4 tasks" in card
    full_line = _section(card, 'class="last-full', "</p>")
    assert "Last full run:" in full_line and "✗ failed" in full_line and f"#{full}" in full_line
    pipeline = _page(site, "demo/nightly/index.html")
    assert "last full run" in pipeline and "◐ partial" in pipeline
    run = _page(site, f"demo/nightly/{part}/index.html")
    assert "◐ partial" in _section(run, "<h1>", "</h1>") and "only model · 1 of 4 tasks" in run
    # a running partial run (no history line yet) is marked from its record
    make_run(
        paths,
        status="running",
        selection={"from": "model"},
        task_status={"extract": "skipped", "transform": "skipped", "model": "running"},
    )
    build.rebuild_all(home)
    card = _section(_page(site, "index.html"), '<li class="pipeline', "</li>")
    assert "▶ running" in card and "2 of 4 tasks" in card and "Last full run:" in card


def test_history_lines_without_the_partial_keys_read_as_full_runs(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    make_run(paths)
    build.rebuild_all(home)
    card = _section(_page(home.site_dir, "index.html"), '<li class="pipeline', "</li>")
    assert "partial" not in card and "Last full run" not in card and "✓ success" in card


TOKYO = """\
pipelines:
  nightly:
    schedule: "0 2 * * *"
    timezone: Asia/Tokyo
    tasks:
      extract: echo extract
      model:
        run: echo model
        needs: [extract]
"""


def test_every_time_is_in_the_pipelines_zone_with_the_zone_named(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home, flank_yml=TOKYO)
    run_id = make_run(paths, tasks={"extract": [], "model": ["extract"]}, start=T0, task_status={"model": "failed"})
    log = records.task_log_path(paths.run_dir("nightly", run_id), "model")
    write_times(log, [(b"boom\n", 3, 1, "failed")], start_ms=T0_MS)
    build.rebuild_all(home)
    site = home.site_dir
    card = _section(_page(site, "index.html"), '<li class="pipeline', "</li>")
    # 02:00 UTC is 11:00 in Tokyo; the next run is at 02:00 Tokyo time
    assert re.search(r"<dt>Last run</dt><dd>24 Nov 11:00 JST</dd>", card), card
    assert re.search(r"<dt>Next</dt><dd>\d\d \w\w\w 02:00 JST</dd>", card), card
    assert "UTC" not in card and "GMT" not in card
    run = _page(site, f"demo/nightly/{run_id}/index.html")
    assert "<dt>Started</dt><dd>Tue 24 Nov 2026 11:00 JST</dd>" in run
    assert "Built " in run and re.search(r"Built [^<]* JST", run)
    assert "11:00 JST" in _page(site, f"demo/nightly/{run_id}/logs/model.html")
    pipeline = _page(site, "demo/nightly/index.html")
    assert "24 Nov 11:00 JST" in pipeline and "02:00 JST" in pipeline
    assert "UTC" not in _section(pipeline, "<main>", "</main>")


def test_a_big_finished_log_downloads_and_gets_one_gzip_copy(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    big = b"".join(b"%08d some model output that repeats\n" % i for i in range(60_000))  # 2.6 MB
    run_id = make_run(paths, logs={"extract": big, "transform": b"small\n"})
    build.rebuild_all(home)
    site = home.site_dir
    logs = site / f"demo/nightly/{run_id}/logs"
    page = (logs / "extract.html").read_text()
    assert re.search(r'href="[^"]*/logs/extract\.txt" download="extract\.log"', page)
    assert re.search(r'href="[^"]*/logs/extract\.txt\.gz" download="extract\.log\.gz">download \.gz</a>', page)
    assert gzip.decompress((logs / "extract.txt.gz").read_bytes()) == big
    assert "download .gz" not in (logs / "transform.html").read_text() and not (logs / "transform.txt.gz").exists()
    made = (logs / "extract.txt.gz").stat()
    build.rebuild_all(home)  # made once: a rebuild leaves it alone
    again = (logs / "extract.txt.gz").stat()
    assert (again.st_ino, again.st_mtime_ns) == (made.st_ino, made.st_mtime_ns)


def test_a_running_tasks_big_log_gets_no_gzip_yet(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    run_id = make_run(paths, status="running", logs={"extract": b"x" * (2 * 1024 * 1024) + b"\n"})
    build.draw_run(paths, "nightly", run_id)
    logs = home.site_dir / f"demo/nightly/{run_id}/logs"
    assert (logs / "extract.txt").exists() and not (logs / "extract.txt.gz").exists()


def test_after_run_failures_are_shown_on_the_run_page(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    run_id = make_run(
        paths,
        after_run={
            "note": "ok",
            "site": "ok",
            "notify": "ping failed (connection refused by hc.example.org); notify success: webhook failed (HTTP 500)",
            "s3": "s3: upload failed (bucket 'b' does not exist); run `flank sync demo` to retry",
        },
    )
    ok_id = make_run(paths, after_run={"note": "ok", "site": "ok", "notify": "notify success: webhook sent"})
    build.rebuild_all(home)
    page = _page(home.site_dir, f"demo/nightly/{run_id}/index.html")
    alerts = re.findall(r'<p class="warning" role="alert">(.*?)</p>', page, re.S)
    assert any("notify" in a and "webhook failed (HTTP 500)" in a and "ping failed" in a for a in alerts), alerts
    assert any("s3" in a and "bucket &#39;b&#39; does not exist" in a for a in alerts), alerts
    assert 'role="alert"' not in _page(home.site_dir, f"demo/nightly/{ok_id}/index.html")


# --- file names ----------------------------------------------------------------


def _names() -> list[str]:
    rng = random.Random(8)
    alphabet = "ab-_.0Z/<> é"
    names = {
        "index",
        "index.html",
        "Index.html",
        "deploys.html",
        "runs-1.html",
        "_static",
        "logs",
        "a",
        "a.html",
        "x" * 101,
        "",
        ".",
        "..",
        "a/b",
        "a-b",
        "a_b",
        "a.b",
        "<script>",
    }
    names |= {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(3000)}
    names |= {layout.file_name(n) for n in list(names)}  # names shaped like another name's stand-in
    names |= {n + "-0123456789" for n in ("a", "index")}
    return sorted(names)


@pytest.mark.slow
def test_site_file_names_are_injective_and_never_a_sites_own_file() -> None:
    names = _names()
    files = {}
    for name in names:
        f = layout.file_name(name)
        assert f not in files, f"{name!r} and {files[f]!r} share the site file name {f!r}"
        files[f] = name
        assert f.lower() not in ("index.html", "deploys.html", "_static", "index", "logs", ".", "..", "")
        assert not f.endswith(".html") and "/" not in f
    for a, b in itertools.islice(itertools.combinations(names, 2), 200_000):
        assert layout.url_pipeline("p", a) != layout.url_pipeline("p", b)


@pytest.mark.slow
def test_a_project_named_index_html_gets_a_site(flank_home: Path) -> None:
    assert run_flank("init", "index.html").returncode == 0
    proc = run_flank("site")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    site = Home().site_dir
    home = (site / "index.html").read_text()
    assert "index.html" in home
    link = re.search(r'<h2><a href="([^"]+)">index\.html</a></h2>', home).group(1)
    assert (site / link).is_file() and link != "index.html"


# --- pages that must not keep saying "running", links that must not 404 ----------


def _fake_runner() -> subprocess.Popen:
    """A process standing for a live runner (killed by the test, by its pid)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def _identity(proc: subprocess.Popen) -> Runner:
    return Runner(
        pid=proc.pid, host=os.uname().nodename, boot_id=records._boot_id(), pid_start=records._pid_start(proc.pid)
    )


@pytest.mark.slow
def test_a_killed_runs_pages_are_redrawn_by_the_next_look(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    make_run(paths)
    runner = _fake_runner()
    try:
        run_id = make_run(paths, status="running", runner=_identity(runner))
        build.draw_run(paths, "nightly", run_id)
        page = home.site_dir / f"demo/nightly/{run_id}/index.html"
        assert "▶ running" in page.read_text() and 'http-equiv="refresh"' in page.read_text()
    finally:
        runner.kill()
        runner.wait(timeout=30)
    status = run_flank("status", "demo")  # marks the run interrupted...
    assert status.returncode == 0, status.stderr
    assert records.read_record(paths.run_dir("nightly", run_id)).status == "interrupted"
    text = page.read_text()  # ...and its pages say so, without refreshing forever
    assert "! interrupted" in _section(text, "<h1>", "</h1>") and 'http-equiv="refresh"' not in text
    for url in ("index.html", "demo/index.html", "demo/nightly/index.html"):
        html = _page(home.site_dir, url)
        assert 'http-equiv="refresh"' not in html and "▶" not in html, url


@pytest.mark.slow
def test_a_run_killed_before_its_first_page_gets_one(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    make_run(paths)
    build.rebuild_all(home)
    runner = _fake_runner()
    run_id = make_run(paths, status="running", runner=_identity(runner))
    runner.kill()
    runner.wait(timeout=30)
    assert not (home.site_dir / f"demo/nightly/{run_id}").exists()
    assert run_flank("logs", "demo", "nightly").returncode in (0, 1)
    page = home.site_dir / f"demo/nightly/{run_id}/index.html"
    assert page.is_file() and "! interrupted" in page.read_text()


def _links(html: str) -> list[str]:
    return [link for link in re.findall(r'href="([^"#]+)"', html) if not link.startswith("data:")]


def test_no_page_links_to_a_run_without_a_page(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    for _ in range(3):
        make_run(paths)
    gone = make_run(paths)
    build.rebuild_all(home)
    import shutil

    shutil.rmtree(paths.run_dir("nightly", gone))  # e.g. deleted by hand: its history line stays
    newest = make_run(paths, status="running")  # allocated, not drawn yet by its runner
    make_run(paths, history=True)  # another run ends: the incremental path draws the summaries
    build.draw_run(paths, "nightly", newest + 1)
    site = home.site_dir
    for url in ("index.html", "demo/index.html", "demo/nightly/index.html", "demo/nightly/runs-1.html"):
        for link in _links(_page(site, url)):
            target = (site / url).parent / link
            assert target.resolve().is_file(), f"{url} links to missing {link}"
    assert (site / f"demo/nightly/{newest}/index.html").is_file()  # drawn for the link to it


def test_time_fixture_is_what_the_contract_says(tmp_path: Path) -> None:
    # the fixture writer itself: offsets point at line starts, attempts begin and end once
    log = tmp_path / "t.log"
    write_times(log, [(b"a\nbb\n", 1, 1, "failed"), (b"ccc\n", 2, 0, "success")], start_ms=1000)
    entries = log.with_name("t.log.times").read_text().splitlines()
    data = log.read_bytes()
    assert (
        entries[0] == "attempt 1 0 1000" and entries[-1].startswith("end 2 9 ") and entries[-1].endswith(" 0 success")
    )
    for e in entries:
        parts = e.split()
        if len(parts) == 2:
            off = int(parts[0])
            assert off == 0 or data[off - 1 : off] == b"\n"
