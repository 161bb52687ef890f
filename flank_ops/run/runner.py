"""Running a pipeline: pin the release, take the overlap lock, drive GNU make, keep the record.

    flank run PROJECT PIPELINE   ->  run_pipeline(RunRequest(...))

1. resolve: the release `current` points at (resolved once: a push during the
   run does not change the code under it), its flank.yml, the selected tasks;
2. a run id and a "running" record at once (so a skipped or queued trigger is visible);
3. the per-pipeline flock decides overlap: `skip` records a skipped run, `queue` waits;
4. make -k -j N on the run's plan; tasks/<task>.json are merged into run.json as they change;
5. final statuses (upstream_failed, skipped), the history line, then the after-run steps
   (note, site, S3, notifications, pings, VM size) outside the lock.

What a run sets off outside itself (pages, pings, notes, uploads) is handed in as RunSteps by
`flank run` (flank_ops/finish implements it): site, notify, storage and cost read run records,
so they sit above run/ and the runner does not import them.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, Protocol, TextIO

from flank_ops.config.load import FILENAME
from flank_ops.config.model import Config, ParamValue, Pipeline
from flank_ops.config.params import param_env
from flank_ops.config.suggest import choices_hint
from flank_ops.errors import UserError
from flank_ops.executors.cleanup import dead_run_hook
from flank_ops.fileio import locked
from flank_ops.git.gitcmd import commit_info, run_git, work_tree_changed
from flank_ops.git.release_config import load_release_config, load_working_copy_config
from flank_ops.hints import flank_command
from flank_ops.humanize import duration as format_duration
from flank_ops.paths import Home, ProjectPaths
from flank_ops.run import cancel, makefile, matrix_from
from flank_ops.store import records
from flank_ops.store.model import (
    FAILED_TASK_STATUSES,
    RunRecord,
    RunStatus,
    RunTrigger,
    TaskStatus,
    conclude,
    finish,
    mark_disk_full,
    not_started,
    selected_tasks,
    skip,
    stop,
    summarize,
)

if TYPE_CHECKING:
    from flank_ops.incremental.plan import Decision
from flank_ops.run.site_writer import SiteWriter
from flank_ops.settings import settings_for
from flank_ops.task.secrets import load_secrets, mask, mask_file

SITE_REFRESH_EVERY_S = 1.0  # the running view is rebuilt at most this often
LIVE_TAIL_EVERY_S = 4.0  # ... and this long after the last redraw when no task changed (running tasks' last lines)
POLL_EVERY_S = 0.5  # how often tasks/*.json are merged into run.json


class RunRequest(NamedTuple):
    pipeline: str
    project: str | None = None  # None with local_dir
    trigger: str = RunTrigger.MANUAL
    task: str | None = None  # just this task
    from_task: str | None = None  # this task and everything downstream
    rerun: int | None = None  # what failed or did not run in that run
    local_dir: Path | None = None  # a laptop working copy (flank run --local)
    scheduled_at: str | None = None  # ISO minute with offset a scheduled run stands for (FLANK_SCHEDULED_AT)
    force: bool = False  # issue 12: run every selected task, up to date or not
    force_tasks: tuple[str, ...] = ()  # issue 12: run these even if up to date
    triggered_by: dict[str, str] | None = None  # issue 23: {"user", "via"} (store.model.VIA)
    params: Mapping[str, str] = {}  # issue 23: NAME -> raw text (`-p`, a form); the rest take their default
    backfill: str | None = None  # issue 23: the backfill this run is part of (trigger "backfill")
    alongside: bool = False  # issue 23: a `backfill --parallel` run: beside the pipeline's others, no overlap lock
    resume: int | None = None  # issue 26: go on with this interrupted run (re-attach to its live jobs), finish it


class NothingToRerun(Exception):
    """`--rerun N` of a run whose selected tasks all succeeded: said, not an error (exit 0)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Deployed(NamedTuple):
    """What a run runs: the project's paths, the pinned release, its config and commit."""

    paths: ProjectPaths
    release_dir: Path
    config: Config
    commit: dict[str, str]


@dataclass(frozen=True)
class RunContext:
    """What one run runs under, resolved once as it starts and handed to every step after it
    (the note, site, S3, notifications and pings read it instead of reading flank.yml again)."""

    deployed: Deployed
    pipeline: Pipeline  # the whole pipeline (notify:, ping_url), not the run's selection
    secrets: dict[str, str]
    # the project's flank.toml; a broken one fails only the steps that need it, not the run
    settings_or_error: dict[str, Any] | UserError

    @property
    def paths(self) -> ProjectPaths:
        return self.deployed.paths

    def settings(self) -> dict[str, Any]:
        """flank.toml as this project sees it; raises the UserError met when it was read."""
        if isinstance(self.settings_or_error, UserError):
            raise self.settings_or_error
        return self.settings_or_error


def run_context(deployed: Deployed, pipeline: Pipeline) -> RunContext:
    try:
        settings: dict[str, Any] | UserError = settings_for(deployed.paths.home, deployed.paths.name)
    except UserError as exc:
        settings = exc
    return RunContext(deployed, pipeline, load_secrets(deployed.paths), settings)


