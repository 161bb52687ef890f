"""Building the status site (STUB: the site work fills this in)."""
from __future__ import annotations

from flank_ops.paths import Home, ProjectPaths


def after_deploy(home: Home, project: str) -> None:
    """Rebuild the pages a deploy changes (home, project, deploys)."""


def after_run(paths: ProjectPaths, pipeline: str, run_id: int) -> None:
    """Rebuild the pages one run changes (its run + log pages, pipeline page 1, project, home)."""


def rebuild_all(home: Home) -> None:
    """Rebuild the whole site from the records."""
