"""The status site in real headless Chromium (over CDP): every page loads cleanly, every link resolves,
hostile logs stay inert, and a 390-px phone screen never scrolls sideways."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

from flank_ops.fileio import append_json_line
from flank_ops.paths import Home
from flank_ops.site import build
from flank_ops.store import records
from helpers.ports import free_port
from helpers.serve import start_server
from helpers.site_cdp import CHROMIUM, Browser
from helpers.site_records import T0, make_project, make_run, write_times

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
    pytest.mark.slow,
]

EVIL = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


def build_site(home: Home) -> None:
    paths = make_project(home)
    append_json_line(
        paths.deploys_log,
        {
            "time": "2026-11-25T09:00:00+00:00",
            "sha": "b" * 40,
            "short": "bbbbbbb",
            "status": "rejected",
            "message": f"bad push {EVIL}",
            "author": "Ada",
            "ref": "refs/heads/main",
            "errors": ["flank.yml:7:16: unknown task 'extarct' in needs (did you mean 'extract'?)"],
        },
    )
    make_run(paths)
    make_run(
        paths,
        status="failed",
        task_status={"model": "failed", "report": "upstream_failed"},
        message=f'"quotes" & {EVIL} ünïcödé ' + "a-very-long-commit-message-without-spaces" * 4,
        logs={
            "extract": (EVIL + "\n\x1b[1;31mERROR\x1b[0m\x00\xff\n 10%\r100%\n" + "x" * 3000 + "\n").encode("latin-1"),
            "model": b"Error in glm(): bad formula\n",
        },
    )
    wide = {"extract": []} | {f"model_{i:02d}_with_a_long_name": ["extract"] for i in range(28)}
    wide["report"] = [t for t in wide if t != "extract"]
    make_run(paths, tasks=wide, seconds=3600)
    bad = make_run(paths)
    records.record_path(paths.run_dir("nightly", bad)).write_text("{ half-written")
    make_run(paths, status="running")
    # 6: a failed task with a long name and long lines, two attempts, and a partial run after it
    failed = make_run(
        paths,
        status="failed",
        task_status={"logistic_regression_by_age_and_region": "failed"},
        tasks={"extract": [], "logistic_regression_by_age_and_region": ["extract"]},
        after_run={"notify": "notify failed: webhook failed (HTTP 500 from hooks.slack.com)"},
    )
    log = records.task_log_path(paths.run_dir("nightly", failed), "logistic_regression_by_age_and_region")
    long_line = "Warning: glm.fit: fitted probabilities numerically 0 or 1 occurred " + "x" * 300
    write_times(
        log,
        [
            (b"reading data\nfirst try\n", 4, 1, "failed"),
            (
                (
                    "reading data\n" + long_line + "\n" + "\x1b[31mError in eval(predvars, data): "
                    "object 'age_group' not found\x1b[0m\nCalls: glm -> eval -> eval\nExecution halted\n"
                ).encode(),
                9,
                1,
                "failed",
            ),
        ],
        start_ms=int(T0.timestamp() * 1000),
    )
    make_run(
        paths,
        selection={"task": "extract"},
        tasks={"extract": [], "model": ["extract"]},
        task_status={"model": "skipped"},
    )
    build.rebuild_all(home)


@pytest.fixture
def site_url(flank_home: Path) -> Iterator[str]:
    build_site(Home())
    port = free_port()
    proc = start_server(port)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "chromium-profile")
    try:
        yield b
    finally:
        b.close()


LINKS_JS = """Array.from(document.querySelectorAll('a[href]'))
  .map(a => new URL(a.getAttribute('href'), document.baseURI).href)"""
OVERFLOW_JS = "document.documentElement.scrollWidth"


def test_crawl_every_page_in_chromium(site_url: str, browser: Browser, tmp_path: Path) -> None:
    shots = Path(os.environ.get("FLANK_SITE_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    start = site_url + "index.html"
    seen: set[str] = set()
    todo = [start]
    pages = 0
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        assert url.startswith(site_url), f"link leaves the site: {url}"
        if not url.endswith(".html"):
            with urllib.request.urlopen(url, timeout=10) as resp:  # raw logs: fetched, not rendered
                assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain"), url
            continue
        errors = browser.load(url)
        pages += 1
        assert errors == [], f"{url}: {errors}"
        assert browser.evaluate("document.title") != "pwned", url
        assert browser.evaluate("document.scripts.length") == 0, url
        width = browser.evaluate(OVERFLOW_JS)
        assert width <= 390, f"{url} is {width}px wide on a 390px screen"
        for link in browser.evaluate(LINKS_JS):
            link = urldefrag(link).url
            if urlparse(link).netloc == urlparse(site_url).netloc:
                todo.append(link)
        path = urlparse(url).path.strip("/").replace("/", "_") or "home"
        if any(k in path for k in ("index", "deploys", "logs_extract")) and path.count("_") <= 4:
            browser.screenshot(shots / f"{path}.png")
    # home, project, pushes, pipeline, run-id page, 5 runs, their log pages
    assert pages >= 15
    kinds = {urlparse(u).path for u in seen}
    assert "/demo/deploys.html" in kinds and "/demo/nightly/runs-1.html" in kinds
    assert "/demo/nightly/2/logs/extract.txt" in kinds


def test_the_xss_log_is_inert_and_readable(site_url: str, browser: Browser) -> None:
    assert browser.load(site_url + "demo/nightly/2/logs/extract.html") == []
    assert browser.evaluate("document.title") != "pwned"
    assert browser.evaluate("document.querySelectorAll('pre.log img, pre.log script').length") == 0
    text = browser.evaluate("document.querySelector('pre.log').innerText")
    assert "<script>document.title='pwned'</script>" in text
    assert "ERROR" in text and "\u2400" in text and "\\xff" in text and "100%" in text and "10%" not in text
    assert browser.evaluate("getComputedStyle(document.querySelector('pre.log .fg-1')).fontWeight") == "700"


def test_a_running_run_refreshes_itself(site_url: str, browser: Browser) -> None:
    browser.load(site_url + "demo/nightly/5/index.html")
    assert browser.evaluate("document.querySelector('meta[http-equiv=refresh]').content") == "10"
    assert "running" in browser.evaluate("document.querySelector('h1').innerText")


FAILED_RUN = "demo/nightly/6/index.html"


def _rect(browser: Browser, selector: str) -> dict:
    return browser.evaluate(
        f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();"
        " return {left: r.left, right: r.right, top: r.top, width: r.width}; })()"
    )


def test_a_failed_run_fits_a_phone(site_url: str, browser: Browser) -> None:
    assert browser.load(site_url + FAILED_RUN) == []
    assert browser.evaluate(OVERFLOW_JS) <= 390  # no sideways scrolling of the page
    # the failed task, its error lines and its log links are on screen, above the task table
    failure = _rect(browser, "section.failures article")
    assert failure["left"] >= 0 and failure["right"] <= 390
    assert failure["top"] < _rect(browser, "table.tasks")["top"]
    excerpt = browser.evaluate("document.querySelector('section.failures pre.log').innerText")
    assert "object 'age_group' not found" in excerpt and "Execution halted" in excerpt and "first try" not in excerpt
    for link in ("section.failures a[href$='.html']", "section.failures a[download]"):
        r = _rect(browser, link)
        assert r["left"] >= 0 and r["right"] <= 390 and r["width"] > 0, link
    # the task table stacks: every row's log link is on screen without scrolling its box
    r = _rect(browser, "table.tasks tr.s-failed td.t-log a")
    assert r["left"] >= 0 and r["right"] <= 390
    assert "webhook failed (HTTP 500" in browser.evaluate("document.querySelector('p[role=alert]').innerText")


def test_the_log_page_folds_earlier_attempts(site_url: str, browser: Browser) -> None:
    url = site_url + "demo/nightly/6/logs/logistic_regression_by_age_and_region.html"
    assert browser.load(url) == []
    assert browser.evaluate(OVERFLOW_JS) <= 390
    assert browser.evaluate("Array.from(document.querySelectorAll('details.attempt')).map(d => d.open)") == [
        False,
        True,
    ]
    last = browser.evaluate("document.querySelectorAll('details.attempt')[1].innerText")
    assert "Attempt 2" in last and "exit 1" in last and "age_group" in last
    assert browser.evaluate("document.querySelector('a[download]').getAttribute('download')").endswith(".log")


def test_screenshots_of_a_failed_run_at_desktop_and_phone_widths(site_url: str, tmp_path: Path) -> None:
    shots = Path(os.environ.get("FLANK_SITE_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        b = Browser(tmp_path / f"profile-{width}", width=width, height=1400)
        try:
            for name, url in (
                ("run", FAILED_RUN),
                ("log", "demo/nightly/6/logs/logistic_regression_by_age_and_region.html"),
                ("home", "index.html"),
            ):
                assert b.load(site_url + url) == []
                assert b.evaluate(OVERFLOW_JS) <= width, f"{url} scrolls sideways at {width}px"
                b.screenshot(shots / f"{name}-{width}.png")
                assert (shots / f"{name}-{width}.png").stat().st_size > 0
        finally:
            b.close()
