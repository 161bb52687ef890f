"""issue 26 item 1: a matrix task's instances on Slurm as one job array (`sbatch --array=0-K%N`).

Each instance of a matrix task is still a task of its own for make and the record (its launcher, its
log, tasks/<instance>.json, its retries). When every instance this run starts shares its resources
(the same command, directory, memory, CPUs, timeout and sbatch options: they differ only in their
FLANK_MATRIX_* values) and none goes through the incremental check (a task with `outputs:`, whose
launcher may still decide it is up to date), the first instance launcher to come submits them all
at once, under the lock jobs/<task>.array.lock:

    jobs/<task>.array.json        {"job_id": "4711", "cells": [instance names, by array index]}
    jobs/<task>.a<n>.sh           the array's script: reads the environment file of its index
    jobs/<task>.a<n>.<i>.env      instance i's environment and secrets (0600; gone once read)
    jobs/<task>-4711_<i>.out      instance i's stdout+stderr (copied, masked, into its log)
    jobs/<task>-4711_<i>.rc       instance i's exit code (read when Slurm has purged the element)

`max_parallel:` becomes the array's throttle (`%N`). Every instance launcher (the first included)
then waits for its own element `4711_<i>` as for any job: one shared `scontrol show job` for the run
(shared_poll.py), its own log and result. Retries resubmit the instance alone, as a plain job.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from flank_ops.executors.base import BackendError, JobRequest
from flank_ops.task.task_exec import TaskSpec, read_spec_file, specs_beside

if TYPE_CHECKING:
    from flank_ops.executors.slurm import SlurmBackend

Environment = Callable[[TaskSpec], tuple[dict[str, str], dict[str, str]]]

JOBS_DIR = "jobs"


def _shares_resources(a: TaskSpec, b: TaskSpec) -> bool:
    return (a.command, a.cwd, a.executor, a.memory_for_attempt(1), a.cpus, a.timeout_s, a.options) == (
        b.command,
        b.cwd,
        b.executor,
        b.memory_for_attempt(1),
        b.cpus,
        b.timeout_s,
        b.options,
    )


def array_cells(spec: TaskSpec, spec_path: str) -> list[TaskSpec] | None:
    """The instances of `spec`'s matrix task this run starts (specs beside its own, array order), when
    they can go as one array; None when not (one instance, different resources, a checked instance)."""
    if not spec.group or spec.executor != "slurm":
        return None
    checks = Path(spec_path).parent.parent / "checks"
    cells = []
    try:
        beside = specs_beside(spec_path)
    except (OSError, ValueError):
        return None
    for path in beside.values():
        other = spec if path == spec_path else read_spec_file(path)
        if other is None or other.group != spec.group:
            continue
        if not _shares_resources(spec, other) or (checks / f"{other.task}.json").exists():
            return None
        cells.append(other)
    if len(cells) < 2:
        return None
    return sorted(cells, key=lambda s: s.task)


def array_script(folder: Path, stem: str, cwd: str, command: str, group: str) -> str:
    env_file = f'{shlex.quote(str(folder))}/{stem}."$SLURM_ARRAY_TASK_ID".env'
    rc_file = f'{shlex.quote(str(folder))}/{shlex.quote(group)}-"$SLURM_ARRAY_JOB_ID"_"$SLURM_ARRAY_TASK_ID".rc'
    return "\n".join(
        [
            "#!/bin/sh",
            "# written by flank: one instance of a matrix task per array index; its environment comes",
            "# from a file only its user can read, read once",
            f"set -a; . {env_file}; set +a",
            f"rm -f {env_file}",
            f'cd {shlex.quote(cwd)} || {{ echo "flank: cannot enter the task\'s directory {shlex.quote(cwd)}" >&2; exit 1; }}',
            f"/bin/sh -c {shlex.quote(command)}",
            "rc=$?",
            f"echo $rc > {rc_file}",
            "exit $rc",
            "",
        ]
    )


def member_job(
    backend: SlurmBackend,
    job: JobRequest,
    spec: TaskSpec,
    spec_path: str,
    environment: Environment,
) -> str | None:
    """Instance `job.task`'s element of its matrix task's job array (`4711_2`), the array submitted by
    whichever instance launcher comes first; None when the instances do not go as one array (the
    launcher submits a job of its own). `environment(spec)`: an instance's (env, secrets) as its
    launcher gives them (remote.task_environment). Only the first launcher lists the instances; the
    others read jobs/<task>.array.json. An array sbatch refused (or unreachable) is said once: every
    instance then goes as a job of its own, never both."""
    from flank_ops.executors.slurm import _error, _run, env_file_text
    from flank_ops.fileio import atomic_write_text

    group = spec.group
    folder = Path(job.run_dir) / JOBS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    state_file = folder / f"{group}.array.json"
    fd = os.open(folder / f"{group}.array.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = None
        # the array is submitted once a run: a launcher started again for the run (`flank run --resume`)
        # finds its instance's element there, whether it ran, runs or waits
        if state is not None and not state.get("job_id"):
            return None  # decided: no array
        if state is None or job.task not in (state.get("cells") or []):
            cells = array_cells(spec, spec_path)
            if cells is None:
                atomic_write_text(state_file, json.dumps({"job_id": None}) + "\n", mode=0o600, durable=False)
                return None
            names = [c.task for c in cells]
            n = 1
            while (folder / f"{group}.a{n}.sh").exists():
                n += 1
            stem = f"{group}.a{n}"
            env_files = []
            for i, cell in enumerate(cells):
                env, secrets = environment(cell)
                path = folder / f"{stem}.{i}.env"
                efd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                with open(efd, "w", encoding="utf-8") as f:
                    f.write(env_file_text(env, secrets))
                env_files.append(path)
            script = folder / f"{stem}.sh"
            script.write_text(array_script(folder, stem, job.cwd, job.command, group))
            output = str(folder / f"{group}-%A_%a.out")
            argv = backend.sbatch_argv(job._replace(name=job.name.removesuffix(job.task) + group), script, output)
            throttle = f"%{spec.max_parallel}" if spec.max_parallel else ""
            argv.insert(1, f"--array=0-{len(cells) - 1}{throttle}")
            try:
                proc = _run(argv)
                if proc.returncode != 0:
                    raise _error(proc, "sbatch refused the job array")
            except BackendError:
                for path in [*env_files, script]:
                    path.unlink(missing_ok=True)
                atomic_write_text(state_file, json.dumps({"job_id": None}) + "\n", mode=0o600, durable=False)
                raise
            state = {"job_id": proc.stdout.strip().split(";")[0], "cells": names, "stem": stem}
            atomic_write_text(state_file, json.dumps(state) + "\n", mode=0o600, durable=False)
    finally:
        os.close(fd)
    index = state["cells"].index(job.task)
    member = f"{state['job_id']}_{index}"
    env_file = folder / f"{state['stem']}.{index}.env"
    backend._track(folder, member, folder / f"{group}-{member}.out", env_file)
    return member
