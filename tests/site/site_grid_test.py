"""The pipeline page's task x run grid (site/grid.py, _grid.html), and the task graph as a user sees it in Chromium.

Records are written as the runner writes them (site_records.py); pages are built by
the real site build and read back as HTML, or shown in real headless Chromium.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from flank_ops.paths import Home, ProjectPaths
from flank_ops.site import build, dag_layout, grid
from flank_ops.store import records
from flank_ops.store.model import TaskStatus
from helpers.site_cdp import CHROMIUM, Browser
from helpers.site_records import CHAIN, make_project, make_run

NINE = ["outliers", "article_plot", "corr_age", "pca", "clusters", "logreg", "glm_fit", "survival", "tables"]
ANALYST = {
    "download": [],
    "clean": ["download"],
    "augment": ["clean"],
    **{n: ["augment"] for n in NINE},
    "slides": ["pca", "logreg", "tables"],
}
ANALYST_YML = (
    'pipelines:\n  nightly:\n    schedule: "0 2 * * *"\n    timezone: Europe/Copenhagen\n    tasks:\n'
    + "".join(
        f"      {name}:\n        run: Rscript R/{name}.R\n"
        + (f"        needs: [{', '.join(needs)}]\n" if needs else "")
        for name, needs in ANALYST.items()
    )
)


class GridReader(HTMLParser):
    """The grid as a user reads it: run headers, then per row the task and each cell's (label, icon, href)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_grid = False
        self.runs: list[str] = []
        self.rows: list[tuple[str, list[tuple[str, str, str | None]]]] = []
        self._cell: list | None = None
        self._task: list[str] | None = None
        self._section = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table" and "grid" in (a.get("class") or "").split():
            self.in_grid = True
        if not self.in_grid:
            return
        if tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "th" and a.get("scope") == "row":
            self._task = []
            self.rows.append(("", []))
        elif "cell" in (a.get("class") or "").split():
            if self._section == "thead":
                self.runs.append(a["aria-label"])
            else:
                self._cell = [a["aria-label"], "", a.get("href")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_grid = False
        elif tag == "th" and self._task is not None:
            self.rows[-1] = ("".join(self._task), self.rows[-1][1])
            self._task = None
        elif tag in ("a", "span") and self._cell is not None:
            self.rows[-1][1].append(tuple(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._task is not None:
            self._task.append(data)
        elif self._cell is not None:
            self._cell[1] += data


def read_grid(page: Path) -> GridReader:
    reader = GridReader()
    reader.feed(page.read_text(encoding="utf-8"))
    return reader


def pipeline_page(home: Home) -> Path:
    return home.site_dir / "demo" / "nightly" / "index.html"


@pytest.mark.slow
def test_the_grid_shows_each_task_in_the_last_30_runs_newest_first(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    for _ in range(30):
        make_run(paths)
    for _ in range(3):  # model has failed three nights running; report never ran, so has no log
        make_run(
            paths,
            status="failed",
            task_status={"model": "failed", "report": "upstream_failed"},
            logs={"extract": b"ok\n", "transform": b"ok\n", "model": b"Error in glm()\n"},
        )
    build.rebuild_all(home)
    g = read_grid(pipeline_page(home))
    assert len(g.runs) == 30
    assert g.runs[:2] == ["run #33 failed", "run #32 failed"] and g.runs[-1] == "run #4 success"
    assert [task for task, _ in g.rows] == list(CHAIN)  # topological order
    model = dict(g.rows)["model"]
    assert [label for label, _, _ in model[:4]] == [
        "model #33 failed",
        "model #32 failed",
        "model #31 failed",
        "model #30 success",
    ]
    assert [icon for _, icon, _ in model[:4]] == ["✗", "✗", "✗", "✓"]
    page = pipeline_page(home)
    assert (page.parent / model[0][2]).resolve() == page.parent / "33/logs/model.html"  # the cell opens the log
    report = dict(g.rows)["report"]
    assert report[0][:2] == ("report #33 upstream failed", "⊘")
    assert (page.parent / report[0][2]).resolve() == page.parent / "33/index.html"  # no log: the run page
    assert all(len(cells) == 30 for _, cells in g.rows)
    for _, cells in g.rows:
        for _, _, href in cells:
            assert (page.parent / href).is_file(), href


@pytest.mark.slow
def test_the_grid_reads_only_the_newest_runs(flank_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Home()
    paths = make_project(home)
    for _ in range(45):
        make_run(paths)
    read: list[int] = []
    real = grid.load_run_record

    def spy(paths: ProjectPaths, pipeline: str, run_id: int, warnings):  # noqa: ANN001
        read.append(run_id)
        return real(paths, pipeline, run_id, warnings)

    monkeypatch.setattr(grid, "load_run_record", spy)
    build.draw_run(paths, "nightly", 45)
    assert sorted(read) == list(range(16, 46))


def test_a_finished_run_s_column_is_read_once_and_again_when_its_record_changes(
    flank_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Home()
    paths = make_project(home)
    for _ in range(3):
        make_run(paths)
    build.draw_run(paths, "nightly", 3)  # the finished runs' columns are kept
    read: list[int] = []
    real = grid.load_run_record

    def spy(paths: ProjectPaths, pipeline: str, run_id: int, warnings):  # noqa: ANN001
        read.append(run_id)
        return real(paths, pipeline, run_id, warnings)

    monkeypatch.setattr(grid, "load_run_record", spy)
    build.draw_run(paths, "nightly", 3)
    assert read == []  # the grid read no record: its columns came from what was kept
    record = records.read_record(paths.run_dir("nightly", 2))
    record.tasks["model"].status = TaskStatus.FAILED  # e.g. a record repaired by hand
    records.write_record(paths.run_dir("nightly", 2), record)
    build.draw_run(paths, "nightly", 3)
    assert dict(read_grid(pipeline_page(home)).rows)["model"][1][0] == "model #2 failed"


def test_tasks_added_later_skipped_triggers_and_partial_runs(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    make_run(paths, tasks={k: v for k, v in CHAIN.items() if k != "report"})  # before `report` existed
    make_run(paths, status="skipped", tasks={})  # a trigger skipped while a run was going: no column
    make_run(paths, task_status={"extract": "skipped", "transform": "skipped", "report": "skipped"})  # --task model
    build.rebuild_all(home)
    g = read_grid(pipeline_page(home))
    assert g.runs == ["run #3 success", "run #1 success"]
    rows = dict(g.rows)
    assert rows["report"][1] == ("report #1: not in this run", "", None)
    assert rows["extract"][0][:2] == ("extract #3 skipped", "–")
    assert rows["model"][0][:2] == ("model #3 success", "✓")


def test_task_names_in_the_grid_are_escaped(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    evil = '<img src=x onerror="alert(1)">'
    make_run(paths, tasks={"extract": [], evil: ["extract"]}, task_status={evil: "failed"})
    build.rebuild_all(home)
    html = pipeline_page(home).read_text()
    assert "<img" not in html
    g = read_grid(pipeline_page(home))
    assert dict(g.rows)[evil][0][0] == f"{evil} #1 failed"


def test_without_runs_there_is_no_grid(flank_home: Path) -> None:
    home = Home()
    paths = make_project(home)
    build.after_deploy(home, paths.name)
    html = pipeline_page(home).read_text()
    assert 'class="grid"' not in html and 'class="dag"' in html


# --- in Chromium: the grid and the graph on a desktop and a phone -----------------


@pytest.fixture
def analyst_site(flank_home: Path) -> Path:
    """The analyst's pipeline (a layer of nine tasks) after a week of nights, the last three failing."""
    home = Home()
    paths = make_project(home, flank_yml=ANALYST_YML)
    for night in range(7):
        failing = night >= 4
        make_run(
            paths,
            tasks=ANALYST,
            status="failed" if failing else "success",
            task_status={"logreg": "failed", "slides": "upstream_failed"} if failing else {},
        )
    build.rebuild_all(home)
    return home.site_dir


pytestmark_browser = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")


@pytest.fixture
def browser(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Browser]:
    b = Browser(tmp_path / "chromium-profile", width=request.param, height=1400)
    b.width = request.param
    try:
        yield b
    finally:
        b.close()


BOX_JS = """(() => { const box = document.querySelector(%r).closest('.scroll');
  return [box.scrollWidth, box.clientWidth, document.documentElement.scrollWidth]; })()"""
OVERLAP_JS = """(() => { const r = [...document.querySelectorAll('svg.dag .node rect')].map(e => e.getBoundingClientRect());
  let n = 0; for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++)
    if (r[i].left < r[j].right && r[j].left < r[i].right && r[i].top < r[j].bottom && r[j].top < r[i].bottom) n++;
  return [r.length, n]; })()"""


@pytest.mark.slow
@pytestmark_browser
@pytest.mark.skipif(dag_layout.dot_executable() is None, reason="Graphviz dot is not installed")
@pytest.mark.parametrize("browser", [1280, 390], indirect=True, ids=["desktop", "phone"])
def test_graph_and_grid_scroll_in_their_own_boxes_never_the_page(
    analyst_site: Path, browser: Browser, tmp_path: Path
) -> None:
    width = browser.width
    shots = Path(os.environ.get("FLANK_SITE_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    for page, name in (
        (analyst_site / "demo/nightly/index.html", "pipeline"),
        (analyst_site / "demo/nightly/7/index.html", "run"),
    ):
        assert browser.load(page.as_uri()) == []
        boxes, overlaps = browser.evaluate(OVERLAP_JS)
        assert boxes == 13 and overlaps == 0
        _, _, page_width = browser.evaluate(BOX_JS % "svg.dag")
        assert page_width <= width, f"the {name} page scrolls sideways at {width}px"
        if name == "pipeline":
            grid_scroll, grid_client, _ = browser.evaluate(BOX_JS % "table.grid")
            assert grid_client <= width
            rows = browser.evaluate("[...document.querySelectorAll('table.grid tbody th')].map(t => t.textContent)")
            assert rows == list(ANALYST)
            labels = browser.evaluate(
                "[...document.querySelectorAll('table.grid tbody tr')][8]"
                ".querySelectorAll('.cell')[0].getAttribute('aria-label')"
            )
            assert labels == "logreg #7 failed"
        browser.screenshot(shots / f"{name}-{width}.png")
        if name == "pipeline":
            browser.evaluate("document.getElementById('grid').scrollIntoView()")
            browser.screenshot(shots / f"{name}-grid-{width}.png")


def test_a_matrix_from_task_is_one_group_in_its_place(flank_home: Path) -> None:
    """Found by the third trial: the deployed flank.yml names `region` (its cells are known only
    when a run reads its file), the runs have `region[north]`...; the grid showed an empty `region`
    row in the task's place and the instances under a second `region` after report."""
    home = Home()
    yml = (
        "pipelines:\n  nightly:\n    tasks:\n"
        "      regions: {run: 'echo north > r.txt', outputs: [r.txt]}\n"
        "      region: {run: 'echo $FLANK_MATRIX_VALUE', needs: [regions], matrix_from: r.txt}\n"
        "      report: {run: 'echo report', needs: [region]}\n"
    )
    paths = make_project(home, flank_yml=yml)
    cells = {"regions": [], "region[north]": ["regions"], "region[south]": ["regions"], "report": ["region"]}
    make_run(paths, tasks=cells)
    build.rebuild_all(home)
    g = read_grid(pipeline_page(home))
    assert [task for task, _ in g.rows] == ["regions", "[north]", "[south]", "report"]
    html = pipeline_page(home).read_text()
    assert html.count('<tr class="matrix-task">') == 1
