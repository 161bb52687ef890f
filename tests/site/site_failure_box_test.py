"""The failed-task box on a run page (issue 28 item 5): the last line of a failed task's output is on
screen without scrolling, at 1280 px and 390 px, with and without JavaScript, and the error line itself
(R's `Error in …`, a Python traceback's last line) is the box's heading. Real headless Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from flank_ops.paths import Home
from flank_ops.site import build
from helpers.site_cdp import CHROMIUM, Browser
from helpers.site_records import make_project, make_run

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
    pytest.mark.slow,
]

PY_TRACEBACK = (
    "".join(f"cleaning row block {i}\n" for i in range(40))
    + "Traceback (most recent call last):\n"
    + '  File "/srv/proj/py/summarise.py", line 12, in <module>\n'
    + '    table = df[["Categry", "value"]].groupby("Categry").sum()\n'
    + '  File "/srv/venv/lib/python3.11/site-packages/pandas/core/frame.py", line 3899, in __getitem__\n'
    + '    indexer = self.columns._get_indexer_strict(key, "columns")[1]\n'
    + "KeyError: \"['Categry'] not in index\"\n"
)
R_ERROR = (
    "".join(f"fitting model {i}\n" for i in range(40))
    + "Error in eval(predvars, data, env) : \n  object 'age_group' not found\n"
    + "Calls: glm -> eval -> eval\nExecution halted\n"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home_dir = tmp_path_factory.mktemp("flank-home")
    old = os.environ.get("FLANK_HOME")
    os.environ["FLANK_HOME"] = str(home_dir)
    try:
        home = Home()
        paths = make_project(home)
        make_run(
            paths,
            status="failed",
            tasks={"summarise": [], "plot": ["summarise"]},
            task_status={"summarise": "failed", "plot": "upstream_failed"},
            logs={"summarise": PY_TRACEBACK.encode()},
        )
        make_run(
            paths,
            status="failed",
            tasks={"model": [], "report": ["model"]},
            task_status={"model": "failed", "report": "upstream_failed"},
            logs={"model": R_ERROR.encode()},
        )
        build.rebuild_all(home)
        yield home.site_dir
    finally:
        if old is None:
            os.environ.pop("FLANK_HOME", None)
        else:
            os.environ["FLANK_HOME"] = old


# Where the last line of the box is, as the reader sees it: the rectangle of its text.
LAST_LINE_JS = """(() => {
  const pre = document.querySelector('section.failures pre.log');
  const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
  let node = null, last = null;
  while ((node = walker.nextNode())) { if (node.textContent.includes(%r)) last = node; }
  const range = document.createRange();
  const at = last.textContent.lastIndexOf(%r);
  range.setStart(last, at); range.setEnd(last, at + %d);
  const r = range.getBoundingClientRect();
  let box = pre; while (box && getComputedStyle(box).overflowY === 'visible') box = box.parentElement;
  const b = (box || pre).getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, boxTop: b.top, boxBottom: b.bottom, height: innerHeight};
})()"""


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
@pytest.mark.parametrize("javascript", [True, False])
@pytest.mark.parametrize(
    "run_id,last_line,heading",
    [
        (1, "KeyError: \"['Categry'] not in index\"", "KeyError: \"['Categry'] not in index\""),
        (2, "Execution halted", "Error in eval(predvars, data, env) : object 'age_group' not found"),
    ],
)
def test_the_last_line_of_a_failed_task_is_on_screen_and_its_error_is_the_heading(
    site: Path, tmp_path: Path, width: int, height: int, javascript: bool, run_id: int, last_line: str, heading: str
) -> None:
    b = Browser(tmp_path / "profile", width=width, height=height)
    try:
        if not javascript:
            b.call("Emulation.setScriptExecutionDisabled", session=True, value=True)
        assert b.load((site / "demo" / "nightly" / str(run_id) / "index.html").as_uri()) == []
        shots = Path(os.environ.get("FLANK_SITE_SCREENSHOTS") or tmp_path)
        b.screenshot(shots / f"failure-box-{run_id}-{width}-{'js' if javascript else 'nojs'}.png")
        r = b.evaluate(LAST_LINE_JS % (last_line, last_line, len(last_line)))
        # on screen, and inside the box's visible part (not scrolled away inside it)
        assert r["top"] >= 0 and r["bottom"] <= r["height"], r
        assert r["boxTop"] - 1 <= r["top"] and r["bottom"] <= r["boxBottom"] + 1, r
        assert b.evaluate("document.querySelector('section.failures .f-error-line').innerText") == heading
        assert b.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        b.close()
