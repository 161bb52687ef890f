"""Notifications after a run (STUB: the integrations work fills this in)."""
from __future__ import annotations

from typing import Any

from flank_ops.paths import ProjectPaths


def after_run(paths: ProjectPaths, record: dict[str, Any]) -> str | None:
    """Send the notifications the pipeline's notify: asks for; returns a status line or None if none configured."""
    return None
