"""flank_ops/site/svg.py: graphics readable at 50 tasks, status by icon as well as colour, escaped names.

The task graph is laid out by the real Graphviz `dot` (dag_layout.py); these tests read
the SVG back as a user's eye would: which box an arrow leaves and reaches, whether
boxes overlap, whether an arrow runs through a box it does not belong to.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest

from flank_ops.site import dag_layout
from flank_ops.site.svg import DagNode, GanttBar, TrendPoint, dag_svg, gantt_svg, trend_svg

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"
DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz dot is not installed (apt-get install graphviz)")

# the analyst's R project: nine tasks that all need only `augment`
NINE = ["outliers", "article_plot", "corr_age", "pca", "clusters", "logreg", "glm_fit", "survival", "tables"]


def analyst_dag(status: dict[str, str] | None = None) -> list[DagNode]:
    status = status or {}
    names = ["download", "clean", "augment", *NINE, "slides"]
    needs = {"download": (), "clean": ("download",), "augment": ("clean",), "slides": ("pca", "logreg", "tables")}
    return [DagNode(n, needs.get(n, ("augment",)), status.get(n), f"logs/{n}.html" if status else None) for n in names]


def fifty_task_dag() -> list[DagNode]:
    """50 tasks in 8 layers, with fan-out, fan-in and edges that skip layers (deterministic)."""
    nodes = [DagNode("extract_raw_data", ())]
    for i in range(1, 50):
        layer = 1 + (i - 1) * 7 // 49
        earlier = [n.name for n in nodes if _layer_of(n.name) < layer]
        previous = [n.name for n in nodes if _layer_of(n.name) == layer - 1]
        picks = {previous[i % len(previous)], earlier[(i * 7) % len(earlier)]}
        if i % 5 == 0:
            picks.add(previous[(i * 3) % len(previous)])
        nodes.append(DagNode(f"l{layer}_step_{i:02d}", tuple(sorted(picks))))
    return nodes


def _layer_of(name: str) -> int:
    return 0 if name == "extract_raw_data" else int(name[1])


class Rect(NamedTuple):
    x: float
    y: float
    w: float
    h: float

    def contains(self, px: float, py: float, margin: float = 0.0) -> bool:
        return (self.x + margin < px < self.x + self.w - margin) and (self.y + margin < py < self.y + self.h - margin)

    def overlaps(self, other: Rect) -> bool:
        return not (
            self.x + self.w <= other.x
            or other.x + other.w <= self.x
            or self.y + self.h <= other.y
            or other.y + other.h <= self.y
        )

    def distance(self, px: float, py: float) -> float:
        dx = max(self.x - px, 0.0, px - (self.x + self.w))
        dy = max(self.y - py, 0.0, py - (self.y + self.h))
        return (dx * dx + dy * dy) ** 0.5


class DrawnEdge(NamedTuple):
    tail: str
    head: str
    curve: list[tuple[float, float]]  # points sampled along the drawn path
    tip: tuple[float, float]  # the arrow's point


class Drawing(NamedTuple):
    boxes: dict[str, Rect]
    labels: dict[str, str]
    edges: list[DrawnEdge]


def read_drawing(svg: str) -> Drawing:
    root = ET.fromstring(svg)
    boxes, labels, edges = {}, {}, []
    for el in root.iter():
        if "node" in el.get("class", "").split():
            rect = el.find(f"{SVG}rect")
            boxes[el.get("data-task")] = Rect(*(float(rect.get(k)) for k in ("x", "y", "width", "height")))
            labels[el.get("data-task")] = el.find(f"{SVG}text[@class='name']").text
        elif "edge" in el.get("class", "").split():
            line = el.find(f"{SVG}path[@class='line']").get("d")
            arrow = el.find(f"{SVG}path[@class='arrow']").get("d")
            tip = tuple(float(v) for v in re.findall(r"-?[\d.]+", arrow)[:2])
            edges.append(DrawnEdge(el.get("data-from"), el.get("data-to"), _sample(line), tip))
    return Drawing(boxes, labels, edges)


def _sample(d: str) -> list[tuple[float, float]]:
    """Points along an 'M p C c1 c2 p C ...' path, 40 per Bezier segment."""
    nums = [float(v) for v in re.findall(r"-?[\d.]+", d)]
    pts = list(zip(nums[0::2], nums[1::2]))
    out = [pts[0]]
    for i in range(1, len(pts) - 2, 3):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[i + 1], pts[i + 2]
        for k in range(1, 41):
            t = k / 40
            a, b, c, e = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t**3
            out.append((a * p0[0] + b * p1[0] + c * p2[0] + e * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + e * p3[1]))
    return out


@pytest.fixture(autouse=True)
def fresh_layouts() -> Iterator[None]:
    dag_layout.forget()  # each test lays out (or reads its cache) as a new process would
    yield
    dag_layout.forget()


def _size(svg: str) -> tuple[int, int]:
    m = re.search(r'width="(\d+)" height="(\d+)"', svg)
    assert m
    return int(m.group(1)), int(m.group(2))


# --- the task graph --------------------------------------------------------------


@needs_dot
def test_nine_tasks_that_need_one_task_get_nine_arrows_from_it_and_none_between_them() -> None:
    drawing = read_drawing(dag_svg(analyst_dag()))
    from_augment = {e.head for e in drawing.edges if e.tail == "augment"}
    assert from_augment == set(NINE)
    siblings = set(NINE)
    assert not [e for e in drawing.edges if e.tail in siblings and e.head in siblings]
    assert len(drawing.edges) == 2 + 9 + 3  # download→clean→augment, the nine, three into slides
    # each arrow visibly leaves its own task's box and points at its own head's box
    for e in drawing.edges:
        assert drawing.boxes[e.tail].distance(*e.curve[0]) <= 2, e
        assert drawing.boxes[e.head].distance(*e.tip) <= 2, e
    # the nine form one layer: one column (left to right) or one row (top to bottom)
    centres_x = {drawing.boxes[n].x + drawing.boxes[n].w / 2 for n in NINE}
    centres_y = {drawing.boxes[n].y + drawing.boxes[n].h / 2 for n in NINE}
    assert len(centres_x) == 1 or len(centres_y) == 1


def _assert_readable(drawing: Drawing) -> None:
    names = list(drawing.boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not drawing.boxes[a].overlaps(drawing.boxes[b]), f"boxes {a} and {b} overlap"
    for e in drawing.edges:
        for name, box in drawing.boxes.items():
            if name in (e.tail, e.head):
                continue
            through = [p for p in e.curve if box.contains(*p, margin=1.0)]
            assert not through, f"the arrow {e.tail} → {e.head} runs through the box of {name}"


@needs_dot
@pytest.mark.parametrize("dag", [analyst_dag, fifty_task_dag], ids=["nine-wide", "fifty-tasks"])
def test_boxes_do_not_overlap_and_arrows_do_not_cross_other_boxes(dag) -> None:
    nodes = dag()
    drawing = read_drawing(dag_svg(nodes))
    assert set(drawing.boxes) == {n.name for n in nodes}
    _assert_readable(drawing)


@needs_dot
def test_a_50_task_pipeline_draws_every_task_and_arrow_with_full_names() -> None:
    nodes = fifty_task_dag()
    svg = dag_svg(nodes, "Tasks of nightly", cache_dir=None)
    drawing = read_drawing(svg)
    assert len(drawing.boxes) == 50
    assert sorted((e.tail, e.head) for e in drawing.edges) == sorted((d, n.name) for n in nodes for d in n.needs)
    assert drawing.labels == {n.name: n.name for n in nodes}  # names of this length are never cut
    width, height = _size(svg)  # everything drawn is inside the picture
    for b in drawing.boxes.values():
        assert b.x >= 0 and b.x + b.w <= width and b.y >= 0 and b.y + b.h <= height
    for e in drawing.edges:
        assert all(0 <= x <= width and 0 <= y <= height for x, y in [*e.curve, e.tip])


@needs_dot
def test_a_long_name_is_cut_in_its_box_and_whole_in_its_tooltip() -> None:
    name = "a_very_long_task_name_that_goes_on_and_on_and_on"
    svg = dag_svg([DagNode("start", ()), DagNode(name, ("start",), "failed", "logs/x.html")])
    drawing = read_drawing(svg)
    assert drawing.labels[name].endswith("…") and len(drawing.labels[name]) < len(name)
    assert f"<title>{name}: failed</title>" in svg


@needs_dot
def test_a_30_task_chain_is_drawn_top_to_bottom_and_stays_narrow() -> None:
    nodes = [DagNode(f"t{i}", (f"t{i - 1}",) if i else ()) for i in range(30)]
    svg = dag_svg(nodes)
    width, height = _size(svg)
    assert width < 250 < height
    _assert_readable(read_drawing(svg))


@needs_dot
def test_statuses_are_drawn_with_icons_and_names_escaped() -> None:
    svg = dag_svg(
        [
            DagNode('<b onclick="x">a</b>', (), "success"),
            DagNode("b", ('<b onclick="x">a</b>',), "failed", 'logs/b.html?"x'),
            DagNode("c", ("b",), "upstream_failed"),
        ]
    )
    assert "<b " not in svg and "&lt;b onclick=&#34;x&#34;&gt;a&lt;/b&gt;" in svg
    for icon in ("✓", "✗", "⊘"):
        assert icon in svg
    assert 'class="node s-failed"' in svg and 'href="logs/b.html?&#34;x"' in svg
    drawing = read_drawing(svg)  # still well-formed XML
    assert {(e.tail, e.head) for e in drawing.edges} == {('<b onclick="x">a</b>', "b"), ("b", "c")}


def _path_without_dot(tmp_path: Path) -> str:
    empty = tmp_path / "no-dot-bin"
    empty.mkdir(exist_ok=True)
    return str(empty)


def test_without_dot_the_tasks_are_listed_with_their_needs_and_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _path_without_dot(tmp_path))
    html = dag_svg(
        analyst_dag({"augment": "success", "pca": "failed", "slides": "upstream_failed"}),
        cache_dir=tmp_path / "layouts",
    )
    assert "<svg" not in html
    assert "dot</code> is not installed" in html and "flank doctor" in html
    for name in ["download", "clean", "augment", *NINE, "slides"]:
        assert f'data-task="{name}"' in html
    assert (
        '<a href="logs/pca.html">✗ pca</a> <span class="st">failed</span> <span class="needs">needs augment</span>'
        in html
    )
    assert "needs pca, logreg, tables" in html and "needs nothing" in html
    assert not (tmp_path / "layouts").exists()


def test_without_dot_names_stay_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_without_dot(tmp_path))
    html = dag_svg([DagNode("<script>x</script>", ()), DagNode("b", ("<script>x</script>",))])
    assert "<script>" not in html and "needs &lt;script&gt;x&lt;/script&gt;" in html


def _counting_dot(tmp_path: Path, body: str | None = None) -> tuple[str, Path]:
    """A `dot` first on PATH that counts its calls, then runs the real one (or `body`)."""
    bin_dir = tmp_path / "counting-bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "dot-calls"
    script = bin_dir / "dot"
    script.write_text(f'#!/bin/sh\necho called >> "{calls}"\n' + (body or f'exec "{DOT}" "$@"\n'))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}", calls


def _calls(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


@needs_dot
def test_a_dag_is_laid_out_once_and_then_read_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, calls = _counting_dot(tmp_path)
    monkeypatch.setenv("PATH", path)
    cache = tmp_path / "dag-layouts"
    first = dag_svg(analyst_dag({"pca": "failed"}), cache_dir=cache)
    assert _calls(calls) == 1 and len(list(cache.glob("*.json"))) == 1
    dag_layout.forget()  # a new process: only the disk cache remains
    second = dag_svg(analyst_dag({"pca": "success"}), cache_dir=cache)  # another run of the same DAG
    assert _calls(calls) == 1
    assert read_drawing(second) == read_drawing(first) and 'class="node s-success"' in second
    # a different DAG (a new deploy) is laid out anew
    dag_svg([*analyst_dag(), DagNode("extra", ("slides",))], cache_dir=cache)
    assert _calls(calls) == 2 and len(list(cache.glob("*.json"))) == 2
    # and a cached layout draws even where dot is gone
    dag_layout.forget()
    monkeypatch.setenv("PATH", _path_without_dot(tmp_path))
    assert dag_svg(analyst_dag(), cache_dir=cache).startswith("<svg")


def test_a_dot_that_fails_gives_the_list_and_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, calls = _counting_dot(tmp_path, body='echo "Error: syntax error in line 1" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", path)
    html = dag_svg(analyst_dag(), cache_dir=tmp_path / "layouts")
    assert "<svg" not in html and "could not be drawn" in html
    assert "syntax error in line 1" in capsys.readouterr().err
    assert _calls(calls) == 1 and not list((tmp_path / "layouts").glob("*.json"))
    # the other pages of the same build do not ask dot again, nor repeat the warning
    assert dag_svg(analyst_dag(), cache_dir=tmp_path / "layouts") == html
    assert _calls(calls) == 1 and capsys.readouterr().err == ""


def test_a_dag_too_big_for_dot_is_listed_and_not_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, calls = _counting_dot(tmp_path, body="exec sleep 600\n")  # a dot that never finishes
    monkeypatch.setenv("PATH", path)
    monkeypatch.setattr(dag_layout, "DOT_TIMEOUT_S", 0.5)
    cache = tmp_path / "layouts"
    assert "could not be drawn" in dag_svg(analyst_dag(), cache_dir=cache)
    assert "gave up after 0.5s" in capsys.readouterr().err
    dag_layout.forget()  # the next process
    assert "could not be drawn" in dag_svg(analyst_dag(), cache_dir=cache)
    assert _calls(calls) == 1


@needs_dot
def test_a_damaged_cache_file_is_laid_out_again(tmp_path: Path) -> None:
    cache = tmp_path / "layouts"
    cache.mkdir()
    damaged = cache / f"{dag_layout.layout_key([(n.name, n.needs) for n in analyst_dag()])}.json"
    damaged.write_text('{"version": 1, "bo')
    svg = dag_svg(analyst_dag(), cache_dir=cache)
    assert len(read_drawing(svg).boxes) == 13
    dag_layout.forget()
    assert read_drawing(dag_svg(analyst_dag(), cache_dir=cache)) == read_drawing(svg)  # rewritten, readable


# --- Gantt and trend -------------------------------------------------------------


def test_gantt_draws_finished_running_and_not_run_tasks() -> None:
    bars = [
        GanttBar("extract", "success", T0.isoformat(), (T0 + timedelta(seconds=30)).isoformat()),
        GanttBar("model", "running", (T0 + timedelta(seconds=30)).isoformat(), None),
        GanttBar("report", "pending", None, None),
    ]
    svg = gantt_svg(bars, T0.isoformat(), None, now=T0 + timedelta(seconds=90))
    assert svg.count('class="bar ') == 2
    assert "pending" in svg and "▶ model" in svg


def test_trend_needs_two_runs_and_titles_each_bar() -> None:
    assert trend_svg([TrendPoint(1, "success", 10.0)]) == ""
    svg = trend_svg([TrendPoint(1, "success", 10.0), TrendPoint(2, "failed", 20.0, "2/index.html")])
    assert "#2 failed, 20s" in svg and 'href="2/index.html"' in svg


def test_doctor_says_when_dot_is_missing(tmp_path: Path) -> None:
    from helpers.cli import run_flank

    tools = tmp_path / "tools-without-dot"
    tools.mkdir()
    for tool in ("git", "make"):
        (tools / tool).symlink_to(shutil.which(tool))
    proc = run_flank("doctor", "--no-cron", env={"PATH": str(tools)})
    assert (
        "FAIL  graphviz: dot is not installed: the site lists each pipeline's tasks instead of drawing "
        "the task graph\n      fix: install Graphviz: sudo apt-get install graphviz"
    ) in proc.stdout
    if DOT is not None:
        proc = run_flank("doctor", "--no-cron")
        assert "OK    graphviz: dot - graphviz version" in proc.stdout


def test_gantt_tells_matrix_instances_apart() -> None:
    """Found by the third trial: every `model[region=north,year=…]` row read `model[region=nort…`."""
    cells = [f"model[region={r},year={y}]" for r in ("north", "south") for y in (2024, 2025)]
    end = (T0 + timedelta(seconds=5)).isoformat()
    svg = gantt_svg([GanttBar(c, "success", T0.isoformat(), end) for c in cells], T0.isoformat(), end, now=T0)
    rows = [t for t in ET.fromstring(str(svg)).iter(f"{SVG}text") if t.get("class") == "label"]
    labels = [(t.text or "") + "".join(child.tail or "" for child in t) for t in rows]  # the shown text
    assert labels == ["✓ model[north,2024]", "✓ model[north,2025]", "✓ model[south,2024]", "✓ model[south,2025]"]
    assert "<title>model[region=north,year=2024]</title>" in svg  # the full name, on hover
    long_task = gantt_svg([GanttBar("a_long_task_name[north]", "success", T0.isoformat(), end)], None, end, now=T0)
    assert "✓ a_long_tas…[north]<" in long_task  # the value is what tells rows apart: it is kept


@needs_dot
def test_a_matrix_node_shows_its_whole_name_and_count() -> None:
    nodes = [DagNode("regions", ())] + [DagNode(f"region[{r}]", ("regions",), "success") for r in ("n", "s")]
    names = [t.text for t in ET.fromstring(str(dag_svg(nodes))).iter(f"{SVG}text") if t.get("class") == "name"]
    assert names == ["regions", "region ×2"]
