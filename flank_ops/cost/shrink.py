"""Shrinking the VM after a pipeline window, without ever stopping it under a run.

The race, and how it is closed: every run holds the VM-wide "busy" lock shared for as
long as it runs (finish/run_steps.py); a shrink takes it exclusively, without waiting, so it
starts only when no run of any project holds it, and it also looks for running records
(runners of an older flank). While it holds the lock it starts AWS-ResizeInstance and
leaves a marker with the execution id. A run that starts in the minute before the
instance actually stops finds the marker and cancels the automation: the run wins. If the
stop has already begun, the run is cut off with the VM; the catch-up at boot runs a
missed scheduled run again.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flank_ops.cost.settings import CostSettings
from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_text, locked
from flank_ops.paths import Home
from flank_ops.store import records

MARKER_FRESH = timedelta(minutes=15)  # longer than AWS-ResizeInstance takes to stop the VM


def marker_path(home: Home) -> Path:
    return home.internal_dir / "cost-shrinking.json"


def running_runs(home: Home) -> list[str]:
    """'project/pipeline #id' of every run in progress on this VM."""
    out = []
    for name in home.projects():
        paths = home.project(name)
        for pipeline in paths.pipelines_with_runs():
            for record in records.find_running(paths, pipeline):
                out.append(f"{name}/{pipeline} #{record.run_id}")
    return out


def shrink_now(home: Home, cost: CostSettings, idle_type: str) -> str:
    """Resize to `idle_type` now if no run is in progress; returns what happened."""
    from flank_ops.cost import aws

    home.internal_dir.mkdir(parents=True, exist_ok=True)
    with locked(home.busy_lock, blocking=False) as got:
        if not got:
            return "not shrinking: a run is in progress (it holds the VM's busy lock)"
        busy = running_runs(home)
        if busy:
            return f"not shrinking: {', '.join(busy)} {'is' if len(busy) == 1 else 'are'} running"
        c = aws.clients(cost)
        instance = aws.instance_id(cost)
        now_type = aws.current_type(c, instance)
        if now_type == idle_type:
            return f"already {idle_type}: nothing to do"
        execution = aws.start_resize(c, instance, idle_type)
        atomic_write_text(
            marker_path(home),
            json.dumps(
                {
                    "execution_id": execution,
                    "instance_id": instance,
                    "from": now_type,
                    "to": idle_type,
                    "at": records.now_iso(),
                }
            )
            + "\n",
        )
    return f"shrinking {instance} from {now_type} to {idle_type} (automation {execution})"


def cancel_pending(home: Home, cost: CostSettings | None = None) -> str | None:
    """At a run's start: cancel a shrink started in the last minutes (the run wins)."""
    if cost is None:
        from flank_ops.cost.settings import cost_settings
        from flank_ops.settings import settings_for

        cost = cost_settings(settings_for(home))
    path = marker_path(home)
    try:
        marker = json.loads(path.read_text())
        at = datetime.fromisoformat(marker["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        if datetime.now(UTC) - at < MARKER_FRESH:
            from flank_ops.cost import aws

            aws.stop_resize(aws.clients(cost), str(marker["execution_id"]))
            return f"cancelled the shrink to {marker.get('to')} started at {marker['at']} (a run started)"
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def applied_plan_path(home: Home) -> Path:
    """What `flank cost apply` applied (the idle type, the schedules), for the shrink after a run."""
    return home.cost_plan


def window_opening(home: Home, within: timedelta, now: datetime | None = None) -> str | None:
    """'project/pipeline' of a scheduled run due within `within` (its window is about to open)."""
    from flank_ops.run.runner import resolve_deployed
    from flank_ops.schedule.next_runs import next_runs

    now = now or datetime.now(UTC)
    for name in home.projects():
        try:
            config = resolve_deployed(name).config
        except UserError:
            continue
        for pipeline in config.pipelines.values():
            upcoming = next_runs(pipeline, 1, after=now)
            if upcoming and upcoming[0] - now <= within:
                return f"{name}/{pipeline.name}"
    return None


def shrink_after_run(home: Home, now: datetime | None = None) -> str | None:
    """The last step after a run: shrink to the applied plan's idle size when this run ended its
    window (no run in progress, no scheduled run due soon). None when no plan is applied."""
    from flank_ops.cost.settings import cost_settings
    from flank_ops.settings import settings_for

    try:
        plan = json.loads(applied_plan_path(home).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return f"error: {applied_plan_path(home)} is unreadable ({exc}); run flank cost apply again"
    cost = cost_settings(settings_for(home))
    soon = window_opening(home, timedelta(minutes=cost.grow_lead_minutes + 30), now)
    if soon is not None:
        return f"not shrinking: {soon} runs soon"
    return shrink_now(home, cost, str(plan["idle_type"]))
