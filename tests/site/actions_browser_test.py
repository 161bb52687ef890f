"""issue 23 in real headless Chromium: sign in, click Run (twice: one run), watch the running task's
lines arrive over SSE without a reload on its run page and its log page, click Cancel and see `cancelled`; a second browser without a
session sees no button, and the same page opened from disk shows nothing of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nginx_test import BASIC, Nginx, nginx  # noqa: F401 - fixture

from flank_ops.paths import Home
from helpers.cli import run_flank
from helpers.deployed import CHATTY, deploy, gate_dir, open_gate, record, runs_dir, start_flank
from helpers.ports import free_port
from helpers.readable_site import traversable_home  # noqa: F401 - fixture
from helpers.serve import start_server
from helpers.site_cdp import CHROMIUM, Browser
from helpers.waiting import wait_for

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
    pytest.mark.slow,
]

PASSWORD = "correct horse battery"
YML = f"persist: [gate]\npipelines:\n  nightly:\n    tasks:\n      hold: '{CHATTY}'\n"


def _eval(browser: Browser, expression: str) -> Any:
    try:
        return browser.evaluate(expression)
    except RuntimeError:  # the page is being replaced (a navigation): not there yet
        return None


def _visible(selector: str) -> str:
    return f"(() => {{ const e = document.querySelector({selector!r}); return !!e && e.offsetParent !== null; }})()"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    deploy(tmp_path, YML)
    run_flank("users", "add", "ada", "--project", "demo", input=PASSWORD + "\n", check=True)
    port = free_port()
    proc = start_server(port, "--actions")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        open_gate()
        proc.terminate()
        proc.wait(timeout=10)


def test_sign_in_run_watch_it_live_and_cancel(site: str, tmp_path: Path) -> None:
    browser = Browser(tmp_path / "profile-ada", width=1000)
    try:
        assert browser.load(f"{site}/demo/nightly/index.html") == []
        wait_for(lambda: _eval(browser, _visible("[data-flank-signin]")), "the sign-in link")
        assert not _eval(browser, _visible("form[data-action=run]"))  # no button before signing in
        browser.evaluate("document.querySelector('[data-flank-signin]').click()")
        wait_for(lambda: _eval(browser, "!!document.querySelector('input[name=password]')"), "the sign-in page")
        browser.evaluate(
            f"document.querySelector('input[name=user]').value = 'ada';"
            f"document.querySelector('input[name=password]').value = {PASSWORD!r};"
            "document.querySelector('form button').click()"
        )
        # back on the pipeline page, signed in: the Run form shows
        wait_for(lambda: _eval(browser, _visible("form[data-action=run] button")), "the Run button")
        assert "Signed in as ada" in browser.evaluate("document.getElementById('flank-actions').textContent")
        browser.evaluate("const b = document.querySelector('form[data-action=run] button'); b.click(); b.click()")
        wait_for(lambda: "/demo/nightly/1/" in (_eval(browser, "location.pathname") or ""), "the new run's page")
        wait_for(lambda: _eval(browser, "document.readyState === 'complete'"), "the run page to load")
        browser.evaluate("window.sameDocument = true")  # gone if the page reloads
        wait_for(
            lambda: (
                "tidyverse attached" in (_eval(browser, "document.querySelector('section.live').textContent") or "")
            ),
            "the running task's lines",
        )
        gate_dir().mkdir(parents=True, exist_ok=True)
        (gate_dir() / "more").write_text("")
        wait_for(
            lambda: "fitting glm" in (_eval(browser, "document.querySelector('section.live').textContent") or ""),
            "a new line, live",
        )
        assert browser.evaluate("window.sameDocument") is True  # live: no reload while it runs
        # the running task's log page follows the log: drawn with the run's next redraw once the log has lines
        # (an empty log gets no page), which the live lines above can beat by a few seconds
        log_page = Home().site_dir / "demo" / "nightly" / "1" / "logs" / "hold.html"
        wait_for(log_page.exists, "the running task's log page to be drawn")
        assert browser.load(f"{site}/demo/nightly/1/logs/hold.html") == []
        browser.evaluate("window.sameDocument = true")
        count = "document.querySelector('main pre.log').textContent.split('fitting glm').length - 1"
        before = wait_for(lambda: _eval(browser, count), "the log's lines")
        (gate_dir() / "more").write_text("")
        wait_for(lambda: (_eval(browser, count) or 0) > before, "the new line on the log page")
        assert browser.evaluate("window.sameDocument") is True

        assert browser.load(f"{site}/demo/nightly/1/index.html") == []
        browser.evaluate("window.sameDocument = true")
        wait_for(lambda: _eval(browser, _visible("form[data-action=cancel] button")), "the Cancel button")
        browser.evaluate("document.querySelector('form[data-action=cancel] button').click()")
        wait_for(
            lambda: "cancelled" in (_eval(browser, "document.querySelector('main h1 .badge').textContent") or ""),
            "the page to say cancelled",
        )
        # polish a: once the run has ended, the page becomes its final page, graph and timeline included (they
        # stayed as drawn while it ran), without the running task's lines nor the 10 s refresh
        node = "document.querySelector('svg.dag [data-task=hold]').getAttribute('class')"
        wait_for(lambda: "s-cancelled" in (_eval(browser, node) or ""), "the graph to show the run's end", timeout=30)
        final = browser.evaluate(
            "[document.getElementById('flank-actions').dataset.status, !!document.querySelector('section.live'),"
            " document.querySelector('footer').textContent.includes('refreshes'),"
            " document.querySelector('svg.gantt').innerHTML.includes('s-running'), location.pathname + location.search]"
        )
        assert final == ["cancelled", False, False, False, "/demo/nightly/1/index.html"]  # its own address
        assert record(1)["status"] == "cancelled"
        assert record(1)["triggered_by"] == {"user": "ada", "via": "web"}
        assert sorted(p.name for p in runs_dir().iterdir() if p.name.isdigit()) == ["1"]  # one run for two clicks
        browser.screenshot(tmp_path / "cancelled.png")
        assert browser.errors() == []
    finally:
        browser.close()

    stranger = Browser(tmp_path / "profile-other", width=1000)
    try:
        assert stranger.load(f"{site}/demo/nightly/1/index.html") == []
        wait_for(lambda: _eval(stranger, _visible("[data-flank-signin]")), "the sign-in link")
        assert stranger.evaluate("[...document.querySelectorAll('form.flank-act')].every(f => f.offsetParent === null)")
        # the same page from disk (or any server without /api/): nothing of the actions shows
        page = Home().site_dir / "demo" / "nightly" / "1" / "index.html"
        stranger.load(page.as_uri())
        stranger.evaluate("new Promise(r => setTimeout(r, 500))")  # let the script's fetch fail first
        assert stranger.evaluate("document.getElementById('flank-actions').hidden") is True
    finally:
        stranger.close()


def test_through_the_readme_nginx_recipe_over_tls(nginx: Nginx, traversable_home: Path, tmp_path: Path) -> None:
    """The same from Chromium through the README's nginx (TLS, a password, /api/ proxied): the page
    comes from nginx, sign-in, Run and the live lines from flank serve behind it."""
    deploy(tmp_path, YML)
    os.chmod(traversable_home, 0o711)
    run_flank("users", "add", "ada", "--project", "demo", input=PASSWORD + "\n", check=True)
    server = start_flank("serve", "--actions", "--port", str(nginx.flank_port))
    browser = Browser(tmp_path / "profile", width=1000, extra_args=("--ignore-certificate-errors",))
    try:
        wait_for(lambda: nginx.get("/api/session")[0] == 200, "flank serve behind nginx")
        browser.call("Network.enable", session=True)
        browser.call("Network.setExtraHTTPHeaders", session=True, headers={"Authorization": BASIC})  # nginx's password
        site = f"https://127.0.0.1:{nginx.port}"
        assert browser.load(f"{site}/api/login?next=/demo/nightly/index.html") == []
        browser.evaluate(
            f"document.querySelector('input[name=user]').value = 'ada';"
            f"document.querySelector('input[name=password]').value = {PASSWORD!r};"
            "document.querySelector('form button').click()"
        )
        wait_for(lambda: _eval(browser, _visible("form[data-action=run] button")), "the Run button")
        browser.evaluate("document.querySelector('form[data-action=run] button').click()")
        wait_for(lambda: "/demo/nightly/1/" in (_eval(browser, "location.pathname") or ""), "the new run's page")
        wait_for(
            lambda: (
                "tidyverse attached" in (_eval(browser, "document.querySelector('section.live').textContent") or "")
            ),
            "the running task's lines through nginx",
        )
        open_gate()
        wait_for(
            lambda: "success" in (_eval(browser, "document.querySelector('main h1 .badge').textContent") or ""),
            "the page to say success",
        )
        assert browser.errors() == []
    finally:
        browser.close()
        open_gate()
        server.terminate()
        server.communicate(timeout=10)


def test_the_run_form_sends_a_parameter(tmp_path: Path) -> None:
    """issue 23 item 3: the Run form's typed inputs, defaults filled; a changed value reaches the run."""
    deploy(
        tmp_path,
        "pipelines:\n  nightly:\n    params:\n"
        '      model: {type: choice, choices: [lm, glm], default: lm, description: "which fit"}\n'
        "      n: 3\n    tasks:\n      fit: echo fit $FLANK_PARAM_MODEL $FLANK_PARAM_N\n",
    )
    run_flank("users", "add", "ada", "--project", "demo", input=PASSWORD + "\n", check=True)
    port = free_port()
    proc = start_server(port, "--actions")
    browser = Browser(tmp_path / "profile", width=1000)
    try:
        site = f"http://127.0.0.1:{port}"
        assert browser.load(f"{site}/api/login?next=/demo/nightly/index.html") == []
        browser.evaluate(
            f"document.querySelector('input[name=user]').value = 'ada';"
            f"document.querySelector('input[name=password]').value = {PASSWORD!r};"
            "document.querySelector('form button').click()"
        )
        wait_for(lambda: _eval(browser, _visible("form[data-action=run] button")), "the Run button")
        form = "document.querySelector('form[data-action=run]')"
        assert browser.evaluate(f"{form}.querySelector('[name=\"p.n\"]').value") == "3"  # the default, filled
        assert "which fit" in browser.evaluate(f"{form}.textContent")
        browser.evaluate(f"{form}.querySelector('[name=\"p.n\"]').value = ''; {form}.querySelector('button').click()")
        message = "document.querySelector('.flank-message').textContent"
        wait_for(lambda: "is not a whole number" in (_eval(browser, message) or ""), "the refusal on the page")
        assert not runs_dir().exists() or not any(p.name.isdigit() for p in runs_dir().iterdir())  # nothing started
        browser.evaluate(f"{form}.querySelector('[name=\"p.n\"]').value = '3'")
        browser.evaluate(
            f"{form}.querySelector('[name=\"p.model\"]').value = 'glm';{form}.querySelector('button').click()"
        )
        wait_for(lambda: "/demo/nightly/1/" in (_eval(browser, "location.pathname") or ""), "the new run's page")
        wait_for(lambda: record(1)["status"] == "success", "the run to end")
        browser.load(f"{site}/demo/nightly/1/index.html")
        facts = browser.evaluate("document.querySelector('dl.facts').textContent")
        assert "Parameters" in facts and "model=glm" in facts and "n=3" not in facts  # only what differs
        log = (runs_dir() / "1" / "logs" / "fit.log").read_text()
        assert log == "fit glm 3\n"
        assert browser.errors() == []
    finally:
        browser.close()
        proc.terminate()
        proc.wait(timeout=10)
