"""Which releases live runs are using, so a deploy never prunes the code under a run."""

from __future__ import annotations

import os

from flank_ops.paths import ProjectPaths
from flank_ops.store.model import RunStatus
from flank_ops.store.records import current, read_state


def releases_in_use(paths: ProjectPaths) -> set[str]:
    """Shas of releases a live run is using (run.json status running, runner alive or unknown).

    Only the runs each pipeline's state lists as running are opened (run/state.py): the cost
    does not grow with the number of past runs.
    """
    in_use: set[str] = set()
    for pipeline in paths.pipelines_with_runs():
        for run_id in read_state(paths, pipeline).running:
            try:  # as it is now: a run whose runner died is over, whatever run.json says
                record = current(paths.run_dir(pipeline, run_id), names=[])
            except (OSError, ValueError):
                continue
            if record.status != RunStatus.RUNNING:
                continue
            if record.release:
                in_use.add(os.path.basename(os.path.normpath(record.release)))
            elif record.commit.sha:
                in_use.add(record.commit.sha)
    return in_use
