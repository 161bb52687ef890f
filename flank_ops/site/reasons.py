"""The run page's "Why" list (issue 12): each task's reason to run or to be skipped, from the record.

Shown only when the pipeline has incremental tasks (some reason other than "no outputs
declared"), so a pipeline without inputs:/outputs: keeps the page it had.
"""

from __future__ import annotations

from typing import Any

from flank_ops.incremental.plan import NO_OUTPUTS


def task_reasons(record: dict[str, Any]) -> list[dict[str, str]]:
    tasks = record.get("tasks")
    tasks = tasks if isinstance(tasks, dict) else {}
    rows = [
        {"name": str(name), "status": str(t.get("status") or "pending"), "reason": str(t["reason"])}
        for name, t in tasks.items()
        if isinstance(t, dict) and t.get("reason")
    ]
    if all(r["reason"] == NO_OUTPUTS for r in rows):
        return []
    for row in rows:
        if row["reason"] == "up_to_date":
            row["reason"] = "up to date: nothing it depends on changed since its last success"
        elif row["reason"].startswith("ran: "):
            row["reason"] = row["reason"][len("ran: ") :]
    return rows
