"""flank report resources [PROJECT]: what each pipeline's recent runs really used.

Per pipeline: the peak memory of a run as a whole (the largest sum of the peak RSS of the
tasks running at the same moment, from the records' task intervals), the peak per task,
CPU time against wall time where recorded, durations, a text chart of memory over the
newest run, and this VM's memory and CPUs for comparison.
"""

from __future__ import annotations

import argparse

from flank_ops import jsonout
from flank_ops.cost.resources import collect_needs, far_from_declared, this_machine
from flank_ops.errors import UserError
from flank_ops.humanize import duration, fmt_kb
from flank_ops.jsonout import FLAG_HELP
from flank_ops.paths import Home

SPARK = " ▁▂▃▄▅▆▇█"
CHART_WIDTH = 48


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["resources"], help="resources: memory, CPU and time of recent runs")
    parser.add_argument("project", nargs="?", help="just this project (default: every project)")
    parser.add_argument("--json", action="store_true", help=FLAG_HELP)


def memory_chart(steps: tuple[tuple[float, int], ...], duration_s: float, peak_kb: int) -> str:
    """One line: memory in use across the run, sampled at CHART_WIDTH moments."""
    if not steps or duration_s <= 0 or peak_kb <= 0:
        return ""
    cells = []
    index, in_use = 0, 0
    for col in range(CHART_WIDTH):
        t = duration_s * (col + 0.5) / CHART_WIDTH
        while index < len(steps) and steps[index][0] <= t:
            in_use = steps[index][1]
            index += 1
        cells.append(SPARK[min(len(SPARK) - 1, round(in_use / peak_kb * (len(SPARK) - 1)))])
    return "".join(cells)


def run(args: argparse.Namespace) -> int:
    needs = collect_needs(Home(), args.project)
    machine = this_machine()
    if args.json:
        pipelines = [
            {**jsonout.plain(need.use), "peak_kb": need.use.peak_kb, "typical_s": need.use.typical_s} for need in needs
        ]
        jsonout.emit("report", machine=jsonout.plain(machine), pipelines=pipelines)
        return 0
    print(f"this VM: {fmt_kb(machine.memory_kb)} memory, {machine.cpus} CPUs")
    if not needs:
        raise UserError("no deployed pipelines to report on", "push a project first: git push flank main")
    for need in needs:
        use = need.use
        name = f"{need.project}/{need.pipeline.name}"
        if not use.runs:
            print(f"\n{name}: no finished runs yet")
            continue
        shown = use.chart_run
        share = f" ({100 * use.peak_kb / machine.memory_kb:.0f}% of this VM)" if machine.memory_kb else ""
        if not use.peak_kb:  # every task ran where nothing measured it (a cluster without accounting)
            share = " (no task's memory was measured)"
        print(
            f"\n{name}: {len(use.runs)} recent runs, typical {duration(use.typical_s)} ({use.typical_basis}), "
            f"longest {duration(max(r.duration_s for r in use.runs))}"
        )
        print(
            f"  run peak memory {fmt_kb(use.peak_kb or None, 'unknown')}{share}, up to {use.peak_tasks} tasks at once"
        )
        if shown is not None and shown.peak_kb:
            print(
                f"  memory over #{shown.run_id} ({use.chart_basis}, {duration(shown.duration_s)}, "
                f"peak {fmt_kb(shown.peak_kb)}): |{memory_chart(shown.memory_steps, shown.duration_s, shown.peak_kb)}|"
            )
        width = max(len(t.name) for t in use.tasks) if use.tasks else 4
        print(f"  {'task':<{width}}  {'peak memory':>11}  {'typical':>8}  {'cpu':>8}")
        for task in sorted(use.tasks, key=lambda t: -(t.peak_kb or 0)):
            cpu = duration(task.cpu_s) if task.cpu_s is not None else "–"
            note = far_from_declared(task)
            print(
                f"  {task.name:<{width}}  {fmt_kb(task.peak_kb, 'unknown'):>11}  {duration(task.typical_s):>8}  {cpu:>8}"
                + (f"  ! {note}" if note else "")
            )
    return 0