class RunSteps(Protocol):
    """What a run sets off outside itself; flank_ops/finish implements it (see the module docstring)."""

    def vm_busy(self, paths: ProjectPaths, out: TextIO) -> contextlib.AbstractContextManager[None]:
        """Held while the run runs (a pending VM shrink must wait or be cancelled)."""
        ...

    def started(self, context: RunContext, record: RunRecord) -> None:
        """make is about to start the tasks (the /start ping). Never raises."""
        ...

    def progress(self, paths: ProjectPaths, pipeline: str, run_id: int) -> None:
        """Redraw a running run's page and the cards that show it (not its pipeline's pages: they are
        drawn when it ends); called from the site writer's thread at most every SITE_REFRESH_EVERY_S; may raise."""
        ...

    def finished(self, context: RunContext, record: RunRecord) -> None:
        """The record is final: note, site, S3, notifications, pings, VM size. Never raises."""
        ...

    def interrupted(self, paths: ProjectPaths, pipeline: str, run_ids: list[int]) -> None:
        """records.reconcile marked these runs interrupted: their pages must stop saying running."""
        ...


# --- resolving what to run -------------------------------------------------


def find_working_copy(start: Path) -> Path:
    """The folder holding flank.yml: `start` or its nearest parent that has one."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / FILENAME).is_file():
            return folder
    raise UserError(f"no flank.yml in {start} or any parent folder", "run this inside your project's working copy")


UNCOMMITTED = " + changes"  # a laptop run of edits not committed: `a0965cb + changes`, never `commit a0965cb`


def resolve_deployed(project: str | None, local_dir: Path | None = None) -> Deployed:
    if local_dir is not None:
        working_copy = find_working_copy(local_dir)
        paths = ProjectPaths.for_local(working_copy)
        config = load_working_copy_config(paths, working_copy / FILENAME)
        commit: dict[str, str] = {}
        git_dir = run_git(["rev-parse", "--absolute-git-dir"], cwd=working_copy, check=False)
        if git_dir.returncode == 0:
            try:
                commit = commit_info(Path(git_dir.stdout.decode().strip()), "HEAD")
            except UserError:
                commit = {}  # a repo without commits yet
            if commit and work_tree_changed(working_copy):
                # issue 19 bug 4: edits not committed yet ran, not that commit; every reader shows `short`
                commit["short"] += UNCOMMITTED
        return Deployed(paths, working_copy, config, commit)

    assert project is not None
    paths = Home().project(project).require()
    # Resolve `current` once: the whole run uses this release even if a push switches it.
    release_dir = Path(os.path.realpath(paths.current))
    if not paths.current.is_symlink() or not release_dir.is_dir():
        raise UserError(f"project {project!r} has no deploy yet", "push first: git push flank main")
    sha = release_dir.name
    # The flank.yml the deploy validated, never the checkout's copy (which can change).
    config = load_release_config(paths, sha)
    try:
        commit = commit_info(paths.bare_repo, sha)
    except UserError:
        commit = {"sha": sha, "short": sha[:7], "message": "", "author": "", "date": ""}
    return Deployed(paths, release_dir, config, commit)


def find_pipeline(config: Config, name: str, paths: ProjectPaths) -> Pipeline:
    if name not in config.pipelines:
        raise UserError(
            f"no pipeline {name!r} in project {paths.name!r}", choices_hint(name, list(config.pipelines), "pipelines")
        )
    return config.pipelines[name]


def check_task(pipeline: Pipeline, name: str) -> str:
    dynamic = pipeline.task_of(name)
    if dynamic is not None and dynamic != name:  # issue 26: `model[north]` of a matrix_from: task
        raise UserError(
            f"the cells of {dynamic!r} are known only when the run reads {pipeline.tasks[dynamic].matrix_from}",
            f"run all of them: --task {dynamic}",
        )
    if name not in pipeline.tasks:
        raise UserError(
            f"no task {name!r} in pipeline {pipeline.name!r}", choices_hint(name, list(pipeline.tasks), "tasks")
        )
    return name


def check_force_tasks(pipeline: Pipeline, names: Sequence[str]) -> tuple[str, ...]:
    """--force-task names -> the tasks they stand for: a task, or a matrix task's instances (all, or
    those `model[region=north]` matches), as --task takes them. Raises UserError for an unknown name."""
    return tuple(t for name in names for t in (pipeline.instances_of(name) or [check_task(pipeline, name)]))


def select_tasks(paths: ProjectPaths, pipeline: Pipeline, request: RunRequest) -> list[str]:
    """The tasks this run runs, dependencies first."""
    order = pipeline.topological_order()
    if request.task and pipeline.instances_of(request.task):  # issue 26: a matrix task is its instances
        return [t for t in order if t in set(pipeline.instances_of(request.task))]
    if request.task:
        return [check_task(pipeline, request.task)]
    if request.from_task and pipeline.instances_of(request.from_task):
        wanted = set().union(*(pipeline.downstream(t) for t in pipeline.instances_of(request.from_task)))
        return [t for t in order if t in wanted]
    if request.from_task:
        wanted = pipeline.downstream(check_task(pipeline, request.from_task))
        return [t for t in order if t in wanted]
    if request.rerun is not None:
        run_dir = paths.run_dir(pipeline.name, request.rerun)
        try:
            old = records.read_record(run_dir)
        except (OSError, ValueError):
            known = records.list_run_ids(paths, pipeline.name)
            last = f"runs go from #{known[0]} to #{known[-1]}" if known else "it has no runs yet"
            raise UserError(f"no run #{request.rerun} of pipeline {pipeline.name!r}", last) from None
        if old.status == RunStatus.RUNNING:
            raise UserError(f"{pipeline.name} #{request.rerun} is still running", "rerun it once it has finished")
        return rerun_selection(pipeline, old)
    return order


def rerun_selection(pipeline: Pipeline, old: RunRecord) -> list[str]:
    """What `--rerun` of run `old` runs: the tasks *its* selection chose that did not succeed
    (failed, timed out, upstream_failed, interrupted, cancelled, never started), in the
    pipeline's order. Raises NothingToRerun when there are none."""
    not_ok = [n for n in selected_tasks(old) if not old.tasks[n].ok]
    wanted = {pipeline.task_of(n) for n in not_ok}  # issue 26: a matrix_from: instance reruns its task
    selected = [t for t in pipeline.topological_order() if t in wanted]
    if selected:
        return selected
    if not not_ok:
        raise NothingToRerun(f"nothing to rerun: run {old.run_id} succeeded")
    raise NothingToRerun(
        f"nothing to rerun: the tasks of run {old.run_id} that did not succeed "
        f"({', '.join(not_ok)}) are no longer in pipeline {pipeline.name}"
    )


