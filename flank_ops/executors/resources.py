"""Declared memory: and cpus: of a task on the VM itself (issue 14, the local executor).

Before the launcher starts such a task: a task needing more than the VM has fails at once
("model needs 400G, this VM has 64G — use executor: slurm/batch or a bigger VM"); otherwise it
waits (queued) until the declared memory of the tasks running on the VM, all runs together,
leaves room for it. Each started task holds a reservation file named by its pid in
Home.memory_reservations_dir; the launcher is exec'd under that same pid, so a reservation
ends with its task, whatever way it ends (no clean-up to forget).
"""

from __future__ import annotations

import os
import select
import signal
from pathlib import Path

from flank_ops.clock import now_iso
from flank_ops.executors.remote import fail_at_once
from flank_ops.paths import Home
from flank_ops.task.memory_hold import RESERVATIONS_ENV, VM_MB_ENV, size_text, try_reserve, waiting_text
from flank_ops.task.task_exec import TaskLog, TaskSpec, _write_result

__all__ = ["run_local", "size_text", "too_big", "vm_cpus", "vm_memory_mb"]

WAIT_POLL_S = 0.5
ADVICE = "use executor: slurm/batch or a bigger VM"


def vm_memory_mb() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise OSError("no MemTotal in /proc/meminfo")


def vm_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def too_big(task: str, memory_mb: int | None, cpus: int | None, vm_mb: int, vm_cpu: int) -> str | None:
    """Why the VM can never run the task, or None."""
    if memory_mb and memory_mb > vm_mb:
        return f"{task} needs {size_text(memory_mb)}, this VM has {size_text(vm_mb)} — {ADVICE}"
    if cpus and cpus > vm_cpu:
        return f"{task} needs {cpus} CPUs, this VM has {vm_cpu} — {ADVICE}"
    return None


_stopped = 0


def _on_stop(signum: int, frame: object) -> None:
    global _stopped
    _stopped = signum


def run_local(spec: TaskSpec, spec_path: str, run_dir: str, launcher: list[str]) -> int:
    """Check the VM, wait for memory, then exec the launcher on the same spec (same pid).

    issue 26 `memory: [4G, 8G]`: the first attempt's memory is held here; the launcher, which retries
    in place, holds each next attempt's (task/memory_hold.py), so the VM holds what the running
    attempt asked for. A task whose largest attempt can never fit fails at once, before its first."""
    largest = max(spec.memory_per_attempt_mb, default=spec.memory_mb)
    vm_mb, vm_cpu = vm_memory_mb(), vm_cpus()
    problem = too_big(spec.task, largest, spec.cpus, vm_mb, vm_cpu)
    if problem is not None:
        return fail_at_once(spec._replace(memory_mb=largest), run_dir, problem)
    spec = spec._replace(memory_mb=spec.memory_for_attempt(1))
    if spec.memory_mb:
        env = dict(spec.env)
        home = Home(Path(env["FLANK_HOME"])) if env.get("FLANK_HOME") else Home()
        folder = home.memory_reservations_dir
        for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(stop, _on_stop)
        said = False
        while (held := try_reserve(folder, spec.memory_mb, vm_mb)) is not None:
            if _stopped:
                return 128 + _stopped  # never started: the runner marks it cancelled or interrupted
            if not said:
                said = True
                reason = waiting_text(spec.memory_mb, held, vm_mb)
                _write_result(
                    run_dir,
                    spec.task,
                    {
                        "task": spec.task,
                        "status": "queued",
                        "attempt": 1,
                        "started_at": now_iso(),
                        "pid": os.getpid(),
                        "queued_reason": reason,
                        "memory_mb": spec.memory_mb,
                        "cpus": spec.cpus or None,
                    },
                )
                log = TaskLog(os.path.join(run_dir, "logs", f"{spec.task}.log"))
                log.write(f"flank: {reason}\n".encode())
                log.close()
            select.select([], [], [], WAIT_POLL_S)
        for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(stop, signal.SIG_DFL)
        if _stopped:
            return 128 + _stopped
        if len(spec.memory_per_attempt_mb) > 1:  # the launcher holds each next attempt's memory
            os.environ[RESERVATIONS_ENV], os.environ[VM_MB_ENV] = str(folder), str(vm_mb)
    if not launcher:
        from flank_ops.task.task_exec import launch

        return launch(spec, run_dir)
    os.execv(launcher[0], [*launcher, spec_path, run_dir])
    return 127  # not reached
