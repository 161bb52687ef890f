"""flank status [PROJECT]: the last run of every pipeline, and the next one.

A run still going is shown before triggers that came after it (`#5 running; #6
skipped`), a partial run (--task/--from/--rerun) says so and names the last full
run's status, and times are in the pipeline's timezone (else the VM's), zone named.
Looking also tidies: runs whose runner died are marked interrupted first.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from flank_ops.config.load import FILENAME, load_config_file
from flank_ops.deploy.deploy import attempt, rebuild_site
from flank_ops.errors import UserError
from flank_ops.finish.reconcile import reconcile
from flank_ops.git.deploy_state import INTERRUPTED, deploy_gap
from flank_ops.git.release_config import deployed_config
from flank_ops.humanize import MEDIUM, NOTE, clock
from flank_ops.humanize import duration as format_duration
from flank_ops.paths import Home, ProjectPaths
from flank_ops.run import records
from flank_ops.run.records import parse_iso
from flank_ops.run.runner import find_working_copy
from flank_ops.schedule.next_runs import next_runs
from flank_ops.storage.pending import read_pending
from flank_ops.storage.uploads import RETRY_HINT

if TYPE_CHECKING:
    from flank_ops.config.model import Config, Pipeline
    from flank_ops.run.records import RunRecord


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", help="just this project (default: every project)")
    parser.add_argument("--local", action="store_true", help="the runs of the current working copy (.flank/)")


def _started(record: RunRecord, tz: str | None) -> str:
    return clock(record.started_at, tz, NOTE) if record.started_at else "-"


def _duration(record: RunRecord) -> str:
    if record.status == "running":
        started = parse_iso(record.started_at)
        if started is None:
            return "-"
        return f"{format_duration((datetime.now(timezone.utc) - started).total_seconds())} so far"
    return format_duration(record.duration_s)


def _next_run(pipeline: Pipeline) -> str:
    try:
        upcoming = next_runs(pipeline, 1)
    except Exception:  # noqa: BLE001 - a schedule problem must not hide the run table
        return "?"
    if not upcoming:
        return "-" if not pipeline.schedule else "?"
    return clock(upcoming[0], pipeline.timezone, MEDIUM)


def _partial(paths: ProjectPaths, name: str, record: RunRecord) -> str:
    """' (partial: 1 of 13 tasks; last full run #8 failed)' for a run of part of the pipeline."""
    if not records.is_partial(record):
        return ""
    part = f"partial: {len(records.selected_tasks(record))} of {len(record.tasks)} tasks"
    full = records.last_full_run(paths, name, before=record.run_id)
    last_full = f"last full run #{full['run_id']} {full['status']}" if full else "no full run yet"
    return f" ({part}; {last_full})"


def _later(record: RunRecord) -> str:
    """How a trigger that came while another run went is shown after it: '#6 skipped', '#7 queued'."""
    if record.status == "running" and record.waiting_for is not None:
        return f"#{record.run_id} queued"
    return f"#{record.run_id} {record.status}"


def _rows_for(paths: ProjectPaths, config: Config) -> list[list[str]]:
    rows = []
    for name, pipeline in config.pipelines.items():
        reconcile(paths, name)
        last = records.last_run_id(paths, name)
        record: RunRecord | None = None
        status = ""
        later: list[str] = []
        if last is not None:
            # The run going now comes first: a trigger skipped (or queued) behind it must not hide it.
            going = [r for r in records.find_running(paths, name) if r.waiting_for is None]
            shown = going[0].run_id if going else last
            try:
                record = records.read_record(paths.run_dir(name, shown))
                status = str(record.status)
            except (OSError, ValueError):
                status = "unreadable"
            after = range(shown + 1, last + 1)
            for run_id in after[:2] if len(after) > 3 else after:  # a run going for days: not every skip
                try:
                    later.append(_later(records.read_record(paths.run_dir(name, run_id))))
                except (OSError, ValueError):
                    later.append(f"#{run_id} unreadable")
            if len(after) > 3:
                later.append(f"and {len(after) - 2} later triggers")
        if record is not None:
            waiting = " (queued)" if record.waiting_for is not None else ""
            status = status + waiting + _partial(paths, name, record)
            rows.append(
                [
                    paths.name,
                    name,
                    f"#{record.run_id}",
                    "; ".join([status, *later]),
                    _started(record, pipeline.timezone),
                    _duration(record),
                    _next_run(pipeline),
                ]
            )
        elif last is not None:
            rows.append([paths.name, name, f"#{shown}", "; ".join([status, *later]), "-", "-", _next_run(pipeline)])
        else:
            rows.append([paths.name, name, "-", "never run", "-", "-", _next_run(pipeline)])
    return rows


def _table(rows: list[list[str]]) -> str:
    header = ["PROJECT", "PIPELINE", "LAST RUN", "STATUS", "STARTED", "DURATION", "NEXT RUN"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _deploy_gaps(projects: list[ProjectPaths]) -> list[str]:
    """`demo: branch at 3f2a1c0, deployed 9b1e0d2 (deploy interrupted — ...)`, one line per project whose
    branch tip is not (fully) deployed; an interrupted deploy also gets its site pages redrawn to say so."""
    lines = []
    for paths in projects:
        try:
            gap = deploy_gap(paths)
        except (OSError, UserError) as exc:
            lines.append(f"{paths.name}: deploy state unknown: {exc}")
            continue
        if gap is None:
            continue
        lines.append(f"{paths.name}: {gap.message}")
        if gap.reason == INTERRUPTED:
            lines += [
                f"{paths.name}: warning: {w}"
                for w in attempt("status site not redrawn (run: flank site)", lambda: rebuild_site(paths))  # noqa: B023 - called at once
            ]
    return lines


def run(args: argparse.Namespace) -> int:
    if args.local:
        working_copy = find_working_copy(Path.cwd())
        print(_table(_rows_for(ProjectPaths.for_local(working_copy), load_config_file(working_copy / FILENAME))))
        return 0
    home = Home()
    if args.project:
        projects = [home.project(args.project).require()]
    else:
        projects = [home.project(p) for p in home.projects()]
        if not projects:
            raise UserError(f"no projects in {home.root}", "create one with: flank init NAME")
    rows: list[list[str]] = []
    for paths in projects:
        config = deployed_config(paths)
        if config is None:
            rows.append([paths.name, "-", "-", "no deploy yet (git push flank main)", "-", "-", "-"])
            continue
        rows += _rows_for(paths, config)
    print(_table(rows))
    for warning in _outage_warnings(projects):
        print(f"flank: warning: {warning}", file=sys.stderr)
    for line in _deploy_gaps(projects):
        print(line)
    return 0


def _outage_warnings(projects: list[ProjectPaths]) -> list[str]:
    """What the integrations could not do: failed pings, notifications, notes or site
    builds of each pipeline's newest finished run, and runs still waiting for S3."""
    warnings = []
    for paths in projects:
        for pipeline in paths.pipelines_with_runs():
            last = records.last_run_id(paths, pipeline) or 0
            for run_id in range(last, max(0, last - 5), -1):  # the newest five ids, not a listing of them all
                try:
                    outcomes = records.read_record(paths.run_dir(pipeline, run_id)).after_run
                except (OSError, ValueError):
                    continue
                for step, outcome in outcomes.items():
                    text = str(outcome)
                    failed = text.startswith("error:") or " failed (" in text or "not uploaded" in text
                    if failed and step != "s3":  # S3 is reported below, from what is still pending
                        warnings.append(f"{paths.name}/{pipeline} #{run_id}: {step}: {text}")
                break
        waiting = read_pending(paths)
        if waiting:
            runs = ", ".join(f"{r['pipeline']} #{r['run_id']}" for r in waiting[:5])
            more = f" and {len(waiting) - 5} more" if len(waiting) > 5 else ""
            error = next((r.get("last_error") for r in reversed(waiting) if r.get("last_error")), None)
            why = f" ({error})" if error else ""
            warnings.append(f"{paths.name}: not uploaded to S3 yet: {runs}{more}{why}; {RETRY_HINT}")
    return warnings
