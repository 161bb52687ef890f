"""Inline SVG graphics drawn from records: the DAG, the Gantt timeline, the duration trend.

Shapes carry `class="s-<status>"`; the colours come from style.css, and every
status is also written as an icon (fmt.STATUS_ICONS), so nothing relies on colour.
The DAG's geometry comes from Graphviz dot, once per DAG (dag_layout.py).
The SVGs keep their natural size; the page wraps them in a horizontally
scrollable figure so a phone can pan without the page overflowing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from markupsafe import Markup, escape

from flank_ops.config.model import cell_values, instance_parts
from flank_ops.humanize import parse_time
from flank_ops.site import dag_layout
from flank_ops.site.fmt import fmt_duration, status_icon, status_key, status_label
from flank_ops.store.model import TaskStatus


class DagNode(NamedTuple):
    name: str
    needs: tuple[str, ...]
    status: str | None = None  # None: draw neutral (the pipeline page, no run)
    href: str | None = None
    instances: int = 0  # issue 26: a matrix task drawn as one node for its instances (how many)


# issue 26: a matrix task's node shows the status that most needs a look among its instances
GROUP_STATUS_ORDER = (
    TaskStatus.FAILED,
    TaskStatus.TIMED_OUT,
    TaskStatus.CANCELLED,
    TaskStatus.UPSTREAM_FAILED,
    TaskStatus.RUNNING,
    TaskStatus.QUEUED,
    TaskStatus.PENDING,
)


def grouped(nodes: Sequence[DagNode]) -> list[DagNode]:
    """Matrix instances (`model[region=north]`) as one node per task, with their count."""
    if not any(instance_parts(n.name) for n in nodes):
        return list(nodes)
    groups: dict[str, list[DagNode]] = {}
    for n in nodes:
        groups.setdefault((instance_parts(n.name) or (n.name, ""))[0], []).append(n)

    def base(name: str) -> str:
        return (instance_parts(name) or (name, ""))[0]

    out = []
    for name, members in groups.items():
        needs = tuple(dict.fromkeys(base(d) for m in members for d in m.needs))
        if len(members) == 1 and members[0].name == name:
            out.append(members[0]._replace(needs=needs))
            continue
        statuses = [m.status for m in members]
        worst = next((s for s in GROUP_STATUS_ORDER if s in statuses), statuses[0])
        shown = next(m for m in members if m.status == worst)
        out.append(DagNode(name, needs, worst, shown.href, instances=len(members)))
    return out


def _e(text: object) -> str:
    return str(escape(str(text)))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- DAG ---------------------------------------------------------------------
# Where boxes and arrows go comes from Graphviz dot (dag_layout.py, cached per DAG);
# what they look like is drawn here, so a run's statuses only change classes and icons.


def dag_svg(nodes: Sequence[DagNode], title: str = "Task graph", cache_dir: Path | None = None) -> Markup:
    """The task graph, laid out in layers by dot; a plain list of the tasks when dot is missing.

    cache_dir: where layouts are kept between processes (paths.Home.dag_layouts_dir).
    """
    if not nodes:
        return Markup("")
    nodes = grouped(nodes)
    # a matrix task's box is sized for its count too ("region ×4"); names never hold " ×"
    drawn = {n.name: f"{n.name} ×{n.instances}" if n.instances else n.name for n in nodes}
    named = {text: name for name, text in drawn.items()}
    lay = dag_layout.layout([(drawn[n.name], tuple(drawn.get(d, d) for d in n.needs)) for n in nodes], cache_dir)
    if lay is None:
        return dag_list(nodes, title)
    width, height = math.ceil(lay.width), math.ceil(lay.height)
    parts = [
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]
    parts.append(_edges(lay))
    by_name = {n.name: n for n in nodes}
    for text, box in lay.boxes.items():
        parts.append(_node(by_name[named[text]], box))
    parts.append("</svg>")
    return Markup("".join(parts))


# A layout's arrows, drawn once per process (issue 22): they never change with a run's statuses,
# and a run's final draw shows them twice (its page, its pipeline's page). The layout is held
# beside them, so its id is not reused while it is a key here.
_edges_drawn: dict[int, tuple[dag_layout.Layout, str]] = {}


def _edges(lay: dag_layout.Layout) -> str:
    kept = _edges_drawn.get(id(lay))
    if kept is None:
        if len(_edges_drawn) >= dag_layout.MEMO_SIZE:
            _edges_drawn.pop(next(iter(_edges_drawn)))
        # the arrows name tasks (data-from/-to), not their drawn text ("region ×4": names never hold " ×")
        drawn = "".join(
            _edge(edge._replace(tail=edge.tail.split(" ×")[0], head=edge.head.split(" ×")[0])) for edge in lay.edges
        )
        kept = _edges_drawn[id(lay)] = (lay, drawn)
    return kept[1]


def _edge(edge: dag_layout.Edge) -> str:
    pts = edge.points
    if not pts:
        return ""
    d = [f"M{pts[0][0]:g},{pts[0][1]:g}"]
    for i in range(1, len(pts) - 2, 3):
        (ax, ay), (bx, by), (cx, cy) = pts[i : i + 3]
        d.append(f"C{ax:g},{ay:g} {bx:g},{by:g} {cx:g},{cy:g}")
    arrow = ""
    if edge.tip is not None:
        (ex, ey), (tx, ty) = pts[-1], edge.tip
        length = math.hypot(tx - ex, ty - ey) or 1.0
        px, py = -(ty - ey) / length * 3.5, (tx - ex) / length * 3.5
        arrow = f'<path class="arrow" d="M{tx:g},{ty:g} L{ex + px:.1f},{ey + py:.1f} L{ex - px:.1f},{ey - py:.1f} Z"/>'
    return (
        f'<g class="edge" data-from="{_e(edge.tail)}" data-to="{_e(edge.head)}">'
        f'<path class="line" d="{" ".join(d)}"/>{arrow}</g>'
    )


def _node(n: DagNode, box: dag_layout.Box) -> str:
    x, y, w, h = box.x, box.y, box.w, box.h
    cls = f"node s-{status_key(n.status)}" if n.status else "node s-none"
    shown = f"{n.name} ×{n.instances}" if n.instances else n.name
    suffix = f" ×{n.instances}" if n.instances else ""
    label = _clip(n.name, max(4, dag_layout.label_chars(w) - len(suffix))) + suffix
    tip = shown if not n.status else f"{shown}: {status_label(n.status)}"
    base = y + h / 2 + 4.5
    icon = (
        f'<text class="icon" x="{x + 14:g}" y="{base + 0.5:g}">{_e(status_icon(n.status))}</text>' if n.status else ""
    )
    inner = (
        f"<title>{_e(tip)}</title>"
        f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="6"/>'
        f"{icon}"
        f'<text class="name" x="{x + (28 if n.status else 12):g}" y="{base:g}">{_e(label)}</text>'
    )
    if n.href:
        return f'<a class="{cls}" data-task="{_e(n.name)}" href="{_e(n.href)}">{inner}</a>'
    return f'<g class="{cls}" data-task="{_e(n.name)}">{inner}</g>'


def dag_list(nodes: Sequence[DagNode], title: str = "Task graph") -> Markup:
    """The tasks as a list (needs and status in words): what pages show when dot cannot draw."""
    why = (
        "Graphviz <code>dot</code> is not installed on this machine (see <code>flank doctor</code>), "
        "so the tasks are listed instead of drawn."
        if dag_layout.dot_executable() is None
        else "The task graph could not be drawn, so the tasks are listed."
    )
    items = []
    for n in grouped(nodes):
        shown = f"{n.name} ×{n.instances}" if n.instances else n.name
        name = f"{_e(status_icon(n.status))} {_e(shown)}" if n.status else _e(shown)
        name = f'<a href="{_e(n.href)}">{name}</a>' if n.href else f"<span>{name}</span>"
        status = f' <span class="st">{_e(status_label(n.status))}</span>' if n.status else ""
        needs = (
            f' <span class="needs">needs {_e(", ".join(n.needs))}</span>'
            if n.needs
            else ' <span class="needs">needs nothing</span>'
        )
        cls = f"s-{status_key(n.status)}" if n.status else "s-none"
        items.append(f'<li class="{cls}" data-task="{_e(n.name)}">{name}{status}{needs}</li>')
    return Markup(
        f'<div class="dag-list" role="group" aria-label="{_e(title)}"><p class="muted small">{why}</p>'
        f"<ol>{''.join(items)}</ol></div>"
    )


# --- Gantt -------------------------------------------------------------------


class GanttBar(NamedTuple):
    name: str
    status: str
    started_at: str | None
    ended_at: str | None
    href: str | None = None


LABEL_W, CHART_W, ROW_H, AXIS_H = 150, 560, 24, 22
GANTT_LABEL_CHARS = 18  # what LABEL_W holds after the status icon
_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _tick_step(span: float) -> int:
    for step in _TICK_STEPS:
        if span / step <= 6:
            return step
    return _TICK_STEPS[-1]


def _gantt_name(name: str, limit: int) -> str:
    """A row's name in `limit` characters. A matrix instance shows its values as `--task` takes
    them (`model[north,2024]`), and its task's name is what gets cut: the values tell rows apart."""
    parts = instance_parts(name)
    if parts is None:
        return _clip(name, limit)
    task, cell = parts
    values = f"[{cell_values(cell)}]"
    if len(task) + len(values) <= limit:
        return task + values
    return _clip(_clip(task, max(4, limit - len(values))) + values, limit)


