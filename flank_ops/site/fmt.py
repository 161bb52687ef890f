"""How values look on the site: statuses (icon + label, never colour alone), durations, times, sizes."""

from __future__ import annotations

from datetime import datetime, tzinfo

from flank_ops.humanize import LONG, SHORT, clock, duration
from flank_ops.store.model import TaskStatus

fmt_duration = duration  # the templates' and SVGs' name for it

# Every status (a run's is a task's word too) has an icon and a word, so it reads without colour; the colours
# (Okabe-Ito, colour-blind safe) live in style.css under .s-<status>.
STATUS_ICONS: dict[str, str] = {
    TaskStatus.SUCCESS: "✓",
    TaskStatus.FAILED: "✗",
    TaskStatus.RUNNING: "▶",
    TaskStatus.PENDING: "○",
    TaskStatus.QUEUED: "◷",  # issue 14: a remote job waiting for its cluster
    TaskStatus.UPSTREAM_FAILED: "⊘",
    TaskStatus.TIMED_OUT: "⏱",
    TaskStatus.SKIPPED: "–",
    TaskStatus.INTERRUPTED: "!",
    TaskStatus.CANCELLED: "■",
    TaskStatus.UP_TO_DATE: "≡",  # issue 12: not run, nothing it depends on changed
    "unknown": "?",
}

STATUS_LABELS: dict[str, str] = {
    TaskStatus.UPSTREAM_FAILED: "upstream failed",
    TaskStatus.TIMED_OUT: "timed out",
    TaskStatus.UP_TO_DATE: "up to date",
}


def status_key(status: str | None) -> str:
    return status if status in STATUS_ICONS else "unknown"


def status_icon(status: str | None) -> str:
    return STATUS_ICONS[status_key(status)]


def status_label(status: str | None) -> str:
    key = status_key(status)
    return STATUS_LABELS.get(key, key)


def fmt_time(value: str | datetime | None, tz: tzinfo | None = None, *, with_zone: bool = True) -> str:
    """'Tue 24 Nov 2026 02:00 GMT' in `tz` (default: the VM's local zone)."""
    return clock(value, tz, LONG)


def fmt_time_short(value: str | datetime | None, tz: tzinfo | None = None) -> str:
    """'24 Nov 02:00 GMT' in `tz` (default: the VM's local zone)."""
    return clock(value, tz, SHORT)
