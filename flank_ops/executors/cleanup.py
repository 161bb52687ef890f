"""Jobs a dead runner left on a cluster (issue 14): the interrupted-run detection cancels them.

A runner killed with SIGKILL (or a VM that rebooted) cannot scancel its tasks' jobs; the next
`flank status`/`flank run` marks the run interrupted (records.reconcile, handed `dead_run_hook`
by the reader) and, through this, cancels every live job named `flank-<project>-<pipeline>-<run>-*` on the executors its
tasks used. Jobs are cancelled, never adopted: the run they belonged to is over.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flank_ops.errors import UserError
from flank_ops.executors.base import BackendError, job_name_prefix
from flank_ops.paths import ProjectPaths
from flank_ops.store.model import RunRecord
from flank_ops.store.records import DeadRunHook
from flank_ops.task.secrets import load_secrets


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
    from flank_ops.executors import backend
    from flank_ops.executors.slurm import JOBS_DIR, mask_outputs, remove_env_files

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


def dead_run_hook(paths: ProjectPaths) -> DeadRunHook:
    """What every reader hands to records.reconcile: cancel a dead runner's jobs, masking the
    project's secrets in what they left (secrets read once, and only when a run died)."""

    def cancel(run_dir: Path, record: RunRecord) -> None:
        try:
            secrets = load_secrets(paths)
        except (UserError, OSError):
            secrets = {}  # an unreadable secrets file: `flank doctor` and the next run say so
        cancel_jobs_of_run(run_dir, record, secrets)

    return cancel
