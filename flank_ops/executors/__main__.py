"""`python -m flank_ops.executors SPEC_FILE RUN_DIR [LAUNCHER...]` — what make starts for a task
whose executor is not "local" (remote.py), or a local task that declared memory/cpus: checked
against the VM (resources.py), then LAUNCHER (the usual task launcher, or the checked launcher of a
task with outputs:) takes over by exec. A Slurm task with outputs: gets `--check CHECK_FILE` instead
of a launcher: the checked launcher's rules (task/checked_task.py) around its job."""

from __future__ import annotations

import signal
import sys

CHECK_OPTION = "--check"  # run/makefile.py writes it for a Slurm task with outputs:


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(
            "usage: python -m flank_ops.executors SPEC_FILE RUN_DIR [LAUNCHER...]\n"
            "  (runs one task of a flank Makefile on its executor)",
            file=sys.stderr,
        )
        return 2
    spec_path, run_dir, *launcher = argv
    from flank_ops.task.task_exec import read_spec_file

    spec = read_spec_file(spec_path)
    if spec is None:
        return 2
    if spec.max_parallel:  # issue 26: wait for one of the matrix task's slots
        from flank_ops.executors.slots import hold_slot

        stop: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda n, _frame: stop.append(n))
        if hold_slot(run_dir, spec.group or spec.task, spec.max_parallel, lambda: bool(stop)) is None:
            return 128 + stop[0]  # never started: the runner marks it cancelled or interrupted
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
    if spec.executor == "local":
        from flank_ops.executors.resources import run_local

        return run_local(spec, spec_path, run_dir, launcher)
    from flank_ops.executors.remote import run_remote

    if len(launcher) == 2 and launcher[0] == CHECK_OPTION:
        from flank_ops.task.checked_task import read_check, run_checked

        check = read_check(launcher[1])
        return 2 if check is None else run_checked(check, spec, run_dir, launch=run_remote)
    return run_remote(spec, run_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
