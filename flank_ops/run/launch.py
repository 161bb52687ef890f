"""Starting runs from other processes (STUB: the runner work fills this in)."""
from __future__ import annotations

from flank_ops.paths import ProjectPaths


def start_detached(paths: ProjectPaths, pipeline: str, trigger: str) -> None:
    """Start `flank run PROJECT PIPELINE --trigger TRIGGER` fully detached (new session, stdio to /dev/null)."""
