"""What a run does with each task, decided before make starts (and shown by `flank plan`).

    up_to_date  its fingerprint and outputs match its last success and no upstream runs:
                it is never started (make does not see it), its dependents are free to start
    run         it must run, for `reason` (forced, no outputs declared, something changed)
    check       its own files match, but a task it needs runs first: the launcher decides just
                before it would start (early cut-off: unchanged upstream outputs skip it)

Tasks with outputs that are started go through the checked launcher (task_exec.run_checked),
which fingerprints them at start, checks the declared outputs after a success and only then
records the new fingerprint. The rules of a fingerprint are in fingerprints.py. A decision that
finds every task up to date is kept with what it read, and answers the next same question while
none of that changed (up_to_date.py: a no-change run fingerprints no task).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from flank_ops.config.model import Config, Pipeline, Task
from flank_ops.incremental import fingerprints as fpr
from flank_ops.incremental import up_to_date
from flank_ops.paths import ProjectPaths
from flank_ops.store.deploy_log import release_setup_build

UP_TO_DATE = "up_to_date"
RUN = "run"
CHECK = "check"
NO_OUTPUTS = "ran: no outputs declared (always runs)"
FORCED = "ran: forced"
CHECKS_DIR = "checks"  # in the run's plan folder: one <task>.json per checked task


class Decision(NamedTuple):
    task: str
    action: str  # UP_TO_DATE | RUN | CHECK
    reason: str  # "up_to_date", "ran: ...", or for CHECK what it waits for
    files: fpr.TaskFiles | None  # None: the task has no outputs (not fingerprinted)


def decide(
    paths: ProjectPaths,
    pipeline: Pipeline,
    config: Config,
    release_dir: Path,
    selected: list[str],
    forced: frozenset[str] = frozenset(),
    params_env: Mapping[str, str] | None = None,
) -> dict[str, Decision]:
    """A decision for every selected task (dependencies first). `params_env`: the run's
    FLANK_PARAM_* (issue 23; default: the pipeline's defaults), part of every fingerprint."""
    if params_env is None:
        from flank_ops.config.params import param_env

        params_env = param_env({n: p.default for n, p in pipeline.params.items()})
    salt = fpr.read_salt(paths.fingerprint_salt)
    setup = release_setup_build(paths, release_dir.name)  # issue 28 item 1: an input of every task
    # Every task fingerprinted and nothing forced: the answer may be the last one (up_to_date.py)
    every_files = {
        name: fpr.task_files(pipeline.tasks[name], pipeline, config, release_dir, salt, setup, params_env)
        for name in selected
        if pipeline.tasks[name].outputs and not pipeline.tasks[name].matrix_from
    }
    key = None
    if not forced and len(every_files) == len(selected):
        key = up_to_date.question(sys.modules[__name__], selected, list(every_files.values()))
        if up_to_date.still_holds(paths, pipeline.name, key):
            return {name: Decision(name, UP_TO_DATE, UP_TO_DATE, files) for name, files in every_files.items()}
    cache = fpr.HashCache(paths.hash_cache, one_look=True)  # one decision, at one moment
    state_files: dict[str, tuple[int, int, int]] = {}  # as read: kept with an all-up-to-date answer
    decisions: dict[str, Decision] = {}
    for name in selected:
        task = pipeline.tasks[name]
        if task.matrix_from:  # issue 26: its instances are decided when its cells are read
            decisions[name] = Decision(name, RUN, cells_reason(task), None)
            continue
        if not task.outputs:
            decisions[name] = Decision(name, RUN, NO_OUTPUTS, None)
            continue
        files = every_files[name]
        if name in forced:
            decisions[name] = Decision(name, RUN, FORCED, files)
            continue
        waits_for = [d for d in task.needs if d in decisions and decisions[d].action != UP_TO_DATE]
        try:
            fp = fpr.fingerprint(files, cache)
        except fpr.FingerprintError as exc:
            decisions[name] = Decision(name, RUN, f"ran: {exc}", files)  # the launcher fails it, saying so
            continue
        state_file = str(paths.fingerprint_file(pipeline.name, name))
        if key is not None:  # its stat before its content: a write in between shows as a change
            try:
                st = os.stat(state_file)
                state_files[state_file] = (st.st_size, st.st_mtime_ns, st.st_ino)
            except OSError:
                pass  # no earlier success: it runs, and nothing is kept
        old = fpr.read_state(state_file)
        reason = fpr.own_change(old, fp)
        if reason is None and waits_for:
            decisions[name] = Decision(
                name, CHECK, f"decided when {', '.join(waits_for)} ha{'s' if len(waits_for) == 1 else 've'} run", files
            )
            continue
        if reason is None:  # its own files are as they were (why_run's first question, answered)
            assert old is not None
            try:
                reason = fpr.upstream_change(old, fp) or fpr.outputs_change(old, fpr.hash_outputs(files, cache))
            except fpr.FingerprintError as exc:
                reason = f"ran: {exc}"
        decisions[name] = (
            Decision(name, RUN, reason, files) if reason else Decision(name, UP_TO_DATE, UP_TO_DATE, files)
        )
    cache.save(tidy=True)
    if key is not None:
        if all(d.action == UP_TO_DATE for d in decisions.values()):
            up_to_date.keep(paths, pipeline.name, key, cache, state_files)
        else:
            up_to_date.forget(paths, pipeline.name)
    return decisions


CELLS_FROM = "cells from "


def cells_reason(task: Task) -> str:
    """issue 26: what `flank plan` and the run record say of a matrix_from: task before it runs."""
    after = (
        f", known after {' and '.join(task.needs)} {'runs' if len(task.needs) == 1 else 'run'}" if task.needs else ""
    )
    return f"{CELLS_FROM}{task.matrix_from}{after}"


def forced_tasks(
    pipeline: Pipeline, selected: list[str], *, force: bool, force_tasks: tuple[str, ...], from_task: str | None
) -> frozenset[str]:
    """--force: every selected task; --force-task T: T; --from T: T and its downstream."""
    if force:
        return frozenset(selected)
    chosen = set(force_tasks)
    if from_task:  # a matrix task stands for its instances, as in select_tasks
        for start in pipeline.instances_of(from_task) or [from_task]:
            chosen |= pipeline.downstream(start)
    return frozenset(chosen & set(selected))


def write_checks(
    plan_dir: Path,
    pipeline: Pipeline,
    paths: ProjectPaths,
    decisions: dict[str, Decision],
    run_id: int,
    commit: str | None,
) -> dict[str, Path]:
    """One JSON per started task that has outputs: what the checked launcher needs. -> task: file."""
    from flank_ops.fileio import atomic_write_text

    folder = plan_dir / CHECKS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, d in decisions.items():
        if d.files is None or d.action == UP_TO_DATE:
            continue
        path = folder / f"{name}.json"
        atomic_write_text(
            path,
            json.dumps(
                {
                    "mode": d.action,
                    "reason": d.reason,
                    "files": d.files.to_json(),
                    "state_file": str(paths.fingerprint_file(pipeline.name, name)),
                    "hash_cache": str(paths.hash_cache),
                    "run_id": run_id,
                    "commit": commit,
                },
                indent=1,
            )
            + "\n",
            0o600,
            durable=False,
        )
        written[name] = path
    return written


NAME_WIDTH = 20  # the task column of `flank plan`, wider for longer names


def name_width(names: Iterable[str]) -> int:
    """The task column's width for these names: one column even for long matrix cell names."""
    return max([NAME_WIDTH, *(len(n) for n in names)])


def describe(decision: Decision, width: int = NAME_WIDTH) -> str:
    """One line of `flank plan`; `width`: the task column's (name_width of every line's task)."""
    name = f"{decision.task:<{width}}"
    if decision.action == UP_TO_DATE:
        return f"  {name} up_to_date"
    if decision.action == CHECK:
        return f"  {name} runs if an upstream's outputs change ({decision.reason})"
    if decision.reason.startswith(CELLS_FROM):
        return f"  {name} {decision.reason}; each runs unless up to date"
    if decision.reason == NO_OUTPUTS:
        return f"  {name} always runs: no outputs declared (add outputs: to skip it when nothing changed)"
    return f"  {name} runs — {decision.reason}"
