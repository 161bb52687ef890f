"""Which releases live runs are using, so a deploy never prunes the code under a run."""
from __future__ import annotations

import os

from flank_ops.paths import ProjectPaths
from flank_ops.run.records import read_history, read_record, runner_alive


def releases_in_use(paths: ProjectPaths) -> set[str]:
    """Shas of releases a live run is using (run.json status running, runner alive or unknown).

    Finished runs are in each pipeline's history.jsonl, so only run folders missing
    from it are opened: the cost does not grow with the number of past runs.
    """
    in_use: set[str] = set()
    if not paths.runs_root.is_dir():
        return in_use
    for pipeline_dir in paths.runs_root.iterdir():
        if not pipeline_dir.is_dir():
            continue
        finished = {e["run_id"] for e in read_history(paths, pipeline_dir.name)}
        for run_dir in pipeline_dir.iterdir():
            if not run_dir.name.isdigit() or int(run_dir.name) in finished:
                continue
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
