"""The crontab block (STUB: the schedule work fills this in)."""
from __future__ import annotations

from flank_ops.config.model import Config
from flank_ops.paths import ProjectPaths


def install_schedule(paths: ProjectPaths, config: Config) -> list[str]:
    """Write paths.crontab_file and install the project's block; returns warnings for the user."""
    return []
