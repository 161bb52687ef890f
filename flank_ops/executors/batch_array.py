"""issue 26 item 1: the instances of a matrix task as one AWS Batch array job.

Each instance is still a make target with its own executor loop (its log, record entry, retries), but
the first of them to submit sends one array job for all the instances this run starts
(`arrayProperties.size`), and the others attach to their child `<array job id>:<index>`. What differs
between cells travels in a per-array S3 object (the cells list, its presigned URL FLANK_CELLS_URL): line
N+1 holds child N's variables as sh assignments (FLANK_TASK, FLANK_MATRIX_<KEY>, its own results URL),
which the entrypoint picks by AWS_BATCH_JOB_ARRAY_INDEX.

An array when:
  * the task has matrix: and no max_parallel: (a bound on instances at once is one job each), and
  * at least two instances start in this run (their spec files are in the run's plan) on the plan's
    word "run", not "check" (an instance that may turn out up to date decides alone at its own start);
a retry, or a spot instance taken back, is a job of its own.

Per run and matrix task, jobs/batch-array-<task>.json says what was sent (ids, members, objects); the
shared objects (cells, inputs list, secrets) are deleted when the last member's child is over.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from flank_ops.config.model import Config, Task, make_target
from flank_ops.executors.base import JobRequest
from flank_ops.fileio import atomic_write_json
from flank_ops.incremental.plan import RUN
from flank_ops.task.task_exec import specs_beside

ENV_CELLS_URL = "FLANK_CELLS_URL"
CELL_VARIABLES = ("FLANK_TASK",)  # besides FLANK_MATRIX_*: what is the cell's own


def array_file(run_dir: str, group: str) -> Path:
    return Path(run_dir) / "jobs" / f"batch-array-{group}.json"


def lock_file(run_dir: str, group: str) -> Path:
    return Path(run_dir) / "jobs" / f".batch-array-{group}.lock"


def members(job: JobRequest, config: Config | None, task: Task) -> list[str]:
    """The instances of `task`'s matrix task that go in one array job, in flank.yml order: those this
    run starts (their spec files are beside the job's own) on the plan's word "run" (a check file in
    mode "check" means the instance decides at its own start); [] when fewer than two."""
    pipeline = job.env.get("FLANK_PIPELINE", "")
    if config is None or not task.group or task.max_parallel or pipeline not in config.pipelines or not job.spec_path:
        return []
    suffix = Path(job.spec_path).name[len(make_target(job.task)) :]
    checks = Path(job.check_path).parent if job.check_path else None
    try:
        beside = specs_beside(job.spec_path)
    except (OSError, ValueError):
        return []
    found = []
    for name in config.pipelines[pipeline].instances_of(task.group):
        if f"{make_target(name)}{suffix}" not in beside:
            continue  # not started in this run (up to date, not selected)
        if checks is not None and _check_mode(checks / f"{name}.json") != RUN:
            continue
        found.append(name)
    return found if len(found) > 1 else []


def _check_mode(path: Path) -> str | None:
    try:
        mode = json.loads(path.read_text()).get("mode")
        return str(mode) if mode else None
    except (OSError, ValueError, AttributeError):
        return None


def is_cell_variable(name: str) -> bool:
    return name in CELL_VARIABLES or name.startswith("FLANK_MATRIX_")


def cells_text(config: Config, pipeline: str, names: list[str], results_urls: list[str]) -> str:
    """Line i: child i's variables as sh assignments (the entrypoint evals its line with set -a)."""
    from flank_ops.executors.batch_staging import ENV_RESULTS_URL

    lines = []
    for i, name in enumerate(names):
        env = {"FLANK_TASK": name}
        env.update((k, v) for k, v in config.pipelines[pipeline].tasks[name].env.items() if is_cell_variable(k))
        if results_urls:
            env[ENV_RESULTS_URL] = results_urls[i]
        lines.append(" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()))
    return "\n".join(lines) + "\n"


def write(run_dir: str, group: str, sent: dict[str, Any]) -> None:
    atomic_write_json(array_file(run_dir, group), sent)


def read(run_dir: str, group: str) -> dict[str, Any] | None:
    try:
        sent: dict[str, Any] = json.loads(array_file(run_dir, group).read_text())
        return sent
    except (OSError, ValueError):
        return None


def child_id(sent: dict[str, Any], task: str) -> str | None:
    """The child job of instance `task` in the array `sent` ("<array id>:<index>"), None if not in it."""
    names = sent.get("members") or []
    return f"{sent['job_id']}:{names.index(task)}" if task in names else None


def mark_done(run_dir: str, group: str, task: str) -> list[str]:
    """Instance `task`'s child is over; the shared objects to delete once all are (else [])."""
    sent = read(run_dir, group)
    if sent is None:
        return []
    done = set(sent.get("done") or []) | {task}
    sent["done"] = sorted(done)
    write(run_dir, group, sent)
    return list(sent.get("shared_keys") or []) if done >= set(sent.get("members") or []) else []
