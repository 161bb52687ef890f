"""The checked launcher: runs a task that declares `outputs:` (issue 12).

    python -m flank_ops _task_checked CHECK_FILE SPEC_FILE RUN_DIR

CHECK_FILE (plan.write_checks) says the mode the runner decided: `check` (a task it needs ran
in this run: fingerprint now, skip when nothing changed — early cut-off) or `run` (it must run,
for the reason given). Either way the fingerprint is taken just before the task starts, the
task runs through task_exec.launch, and after a success every declared output must exist: a
missing one fails the task, naming the file (a silent success would poison every later skip).
Only then is the fingerprint written. A task skipped here leaves tasks/<task>.json with status
"up_to_date" and exits 0, so make starts its dependents.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flank_ops.clock import now_iso
from flank_ops.incremental import fingerprints as fpr
from flank_ops.task import task_exec


def _log_line(run_dir: str, task: str, text: str) -> None:
    log = task_exec.TaskLog(os.path.join(run_dir, "logs", f"{task}.log"))
    try:
        log.write(f"flank: {text}\n".encode())
    finally:
        log.close()


def _result(task: str, status: str, started: str, t0: float, **more: Any) -> dict[str, Any]:
    return {
        "task": task,
        "status": status,
        "attempts": 0,
        "exit_code": None,
        "started_at": started,
        "ended_at": now_iso(),
        "duration_s": round(time.monotonic() - t0, 3),
        "log": f"logs/{task}.log",
        **more,
    }


Launch = Callable[..., int]  # task_exec.launch(spec, run_dir, extra=..., finish=...), or a remote executor's


def run_checked(
    check: dict[str, Any], spec: task_exec.TaskSpec, run_dir: str, launch: Launch = task_exec.launch
) -> int:
    """`launch` starts the task: the VM's launcher, or (executors/__main__.py) a Slurm job, whose
    outputs are on the file system the nodes share, so they are checked here the same way."""
    t0 = time.monotonic()
    started = now_iso()
    os.makedirs(os.path.join(run_dir, "tasks"), exist_ok=True)
    os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
    files = fpr.TaskFiles.from_json(check["files"])
    state_file = Path(check["state_file"])
    cache = fpr.HashCache(Path(check["hash_cache"]))
    try:
        fp = fpr.fingerprint(files, cache)
        reason = check["reason"]
        if check["mode"] == "check":
            reason = fpr.why_run(fpr.read_state(state_file), fp, fpr.hash_outputs(files, cache))
    except fpr.FingerprintError as exc:
        cache.save()
        _log_line(run_dir, spec.task, f"{exc}; the task did not run")
        task_exec._write_result(
            run_dir, spec.task, _result(spec.task, "failed", started, t0, error=str(exc), reason=f"ran: {exc}")
        )
        return 1
    cache.save()
    if reason is None:
        _log_line(run_dir, spec.task, "up to date: nothing it depends on changed since its last success")
        task_exec._write_result(run_dir, spec.task, _result(spec.task, "up_to_date", started, t0, reason="up_to_date"))
        return 0
    _log_line(run_dir, spec.task, reason)

    def finish(result: dict[str, Any], log: task_exec.TaskLog) -> dict[str, Any]:
        if result["status"] != "success":
            return result
        try:
            outputs = fpr.hash_outputs(files, cache)
            missing = [p for p, d in outputs.items() if d == fpr.MISSING]
            if missing:
                raise fpr.FingerprintError(
                    f"the task succeeded but did not write its declared output{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} (fix the command or its outputs: in flank.yml)"
                )
            fpr.write_state(state_file, spec.task, fp, outputs, check.get("run_id"), check.get("commit"))
        except fpr.FingerprintError as exc:
            log.write(f"flank: {exc}\n".encode())
            return {**result, "status": "failed", "error": str(exc)}
        except OSError as exc:
            log.write(f"flank: could not record the task's fingerprint: {exc}\n".encode())
            return {**result, "status": "failed", "error": f"could not record the fingerprint: {exc}"}
        finally:
            cache.save()
        return result

    return launch(spec, run_dir, extra={"reason": reason}, finish=finish)


def read_check(check_path: str) -> dict[str, Any] | None:
    """The check file plan.write_checks wrote; None (said on stderr) when it cannot be read."""
    try:
        with open(check_path, encoding="utf-8") as f:
            check: dict[str, Any] = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"flank-task: cannot read the task's check {check_path}: {exc}", file=sys.stderr)
        return None
    return check


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: flank _task_checked CHECK_FILE SPEC_FILE RUN_DIR", file=sys.stderr)
        return 2
    check_path, spec_path, run_dir = argv
    check = read_check(check_path)
    if check is None:
        return 2
    spec = task_exec.read_spec_file(spec_path)
    if spec is None:
        return 2
    return run_checked(check, spec, run_dir)