def run_params(paths: ProjectPaths, pipeline: Pipeline, request: RunRequest) -> dict[str, ParamValue]:
    """issue 23: every parameter's value for this run (raises UserError for bad input). `--rerun N`
    without `-p` reruns with run N's values (those still declared and still valid)."""
    from flank_ops.config.params import env_text, parse_params

    raw = dict(request.params)
    if request.rerun is not None and not raw and pipeline.params:
        try:
            old = records.read_record(paths.run_dir(pipeline.name, request.rerun))
        except (OSError, ValueError):
            old = None
        for name, value in ((old.params or {}) if old else {}).items():
            if name in pipeline.params:
                raw[name] = env_text(value)
    return parse_params(pipeline, raw)


def sub_pipeline(pipeline: Pipeline, selected: list[str]) -> Pipeline:
    """The pipeline cut down to `selected`: needs outside the selection count as done."""
    chosen = set(selected)
    tasks = {}
    for name, task in pipeline.tasks.items():
        if name in chosen:
            needs = tuple(d for d in task.needs if d in chosen)
            tasks[name] = task if needs == task.needs else replace(task, needs=needs)  # replace: ~10 µs a task
    return replace(pipeline, tasks=tasks)


def task_env(
    deployed: Deployed,
    pipeline: Pipeline,
    run_id: int,
    secrets: dict[str, str],
    scheduled_at: str | None = None,
    params: Mapping[str, ParamValue] | None = None,
) -> dict[str, str]:
    """The environment every task of the run starts from (the launcher adds per-task env)."""
    paths, config = deployed.paths, deployed.config
    env = dict(os.environ)
    from flank_ops.run.makefile import declared_env

    env.update(declared_env(config.env))
    env.update(secrets)
    persist_root = persisted_root(deployed)
    env.update(
        {
            "FLANK_PROJECT": paths.name,
            "FLANK_PIPELINE": pipeline.name,
            "FLANK_RUN_ID": str(run_id),
            "FLANK_COMMIT": deployed.commit.get("sha", ""),
            "FLANK_RELEASE": str(deployed.release_dir),
            "FLANK_PERSIST": str(persist_root),
            "FLANK_SECRET_NAMES": ",".join(sorted(secrets)),
            "FLANK_SCHEDULED_AT": scheduled_at or "",  # the minute a scheduled run stands for; empty otherwise
        }
    )
    env.update(param_env(params if params is not None else {n: p.default for n, p in pipeline.params.items()}))
    if pipeline.timezone:
        env["TZ"] = pipeline.timezone  # so a task's "today" is the pipeline's (R's Sys.Date(), date, ...)
    for name in config.persist:
        var = "".join(c if c.isalnum() else "_" for c in name.strip("/")).upper()
        env[f"FLANK_PERSIST_{var}"] = str(persist_root / name)
    return env


def persisted_root(deployed: Deployed) -> Path:
    """Where the persist: folders live (a laptop's working copy holds its own)."""
    return deployed.release_dir if deployed.paths.local else deployed.paths.persist_dir


# --- the record ----------------------------------------------------------


def new_record(
    deployed: Deployed,
    pipeline: Pipeline,
    run_id: int,
    trigger: str,
    request: RunRequest,
    selected: list[str],
    jobs: int,
    params: Mapping[str, ParamValue],
) -> RunRecord:
    from flank_ops.config.params import non_default

    record = records.start_record(
        project=deployed.paths.name,
        pipeline=pipeline.name,
        run_id=run_id,
        trigger=trigger,
        local=deployed.paths.local,
        commit=deployed.commit,
        release=str(deployed.release_dir),
        selection={"task": request.task, "from": request.from_task, "rerun_of": request.rerun},
        tasks=[(name, list(pipeline.tasks[name].needs)) for name in pipeline.topological_order()],
        selected=selected,
        scheduled_at=request.scheduled_at,
        timezone=pipeline.timezone,  # the zone its times are shown in (None: the VM's)
        concurrency=jobs,
        triggered_by=request.triggered_by,
    )
    if pipeline.params:  # issue 23
        record.params = dict(params)
        record.non_default_params = non_default(pipeline, params)
    record.backfill = request.backfill
    for name, entry in record.tasks.items():
        declared = pipeline.tasks[name]
        if declared.memory_mb or declared.cpus:  # issue 14: declared resources, kept for the reports
            entry.memory_mb, entry.cpus = declared.memory_mb, declared.cpus
        if pipeline.executor_of(name) != "local":  # where it goes, said even if it never starts
            entry.runs_on = pipeline.executor_of(name)
    return record


