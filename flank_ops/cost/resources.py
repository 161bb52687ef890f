"""What a pipeline's runs really used: memory and time, from the run records alone.

The peak memory of a run as a whole is computed from each task's interval
[started_at, ended_at] and its peak RSS: sweeping over the interval ends, the running
sum of the peaks of the tasks whose intervals overlap; its maximum is the run's peak.
That is an upper bound (it assumes each task held its peak for its whole interval,
which is what a machine must be ready for), and it never misses a real peak: two tasks
that ran at the same moment are always summed.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_bytes
from flank_ops.paths import Home, ProjectPaths
from flank_ops.store import records
from flank_ops.store.model import RunRecord, RunStatus, TaskStatus, is_partial, parse_iso

if TYPE_CHECKING:
    from flank_ops.config.model import Pipeline

RECENT_RUNS = 30  # the runs a report looks at, per pipeline


_NOT_RUN = (TaskStatus.SKIPPED, TaskStatus.PENDING, TaskStatus.UPSTREAM_FAILED, TaskStatus.UP_TO_DATE)


class TaskUse(NamedTuple):
    name: str
    peak_kb: int | None  # the largest peak RSS over the runs looked at; None when none was measured
    typical_s: float | None  # median duration
    cpu_s: float | None  # median CPU time (user + system), when the launcher recorded it
    declared_memory_kb: int | None  # flank.yml `memory:`, when declared


class RunUse(NamedTuple):
    run_id: int
    status: str
    started_at: datetime
    duration_s: float
    peak_kb: int  # the largest sum of peaks of tasks running at the same moment
    peak_tasks: int  # the most tasks running at the same moment
    memory_steps: tuple[tuple[float, int], ...]  # (seconds from start, KiB in use) at each change
    full: bool = False  # the whole pipeline, every task ran and succeeded: what a run really takes
    ran: bool = True  # at least one task ran (an all up-to-date run did not)


class PipelineUse(NamedTuple):
    project: str
    pipeline: str
    runs: tuple[RunUse, ...]  # oldest first
    tasks: tuple[TaskUse, ...]

    @property
    def peak_kb(self) -> int:
        return max((r.peak_kb for r in self.runs), default=0)

    @property
    def peak_tasks(self) -> int:
        return max((r.peak_tasks for r in self.runs), default=0)

    @property
    def typical_s(self) -> float | None:
        """What a run takes (issue 19): the median of its full runs; without any, the longest of the
        recent runs that ran something. Up-to-date, skipped and partial runs are never typical."""
        full = [r.duration_s for r in self.runs if r.full]
        if full:
            return statistics.median(full)
        ran = [r.duration_s for r in self.runs if r.ran]
        return max(ran) if ran else None

    @property
    def typical_basis(self) -> str:
        """Which runs typical_s comes from, as the report, the page and the plan say it."""
        full = sum(1 for r in self.runs if r.full)
        if full:
            return f"median of {full} full run{'s' if full != 1 else ''}"
        ran = sum(1 for r in self.runs if r.ran)
        if ran:
            return f"the longest of the last {ran} run{'s' if ran != 1 else ''}: none ran every task"
        return "no run ran a task yet"

    @property
    def chart_run(self) -> RunUse | None:
        """The run the memory chart shows: the newest full run, else the one with the largest peak."""
        full = [r for r in self.runs if r.full]
        if full:
            return full[-1]
        ran = [r for r in self.runs if r.ran]
        return max(ran, key=lambda r: (r.peak_kb, r.run_id)) if ran else None

    @property
    def chart_basis(self) -> str:
        run = self.chart_run
        return "the newest full run" if run is not None and run.full else "the run with the largest peak"


class PipelineNeed(NamedTuple):
    """A deployed pipeline with what its runs use: what the VM sizing (cost/plan.py) plans for."""

    project: str
    pipeline: Pipeline
    use: PipelineUse


def memory_steps(intervals: Iterable[tuple[float, float, int]]) -> tuple[int, tuple[tuple[float, int], ...]]:
    """(peak, steps) of the memory in use, for (start_s, end_s, kb) task intervals.

    At equal times, ends are applied before starts: a task that starts as another ends
    does not count both (make starts it because the other ended).
    """
    events: list[tuple[float, int, int]] = []
    for start, end, kb in intervals:
        if kb <= 0:
            continue
        events.append((start, 1, kb))
        events.append((max(end, start), 0, -kb))
    events.sort()
    in_use = peak = 0
    steps: list[tuple[float, int]] = []
    for t, _, delta in events:
        in_use += delta
        peak = max(peak, in_use)
        if steps and steps[-1][0] == t:
            steps[-1] = (t, in_use)
        else:
            steps.append((t, in_use))
    return peak, tuple(steps)


def run_use(record: RunRecord) -> RunUse | None:
    started = parse_iso(record.started_at)
    ended = parse_iso(record.ended_at)
    if started is None or ended is None or record.status in (RunStatus.RUNNING, RunStatus.SKIPPED):
        return None
    intervals = []
    for task in record.tasks.values():
        t0, t1 = parse_iso(task.started_at), parse_iso(task.ended_at)
        if t0 is None or t1 is None or task.status in _NOT_RUN:
            continue
        intervals.append(((t0 - started).total_seconds(), (t1 - started).total_seconds(), int(task.peak_rss_kb or 0)))
    peak, steps = memory_steps(intervals)
    most, _ = memory_steps((start, end, 1) for start, end, _kb in intervals)
    return RunUse(
        record.run_id,
        str(record.status),
        started,
        float(record.duration_s or (ended - started).total_seconds()),
        peak,
        most,
        steps,
        full=(
            record.status == RunStatus.SUCCESS
            and not is_partial(record)
            and bool(record.tasks)
            and all(t.status == TaskStatus.SUCCESS for t in record.tasks.values())
        ),
        ran=bool(intervals),
    )


class TaskFigures(NamedTuple):
    """What one task that ran (not up to date, not skipped) took in one run."""

    duration_s: float | None
    cpu_s: float | None
    peak_rss_kb: int | None


class RunFigures(NamedTuple):
    """What a finished run used: what pipeline_use needs of its record."""

    use: RunUse | None
    tasks: dict[str, TaskFigures]


def run_figures(record: RunRecord) -> RunFigures:
    tasks = {
        name: TaskFigures(t.duration_s, t.cpu_s, t.peak_rss_kb)
        for name, t in record.tasks.items()
        if t.status not in _NOT_RUN
    }
    return RunFigures(run_use(record), tasks)


def _figures_to_json(key: str, record: RunRecord, figures: RunFigures) -> bytes:
    use = figures.use
    return json.dumps(
        {
            "key": key,
            # started_at as the record has it: read back, it is the same datetime
            "use": None if use is None else [use.run_id, use.status, record.started_at, *use[3:]],
            "tasks": [[name, *t] for name, t in figures.tasks.items()],
        },
        separators=(",", ":"),
    ).encode()


def _figures_from_json(data: dict[str, Any]) -> RunFigures:
    use = data["use"]
    if use is not None:
        run_id, status, started, duration, peak, most, steps, full, ran = use
        use = RunUse(
            int(run_id),
            str(status),
            datetime.fromisoformat(started),
            float(duration),
            int(peak),
            int(most),
            tuple((float(t), int(kb)) for t, kb in steps),
            full=bool(full),
            ran=bool(ran),
        )
    return RunFigures(use, {str(name): TaskFigures(*values) for name, *values in data["tasks"]})


def _kept_figures(paths: ProjectPaths, pipeline: str, run_id: int) -> RunFigures | None:
    """A finished run's figures (None: running, skipped, or no readable record). They never change
    once it is over: kept (paths.Home.run_uses_dir) while its run.json stays the same file, so a
    run's final draw does not read its pipeline's 30 newest records whole (issue 22: 320 ms for
    30 runs of 500 tasks)."""
    run_dir = paths.run_dir(pipeline, run_id)
    kept = paths.home.run_uses_dir / paths.name / pipeline / f"{run_id}.json"
    try:
        st = os.stat(records.record_path(run_dir))
    except OSError:
        return None
    key = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        data = json.loads(kept.read_bytes())
        if data["key"] == key:
            return _figures_from_json(data)
    try:
        record = records.read_record(run_dir)
    except (OSError, ValueError):
        return None
    if record.status in (RunStatus.RUNNING, RunStatus.SKIPPED):
        return None
    figures = run_figures(record)
    with contextlib.suppress(OSError):  # only a shortcut
        atomic_write_bytes(kept, _figures_to_json(key, record, figures), durable=False)
    return figures


def _recent_figures(paths: ProjectPaths, pipeline: str, count: int) -> list[RunFigures]:
    last = records.last_run_id(paths, pipeline) or 0  # the newest ids: no listing of every run folder
    # the figures of the run that has just left the window go, so they do not pile up run after run
    with contextlib.suppress(OSError):
        (paths.home.run_uses_dir / paths.name / pipeline / f"{last - count * 2}.json").unlink()
    out: list[RunFigures] = []
    for run_id in range(last, max(0, last - count * 2), -1):  # skipped runs do not count
        figures = _kept_figures(paths, pipeline, run_id)
        if figures is None:
            continue
        out.append(figures)
        if len(out) == count:
            break
    return list(reversed(out))


def pipeline_use(
    paths: ProjectPaths, pipeline: str, declared: dict[str, int] | None = None, count: int = RECENT_RUNS
) -> PipelineUse:
    recent = _recent_figures(paths, pipeline, count)
    runs = tuple(f.use for f in recent if f.use is not None)
    per_task: dict[str, list[TaskFigures]] = {}
    for figures in recent:
        for name, task in figures.tasks.items():
            per_task.setdefault(name, []).append(task)
    tasks = []
    for name, entries in per_task.items():
        durations = [float(t.duration_s) for t in entries if t.duration_s is not None]
        cpu = [float(t.cpu_s) for t in entries if t.cpu_s is not None]
        measured = [int(t.peak_rss_kb) for t in entries if t.peak_rss_kb is not None]
        tasks.append(
            TaskUse(
                name=name,
                # None: no figure (a remote task whose cluster did not say): "unknown", not 0
                peak_kb=max(measured) if measured else None,
                typical_s=statistics.median(durations) if durations else None,
                cpu_s=statistics.median(cpu) if cpu else None,
                declared_memory_kb=(declared or {}).get(name),
            )
        )
    return PipelineUse(paths.name, pipeline, runs, tuple(tasks))


class Machine(NamedTuple):
    memory_kb: int
    cpus: int


def this_machine() -> Machine:
    """The VM's total memory and CPUs, for comparison with what the pipelines use."""
    memory_kb = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory_kb = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        pass
    return Machine(memory_kb, os.cpu_count() or 1)


def far_from_declared(task: TaskUse, factor: float = 2.0) -> str | None:
    """A note when the declared `memory:` is far from the measured peak (either way)."""
    if not task.declared_memory_kb or not task.peak_kb:
        return None
    ratio = task.declared_memory_kb / task.peak_kb
    if ratio >= factor:
        return f"declares {ratio:.1f}x its measured peak"
    if ratio < 1:  # on a cluster, a task past its request is killed
        return f"measured {1 / ratio:.1f}x what it declares"
    return None


def collect_needs(home: Home, project: str | None = None) -> list[PipelineNeed]:
    """Every deployed pipeline of the VM (or of `project`) with what its recent runs used."""
    from flank_ops.run.runner import resolve_deployed

    names = [project] if project else home.projects()
    out = []
    for name in names:
        try:
            deployed = resolve_deployed(name)
        except UserError:
            if project:
                raise
            continue  # a project that was never deployed has nothing to size
        for pipeline in deployed.config.pipelines.values():
            out.append(PipelineNeed(name, pipeline, pipeline_use(deployed.paths, pipeline.name)))
    return out
