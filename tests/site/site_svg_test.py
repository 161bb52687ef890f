"""flank_ops/site/svg.py: graphics readable at 30 tasks, status by icon as well as colour, escaped names."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from flank_ops.site.svg import DagNode, GanttBar, TrendPoint, dag_svg, gantt_svg, trend_svg

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)


def _size(svg: str) -> tuple[int, int]:
    m = re.search(r'width="(\d+)" height="(\d+)"', svg)
    assert m
    return int(m.group(1)), int(m.group(2))


def test_a_30_task_fan_out_wraps_instead_of_growing_sideways() -> None:
    nodes = [DagNode("extract", ())] + [DagNode(f"model_{i:02d}", ("extract",)) for i in range(28)]
    nodes.append(DagNode("report", tuple(n.name for n in nodes[1:])))
    width, height = _size(dag_svg(nodes))
    assert width <= 760
    assert height < 1000
    assert dag_svg(nodes).count("<rect") == 30


def test_a_30_task_chain_stays_narrow() -> None:
    nodes = [DagNode(f"t{i}", (f"t{i - 1}",) if i else ()) for i in range(30)]
    width, _ = _size(dag_svg(nodes))
    assert width < 200


def test_statuses_are_drawn_with_icons_and_names_escaped() -> None:
    svg = dag_svg([
        DagNode('<b onclick="x">a</b>', (), "success"),
        DagNode("b", ('<b onclick="x">a</b>',), "failed"),
        DagNode("c", ("b",), "upstream_failed"),
    ])
    assert "<b " not in svg and "&lt;b onclick=&#34;x&#34;&gt;a&lt;/b&gt;" in svg
    for icon in ("✓", "✗", "⊘"):
        assert icon in svg
    assert 'class="node s-failed"' in svg


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
