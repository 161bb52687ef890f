"""flank status [PROJECT]: the last run of every pipeline, and the next one.

A run still going is shown before triggers that came after it (`#5 running; #6
skipped`), a partial run (--task/--from/--rerun) says so and names the last full
run's status, and times are in the project's zone (humanize.page_zone: its pipelines' shared
`timezone:`, else the VM's), zone named, in one format.
Looking also tidies: runs whose runner died are marked interrupted first.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from flank_ops import jsonout
from flank_ops.config.load import FILENAME, load_config_file
from flank_ops.deploy.deploy import attempt, rebuild_site
from flank_ops.errors import UserError
from flank_ops.executors.cleanup import left_running_text, live_jobs
from flank_ops.finish.reconcile import reconcile
from flank_ops.git.release_config import deployed_config
from flank_ops.humanize import NOTE, clock, page_zone
from flank_ops.humanize import duration as format_duration
from flank_ops.jsonout import FLAG_HELP
from flank_ops.paths import Home, NoSuchProject, ProjectPaths
from flank_ops.run.runner import find_working_copy
from flank_ops.schedule.next_runs import next_runs
from flank_ops.settings import settings_for, site_url
from flank_ops.site.layout import run_page_url
from flank_ops.storage.uploads import RETRY_HINT
from flank_ops.store import records
from flank_ops.store.deploy_log import entry_reason, read_deploys
from flank_ops.store.deploy_state import INTERRUPTED, deploy_gap
from flank_ops.store.model import is_partial, parse_iso, selected_tasks
from flank_ops.store.pending import read_pending

if TYPE_CHECKING:
    from flank_ops.config.model import Config, Pipeline
    from flank_ops.paths import ProjectPaths
    from flank_ops.store.model import RunRecord


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", help="just this project (default: every project)")
    parser.add_argument("--local", action="store_true", help="the runs of the current working copy (.flank/)")
    parser.add_argument("--json", action="store_true", help=FLAG_HELP)
    parser.add_argument(
        "--runs", type=int, default=0, metavar="N", help="with --json: also each pipeline's N newest finished runs"
    )


def _started(record: RunRecord, tz: str | None) -> str:
    return clock(record.started_at, tz, NOTE) if record.started_at else "-"


def _duration(record: RunRecord) -> str:
    if record.status == "running":
        started = parse_iso(record.started_at)
        if started is None:
            return "-"
        return f"{format_duration((datetime.now(UTC) - started).total_seconds())} so far"
    return format_duration(record.duration_s)


def _first_next_run(pipeline: Pipeline) -> datetime | None | Exception:
    """The pipeline's next scheduled run, None when there is none, the error when its schedule cannot say."""
    try:
        upcoming = next_runs(pipeline, 1)
    except Exception as exc:  # noqa: BLE001 - a schedule problem must not hide the runs
        return exc
    return upcoming[0] if upcoming else None


def _next_run(pipeline: Pipeline, tz: str | None) -> str:
    upcoming = _first_next_run(pipeline)
    if isinstance(upcoming, Exception):
        return "?"
    if upcoming is None:
        return "-" if not pipeline.schedule else "?"
    return clock(upcoming, tz, NOTE)


def _partial(paths: ProjectPaths, name: str, record: RunRecord) -> str:
    """' (partial: 1 of 13 tasks; last full run #8 failed)' for a run of part of the pipeline."""
    if not is_partial(record):
        return ""
    part = f"partial: {len(selected_tasks(record))} of {len(record.tasks)} tasks"
    full = records.last_full_run(paths, name, before=record.run_id + 1)
    last_full = f"last full run #{full['run_id']} {full['status']}" if full else "no full run yet"
    if full and full.get("completed_by") is not None:
        by = "this rerun" if full["completed_by"] == record.run_id else f"rerun #{full['completed_by']}"
        last_full += f", completed by {by}"
    return f" ({part}; {last_full})"


def _later(record: RunRecord) -> str:
    """How a trigger that came while another run went is shown after it: '#6 skipped', '#7 queued'."""
    if record.status == "running" and record.waiting_for is not None:
        return f"#{record.run_id} queued"
    return f"#{record.run_id} {record.status}"


def _rows_for(paths: ProjectPaths, config: Config) -> list[list[str]]:
    rows = []
    zone = page_zone(p.timezone for p in config.pipelines.values())
    for name, pipeline in config.pipelines.items():
        reconcile(paths, name)
        newest = records.last_run_id(paths, name)
        next_run = "-" if paths.local else _next_run(pipeline, zone)
        if newest is None:
            rows.append([paths.name, name, "-", "never run", "-", "-", next_run])
            continue
        shown = records.last_run(paths, name) or newest  # every trigger skipped so far: the newest
        try:
            record: RunRecord | None = records.read_record(paths.run_dir(name, shown))
        except (OSError, ValueError):
            record = None
        later: list[str] = []
        if record is None or record.status == "running":  # triggers that came while it goes
            after = range(shown + 1, newest + 1)
            for run_id in after[:2] if len(after) > 3 else after:  # a run going for days: not every skip
                try:
                    later.append(_later(records.read_record(paths.run_dir(name, run_id))))
                except (OSError, ValueError):
                    later.append(f"#{run_id} unreadable")
            if len(after) > 3:
                later.append(f"and {len(after) - 2} later triggers")
        if record is None:
            rows.append([paths.name, name, f"#{shown}", "; ".join(["unreadable", *later]), "-", "-", next_run])
            continue
        waiting = " (queued)" if record.waiting_for is not None else ""
        status = str(record.status) + waiting + _partial(paths, name, record)
        rows.append(
            [
                paths.name,
                name,
                f"#{record.run_id}",
                "; ".join([status, *later]),
                _started(record, zone),
                _duration(record),
                next_run,
            ]
        )
    return rows