# --- running ----------------------------------------------------------------


class Stopped(BaseException):
    """The runner got SIGTERM: stop make, record the run as cancelled or interrupted.

    A BaseException, like KeyboardInterrupt: the `except Exception` blocks that keep a broken
    site page or a lost artifact from failing the run (site drawing, artifacts, hints) must never
    swallow a stop — a cancel at any instant of a run has to end it (issue 20 item 1)."""


class _StopSignal:
    """The runner's SIGTERM handler. Armed, it raises Stopped wherever the runner is; disarmed
    (while the record is being created, and from make's end to the final record) it only notes
    the signal: arming raises a noted one, and the cancel request file decides the final status."""

    def __init__(self) -> None:
        self.armed = False
        self.pending: str | None = None

    def __call__(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.armed:
            raise Stopped(name)
        self.pending = name

    def arm(self) -> None:
        self.armed = True
        if self.pending is not None:
            raise Stopped(self.pending)

    def disarm(self) -> None:
        self.armed = False


_stop_signal = _StopSignal()


def _die_with_parent() -> Callable[[], None] | None:
    """What make's child process runs before it execs make: get SIGTERM if the runner dies (SIGKILL
    included). prctl is looked up here, in the runner: looked up in the child, each run paid ~4 ms
    more before make started (issue 22)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Outcome(NamedTuple):
    record: RunRecord
    exit_code: int  # 0 only when the run succeeded


def run_pipeline(
    request: RunRequest,
    *,
    steps: RunSteps,
    out: TextIO | None = None,
    on_run_id: Callable[[int], None] | None = None,
    deployed: Deployed | None = None,
) -> Outcome:
    """Run one pipeline now (the whole of `flank run`). Raises UserError for bad input.
    `deployed`: the request's project as resolve_deployed gave it to the caller, if it has it."""
    out = out or sys.stdout
    from flank_ops.run.makefile import make_executable

    make_executable()
    if request.resume is not None:
        return resume_pipeline(request, steps=steps, out=out, on_run_id=on_run_id, deployed=deployed)
    deployed = deployed or resolve_deployed(request.project, request.local_dir)
    paths = deployed.paths
    pipeline = find_pipeline(deployed.config, request.pipeline, paths)
    context = run_context(deployed, pipeline)
    _mark_dead_runs(paths, pipeline.name, steps)
    selected = select_tasks(paths, pipeline, request)
    from flank_ops.incremental.plan import forced_tasks

    forced = forced_tasks(
        pipeline,
        selected,
        force=request.force,
        from_task=request.from_task,
        force_tasks=check_force_tasks(pipeline, request.force_tasks),
    )
    trigger = RunTrigger.RERUN if request.rerun is not None else request.trigger
    jobs = pipeline.concurrency or os.cpu_count() or 1
    params = run_params(paths, pipeline, request)  # bad input stops here: nothing has started

    # From the moment the record exists (flank cancel can find it) a SIGTERM is recorded, whatever
    # stage the run is at: one that comes while the record is being created is noted, then raised.
    with _stops_recorded():
        run_id, run_dir, record = records.create_run(
            paths,
            pipeline.name,
            lambda run_id: new_record(deployed, pipeline, run_id, trigger, request, selected, jobs, params),
        )
        start = _execute if request.alongside else _start_or_wait

        def go() -> Outcome:
            return start(context, steps, record, run_dir, selected, out, forced)

        outcome = _run_stoppable(go, context, steps, record, run_dir, out, on_run_id)

    # Outside the lock: a slow mail server must not make the next trigger skip.
    steps.finished(context, record)
    return outcome


@contextlib.contextmanager
def _stops_recorded() -> Iterator[None]:
    """While it lasts, a SIGTERM is the run's stop (_StopSignal), armed by _run_stoppable."""
    global _stop_signal
    _stop_signal = _StopSignal()
    old_term = signal.signal(signal.SIGTERM, _stop_signal)
    try:
        yield
    finally:
        _stop_signal.disarm()
        signal.signal(signal.SIGTERM, old_term)


def _run_stoppable(
    go: Callable[[], Outcome],
    context: RunContext,
    steps: RunSteps,
    record: RunRecord,
    run_dir: Path,
    out: TextIO,
    on_run_id: Callable[[int], None] | None,
) -> Outcome:
    """`go` (the run, or the resumed run, from its recorded start) with SIGTERM armed and the VM
    held busy; a stop before make started (or after it ended) is recorded as such."""
    try:
        _stop_signal.arm()
        if on_run_id is not None:
            on_run_id(record.run_id)
        with steps.vm_busy(context.deployed.paths, out):
            return go()
    except (Stopped, KeyboardInterrupt):
        _stop_signal.disarm()
        return _stopped_outside_make(context.deployed, record, run_dir)


def _mark_dead_runs(paths: ProjectPaths, pipeline: str, steps: RunSteps) -> None:
    """Before a run (or a resume) looks at the pipeline's runs: those whose runner died are marked
    interrupted (their cluster jobs left running: executors/cleanup.py), and their pages redrawn."""
    marked = records.reconcile(paths, pipeline, on_interrupted=dead_run_hook(paths))
    if marked:
        _refresh_site(lambda: steps.interrupted(paths, pipeline, marked))


# --- resuming an interrupted run (issue 26 item 6) ----------------------------------------


def resumable(paths: ProjectPaths, pipeline: str, run_id: int) -> tuple[Path, RunRecord]:
    """Run `run_id`'s folder and record when it can be resumed (interrupted: its runner died or was
    stopped without `flank cancel`); raises UserError saying why not, or NothingToRerun."""
    run_dir = paths.run_dir(pipeline, run_id)
    try:
        record = records.read_record(run_dir)
    except (OSError, ValueError):
        known = records.list_run_ids(paths, pipeline)
        last = f"runs go from #{known[0]} to #{known[-1]}" if known else "it has no runs yet"
        raise UserError(f"no run #{run_id} of pipeline {pipeline!r}", last) from None
    name = f"{pipeline} #{run_id}"
    project = None if paths.local else paths.name
    if record.status == RunStatus.RUNNING:
        raise UserError(
            f"{name} is still running",
            f"follow it: {flank_command('logs', project, pipeline, str(run_id), '--follow')}",
        )
    if record.status != RunStatus.INTERRUPTED:
        raise UserError(
            f"{name} {record.status}: only an interrupted run can be resumed",
            f"run what did not succeed again: {flank_command('run', project, pipeline, '--rerun', str(run_id))}",
        )
    from flank_ops.store.reopen import tasks_left

    if not tasks_left(record):
        raise NothingToRerun(f"nothing to resume: every task of {name} had ended well")
    return run_dir, record


def resume_pipeline(
    request: RunRequest,
    *,
    steps: RunSteps,
    out: TextIO | None = None,
    on_run_id: Callable[[int], None] | None = None,
    deployed: Deployed | None = None,
) -> Outcome:
    """`flank run … --resume N`: the interrupted run N goes on in the release it ran (its commit, its
    flank.yml): its tasks that did not end well run again, except that a task whose job is still
    queued or running on a cluster (or ended since) is re-attached to, not resubmitted (the launcher
    finds the job by its name, executors/remote.py). Then run N is finished as any run is."""
    out = out or sys.stdout
    assert request.resume is not None
    working: Deployed | None = None  # a working copy runs as it is now (as the caller resolved it, if it did)
    if request.local_dir is not None:
        working = deployed or resolve_deployed(None, request.local_dir)
        paths = working.paths
    else:
        assert request.project is not None
        paths = Home().project(request.project).require()
    _mark_dead_runs(paths, request.pipeline, steps)
    run_dir, record = resumable(paths, request.pipeline, request.resume)
    deployed = working if working is not None else _deployed_of(paths, record)
    pipeline = find_pipeline(deployed.config, record.pipeline, paths)
    context = run_context(deployed, pipeline)
    lock = paths.lock_file("run", pipeline.name)
    with _stops_recorded(), locked(lock, blocking=False) as got:
        if not got:
            other = next((r for r in records.find_running(paths, pipeline.name)), None)
            who = f"{pipeline.name} #{other.run_id}" if other else f"another run of {pipeline.name}"
            raise UserError(
                f"{who} is running: {pipeline.name} #{record.run_id} can be resumed once it has finished",
                "its jobs on the cluster go on meanwhile",
            )
        from flank_ops.store.reopen import reopen

        left = reopen(paths, run_dir, record)
        # a task that had a job on a cluster is started whatever the plan says: it re-attaches to it
        attach = frozenset(n for n in left if record.tasks[n].executor)

        def go() -> Outcome:
            return _execute(context, steps, record, run_dir, left, out, attach, resumed=True)

        outcome = _run_stoppable(go, context, steps, record, run_dir, out, on_run_id)
    steps.finished(context, record)
    return outcome


def _deployed_of(paths: ProjectPaths, record: RunRecord) -> Deployed:
    """The release an interrupted run ran (never `current`: a push since must not change it)."""
    sha = record.commit.sha or ""
    release_dir = Path(record.release or "")
    if not sha or not release_dir.is_dir():
        raise UserError(
            f"{record.pipeline} #{record.run_id} ran release {sha[:7] or '?'}, which is no longer on this VM",
            f"run it anew: {flank_command('run', paths.name, record.pipeline)}",
        )
    return Deployed(paths, release_dir, load_release_config(paths, sha), record.commit.to_json())


def _start_or_wait(
    context: RunContext,
    steps: RunSteps,
    record: RunRecord,
    run_dir: Path,
    selected: list[str],
    out: TextIO,
    forced: frozenset[str] = frozenset(),
) -> Outcome:
    """Run now if no other run of the pipeline is going on; else skip or queue (`overlap:`)."""
    deployed, pipeline = context.deployed, context.pipeline
    paths, run_id = deployed.paths, record.run_id
    lock = paths.lock_file("run", pipeline.name)
    with locked(lock, blocking=False) as got:
        if got:
            return _execute(context, steps, record, run_dir, selected, out, forced)
    others = records.find_running(paths, pipeline.name)
    other = next((r for r in others if r.run_id != run_id), None)
    other_name = f"{pipeline.name} #{other.run_id}" if other else f"another run of {pipeline.name}"
    if pipeline.overlap != "queue" and record.backfill is None:  # a backfill's run waits its turn
        return _record_skipped(deployed, record, run_dir, f"{other_name} was still running (overlap: skip)")
    print(f"flank: {pipeline.name} #{run_id} waits for {other_name} to finish (overlap: queue)", file=out, flush=True)
    record.waiting_for = other.run_id if other else None
    _save_progress(run_dir, record)
    _refresh_site(lambda: steps.progress(paths, pipeline.name, run_id))  # a waiting run has its page too
    with locked(lock):
        record.waiting_for = None
        record.started_at = records.now_iso()  # it starts now; it was triggered earlier
        _save_progress(run_dir, record)
        return _execute(context, steps, record, run_dir, selected, out, forced)


def _stopped_outside_make(deployed: Deployed, record: RunRecord, run_dir: Path) -> Outcome:
    """A SIGTERM before make started (e.g. while queued) or just after the record was final."""
    if record.status != RunStatus.RUNNING:  # it came after the end: the run is recorded already
        return Outcome(record, 0 if record.status == RunStatus.SUCCESS else 1)
    waiting = record.waiting_for is not None
    _record_stop(record, run_dir)
    finish(
        record,
        record.status,
        f"{record.status} "
        + ("while waiting for its turn (overlap: queue)" if waiting else "before its first task started"),
    )
    _save_final(deployed.paths, run_dir, record)
    return Outcome(record, 130)


def _record_skipped(deployed: Deployed, record: RunRecord, run_dir: Path, reason: str) -> Outcome:
    _stop_signal.disarm()  # from here a cancel is decided by _save_final (its request file)
    skip(record, reason)
    _save_final(deployed.paths, run_dir, record)
    return Outcome(record, 1)


def _save_progress(run_dir: Path, record: RunRecord) -> OSError | None:
    """Write the record mid-run; a failure (a full disk) must not stop the run: returned, not raised."""
    try:
        records.write_record(run_dir, record)
    except OSError as exc:
        return exc
    return None


def _save_final(paths: ProjectPaths, run_dir: Path, record: RunRecord) -> None:
    """The final record and its history line, in the room the run held in reserve since it began.

    Under the cancel lock: a `flank cancel` that found the run running (and left its request) is
    never answered by a run that ends otherwise; one that comes later finds the record final."""
    _stop_signal.disarm()
    records.release_space(run_dir)
    try:
        with cancel.deciding(run_dir):
            if record.status != RunStatus.CANCELLED and records.cancel_requested(run_dir):
                stop(record, cancelled=True)  # asked as the run was ending
                finish(record, RunStatus.CANCELLED, f"cancelled as it ended; {record.summary}")
            records.write_record(run_dir, record)
        records.append_history(paths, record)
    except OSError as exc:
        # The old run.json stays whole (atomic writes); `flank status` marks it interrupted later.
        raise UserError(
            f"{record.pipeline} #{record.run_id} {record.status}, but its record could not be saved in "
            f"{run_dir}: {records.disk_error(exc)}",
            "free some disk space; the next `flank status` then marks this run interrupted",
        ) from None


def _record_not_started(
    deployed: Deployed, record: RunRecord, run_dir: Path, selected: list[str], reason: str, out: TextIO
) -> Outcome:
    """A run that got its record but could not start make (e.g. a full disk): failed, with the reason
    — never left "running" for `flank status` to call interrupted."""
    _stop_signal.disarm()  # from here a cancel is decided by _save_final (its request file)
    not_started(record, selected, reason)
    print(f"flank: {record.pipeline} #{record.run_id} could not start: {reason}", file=out, flush=True)
    _save_final(deployed.paths, run_dir, record)
    return Outcome(record, 1)


DISK_NEARLY_FULL = 64 * 1024  # free bytes under which a failed run is put down to a full disk


def _disk_is_full(run_dir: Path) -> bool:
    try:
        return records.free_bytes(run_dir) < DISK_NEARLY_FULL
    except OSError:
        return False


def _execute(
    context: RunContext,
    steps: RunSteps,
    record: RunRecord,
    run_dir: Path,
    selected: list[str],
    out: TextIO,
    forced: frozenset[str] = frozenset(),
    resumed: bool = False,
) -> Outcome:
    from flank_ops.incremental import plan as run_plan

    deployed, pipeline = context.deployed, context.pipeline
    paths = deployed.paths
    run_id = record.run_id
    secrets = context.secrets
    params = record.params if record.params is not None else {}
    env = task_env(deployed, pipeline, run_id, secrets, record.scheduled_at, params)
    # make gets an environment of its own; the tasks' reaches them through the spec files.
    make_env = makefile.make_environment(secrets)
    try:
        (run_dir / "tasks").mkdir(parents=True, exist_ok=True)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        # issue 12: up-to-date tasks are never started; tasks with outputs go through the checked launcher
        decisions = run_plan.decide(
            paths, pipeline, deployed.config, deployed.release_dir, selected, forced, param_env(params)
        )
        to_start = _apply_decisions(record, decisions)
        argv: list[str] = []
        make_log: BinaryIO | None = None
        # issue 22: with no task to start (every one up to date) there is no plan to write and no
        # make to start: starting it cost a no-change run more than the decision itself
        if to_start:
            checked = run_plan.write_checks(
                run_dir / makefile.PLAN_DIR, pipeline, paths, decisions, run_id, deployed.commit.get("sha") or None
            )
            plan = makefile.write_run_plan(
                run_dir,
                sub_pipeline(pipeline, to_start),
                deployed.config,
                deployed.release_dir,
                commit=deployed.commit.get("sha") or None,
                task_env=makefile.spec_environment(env, make_env),
                checked=checked,
                cells_run=matrix_from.run_info(
                    paths, run_id, deployed.commit.get("sha") or None, param_env(params), forced
                ),
            )
            argv = makefile.make_command(plan, run_dir, record.concurrency or 1, to_start)
            make_log = open(run_dir / "make.log", "ab" if resumed else "wb")
    except OSError as exc:
        return _record_not_started(
            deployed, record, run_dir, selected, f"could not prepare the run: {records.disk_error(exc)}", out
        )

    commit = deployed.commit.get("short") or "working copy"
    if not commit.endswith(UNCOMMITTED) and commit != "working copy":
        commit = f"commit {commit}"
    print(
        f"flank: {pipeline.name} #{run_id} {'resumed' if resumed else 'started'} ({_tasks_text(pipeline, selected, commit)})",
        file=out,
        flush=True,
    )
    printed: dict[str, str] = {}
    _print_progress(record, [n for n in selected if n not in to_start], printed, out)
    expansions = matrix_from.Expansions(run_dir, pipeline)  # issue 26: instances known once make reads their cells

    steps.started(context, record)
    make_exit: int | None = None
    stopped = False
    write_failed: OSError | None = None
    if make_log is None:
        make_exit = 0  # nothing to start: every selected task's result is in the record already
        _stop_signal.disarm()  # as once make has ended: a late SIGTERM must not cut the final record short
    else:
        with make_log:
            _stop_signal.disarm()  # a stop while make starts is raised below, once make is there to stop
            proc = subprocess.Popen(
                argv,
                cwd=deployed.release_dir,
                env=make_env,
                stdin=subprocess.DEVNULL,
                stdout=make_log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),
            )
            # The run's pages are drawn beside it (site_writer.py): the run has its page as soon as it
            # starts, and a redraw whenever a task ended.
            writer: SiteWriter | None = None
            asked = time.monotonic()
            try:
                # Inside the try: a SIGTERM while its thread starts must still stop make (as any other time).
                writer = SiteWriter(
                    lambda: _refresh_site(lambda: steps.progress(paths, pipeline.name, run_id)), SITE_REFRESH_EVERY_S
                )
                _stop_signal.arm()
                writer.request()
                while make_exit is None:
                    make_exit = _wait_for_exit(proc, POLL_EVERY_S)
                    changed = expansions.adopt(record, selected) + records.merge_task_results(run_dir, record, selected)
                    _keep_artifacts(deployed, expansions.pipeline, record, run_dir, changed)
                    if not changed:
                        if make_exit is None and time.monotonic() >= asked + LIVE_TAIL_EVERY_S:
                            writer.request()  # running tasks' last lines
                            asked = time.monotonic()
                        continue
                    _print_progress(record, changed, printed, out)
                    if make_exit is not None:
                        break  # the final record is written at once: no progress write before it
                    failure = _save_progress(run_dir, record)
                    if failure is not None:  # e.g. a full disk: keep running, report once
                        if write_failed is None:
                            print(f"flank: could not update run.json: {records.disk_error(failure)}", file=sys.stderr)
                        write_failed = failure
                        continue
                    if make_exit is None:
                        writer.request()
                        asked = time.monotonic()
            except (Stopped, KeyboardInterrupt):
                _stop_signal.disarm()  # a second SIGTERM must not cut this short: make would be left running
                stopped = True
                proc.terminate()  # make passes SIGTERM on to the task launchers
                make_exit = proc.wait()
            finally:
                # make has ended: a late SIGTERM must not cut the final record short (it is short work);
                # a cancel asked from now on is seen by _save_final (the request file)
                _stop_signal.disarm()
                if writer is not None:
                    writer.close()  # a draw in progress ends first: it must not land after the final one

    expansions.adopt(record, selected)
    records.merge_task_results(run_dir, record, selected)
    # Still holding the reserve, so "full" is what the tasks met, not what our final writes need.
    disk_full = records.is_disk_full(write_failed) or _disk_is_full(run_dir)
    if stopped:
        _record_stop(record, run_dir)
    else:
        conclude(record, selected, make_exit)
    # issue 26: a stop that was no cancel left the run's cluster jobs running: said, with how to go on;
    # when none is left, what its jobs left goes (environment files, secrets in raw outputs)
    left = dead_run_hook(paths)(run_dir, record) if (run_dir / "jobs").is_dir() else None
    left = left if record.status == RunStatus.INTERRUPTED else None
    _keep_artifacts(deployed, expansions.pipeline, record, run_dir, selected)
    _explain_missing_inputs(deployed, expansions.pipeline, record, run_dir, selected)
    _print_progress(record, selected, printed, out)
    finish(record, record.status, mask(summarize(record) + (f"; {left}" if left else ""), secrets))
    if disk_full and record.status == RunStatus.FAILED:
        # The real outcome: tasks that could not write their output or result failed for this.
        mark_disk_full(record, selected, run_dir)
    try:
        mask_file(run_dir / "make.log", secrets)
    except OSError:
        (run_dir / "make.log").unlink(missing_ok=True)  # never keep a secret we could not mask
    _save_final(paths, run_dir, record)
    return Outcome(record, 0 if record.status == RunStatus.SUCCESS else (130 if stopped else 1))


