"""Catch-up: a scheduled run the VM missed (stopped, resizing, rebooting) is run once when it is back.

Like anacron, dagu's catch-up window or Airflow's catchup, but bounded by each pipeline's
`catchup:` (default 6h; 0 = never). When the VM comes back, cron's `@reboot` line (and
`flank scheduler` at its start) asks: for each scheduled pipeline, what is the latest minute
T its schedules fired in the window [now - catchup, now) — the current minute excluded,
cron itself runs that one — and did a run stand for it? A run stands for T when it was
triggered by the schedule (or an earlier catch-up, or a backfill) and its scheduled minute, or its start
for records without one, is T or later. If none did, one run starts with trigger `catchup`
and FLANK_SCHEDULED_AT = T: several missed firings give one run, never a burst.

The records are the memory: no heartbeat file has to be kept up to date while the VM runs.
A pipeline that never ran is not caught up (its schedule may be newer than the outage), and a
firing from before the first deploy that carried the pipeline's schedule (deploys.jsonl, the
releases' flank.yml) was never its to run.

Runs interrupted while their cluster jobs went on (issue 26 item 6: a VM reboot under a 6-hour
Slurm job) are resumed first, one detached `flank run … --resume N` each (`resume_left_runs`): the
new runner re-attaches to the jobs and finishes the run. A resumed run stands for its minute, so
it is not caught up as well.

At boot (`--boot`, cron's `@reboot` line) the current minute counts too once its :00 has passed:
Debian cron started mid-minute runs `@reboot` jobs and then waits for the *next* minute, so a VM
back at 02:00:30 would otherwise skip that night's 02:00. `flank scheduler` handles the current
minute itself, so its catch-up leaves it out, like a catch-up run by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from flank_ops.config.model import Pipeline
from flank_ops.errors import UserError
from flank_ops.paths import Home, ProjectPaths
from flank_ops.store import records
from flank_ops.store.model import SCHEDULED_TRIGGERS, RunRecord, RunStatus, RunTrigger, parse_iso


class Missed(NamedTuple):
    pipeline: str
    scheduled_at: datetime  # aware, in the pipeline's zone


def latest_firing(pipeline: Pipeline, start: datetime, end: datetime) -> datetime | None:
    """The last instant in [start, end) at which the pipeline's schedules fire."""
    from flank_ops.schedule.next_runs import next_runs

    # next_runs walks forward from `after` (exclusive): start one minute early.
    found = None
    after = start - timedelta(minutes=1)
    while True:
        upcoming = next_runs(pipeline, 64, after=after)
        if not upcoming:
            return found
        for t in upcoming:
            if t >= end:
                return found
            found = t
        after = upcoming[-1]


def _stands_for(record: RunRecord, moment: datetime) -> bool:
    if record.trigger not in SCHEDULED_TRIGGERS:
        return False
    when = parse_iso(record.scheduled_at) or parse_iso(record.started_at)
    return when is not None and when >= moment - timedelta(seconds=59)


def schedule_since(paths: ProjectPaths, pipeline: Pipeline, not_before: datetime, now: datetime) -> datetime | None:
    """When the first deploy that carried the pipeline's current schedule (and zone) happened, if
    that was after `not_before`; None when it is older (or the deploy log does not say). Deploys
    after `now` (`--now` in the past, a clock set back) are not looked at."""
    from flank_ops.git.release_config import load_release_config
    from flank_ops.store.deploy_log import read_deploys

    accepted = [
        e for e in read_deploys(paths) if e.get("status") == "accepted" and pipeline.name in e.get("pipelines", [])
    ]
    since = None
    for entry in reversed(accepted):  # newest first, back to the first deploy of this schedule
        when = parse_iso(entry.get("time"))
        if when is not None and when > now:
            continue
        if when is None or when < not_before:
            return None  # in force since before the window: every firing in it counts
        try:
            deployed = load_release_config(paths, entry["sha"]).pipelines.get(pipeline.name)
        except (UserError, KeyError):
            break
        if deployed is None or (deployed.schedule, deployed.timezone) != (pipeline.schedule, pipeline.timezone):
            break
        since = when
    return since


