"""The run page's "Where tasks ran" table (issue 14): each task sent to Slurm or AWS Batch,
with its job id, queue, host and the engine's final state, and what it declared."""

from __future__ import annotations

from typing import Any

from flank_ops.store.model import RunRecord, TaskStatus


def remote_rows(record: RunRecord) -> list[dict[str, Any]]:
    """One row per task that ran on a remote executor or declared memory/cpus (empty: no table)."""
    rows = []
    for name, entry in record.tasks.items():
        executor = entry.executor if isinstance(entry.executor, dict) else None
        if executor is None and not entry.memory_mb and not entry.cpus:
            continue
        executor = executor or {}
        rows.append(
            {
                "name": name,
                "kind": str(executor.get("kind") or "local"),
                "job_id": executor.get("job_id"),
                "queue": executor.get("queue"),
                "host": executor.get("host"),
                "state": executor.get("state"),
                "max_rss_kb": executor.get("max_rss_kb"),
                "memory_mb": entry.memory_mb,
                "cpus": entry.cpus,
                "queued_reason": entry.queued_reason if entry.status == TaskStatus.QUEUED else None,
            }
        )
    return rows
