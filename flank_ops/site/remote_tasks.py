"""The run page's "Where tasks ran" table (issue 14): each task sent to Slurm or AWS Batch,
with its job id, queue, host and the engine's final state, and what it declared."""

from __future__ import annotations

from typing import Any

from flank_ops.store.model import FINAL_TASK_STATUSES, RunRecord, TaskStatus

NOT_STARTED = "not started"
DID_NOT_HAVE_TO_RUN = (TaskStatus.SKIPPED, TaskStatus.UP_TO_DATE)


def remote_rows(record: RunRecord) -> list[dict[str, Any]]:
    """One row per task that ran on a remote executor or declared memory/cpus (empty: no table)."""
    rows = []
    for name, entry in record.tasks.items():
        executor = entry.executor if isinstance(entry.executor, dict) else None
        # a remote task that was to run but never started (upstream failed, cancelled while waiting) has no job
        not_sent = executor is None and entry.runs_on is not None and entry.status not in DID_NOT_HAVE_TO_RUN
        if executor is None and not entry.memory_mb and not entry.cpus and not not_sent:
            continue
        executor = executor or {}
        rows.append(
            {
                "name": name,
                "kind": str(executor.get("kind") or entry.runs_on or "local"),
                "job_id": executor.get("job_id"),
                "queue": executor.get("queue"),
                "host": executor.get("host"),
                "state": executor.get("state")
                or (NOT_STARTED if not_sent and entry.status in FINAL_TASK_STATUSES else None),
                "max_rss_kb": executor.get("max_rss_kb"),
                "memory_mb": entry.memory_mb,
                "cpus": entry.cpus,
                "queued_reason": entry.queued_reason if entry.status == TaskStatus.QUEUED else None,
            }
        )
    return rows
