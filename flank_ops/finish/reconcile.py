"""Marking dead runs, for the readers (`flank status`, `flank logs`, `flank prune`).

Apart from run_steps.py so that a reader loads the record store and the site only, not the
notifications' HTTP and mail clients (python -X importtime: about 35 ms of `flank status`).
"""

from __future__ import annotations

from flank_ops.executors.cleanup import dead_run_hook
from flank_ops.paths import ProjectPaths
from flank_ops.site import build
from flank_ops.store import records


def reconcile(paths: ProjectPaths, pipeline: str) -> list[int]:
    """The one way a reader marks dead runs: records.reconcile marks runs whose runner died
    interrupted, then their pages are redrawn so none keeps saying "running"."""
    marked = records.reconcile(paths, pipeline, on_interrupted=dead_run_hook(paths))
    if marked:
        build.redraw_runs(paths, pipeline, marked)
    return marked
