"""Generated Makefiles (STUB: the launcher/Makefile work fills this in)."""
from __future__ import annotations

from pathlib import Path

from flank_ops.config.model import Config
from flank_ops.paths import ProjectPaths


def write_pipeline_files(paths: ProjectPaths, config: Config, release_dir: Path) -> None:
    """Write pipelines/<p>.mk (+ task specs) for every pipeline; remove dropped pipelines' files."""
