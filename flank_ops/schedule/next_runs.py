"""Next scheduled run times (STUB: the schedule work fills this in)."""
from __future__ import annotations

from datetime import datetime

from flank_ops.config.model import Pipeline


def next_runs(pipeline: Pipeline, count: int = 1, after: datetime | None = None) -> list[datetime]:
    """The next `count` run times of all the pipeline's schedules merged, aware, in its timezone."""
    return []
