"""S3 uploads (STUB: the integrations work fills this in)."""
from __future__ import annotations

from typing import Any

from flank_ops.paths import ProjectPaths


def after_run(paths: ProjectPaths, record: dict[str, Any]) -> str | None:
    """Upload the run's record and logs (and publish the site); returns a status line or None if S3 is not configured."""
    return None
