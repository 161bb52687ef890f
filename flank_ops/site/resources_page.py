"""The Resources page of a project: what its pipelines' recent runs used (cost/resources.py),
against this VM's memory and CPUs; `flank report resources` prints the same."""

from __future__ import annotations

from typing import Any

from flank_ops.paths import ProjectPaths
from flank_ops.site import layout


def resources_view(paths: ProjectPaths) -> dict[str, Any]:
    from flank_ops.cost.resources import far_from_declared, pipeline_use, this_machine
    from flank_ops.site.svg import memory_svg

    machine = this_machine()
    pipelines = []
    for name in paths.pipelines_with_runs():
        use = pipeline_use(paths, name)
        if not use.runs:
            continue
        shown = use.chart_run
        pipelines.append(
            {
                "name": name,
                "use": use,
                "shown": shown,
                "chart": memory_svg(
                    shown.memory_steps,
                    shown.duration_s,
                    shown.peak_kb,
                    machine.memory_kb,
                    f"Memory in use over {name} #{shown.run_id} ({use.chart_basis})",
                )
                if shown is not None
                else "",
                "tasks": [(t, far_from_declared(t)) for t in sorted(use.tasks, key=lambda t: -(t.peak_kb or 0))],
            }
        )
    from flank_ops.cost.setup_disk import WARN_SHARE, setup_disk

    return {"machine": machine, "pipelines": pipelines, "setup_disk": setup_disk(paths), "setup_warn_share": WARN_SHARE}


def write_resources(w: Any, paths: ProjectPaths, tz: str | None = None) -> None:
    from flank_ops.site.pages import render

    url = layout.url_resources(paths.name)
    w.page(
        url,
        render(
            "resources.html",
            url,
            project_name=paths.name,
            **resources_view(paths),
            tz=tz,
            crumbs=[(paths.name, layout.url_project(paths.name)), ("resources", url)],
        ),
    )
