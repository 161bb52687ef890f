"""Outputs on the site, in real headless Chromium over `flank serve` (issue 11): a real run that makes a
PNG, an HTML report and a CSV shows the image inline, opens the report in a new tab, downloads the CSV;
latest/ URLs follow the newest successful run and survive a prune."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_flank, wait_for

from helpers.deployed import deploy, record
from helpers.ports import free_port
from helpers.serve import start_server
from helpers.site_cdp import CHROMIUM, Browser

# A real 2x2 PNG (red), so the browser really decodes the thumbnail.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
EVIL_NAME = "<img src=x onerror=document.title='pwned'> & <script>.csv"
FLANK_YML = """\
persist: [results]
pipelines:
  nightly:
    tasks:
      model:
        run: sh model.sh
        artifacts: [results/*.png, results/*.csv]
      report:
        run: sh report.sh
        needs: [model]
        artifacts: [results/report.html]
"""
MODEL_SH = f"""\
base64 -d plot.b64 > results/plot.png
printf 'run,value\\n%s,42\\n' "$FLANK_RUN_ID" > results/summary.csv
printf 'x' > "results/{EVIL_NAME}"
[ ! -e fail ] || exit 5
"""
REPORT_SH = """\
cat > results/report.html <<EOF
<!doctype html><html><head><title>Report $FLANK_RUN_ID</title></head>
<body><h1>Model report of run $FLANK_RUN_ID</h1><script>document.title = "report ran"</script></body></html>
EOF
"""

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
    pytest.mark.slow,
]


@pytest.fixture
def served(flank_home: Path) -> Iterator[str]:
    port = free_port()
    proc = start_server(port)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "chromium-profile", width=1280)
    try:
        yield b
    finally:
        b.close()


def _fetch(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read(), resp.headers["Content-Type"]


def _project(tmp_path: Path) -> Path:
    return deploy(tmp_path, FLANK_YML, {"model.sh": MODEL_SH, "report.sh": REPORT_SH, "plot.b64": PNG_B64 + "\n"})


def test_the_run_page_shows_the_image_opens_the_report_and_downloads_the_csv(
    tmp_path: Path, served: str, browser: Browser
) -> None:
    _project(tmp_path)
    assert run_flank("run", "demo", "nightly").returncode == 0
    run_page = served + "demo/nightly/1/index.html"
    assert browser.load(run_page) == []
    assert browser.evaluate("document.title") != "pwned" and browser.evaluate("document.scripts.length") == 0
    section = browser.evaluate("document.querySelector('section.outputs').innerText")
    assert "Outputs" in section and "results/plot.png" in section and EVIL_NAME in section
    # the image, inline: really decoded by the browser, lazily loaded, width-limited
    browser.evaluate("document.querySelector('img.thumb').scrollIntoView()")
    assert wait_for(
        lambda: browser.evaluate("document.querySelector('img.thumb').naturalWidth") == 2,
        "the thumbnail to load",
        timeout=20,
    )
    assert browser.evaluate("document.querySelector('img.thumb').loading") == "lazy"
    # the report: a link opening the file itself in a new tab (never inlined into the page)
    link = "document.querySelector('li.output-report a')"
    assert browser.evaluate(f"{link}.target") == "_blank"
    assert browser.evaluate("document.querySelectorAll('iframe, object, embed').length") == 0
    browser.call("Target.setDiscoverTargets", discover=True)
    browser.call("Runtime.evaluate", session=True, expression=f"{link}.click()", userGesture=True)  # a person's click
    opened = wait_for(
        lambda: (
            browser.evaluate("1") is not None
            and [
                e["params"]["targetInfo"]["url"]
                for e in browser.events
                if e.get("method") in ("Target.targetCreated", "Target.targetInfoChanged")
                and e["params"]["targetInfo"]["url"].endswith("/artifacts/report/results/report.html")
            ]
        ),
        "a report tab",
    )
    body, kind = _fetch(opened[0])
    assert b"Model report of run 1" in body and kind.startswith("text/html")
    # the CSV: a download of the file, with its own name
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
    browser.call(
        "Runtime.evaluate",
        session=True,
        userGesture=True,
        expression=(
            "Array.from(document.querySelectorAll('a[download]')).find(a => a.download == 'summary.csv').click()"
        ),
    )
    got = wait_for(
        lambda: (downloads / "summary.csv").exists() and (downloads / "summary.csv").read_bytes(),
        "the CSV download",
        timeout=30,
    )
    assert got == b"run,value\n1,42\n"
    # the pipeline page lists the latest outputs with stable URLs
    assert browser.load(served + "demo/nightly/index.html") == []
    hrefs = browser.evaluate("Array.from(document.querySelectorAll('section.outputs a')).map(a => a.href)")
    assert served + "demo/nightly/latest/report/results/report.html" in hrefs
    assert served + "demo/nightly/latest/model/results/summary.csv" in hrefs


def test_latest_urls_follow_the_newest_successful_run_and_survive_a_prune(tmp_path: Path, served: str) -> None:
    clone = _project(tmp_path)
    csv = served + "demo/nightly/latest/model/results/summary.csv"
    report = served + "demo/nightly/latest/report/results/report.html"
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert _fetch(csv)[0] == b"run,value\n1,42\n"
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert _fetch(csv)[0] == b"run,value\n2,42\n" and b"run 2" in _fetch(report)[0]
    # a failed run keeps its partial outputs, but latest/ stays on the newest successful run
    fail = Path(os.environ["FLANK_HOME"]) / "demo" / "current" / "fail"
    fail.write_text("")
    assert run_flank("run", "demo", "nightly").returncode == 1
    fail.unlink()
    assert record(3)["tasks"]["model"]["status"] == "failed"
    assert _fetch(served + "demo/nightly/3/artifacts/model/results/summary.csv")[0] == b"run,value\n3,42\n"
    assert _fetch(csv)[0] == b"run,value\n2,42\n"
    # pruning the runs before it keeps the latest one, and its URLs
    proc = run_flank("prune", "demo", "--keep", "2")
    assert proc.returncode == 0, proc.stderr
    assert not (Path(os.environ["FLANK_HOME"]) / "demo" / "runs" / "nightly" / "1").exists()
    assert _fetch(csv)[0] == b"run,value\n2,42\n" and b"run 2" in _fetch(report)[0]
    # pruning the newest successful run too: latest/ falls back to none rather than a dead file
    assert run_flank("prune", "demo", "--keep", "1").returncode == 0
    with pytest.raises(urllib.error.HTTPError):
        _fetch(csv)
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert _fetch(csv)[0] == b"run,value\n4,42\n"
    del clone


def test_page_weight_is_bounded_many_and_big_images_become_links(tmp_path: Path) -> None:
    make = "for i in $(seq 30); do printf PNG > results/p$i.png; done; head -c 3000000 /dev/zero > results/huge.png"
    deploy(tmp_path, FLANK_YML.replace("run: sh model.sh", f"run: '{make}'"), {"report.sh": REPORT_SH})
    assert run_flank("run", "demo", "nightly").returncode == 0
    page = (Path(os.environ["FLANK_HOME"]) / "site" / "demo" / "nightly" / "1" / "index.html").read_text()
    thumbs = page.count('<img class="thumb"')
    assert thumbs == 24  # at most 24 inline per page, each lazily loaded
    assert page.count('loading="lazy"') == thumbs
    assert 'src="../../../demo/nightly/1/artifacts/model/results/huge.png"' not in page
    assert 'results/huge.png</a> <span class="muted small">image · 2.9 MiB · not shown here (too big)' in page


# A self-contained report (as R Markdown makes them: inline styles and scripts) that also tries to read the site.
PROBING_REPORT_SH = """\
cat > results/report.html <<'EOF'
<!doctype html><html><head><title>Report</title><style>h1 { color: rgb(1, 2, 3) }</style></head>
<body><h1>Model report</h1><script>
document.title = "report ran";
fetch("/").then(r => r.text()).then(t => { document.body.dataset.read = "read " + t.length })
  .catch(e => { document.body.dataset.read = "blocked" });
</script></body></html>
EOF
"""


def test_a_kept_report_runs_sandboxed_and_cannot_read_the_site(tmp_path: Path, served: str, browser: Browser) -> None:
    """issue 20 item 3: kept files and latest/ come with `Content-Security-Policy: sandbox …`: the
    report's inline script and style work, with an opaque origin that cannot read the site."""
    from flank_ops.site.layout import KEPT_FILE_CSP

    deploy(tmp_path, FLANK_YML, {"model.sh": MODEL_SH, "report.sh": PROBING_REPORT_SH, "plot.b64": PNG_B64 + "\n"})
    assert run_flank("run", "demo", "nightly").returncode == 0
    for url in (
        "demo/nightly/1/artifacts/report/results/report.html",
        "demo/nightly/latest/report/results/report.html",
    ):
        with urllib.request.urlopen(served + url, timeout=10) as resp:
            assert resp.headers["Content-Security-Policy"] == KEPT_FILE_CSP, url
        browser.load(served + url)
        read = wait_for(lambda: browser.evaluate("document.body.dataset.read"), "the report's fetch to end")
        assert read == "blocked", url
        assert browser.evaluate("document.title") == "report ran"  # its inline script ran
        assert browser.evaluate("getComputedStyle(document.querySelector('h1')).color") == "rgb(1, 2, 3)"
        assert browser.evaluate("window.origin") == "null"  # an opaque origin
    with urllib.request.urlopen(served + "demo/nightly/1/index.html", timeout=10) as resp:
        assert "Content-Security-Policy" not in resp.headers  # the site's own pages are not sandboxed
