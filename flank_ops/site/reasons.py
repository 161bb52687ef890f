"""The run page's "Why" list (issue 12): each task's reason to run or to be skipped, from the record.

Shown only when the pipeline has incremental tasks (some reason other than "no outputs
declared"), so a pipeline without inputs:/outputs: keeps the page it had.
"""

from __future__ import annotations

from flank_ops.incremental.plan import NO_OUTPUTS, UP_TO_DATE
from flank_ops.store.model import RunRecord


def task_reasons(record: RunRecord) -> list[dict[str, str]]:
    rows = [
        {"name": name, "status": str(t.status), "reason": str(t.reason)} for name, t in record.tasks.items() if t.reason
    ]
    if all(r["reason"] == NO_OUTPUTS for r in rows):
        return []
    for row in rows:
        if row["reason"] == UP_TO_DATE:
            row["reason"] = "up to date: nothing it depends on changed since its last success"
        elif row["reason"].startswith("ran: "):
            row["reason"] = row["reason"][len("ran: ") :]
    return rows
