"""Where each task's box and each arrow of the task graph go, laid out by Graphviz `dot`.

A layered drawing with few crossings is a hard problem that dot solves well (it is
the field's standard, and drew flank's DAGs before). We ask dot for geometry only
(`dot -Tjson0`: box centres and edge splines) and draw the SVG ourselves (svg.py),
so the pages keep flank's markup: status classes, icons, links, escaped names.

The geometry depends only on the DAG (task names and needs), never on a run, so it
is computed once per DAG: kept in this process, and on disk as
`Home.dag_layouts_dir/<hash>.json`, so every run page of a deploy reuses it.
Without dot (or when dot fails), `layout()` returns None and the page lists the
tasks instead; `flank doctor` says that dot is missing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from flank_ops.fileio import atomic_write_text

VERSION = 1  # bump when the geometry below changes: old cache files are then ignored
NODE_H = 32
MIN_W, MAX_W = 96, 200
CHAR_W = 7.0  # a 12px system-ui character, on average (generous: names must fit)
TEXT_PAD = 40  # the status icon on the left, a margin on the right
PAD = 8  # around the drawing
FIT_WIDTH = 1000  # the page's content width: prefer the direction that fits it
DOT_TIMEOUT_S = 120
MEMO_SIZE = 32
KEEP_FILES = 200  # cached layouts kept on disk (the newest); a DAG dropped from it is laid out again

Dag = Sequence[tuple[str, Sequence[str]]]  # (task, needs) in flank.yml's topological order


class Box(NamedTuple):
    name: str
    x: float  # top-left corner, SVG pixels
    y: float
    w: float
    h: float


class Edge(NamedTuple):
    tail: str  # the task that is needed
    head: str  # the task that needs it
    points: tuple[tuple[float, float], ...]  # a cubic Bezier path: start, then (control, control, end)...
    tip: tuple[float, float] | None  # where the arrowhead points (None: dot drew no head)


class Layout(NamedTuple):
    width: float
    height: float
    rankdir: str  # "LR" (layers are columns) or "TB" (layers are rows)
    boxes: dict[str, Box]
    edges: list[Edge]


def box_width(name: str) -> float:
    return float(min(MAX_W, max(MIN_W, round(TEXT_PAD + CHAR_W * len(name)))))


def label_chars(width: float) -> int:
    """How many characters of a name fit in a box this wide (svg.py clips the rest)."""
    return max(4, int((width - TEXT_PAD) / CHAR_W))


def dot_executable() -> str | None:
    return shutil.which("dot")


def _clean(dag: Dag) -> list[tuple[str, tuple[str, ...]]]:
    """Unique names, and only needs that are tasks of this DAG (a record may be odd)."""
    names: dict[str, None] = {}
    for name, _ in dag:
        names.setdefault(str(name), None)
    out: dict[str, tuple[str, ...]] = {}
    for name, needs in dag:
        name = str(name)
        if name not in out:
            out[name] = tuple(dict.fromkeys(str(n) for n in needs if str(n) in names and str(n) != name))
    return list(out.items())


def layout_key(dag: Dag) -> str:
    """The cache key: the DAG as drawn (order included: dot starts from it) and this geometry's version."""
    blob = json.dumps([VERSION, _clean(dag)], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _depths(dag: list[tuple[str, tuple[str, ...]]]) -> dict[str, int]:
    """Longest path from a root, iteratively (chains of thousands of tasks), cycles cut."""
    needs = dict(dag)
    depth: dict[str, int] = {}
    for root in needs:
        if root in depth:
            continue
        stack = [root]
        on_stack = {root}
        while stack:
            name = stack[-1]
            todo = [d for d in needs[name] if d not in depth and d not in on_stack]
            if todo:
                stack.append(todo[0])
                on_stack.add(todo[0])
                continue
            depth[name] = 1 + max((depth[d] for d in needs[name] if d in depth), default=-1)
            stack.pop()
            on_stack.discard(name)
    return depth


def choose_rankdir(dag: list[tuple[str, tuple[str, ...]]]) -> str:
    """Left to right (Airflow's way: wide layers become columns a page scrolls down), unless
    the pipeline is so deep that top to bottom is the narrower drawing."""
    depth = _depths(dag)
    layers = max(depth.values(), default=0) + 1
    widest = max((list(depth.values()).count(d) for d in set(depth.values())), default=1)
    mean_w = sum(box_width(n) for n, _ in dag) / max(1, len(dag))
    lr_width = layers * (mean_w + 44)
    tb_width = widest * (mean_w + 18)
    if lr_width <= FIT_WIDTH or lr_width <= tb_width:
        return "LR"
    return "TB"


def dot_source(dag: Dag, rankdir: str) -> str:
    """The graph for dot: nodes are n0, n1, ... (names never reach dot's syntax), boxes of our size."""
    clean = _clean(dag)
    ids = {name: f"n{i}" for i, (name, _) in enumerate(clean)}
    sep = "nodesep=0.25, ranksep=0.6" if rankdir == "LR" else "nodesep=0.22, ranksep=0.6"
    lines = [
        "digraph flank {",
        f"  graph [rankdir={rankdir}, {sep}, splines=spline, pad=0];",
        '  node [shape=box, fixedsize=true, label="", margin=0];',
        "  edge [arrowsize=0.7];",
    ]
    for name, _ in clean:
        lines.append(f"  {ids[name]} [width={box_width(name) / 72:.4f}, height={NODE_H / 72:.4f}];")
    for name, needs in clean:
        for dep in needs:
            lines.append(f"  {ids[dep]} -> {ids[name]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _points(text: str) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in (p.split(",")[:2] for p in text.split()))


def parse_dot_json(raw: str, dag: Dag, rankdir: str) -> Layout:
    """dot's JSON (points, y up) -> our Layout (pixels, y down, padded)."""
    clean = _clean(dag)
    names = {f"n{i}": name for i, (name, _) in enumerate(clean)}
    data = json.loads(raw)
    _, _, bb_w, bb_h = (float(v) for v in data["bb"].split(","))

    def xy(x: float, y: float) -> tuple[float, float]:
        return round(x + PAD, 1), round(bb_h - y + PAD, 1)

    boxes: dict[str, Box] = {}
    gvid: dict[int, str] = {}
    for obj in data.get("objects", []):
        name = names.get(obj.get("name"))
        if name is None or "pos" not in obj:
            continue
        gvid[obj["_gvid"]] = name
        cx, cy = xy(*_points(obj["pos"])[0])
        w, h = float(obj["width"]) * 72, float(obj["height"]) * 72
        boxes[name] = Box(name, round(cx - w / 2, 1), round(cy - h / 2, 1), round(w, 1), round(h, 1))
    edges: list[Edge] = []
    for e in data.get("edges", []):
        tail, head = gvid.get(e["tail"]), gvid.get(e["head"])
        if tail is None or head is None or "pos" not in e:
            continue
        tip = None
        pts = []
        for part in e["pos"].split():
            if part.startswith("e,"):
                tip = xy(*_points(part[2:])[0])
            elif part.startswith("s,"):
                continue
            else:
                pts.append(xy(*_points(part)[0]))
        edges.append(Edge(tail, head, tuple(pts), tip))
    return Layout(round(bb_w + 2 * PAD, 1), round(bb_h + 2 * PAD, 1), rankdir, boxes, edges)


def run_dot(dag: Dag, dot: str) -> Layout:
    rankdir = choose_rankdir(_clean(dag))
    proc = subprocess.run(
        [dot, "-Tjson0"],
        input=dot_source(dag, rankdir).encode(),
        capture_output=True,
        timeout=DOT_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace").strip() or f"exit code {proc.returncode}")
    return parse_dot_json(proc.stdout.decode(), dag, rankdir)


# --- the cache -----------------------------------------------------------------

_memo: dict[str, Layout | None] = {}  # None: dot failed on this DAG (said once per process)


def _to_json(lay: Layout) -> str:
    return json.dumps(
        {
            "version": VERSION,
            "width": lay.width,
            "height": lay.height,
            "rankdir": lay.rankdir,
            "boxes": [list(b) for b in lay.boxes.values()],
            "edges": [[e.tail, e.head, [list(p) for p in e.points], list(e.tip) if e.tip else None] for e in lay.edges],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _from_json(text: str) -> Layout | None:
    try:
        data = json.loads(text)
        if data.get("version") != VERSION:
            return None
        boxes = {str(b[0]): Box(str(b[0]), *(float(v) for v in b[1:5])) for b in data["boxes"]}
        edges = [
            Edge(
                str(t),
                str(h),
                tuple((float(x), float(y)) for x, y in pts),
                (float(tip[0]), float(tip[1])) if tip else None,
            )
            for t, h, pts, tip in data["edges"]
        ]
        return Layout(float(data["width"]), float(data["height"]), str(data["rankdir"]), boxes, edges)
    except (ValueError, KeyError, TypeError, IndexError):
        return None  # a damaged cache file is laid out again


def _remember(key: str, lay: Layout | None) -> Layout | None:
    if len(_memo) >= MEMO_SIZE:
        _memo.pop(next(iter(_memo)))
    _memo[key] = lay
    return lay


def _store_text(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text, durable=False)
    except OSError:
        pass  # a read-only FLANK_HOME still draws, it just lays out again next time


def _store(cache_dir: Path, key: str, lay: Layout) -> None:
    _store_text(cache_dir / f"{key}.json", _to_json(lay))
    try:
        files = list(cache_dir.glob("*.json"))
        if len(files) > KEEP_FILES:
            files.sort(key=lambda p: p.stat().st_mtime)
            for old in files[: len(files) - KEEP_FILES]:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def layout(dag: Dag, cache_dir: Path | None = None) -> Layout | None:
    """The DAG's layout, from this process, the cache folder or dot; None when dot is missing or fails."""
    if not dag:
        return None
    key = layout_key(dag)
    if key in _memo:
        return _memo[key]
    if cache_dir is not None:
        try:
            cached = _from_json((cache_dir / f"{key}.json").read_text(encoding="utf-8"))
        except OSError:
            cached = None
        if cached is not None:
            return _remember(key, cached)
        if (cache_dir / f"{key}.timeout").exists():
            return _remember(key, None)  # too big for dot once: do not make every page wait for it again
    dot = dot_executable()
    if dot is None:
        return None
    try:
        lay = run_dot(dag, dot)
    except (OSError, RuntimeError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired) as exc:
        if isinstance(exc, subprocess.TimeoutExpired):
            exc = RuntimeError(f"gave up after {DOT_TIMEOUT_S}s")
            if cache_dir is not None:
                _store_text(cache_dir / f"{key}.timeout", f"dot took over {DOT_TIMEOUT_S}s\n")
        print(
            f"flank: warning: Graphviz dot could not lay out the task graph ({exc}); the site lists the tasks instead",
            file=sys.stderr,
        )
        return _remember(key, None)
    if cache_dir is not None:
        _store(cache_dir, key, lay)
    return _remember(key, lay)


def forget() -> None:
    """Empty this process's memory of layouts (tests and the bench measure the disk cache)."""
    _memo.clear()
