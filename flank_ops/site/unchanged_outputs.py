"""Which of a task's kept files its run did not write (issue 19): a failed task's Outputs must not show
an old plot as if this run made it.

run/artifacts.py keeps, per run, each kept file's source signature (device, inode, size, mtime_ns,
ctime_ns) in artifacts.sources.json. A file whose mtime and ctime are before the task started was not
rewritten by this run; the earliest of the preceding runs with the very same signature (looked back as far as
run/artifacts.py lends unchanged files) is the run it is unchanged since.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flank_ops.paths import ProjectPaths
from flank_ops.store import records
from flank_ops.store.artifacts import LOOK_BACK_RUNS
from flank_ops.store.model import parse_iso


def _sources(run_dir: Path) -> dict[str, Any]:
    try:
        index = json.loads(records.artifact_sources_path(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


FILE_CLOCK_SLACK_NS = 20_000_000


def unchanged_since(
    paths: ProjectPaths, pipeline: str, run_id: int, task: str, started_at: str | None
) -> dict[str, int | None]:
    """name -> the run it is unchanged since (None: older than the runs looked at), for the task's kept
    files that this run did not write; files it wrote are absent."""
    started = parse_iso(started_at)
    if started is None:
        return {}
    # A file's times come from the kernel's coarse clock, up to a tick (1-10 ms) behind the clock the
    # launcher read the start from: a file a fast task wrote in its first tick looks older than the
    # task. Older than the start by more than that margin, then: an earlier run's file
    started_ns = int(started.timestamp() * 1_000_000_000) - FILE_CLOCK_SLACK_NS
    mine = _sources(paths.run_dir(pipeline, run_id)).get(task)
    if not isinstance(mine, dict):
        return {}
    # Both the mtime and the ctime before the start: a tool that keeps mtimes (cp -p, unzip) still
    # sets the ctime of what it writes, so a file the task did write is never called old.
    old = {
        name: sig
        for name, sig in mine.items()
        if isinstance(sig, list)
        and len(sig) >= 5
        and all(isinstance(v, int) for v in sig[3:5])
        and max(sig[3], sig[4]) < started_ns
    }
    since: dict[str, int | None] = {name: None for name in old}
    looking = set(old)
    for earlier_id in range(run_id - 1, max(0, run_id - 1 - LOOK_BACK_RUNS), -1):
        if not looking:
            break
        theirs = _sources(paths.run_dir(pipeline, earlier_id)).get(task)
        theirs = theirs if isinstance(theirs, dict) else {}
        for name in list(looking):
            if theirs.get(name) == old[name]:
                since[name] = earlier_id
            else:
                looking.discard(name)  # the chain of identical copies ends here
    return since
