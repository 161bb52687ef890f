"""The run page's "Where tasks ran" table (issue 14): each task sent to Slurm or AWS Batch,
with its job id, queue, host and the engine's final state, and what it declared."""

from __future__ import annotations

from typing import Any


def remote_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per task that ran on a remote executor or declared memory/cpus (empty: no table)."""
    rows = []
    for name, entry in (record.get("tasks") or {}).items():
        if not isinstance(entry, dict):
            continue
        executor = entry.get("executor") if isinstance(entry.get("executor"), dict) else None
        if executor is None and not entry.get("memory_mb") and not entry.get("cpus"):
            continue
        executor = executor or {}
        rows.append(
            {
                "name": str(name),
                "kind": str(executor.get("kind") or "local"),
                "job_id": executor.get("job_id"),
                "queue": executor.get("queue"),
                "host": executor.get("host"),
                "state": executor.get("state"),
                "max_rss_kb": executor.get("max_rss_kb"),
                "memory_mb": entry.get("memory_mb"),
                "cpus": entry.get("cpus"),
                "queued_reason": entry.get("queued_reason") if entry.get("status") == "queued" else None,
            }
        )
    return rows
