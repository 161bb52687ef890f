"""The time written in run records and task results: UTC, milliseconds, ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """Now, as every record and task result writes a time."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")