def _wait_for_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    """make's exit status as soon as it exits, or None after `timeout_s`. Popen.wait(timeout)
    polls with sleeps of up to 50 ms, which every run paid once more at its end (issue 22);
    a pidfd wakes at the exit itself."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # an old kernel, or make reaped already
        with contextlib.suppress(subprocess.TimeoutExpired):
            return proc.wait(timeout=timeout_s)
        return None
    try:
        select.select([pidfd], [], [], timeout_s)
    finally:
        os.close(pidfd)
    return proc.poll()


def _apply_decisions(record: RunRecord, decisions: dict[str, Decision]) -> list[str]:
    """Up-to-date tasks are final at once; the others get their planned reason (a checked
    task's launcher gives the final one). -> the tasks make starts, dependencies first."""
    from flank_ops.incremental.plan import RUN, UP_TO_DATE

    to_start = []
    for name, decision in decisions.items():
        entry = record.tasks[name]
        if decision.action == UP_TO_DATE:
            entry.status = TaskStatus.UP_TO_DATE
            entry.reason = decision.reason
        else:
            if decision.action == RUN:
                entry.reason = decision.reason
            to_start.append(name)
    return to_start


def _keep_artifacts(deployed: Deployed, pipeline: Pipeline, record: RunRecord, run_dir: Path, names: list[str]) -> None:
    """issue 11: keep the `artifacts:` of the tasks that just ended (store/artifacts.py); never stops the run."""
    if not any(task.artifacts for task in map(pipeline.tasks.get, names) if task is not None):
        return  # nothing to keep: store/artifacts.py is not even loaded
    from flank_ops.store import artifacts

    try:
        artifacts.keep_finished(run_dir, record, pipeline, deployed.release_dir, persisted_root(deployed), names)
    except Exception as exc:  # noqa: BLE001 - a run's outcome never depends on keeping its files
        print(f"flank: could not keep artifacts: {exc}", file=sys.stderr)


def _explain_missing_inputs(
    deployed: Deployed, pipeline: Pipeline, record: RunRecord, run_dir: Path, names: list[str]
) -> None:
    """issue 11: a failed task whose input was lost with an old release says so (run/missing_inputs.py)."""
    if deployed.paths.local:
        return  # a working copy is its own release: nothing is lost at a deploy
    from flank_ops.incremental import missing_inputs

    try:
        missing_inputs.explain(run_dir, record, pipeline, deployed.release_dir, deployed.config.persist, names)
    except Exception as exc:  # noqa: BLE001 - only a hint
        print(f"flank: could not look for lost inputs: {exc}", file=sys.stderr)


def _record_stop(record: RunRecord, run_dir: Path) -> None:
    """A stopped run: `cancelled` when `flank cancel` asked for it, else `interrupted`."""
    stop(record, cancelled=records.cancel_requested(run_dir))


def _refresh_site(redraw: Callable[[], None]) -> None:
    try:
        redraw()
    except Exception as exc:  # noqa: BLE001 - a broken site must not stop the run
        why = records.disk_error(exc) if isinstance(exc, OSError) else str(exc)
        print(f"flank: could not refresh the status site: {why}", file=sys.stderr)


def _tasks_text(pipeline: Pipeline, selected: list[str], commit: str) -> str:
    """'2 tasks, commit abc1234'; a matrix task's instances counted as that task's cells (issue 26):
    '5 tasks: model ×4, fit ×3; commit abc1234'."""
    cells: dict[str, int] = {}
    for name in selected:
        task = pipeline.tasks.get(name)
        key = task.group if task is not None and task.group else name
        cells[key] = cells.get(key, 0) + (1 if task is not None and task.group else 0)
    count = f"{len(cells)} task{'s' if len(cells) != 1 else ''}"
    matrix = ", ".join(f"{name} ×{n}" for name, n in cells.items() if n)
    return f"{count}: {matrix}; {commit}" if matrix else f"{count}, {commit}"


def _print_progress(record: RunRecord, names: list[str], printed: dict[str, str], out: TextIO) -> None:
    """One line per task as it reaches a final status; the lines of one call in one write (a
    no-change run of 500 tasks made 500 writes to the terminal or pipe)."""
    from flank_ops.incremental.plan import NO_OUTPUTS

    lines = []
    order = {name: i for i, name in enumerate(record.tasks)}  # the pipeline's: what ended at once prints so
    for name in sorted(names, key=order.__getitem__):
        entry = record.tasks[name]
        status = entry.status
        if status in (TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.RUNNING) or printed.get(name) == status:
            continue
        printed[name] = status
        detail = []
        if entry.duration_s is not None and status != TaskStatus.UP_TO_DATE:  # it did not run: no time to say
            detail.append(format_duration(entry.duration_s))
        if status in FAILED_TASK_STATUSES and entry.exit_code is not None:
            detail.append(f"exit {entry.exit_code}")
        if (entry.attempts or 0) > 1:
            detail.append(f"{entry.attempts} attempts")
        suffix = f" ({', '.join(detail)})" if detail else ""
        if (
            entry.reason
            and status not in (TaskStatus.UP_TO_DATE, TaskStatus.UPSTREAM_FAILED)
            and entry.reason != NO_OUTPUTS
        ):
            suffix += f" — {entry.reason}"  # issue 12: why it ran
        lines.append(f"  {name:<20} {status}{suffix}\n")
    if lines:
        out.write("".join(lines))
        out.flush()


def run_line(record: RunRecord) -> str:
    """'nightly #17 failed in 14m32s — 3/4 ok; model failed (exit 1, 3 attempts)'."""
    return (
        f"{record.pipeline} #{record.run_id} {record.status} in {format_duration(record.duration_s)} — {record.summary}"
    )
