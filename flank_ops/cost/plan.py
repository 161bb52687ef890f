"""Sizing the VM: what each pipeline window needs, the cheapest type that fits, and what it costs.

A window is the time a scheduled run needs the big machine: from `grow_lead_minutes`
before the scheduled minute to the end of a typical run (PipelineUse.typical_s: the median
duration of its recent full runs, never an up-to-date or partial one) plus the few minutes a resize takes. Windows of all pipelines over
the next four weeks are merged where they overlap; a merged window needs the largest sum
of the peaks of pipelines whose runs overlap in it (resources.memory_steps again). Outside
the windows the VM only needs `idle_memory_gib`. Each need gets `headroom` on top and the
cheapest priced type of the allowed families that holds it.

Monthly figures are the four weeks scaled to an average month (730 hours).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from flank_ops.cost.resources import PipelineNeed, memory_steps
from flank_ops.cost.settings import CostSettings, InstanceType
from flank_ops.errors import UserError

HOURS_PER_MONTH = 730.0
HORIZON = timedelta(days=28)
RESIZE_MINUTES = 10  # stop, change type, start: what AWS-ResizeInstance takes, about
MAX_FIRINGS = 4000  # past this in four weeks a pipeline is "always running"
ALWAYS_ON_SHARE = 0.5  # windows covering more of the time than this: resizing cannot pay


class Window(NamedTuple):
    start: datetime  # aware, UTC
    end: datetime
    pipelines: tuple[str, ...]  # "project/pipeline"
    need_kb: int  # measured, before headroom
    need_cpus: int
    kind: InstanceType

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


class SizePlan(NamedTuple):
    current: InstanceType | None
    idle: InstanceType
    windows: tuple[Window, ...]
    sizes: dict[str, InstanceType]  # "project/pipeline" -> the type its runs get
    monthly_now: float | None  # today's type, 24/7
    monthly_plan: float
    resize: bool  # False: the windows leave too little idle time to be worth resizing
    notes: tuple[str, ...]


def fitting(types: list[InstanceType], need_kb: int, cpus: int, headroom: float, what: str) -> InstanceType:
    """The cheapest type holding `need_kb` plus headroom and `cpus`."""
    want_kb = int(need_kb * (1 + headroom))
    for kind in types:  # cheapest first
        if kind.memory_kb >= want_kb and kind.vcpus >= cpus:
            return kind
    biggest = max(types, key=lambda t: t.memory_gib)
    raise UserError(
        f"no allowed instance type holds {what}: {gib(want_kb)} GiB with headroom "
        f"(the largest allowed is {biggest.name}, {biggest.memory_gib:g} GiB)",
        "allow a bigger family in [cost] families, or lower [cost] headroom",
    )


def gib(kb: float) -> str:
    return f"{kb / (1024 * 1024):.1f}"


def _firings(need: PipelineNeed, start: datetime) -> list[datetime]:
    from flank_ops.schedule.next_runs import schedule_times
    from flank_ops.schedule.zones import pipeline_zone

    zone = pipeline_zone(need.pipeline)
    out: set[datetime] = set()
    for expr in need.pipeline.schedule:
        for t in schedule_times(expr, zone, start, MAX_FIRINGS):
            if t < start + HORIZON:
                out.add(t)
    return sorted(out)


def plan_sizes(
    needs: list[PipelineNeed], types: list[InstanceType], cost: CostSettings, now: datetime | None = None
) -> SizePlan:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    lead = timedelta(minutes=cost.grow_lead_minutes)
    resize = timedelta(minutes=RESIZE_MINUTES)
    notes: list[str] = []
    # (start, end, run_start, run_end, name, kb, cpus) for every firing in the horizon
    spans: list[tuple[datetime, datetime, datetime, datetime, str, int, int]] = []
    for need in needs:
        name = f"{need.project}/{need.pipeline.name}"
        if not need.pipeline.schedule:
            continue
        typical = need.use.typical_s
        if typical is None or not need.use.runs:
            notes.append(f"{name}: no finished runs yet — not in the plan (run it once, then plan again)")
            continue
        run_len = timedelta(seconds=typical)
        for t in _firings(need, now):
            spans.append(
                (t - lead, t + run_len + resize, t, t + run_len, name, need.use.peak_kb, max(1, need.use.peak_tasks))
            )
    spans.sort()
    merged: list[list[tuple[datetime, datetime, datetime, datetime, str, int, int]]] = []
    for span in spans:
        if merged and span[0] <= max(s[1] for s in merged[-1]):
            merged[-1].append(span)
        else:
            merged.append([span])
    idle = fitting(types, int(cost.idle_memory_gib * 1024 * 1024), cost.idle_cpus, 0.0, "the idle VM")
    windows = []
    sizes: dict[str, InstanceType] = {}
    touching: set[tuple[str, ...]] = set()
    for group in merged:
        t0 = min(s[0] for s in group)
        base = t0
        peak_kb, _ = memory_steps(((s[2] - base).total_seconds(), (s[3] - base).total_seconds(), s[5]) for s in group)
        cpus, _ = memory_steps(((s[2] - base).total_seconds(), (s[3] - base).total_seconds(), s[6]) for s in group)
        names = tuple(sorted({s[4] for s in group}))
        kind = fitting(types, peak_kb, max(cpus, cost.idle_cpus), cost.headroom, " and ".join(names))
        if kind.usd_per_hour < idle.usd_per_hour:
            kind = idle
        windows.append(Window(t0, max(s[1] for s in group), names, peak_kb, cpus, kind))
        if len(names) > 1:
            touching.add(names)
        for name in names:
            if name not in sizes or sizes[name].usd_per_hour < kind.usd_per_hour:
                sizes[name] = kind
    for names in sorted(touching):
        notes.append(
            f"the windows of {' and '.join(names)} touch: planned as one window, sized for their runs that overlap"
        )
    busy_h = sum(w.hours for w in windows)
    horizon_h = HORIZON.total_seconds() / 3600
    scale = HOURS_PER_MONTH / horizon_h
    resize_pays = busy_h < ALWAYS_ON_SHARE * horizon_h
    if resize_pays:
        monthly_plan = scale * (
            sum(w.hours * w.kind.usd_per_hour for w in windows) + (horizon_h - busy_h) * idle.usd_per_hour
        )
    else:
        biggest = max((w.kind for w in windows), key=lambda k: k.usd_per_hour, default=idle)
        notes.append(
            f"pipeline windows cover {100 * busy_h / horizon_h:.0f}% of the time: resizing would not "
            f"pay; keep {biggest.name} running"
        )
        idle = biggest
        monthly_plan = HOURS_PER_MONTH * biggest.usd_per_hour
    current = None
    if cost.current_type:
        from flank_ops.cost.settings import find_type

        current = find_type(types, cost.current_type, cost)
    monthly_now = HOURS_PER_MONTH * current.usd_per_hour if current else None
    return SizePlan(current, idle, tuple(windows), sizes, monthly_now, monthly_plan, resize_pays, tuple(notes))
