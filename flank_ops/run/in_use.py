"""Which releases live runs are using, so a deploy never prunes the code under a run."""

from __future__ import annotations

import os

from flank_ops.paths import ProjectPaths
from flank_ops.store.records import read_record, read_state, runner_alive


def releases_in_use(paths: ProjectPaths) -> set[str]:
    """Shas of releases a live run is using (run.json status running, runner alive or unknown).

    Only the runs each pipeline's state lists as running are opened (run/state.py): the cost
    does not grow with the number of past runs.
    """
    in_use: set[str] = set()
    for pipeline in paths.pipelines_with_runs():
        for run_id in read_state(paths, pipeline).running:
            run_dir = paths.run_dir(pipeline, run_id)
            try:
                record = read_record(run_dir)
            except (OSError, ValueError):
                continue
            if record.status != "running":
                continue
            if record.runner and not runner_alive(record.runner):
                continue  # its runner died: the run is over, whatever the record says
            if record.release:
                in_use.add(os.path.basename(os.path.normpath(record.release)))
            elif record.commit.get("sha"):
                in_use.add(record.commit["sha"])
    return in_use
