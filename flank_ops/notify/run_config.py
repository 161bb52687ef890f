"""The pipeline settings (notify:, ping_url) a finished run was started with.

A run record names its commit; the flank.yml validated for that commit's release is what
the run ran under (git/release_config.py), even if a newer deploy changed notify: since.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from flank_ops.config.model import Pipeline
from flank_ops.errors import UserError
from flank_ops.paths import ProjectPaths

if TYPE_CHECKING:
    from flank_ops.run.records import RunRecord


def pipeline_of(paths: ProjectPaths, record: RunRecord) -> Pipeline | None:
    """The run's Pipeline, or None when its flank.yml is gone or unreadable (callers use defaults)."""
    from flank_ops.git.release_config import deployed_config, load_release_config

    sha = record.commit.get("sha")
    try:
        config = load_release_config(paths, sha) if sha and not paths.local else deployed_config(paths)
    except (UserError, OSError, ValueError, KeyError, TypeError):
        return None
    return config.pipelines.get(record.pipeline) if config is not None else None