def gantt_svg(bars: Sequence[GanttBar], run_start: str | None, run_end: str | None, now: datetime) -> Markup:
    """One row per task: a bar from its start to its end (or to `now` while it runs)."""
    if not bars:
        return Markup("")
    t0 = parse_time(run_start)
    starts = [t for t in (parse_time(b.started_at) for b in bars) if t is not None]
    if t0 is None and starts:
        t0 = min(starts)
    if t0 is None:
        return Markup("")
    t_end = parse_time(run_end) or now
    ends = [t for t in (parse_time(b.ended_at) for b in bars) if t is not None]
    t_end = max([t_end, *ends, *starts])
    span = max((t_end - t0).total_seconds(), 1.0)
    scale = CHART_W / span
    width = LABEL_W + CHART_W + 12
    height = AXIS_H + len(bars) * ROW_H + 6
    parts = [
        f'<svg class="gantt" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Timeline of the tasks">',
        "<title>Timeline of the tasks</title>",
    ]
    step = _tick_step(span)
    tick = 0
    while tick <= span + 1e-9:
        x = LABEL_W + tick * scale
        # the last ticks' labels end at their line, so they stay inside the chart
        anchor = ' text-anchor="end"' if x > LABEL_W + CHART_W * 0.85 else ""
        tx = x - 2 if anchor else x + 2
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{AXIS_H - 4}" x2="{x:.1f}" y2="{height}"/>'
            f'<text class="tick" x="{tx:.1f}" y="{AXIS_H - 8}"{anchor}>{_e(fmt_duration(tick) if tick else "0")}</text>'
        )
        tick += step
    for i, b in enumerate(bars):
        y = AXIS_H + i * ROW_H
        key = status_key(b.status)
        label = f"{status_icon(b.status)} {_gantt_name(b.name, GANTT_LABEL_CHARS)}"
        name = f'<text class="label" x="4" y="{y + 16}"><title>{_e(b.name)}</title>{_e(label)}</text>'
        parts.append(f'<a href="{_e(b.href)}">{name}</a>' if b.href else name)
        s, e = parse_time(b.started_at), parse_time(b.ended_at)
        if s is None:
            parts.append(f'<text class="note" x="{LABEL_W + 4}" y="{y + 16}">{_e(status_label(b.status))}</text>')
            continue
        e = e or now
        x = LABEL_W + (s - t0).total_seconds() * scale
        w = max(2.0, (e - s).total_seconds() * scale)
        tip = f"{b.name}: {status_label(b.status)}, {fmt_duration((e - s).total_seconds())}"
        parts.append(
            f'<g class="bar s-{key}"><title>{_e(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{ROW_H - 8}" rx="3"/></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# --- duration trend ----------------------------------------------------------


class TrendPoint(NamedTuple):
    run_id: int
    status: str
    duration_s: float | None
    href: str | None = None


TREND_W, TREND_H = 600, 120


def trend_svg(points: Sequence[TrendPoint]) -> Markup:
    """Run durations, oldest left; each bar coloured and titled by its status."""
    points = [p for p in points if p.duration_s is not None]
    if len(points) < 2:
        return Markup("")
    top = max(p.duration_s or 0 for p in points) or 1.0
    left, bottom = 52, 18
    slot = (TREND_W - left) / len(points)
    bar_w = max(1.0, min(16.0, slot * 0.7))
    parts = [
        f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" width="{TREND_W}" height="{TREND_H}" '
        f'viewBox="0 0 {TREND_W} {TREND_H}" role="img" aria-label="Duration of recent runs">',
        "<title>Duration of recent runs</title>",
        f'<line class="grid" x1="{left}" y1="6" x2="{TREND_W}" y2="6"/>',
        f'<text class="tick" x="0" y="14">{_e(fmt_duration(top))}</text>',
        f'<line class="axis" x1="{left}" y1="{TREND_H - bottom}" x2="{TREND_W}" y2="{TREND_H - bottom}"/>',
        f'<text class="tick" x="0" y="{TREND_H - bottom}">0</text>',
        f'<text class="tick" x="{left}" y="{TREND_H - 4}">#{points[0].run_id}</text>',
        f'<text class="tick" x="{TREND_W}" y="{TREND_H - 4}" text-anchor="end">#{points[-1].run_id}</text>',
    ]
    usable = TREND_H - bottom - 6
    for i, p in enumerate(points):
        h = max(1.0, (p.duration_s or 0) / top * usable)
        x = left + i * slot + (slot - bar_w) / 2
        y = TREND_H - bottom - h
        tip = f"#{p.run_id} {status_label(p.status)}, {fmt_duration(p.duration_s)}"
        rect = (
            f'<g class="bar s-{status_key(p.status)}"><title>{_e(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}"/></g>'
        )
        parts.append(f'<a href="{_e(p.href)}">{rect}</a>' if p.href else rect)
    parts.append("</svg>")
    return Markup("".join(parts))


# --- memory over a run (the Resources page) -----------------------------------

MEM_W, MEM_H = 600, 140


def memory_svg(
    steps: Sequence[tuple[float, int]], duration_s: float, peak_kb: int, vm_kb: int | None, label: str
) -> Markup:
    """Memory in use over the run (a step line) on the scale of the VM's memory (a dashed line at the
    top; a peak above it goes higher), so the chart says at a glance how much of the VM a run needs."""
    from flank_ops.humanize import fmt_kb

    if not steps or duration_s <= 0 or peak_kb <= 0:
        return Markup("")
    top = max(peak_kb, vm_kb or 0)
    left, bottom, right = 64, 18, 8
    width, height = MEM_W - left - right, MEM_H - bottom - 8

    def x(t: float) -> float:
        return left + min(max(t / duration_s, 0.0), 1.0) * width

    def y(kb: float) -> float:
        return 8 + height - kb / top * height

    points = [f"{x(0):.1f},{y(0):.1f}"]
    level = 0
    for t, kb in steps:
        points.append(f"{x(t):.1f},{y(level):.1f}")
        points.append(f"{x(t):.1f},{y(kb):.1f}")
        level = kb
    points.append(f"{x(duration_s):.1f},{y(level):.1f}")
    parts = [
        f'<svg class="memory" xmlns="http://www.w3.org/2000/svg" width="{MEM_W}" height="{MEM_H}" '
        f'viewBox="0 0 {MEM_W} {MEM_H}" role="img" aria-label="{_e(label)}">',
        f"<title>{_e(label)}</title>",
        f'<line class="axis" x1="{left}" y1="{y(0):.1f}" x2="{MEM_W - right}" y2="{y(0):.1f}"/>',
        f'<text class="tick" x="0" y="{y(peak_kb) + 4:.1f}">{_e(fmt_kb(peak_kb))}</text>',
        f'<line class="grid" x1="{left}" y1="{y(peak_kb):.1f}" x2="{MEM_W - right}" y2="{y(peak_kb):.1f}"/>',
        f'<text class="tick" x="{left}" y="{MEM_H - 4}">0</text>',
        f'<text class="tick" x="{MEM_W - right}" y="{MEM_H - 4}" text-anchor="end">{_e(fmt_duration(duration_s))}</text>',
        f'<polyline class="use" points="{" ".join(points)}"/>',
    ]
    if vm_kb and top >= vm_kb:
        parts.append(
            f'<line class="limit" x1="{left}" y1="{y(vm_kb):.1f}" x2="{MEM_W - right}" y2="{y(vm_kb):.1f}"/>'
            f'<text class="tick" x="0" y="{y(vm_kb) + 4:.1f}">this VM</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