def missed_run(paths: ProjectPaths, pipeline: Pipeline, now: datetime, *, at_boot: bool = False) -> Missed | None:
    if not pipeline.schedule or pipeline.catchup_s <= 0:
        return None
    now = now.astimezone(UTC)
    minute = now.replace(second=0, microsecond=0)
    end = minute + timedelta(minutes=1) if at_boot and now > minute else minute
    window_start = minute - timedelta(seconds=pipeline.catchup_s)
    moment = latest_firing(pipeline, window_start, end)
    if moment is None:
        return None
    since = schedule_since(paths, pipeline, window_start, now)
    if since is not None and moment < since:
        return None  # the schedule was not deployed yet when it fired
    if moment is None:
        return None
    ids = records.list_run_ids(paths, pipeline.name)
    if not ids:
        return None  # never ran: the schedule may be newer than the outage
    for run_id in reversed(ids):  # newest first; stop once runs are older than the window
        try:
            record = records.read_record(paths.run_dir(pipeline.name, run_id))
        except (OSError, ValueError):
            continue
        if _stands_for(record, moment):
            return None
        started = parse_iso(record.started_at)
        if started is not None and started < window_start - timedelta(days=1):
            break
    return Missed(pipeline.name, moment)


RESUME_LOOKBACK = 20  # the newest runs of a pipeline looked at for one to resume


def runs_to_resume(paths: ProjectPaths, pipeline: str) -> list[int]:
    """The pipeline's interrupted runs (among its newest) that have jobs still queued or running on
    a cluster (the dead runner's runs are marked interrupted first)."""
    from flank_ops.executors.cleanup import dead_run_hook, live_jobs

    records.reconcile(paths, pipeline, on_interrupted=dead_run_hook(paths))
    found = []
    for run_id in records.list_run_ids(paths, pipeline)[-RESUME_LOOKBACK:]:
        run_dir = paths.run_dir(pipeline, run_id)
        try:
            record = records.read_record(run_dir)
        except (OSError, ValueError):
            continue
        if record.status == RunStatus.INTERRUPTED and live_jobs(run_dir, record, adoptable_only=True):
            found.append(run_id)
    return found


def resume_left_runs(home: Home, project: str | None, dry_run: bool, out: Callable[[str], None]) -> int:
    """Start `flank run PROJECT PIPELINE --resume N` (detached) for each run to resume; returns how many."""
    from flank_ops.run.launch import start_detached

    started = 0
    for name in [project] if project else home.projects():
        paths = home.project(name)
        for pipeline in paths.pipelines_with_runs():
            for run_id in runs_to_resume(paths, pipeline):
                if dry_run:
                    out(f"flank: would resume {name} {pipeline} #{run_id} (its jobs are still on the cluster)")
                    continue
                start_detached(paths, pipeline, RunTrigger.MANUAL, ("--resume", str(run_id)))
                out(f"flank: resuming {name} {pipeline} #{run_id} (its jobs are still on the cluster)")
                started += 1
    return started


def catch_up(
    home: Home,
    now: datetime,
    *,
    project: str | None = None,
    dry_run: bool = False,
    at_boot: bool = False,
    out: Callable[[str], None] = print,
) -> int:
    """Start (detached) one run for each pipeline that missed its schedule; returns how many."""
    from flank_ops.humanize import clock
    from flank_ops.run.launch import start_detached
    from flank_ops.run.runner import resolve_deployed

    started = resume_left_runs(home, project, dry_run, out)
    for name in [project] if project else home.projects():
        try:
            deployed = resolve_deployed(name)
        except UserError:
            if project:
                raise
            continue  # never deployed: nothing scheduled
        for pipeline in deployed.config.pipelines.values():
            missed = missed_run(deployed.paths, pipeline, now, at_boot=at_boot)
            if missed is None:
                continue
            when = clock(missed.scheduled_at, pipeline.timezone)
            if dry_run:
                out(f"flank: would catch up {name} {pipeline.name} (missed {when})")
                continue
            start_detached(
                deployed.paths,
                pipeline.name,
                RunTrigger.CATCHUP,
                ("--scheduled-at", missed.scheduled_at.isoformat()),
            )
            out(f"flank: catching up {name} {pipeline.name} (missed {when})")
            started += 1
    return started
