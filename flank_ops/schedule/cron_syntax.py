"""Which cron expressions Debian's cron runs the way flank computes them. (stub: schedule helper fills in)"""
from __future__ import annotations


def check_expression(expr: str) -> str | None:
    """None when Debian cron runs `expr` as croniter computes it; else a message saying what is wrong."""
    return None
