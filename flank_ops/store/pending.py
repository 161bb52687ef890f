"""The list of runs whose S3 upload has not succeeded yet ($FLANK_HOME/NAME/s3-pending.json).

A run is added *before* its upload starts and removed once every file is up, so a
crash or an outage at any instant leaves it listed; the next run or `flank sync`
uploads it. Plain JSON a person (and the site) can read:

    {"runs": [{"pipeline": "nightly", "run_id": 17, "since": "2026-...", "attempts": 2,
               "last_error": "cannot connect to https://s3..."}]}

Callers hold `paths.lock_file("s3")` around read-modify-write.
"""

from __future__ import annotations

import json
from typing import Any

from flank_ops.fileio import atomic_write_json
from flank_ops.paths import ProjectPaths
from flank_ops.store.records import now_iso


def read_pending(paths: ProjectPaths) -> list[dict[str, Any]]:
    """Pending runs, oldest first (an unreadable file counts as empty rather than failing a run)."""
    try:
        with open(paths.s3_pending, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return []
    runs = data.get("runs") if isinstance(data, dict) else None
    return [r for r in runs or [] if isinstance(r, dict) and "pipeline" in r and "run_id" in r]


def _write(paths: ProjectPaths, runs: list[dict[str, Any]]) -> None:
    atomic_write_json(paths.s3_pending, {"runs": runs})


def add_pending(paths: ProjectPaths, pipeline: str, run_id: int) -> None:
    runs = read_pending(paths)
    if not any(r["pipeline"] == pipeline and r["run_id"] == run_id for r in runs):
        runs.append({"pipeline": pipeline, "run_id": run_id, "since": now_iso(), "attempts": 0, "last_error": None})
        _write(paths, runs)


def mark_failed(paths: ProjectPaths, pipeline: str, run_id: int, error: str) -> None:
    runs = read_pending(paths)
    for r in runs:
        if r["pipeline"] == pipeline and r["run_id"] == run_id:
            r["attempts"] = int(r.get("attempts") or 0) + 1
            r["last_error"] = error
            r["last_attempt"] = now_iso()
    _write(paths, runs)


def remove_pending(paths: ProjectPaths, pipeline: str, run_id: int) -> None:
    runs = read_pending(paths)
    kept = [r for r in runs if not (r["pipeline"] == pipeline and r["run_id"] == run_id)]
    if len(kept) != len(runs):
        _write(paths, kept)
