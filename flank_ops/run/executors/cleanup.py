"""Jobs a dead runner left on a cluster (issue 14): the interrupted-run detection cancels them.

A runner killed with SIGKILL (or a VM that rebooted) cannot scancel its tasks' jobs; the next
`flank status`/`flank run` marks the run interrupted (records.mark_interrupted) and, through
this, cancels every live job named `flank-<project>-<pipeline>-<run>-*` on the executors its
tasks used. Jobs are cancelled, never adopted: the run they belonged to is over.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from flank_ops.run.executors.base import BackendError, job_name_prefix

if TYPE_CHECKING:
    from flank_ops.run.records import RunRecord


def remote_kinds(record: RunRecord) -> set[str]:
    kinds = set()
    for entry in record.tasks.values():
        executor = entry.executor
        if isinstance(executor, dict) and executor.get("kind"):
            kinds.add(str(executor["kind"]))
    return kinds


def cancel_jobs_of_run(run_dir: Path, record: RunRecord, secrets: Mapping[str, str] | None = None) -> list[str]:
    """Cancel the run's live jobs, remove their environment files and mask `secrets` in their raw
    outputs (issue 20 item 2: nothing with a secret outlives its job); returns the jobs' ids.
    Never raises: the run is marked anyway."""
    from flank_ops.run.executors import backend
    from flank_ops.run.executors.slurm import JOBS_DIR, mask_outputs, remove_env_files

    prefix = job_name_prefix(record.project, record.pipeline, str(record.run_id))
    cancelled: list[str] = []
    kinds = remote_kinds(record)
    if (Path(run_dir) / JOBS_DIR).is_dir():
        kinds.add("slurm")  # a launcher killed between sbatch and its first result wrote no executor
    for kind in sorted(kinds):
        try:
            engine = backend(kind, {})
            for job_id in engine.jobs_of_run(prefix):
                engine.cancel(job_id)
                cancelled.append(job_id)
        except (BackendError, ValueError, OSError):
            continue
    # The run is over: no job of it may start now (a job whose scancel failed finds no file and fails).
    remove_env_files(Path(run_dir))
    mask_outputs(Path(run_dir), secrets or {})
    return cancelled
