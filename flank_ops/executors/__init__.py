"""Remote executors (issue 14): tasks sent to Slurm or AWS Batch while make still drives the DAG.

base.py: the Backend protocol every engine implements; remote.py: the common loop
(`python -m flank_ops.executors SPEC RUN_DIR`); slurm.py, batch.py: the engines.
"""

from __future__ import annotations

from typing import Any

from flank_ops.executors.base import Backend


def backend(kind: str, options: dict[str, Any] | None = None) -> Backend:
    """The backend for an executor name of flank.yml ("slurm", "batch")."""
    if kind == "slurm":
        from flank_ops.executors.slurm import SlurmBackend

        return SlurmBackend(options or {})
    if kind == "batch":
        from flank_ops.executors.batch import BatchBackend  # type: ignore[import-not-found,unused-ignore]

        return BatchBackend(options or {})  # type: ignore[no-any-return,unused-ignore]
    raise ValueError(f"unknown executor {kind!r}")