def _left_jobs(paths: ProjectPaths, config: Config) -> list[str]:
    """issue 26: 'demo nightly #7 interrupted — 2 jobs still running on slurm: flank run demo nightly
    --resume 7' for each pipeline whose last run was interrupted while its cluster jobs went on."""
    lines = []
    for name in config.pipelines:
        run_id = records.last_run(paths, name)
        if run_id is None:
            continue
        run_dir = paths.run_dir(name, run_id)
        try:
            record = records.read_record(run_dir)
        except (OSError, ValueError):
            continue
        if record.status == "interrupted" and (live := live_jobs(run_dir, record, adoptable_only=True)):
            lines.append(f"{paths.name} {name} #{run_id} interrupted — {left_running_text(paths, record, live)}")
    return lines


def _table(rows: list[list[str]], next_run: bool = True) -> str:
    header = ["PROJECT", "PIPELINE", "LAST RUN", "STATUS", "STARTED", "DURATION", "NEXT RUN"]
    if not next_run:  # a working copy is never scheduled: no NEXT RUN column at all
        header, rows = header[:-1], [r[:-1] for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _not_deployed(paths: ProjectPaths) -> str:
    """Why a project has nothing deployed: never pushed, or its last push was refused or its deploy
    failed (issue 19 bug 7: a failed first setup is not "no deploy yet"); the details follow the table."""
    last = None
    for entry in read_deploys(paths):  # only for a project with nothing deployed: a short file
        if entry.get("status") in ("failed", "rejected"):
            last = entry
        elif entry.get("status") == "accepted":
            last = None
    if last is None:
        return "no deploy yet (git push flank main)"
    what = "failed to deploy" if last["status"] == "failed" else "was refused"
    reason = entry_reason(last).splitlines()[0] if entry_reason(last) else "?"  # one line of the table
    return f"not deployed: the last push ({last.get('short') or '?'}) {what}: {reason}"


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
    if args.runs and not args.json:
        raise UserError(
            "--runs goes with --json", "the history is on the status site, or: flank status --json --runs N"
        )
    if args.local:
        working_copy = find_working_copy(Path.cwd())
        local = ProjectPaths.for_local(working_copy)
        if args.json:
            _emit_json([(local, load_config_file(working_copy / FILENAME))], args.runs, [])
            return 0
        print(_table(_rows_for(local, load_config_file(working_copy / FILENAME)), next_run=False))
        return 0
    home = Home()
    if args.project:
        projects = [home.project(args.project).require()]
    else:
        projects = [home.project(p) for p in home.projects()]
        if not projects:  # NoSuchProject: typed in a laptop clone, main.py points at `flank remote status`
            raise NoSuchProject(f"no projects in {home.root}", "create one with: flank init NAME")
    if args.json:
        _emit_json([(p, deployed_config(p)) for p in projects], args.runs, _outage_warnings(projects))
        return 0
    rows: list[list[str]] = []
    left: list[str] = []
    for paths in projects:
        config = deployed_config(paths)
        if config is None:
            rows.append([paths.name, "-", "-", _not_deployed(paths), "-", "-", "-"])
            continue
        rows += _rows_for(paths, config)
        left += _left_jobs(paths, config)
    print(_table(rows))
    for line in left:
        print(line)
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


def _emit_json(projects: list[tuple[ProjectPaths, Config | None]], runs: int, warnings: list[str]) -> None:
    """`flank status --json`: each pipeline with its last run's record (the one the table shows)."""
    answer = []
    for paths, config in projects:
        pipelines = []
        for name, pipeline in (config.pipelines if config is not None else {}).items():
            reconcile(paths, name)
            last = records.last_run_id(paths, name)
            record: RunRecord | None = None
            if last is not None:
                try:
                    record = records.read_record(paths.run_dir(name, records.last_run(paths, name) or last))
                except (OSError, ValueError):
                    record = None
            pipelines.append(
                {
                    "pipeline": name,
                    "next_run": _next_run_iso(pipeline),
                    "last_run_id": last,
                    "run": jsonout.record(record),
                    "partial": bool(record is not None and is_partial(record)),
                    "url": _run_page(paths, record),
                    "runs": _history(paths, name, runs) if runs else [],
                }
            )
        answer.append(
            {"project": paths.name, "deployed": config is not None, "site": _site(paths), "pipelines": pipelines}
        )
    jsonout.emit("status", projects=answer, warnings=warnings)


def _next_run_iso(pipeline: Pipeline) -> str | None:
    upcoming = _first_next_run(pipeline)
    return upcoming.isoformat() if isinstance(upcoming, datetime) else None


def _site(paths: ProjectPaths) -> dict[str, object]:
    """The status site's address, and whether flank.toml sets it (else it is the VM's own, reached by a tunnel)."""
    try:
        settings = settings_for(Home(), paths.name)
    except UserError:
        settings = {}
    return {"url": site_url(settings), "configured": bool(settings.get("site_url"))}


def _run_page(paths: ProjectPaths, record: RunRecord | None) -> str | None:
    """The run's page on the status site (site/layout.py); None for a working copy's run or a broken flank.toml."""
    if record is None or record.local:
        return None
    return run_page_url(Home(), paths.name, record.pipeline, record.run_id)


def _history(paths: ProjectPaths, pipeline: str, n: int) -> list[dict[str, object]]:
    """The N newest finished runs, newest first: their history lines (model.history_entry)."""
    entries = list(records.read_history(paths, pipeline))
    return list(reversed(entries[-n:]))
