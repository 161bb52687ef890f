"""Jobs a dead runner left on a cluster (issues 14, 26).

A runner killed with SIGKILL (or a VM that rebooted) leaves its tasks' jobs on the cluster. The next
`flank status`/`flank run` marks the run interrupted (records.reconcile, handed `dead_run_hook` by
the reader) and, through this, looks for its live jobs (named `flank-<project>-<pipeline>-<run>-*`)
on the executors its tasks used. Live jobs on an engine flank can re-attach to (Slurm, AWS Batch)
are left alone (issue 26 item 6, adopt, don't cancel):
the run's summary says how many and how to go on (`flank run … --resume N` re-attaches to them;
the catch-up at boot does it by itself), `flank cancel … N` cancels them. Their environment files
(Batch: their secrets objects in S3) stay until each job has read its own; when no job of the run is
left, every environment file goes, the secrets in the jobs' raw outputs are masked (issue 20 item 2)
and the Batch jobs' secrets objects are deleted (after a cancel, every object they left).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flank_ops.errors import UserError
from flank_ops.executors.base import BackendError, can_adopt, job_name_prefix
from flank_ops.hints import flank_command
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


def _engines(run_dir: Path, record: RunRecord) -> list[str]:
    kinds = remote_kinds(record)
    from flank_ops.executors.slurm import JOBS_DIR

    if (Path(run_dir) / JOBS_DIR).is_dir():
        kinds.add("slurm")  # a launcher killed between sbatch and its first result wrote no executor
        if (Path(run_dir) / JOBS_DIR / "batch.ids").is_file():
            kinds.add("batch")  # the same between submit_job and its first result (the shared poll's ids)
    return sorted(kinds)


def _queues(record: RunRecord, kind: str) -> list[str]:
    """The queues the run's tasks of executor `kind` ran in (a task's own `batch: {queue}` too)."""
    found = []
    for entry in record.tasks.values():
        executor = entry.executor
        if isinstance(executor, dict) and executor.get("kind") == kind and executor.get("queue"):
            found.append(str(executor["queue"]))
    return list(dict.fromkeys(found))


def live_jobs(run_dir: Path, record: RunRecord, adoptable_only: bool = False) -> dict[str, list[str]]:
    """The run's jobs still queued or running, by executor ({"slurm": [ids]}) (`adoptable_only`: on
    engines a resume re-attaches to); an engine that cannot be asked counts as having none."""
    from flank_ops.executors import backend

    prefix = job_name_prefix(record.project, record.pipeline, str(record.run_id))
    live: dict[str, list[str]] = {}
    for kind in _engines(run_dir, record):
        try:
            engine = backend(kind, {})
            if adoptable_only and not can_adopt(engine):
                continue
            if hasattr(engine, "extra_queues"):  # Batch: the queues of the run's tasks besides the VM's
                engine.extra_queues = _queues(record, kind)
            ids = engine.jobs_of_run(prefix)
        except (BackendError, ValueError, OSError):
            continue
        if ids:
            live[kind] = ids
    return live


def clean_up_after_jobs(run_dir: Path, secrets: Mapping[str, str] | None, final: bool = False) -> None:
    """No job of the run is left: its environment files go, its raw outputs are masked, its Batch jobs'
    secrets objects are deleted (`final`, the run cancelled: every object they left in S3)."""
    from flank_ops.executors.slurm import JOBS_DIR, mask_outputs, remove_env_files

    remove_env_files(Path(run_dir))
    mask_outputs(Path(run_dir), secrets or {})
    folder = Path(run_dir) / JOBS_DIR
    if any(folder.glob("*.batch.json")) or any(folder.glob("batch-array-*.json")):
        from flank_ops.executors.batch import BatchBackend

        try:
            BatchBackend({}).drop_run_objects(Path(run_dir), secrets_only=not final)
        except (BackendError, OSError):
            pass  # the bucket's lifecycle rule on secrets/ and jobs/ cleans up (docs/guides/past-one-vm.md)


def cancel_jobs_of_run(run_dir: Path, record: RunRecord, secrets: Mapping[str, str] | None = None) -> list[str]:
    """Cancel the run's live jobs, remove their environment files and mask `secrets` in their raw
    outputs (issue 20 item 2: nothing with a secret outlives its job); returns the jobs' ids.
    Never raises."""
    from flank_ops.executors import backend

    cancelled: list[str] = []
    for kind, ids in live_jobs(run_dir, record).items():
        try:
            engine = backend(kind, {})
            for job_id in ids:
                engine.cancel(job_id)
                cancelled.append(job_id)
        except (BackendError, ValueError, OSError):
            continue
    # The run is over: no job of it may start now (a job whose scancel failed finds no file and fails).
    clean_up_after_jobs(run_dir, secrets, final=True)
    return cancelled


def left_running_text(paths: ProjectPaths, record: RunRecord, live: Mapping[str, list[str]]) -> str:
    """'2 jobs still running on slurm: flank run demo nightly --resume 7' (what status and the page say)."""
    count = sum(len(ids) for ids in live.values())
    where = " and ".join(sorted(live))
    resume = flank_command("run", None if paths.local else paths.name, record.pipeline, "--resume", str(record.run_id))
    return f"{count} job{'s' if count != 1 else ''} still running on {where}: {resume}"


def _project_secrets(paths: ProjectPaths) -> dict[str, str]:
    try:
        return load_secrets(paths)
    except (UserError, OSError):
        return {}  # an unreadable secrets file: `flank doctor` and the next run say so


def dead_run_hook(paths: ProjectPaths) -> DeadRunHook:
    """What every reader hands to records.reconcile: a dead runner's live jobs are left to run (the
    returned line says so and how to resume); when none is left, what its jobs left is cleaned up
    (the project's secrets read only then)."""

    def on_dead(run_dir: Path, record: RunRecord) -> str | None:
        from flank_ops.executors import backend

        live = live_jobs(run_dir, record)
        for kind in list(live):
            try:
                engine = backend(kind, {})
                if can_adopt(engine):
                    continue
                for job_id in live.pop(kind):  # an engine whose jobs cannot be adopted: cancelled
                    engine.cancel(job_id)
            except (BackendError, ValueError, OSError):
                continue
        if live:
            return left_running_text(paths, record, live)
        clean_up_after_jobs(run_dir, _project_secrets(paths))
        return None

    return on_dead
