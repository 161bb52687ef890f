"""The pipeline settings (notify:, ping_url) a finished run was started with.

A run record names its release; that release's flank.yml is what the run ran
under, even if a newer deploy changed notify: since.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flank_ops.config.model import Pipeline
from flank_ops.errors import UserError


def pipeline_of(record: dict[str, Any]) -> Pipeline | None:
    """The run's Pipeline, or None when its flank.yml is gone or unreadable (callers use defaults)."""
    from flank_ops.config.load import FILENAME, load_config_file

    release = record.get("release")
    if not release:
        return None
    try:
        config = load_config_file(Path(release) / FILENAME)
    except (UserError, OSError, ValueError, KeyError, TypeError):
        return None
    return config.pipelines.get(str(record.get("pipeline")))
