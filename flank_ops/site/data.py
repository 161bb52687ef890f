"""What the site shows, read from the records without reading them all.

The incremental path (a run just changed) must cost the same with 10 or 10,000
past runs, so everything here reads a bounded amount: the tail of
history.jsonl, the first line of it, the `last_id` counter, the pipeline's state
file and the folders of the runs it lists as running. Only the full rebuild walks
every run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from flank_ops import fileio
from flank_ops.config.model import Config, Pipeline
from flank_ops.humanize import page_zone
from flank_ops.paths import STATE_DIR, Home, ProjectPaths
from flank_ops.store import records
from flank_ops.store.model import RunRecord, RunStatus, history_entry

RECENT = 30  # runs in a home-page strip
PAGE_SIZE = 50  # runs per history page
DEPLOYS_ON_PROJECT_PAGE = 8


class Warnings(list):
    """Problems found while building (a corrupt record, an unreadable flank.yml); shown, never fatal."""

    def add(self, message: str) -> None:
        self.append(message)


# --- reading files from the end ---------------------------------------------


def tail_lines(path: Path, count: int) -> list[bytes]:
    """The last `count` non-blank complete lines of a file ([] when there is none)."""
    try:
        tail = fileio.tail_lines(path, count)
    except FileNotFoundError:
        return []
    return [line for _, line in tail.lines if line.strip()][-count:] if count else []


def _json_lines(lines: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a damaged line (e.g. a crash mid-append) is skipped
        if isinstance(entry, dict):
            out.append(entry)
    return out


def history_tail(paths: ProjectPaths, pipeline: str, count: int) -> list[dict[str, Any]]:
    """The newest `count` finished runs' history entries, oldest first."""
    path = paths.runs_dir(pipeline) / records.HISTORY_FILE
    return [e for e in _json_lines(tail_lines(path, count)) if isinstance(e.get("run_id"), int)]


def history_first_id(paths: ProjectPaths, pipeline: str) -> int | None:
    """The oldest run id still in the history (prune rewrites the file, so it is line one)."""
    path = paths.runs_dir(pipeline) / records.HISTORY_FILE
    try:
        with open(path, "rb") as f:
            for _ in range(20):  # skip a few damaged lines at most
                line = f.readline()
                if not line:
                    return None
                entries = _json_lines([line])
                if entries and isinstance(entries[0].get("run_id"), int):
                    return entries[0]["run_id"]
    except FileNotFoundError:
        return None
    return None


def _deploy(entry: dict[str, Any]) -> dict[str, Any]:
    """A deploys.jsonl entry with the fields the pages show, as plain text."""
    out = dict(entry)
    errors = entry.get("errors") or []
    out["errors"] = [str(e) for e in errors] if isinstance(errors, list) else [str(errors)]
    pipelines = entry.get("pipelines") or []
    if isinstance(pipelines, dict):
        pipelines = list(pipelines)
    if isinstance(pipelines, list):
        pipelines = ", ".join(
            p if isinstance(p, str) else str(p.get("name", p)) if isinstance(p, dict) else str(p) for p in pipelines
        )
    out["pipelines"] = str(pipelines)
    for key in ("sha", "short", "message", "author", "ref", "status", "time"):
        out[key] = None if entry.get(key) is None else str(entry[key])
    return out


def deploys_tail(paths: ProjectPaths, count: int) -> list[dict[str, Any]]:
    return [_deploy(d) for d in _json_lines(tail_lines(paths.deploys_log, count))]


def deploy_gap_text(paths: ProjectPaths) -> str | None:
    """Why the deploy branch's tip is not deployed (interrupted, failed, by hand), or None."""
    from flank_ops.store.deploy_state import DEPLOYING, deploy_gap

    try:
        gap = deploy_gap(paths)
    except Exception:  # noqa: BLE001 - a site build never fails on this
        return None
    return None if gap is None or gap.reason == DEPLOYING else gap.message


def with_deploy_gap(paths: ProjectPaths, deployed: dict[str, Any] | None) -> dict[str, Any] | None:
    """`deployed` plus "gap" (deploy_gap_text) when there is one."""
    gap = deploy_gap_text(paths)
    return {**(deployed or {}), "gap": gap} if gap else deployed


def all_deploys(paths: ProjectPaths) -> list[dict[str, Any]]:
    try:
        with open(paths.deploys_log, "rb") as f:
            return [_deploy(d) for d in _json_lines(f.read().splitlines())]
    except FileNotFoundError:
        return []


# --- one run -----------------------------------------------------------------


def load_run_record(paths: ProjectPaths, pipeline: str, run_id: int, warnings: Warnings) -> RunRecord | None:
    """The run record as a page shows it (records.current: a running run with its launchers' results
    merged in and, when its runner died, "interrupted"). None (and a warning) when unreadable."""
    run_dir = paths.run_dir(pipeline, run_id)
    try:
        return records.current(run_dir)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        warnings.add(
            f"{paths.name}/{pipeline} #{run_id}: skipped a damaged run record ({records.record_path(run_dir)}: {exc})"
        )
        return None


def running_records(paths: ProjectPaths, pipeline: str, finished_ids: set[int], warnings: Warnings) -> list[RunRecord]:
    """Runs still going, newest first (those the pipeline's state lists as running, run/state.py)."""
    out = []
    for run_id in sorted(records.read_state(paths, pipeline).running, reverse=True):
        if run_id in finished_ids:
            continue
        record = load_run_record(paths, pipeline, run_id, warnings)
        if record is not None and record.status == RunStatus.RUNNING:
            out.append(record)
    return out


# --- project and pipeline summaries ------------------------------------------


def run_scope(entry: dict[str, Any]) -> dict[str, Any]:
    """A history line (model.history_entry) with "partial", "selected" and "total" filled in: an
    older line without them reads as a full run of unknown size."""
    entry["partial"] = entry.get("partial") is True
    for key in ("selected", "total"):
        if not isinstance(entry.get(key), int):
            entry[key] = None
    return entry


class PipelineView(NamedTuple):
    project: str
    name: str
    config: Pipeline | None  # None when the pipeline is gone from flank.yml but has runs
    next_runs: list[datetime]
    recent: list[dict[str, Any]]  # newest first; history entries and running records
    last_id: int
    first_id: int | None
    last_full: dict[str, Any] | None = None  # the newest full (not partial) run; "completed_by" a rerun
    timezone: str | None = None  # the zone its pages show times in: its project's (project_zone)
    last: dict[str, Any] | None = None  # the last run (records.last_run: never a skipped or queued trigger)


class ProjectView(NamedTuple):
    paths: ProjectPaths
    pipelines: list[PipelineView]
    deployed: dict[str, Any] | None  # the deploy entry of the current commit
    deploys: list[dict[str, Any]]  # newest first, a few
    config_error: str | None
    config: Any  # flank_ops.config.model.Config of the deployed flank.yml, or None
    timezone: str | None = None  # every page of the project is in this zone (project_zone)


def project_zone(config: Config | None) -> str | None:
    """The zone of all a project's pages: its pipelines' when they share one, else the VM's (None)."""
    return page_zone(p.timezone for p in config.pipelines.values()) if config is not None else None


def load_project_config(paths: ProjectPaths, warnings: Warnings) -> tuple[Config | None, str | None]:
    """The deployed Config (git/release_config.py), or None; a problem is a warning, never fatal."""
    from flank_ops.errors import UserError
    from flank_ops.git.release_config import deployed_config

    try:
        return deployed_config(paths), None
    except UserError as exc:
        message = f"{paths.name}: the deployed flank.yml could not be read: {exc.message}"
        warnings.add(message)
        return None, message
    except Exception as exc:  # noqa: BLE001 - a site build never fails on a bad config
        message = f"{paths.name}: the deployed flank.yml could not be read: {exc}"
        warnings.add(message)
        return None, message


def _next_runs(pipeline: Pipeline | None, count: int) -> list[datetime]:
    if pipeline is None or not pipeline.schedule:
        return []
    try:
        from flank_ops.schedule.next_runs import next_runs

        return list(next_runs(pipeline, count=count))
    except Exception:  # noqa: BLE001 - a schedule problem is shown by validation, not here
        return []


def pipeline_names(paths: ProjectPaths, config: Config | None) -> list[str]:
    names = list(config.pipelines) if config else []
    return names + [name for name in paths.pipelines_with_runs() if name not in names]


def pipeline_view(
    paths: ProjectPaths,
    name: str,
    config: Config | None,
    warnings: Warnings,
    history_count: int = RECENT,
    next_count: int = 1,
) -> PipelineView:
    pipeline = config.pipelines.get(name) if config else None
    finished = history_tail(paths, name, history_count)
    finished_ids = {e["run_id"] for e in finished}
    running = [history_entry(r) for r in running_records(paths, name, finished_ids, warnings)]
    recent = [run_scope(e) for e in running + list(reversed(finished))]
    last_id = records.last_run(paths, name)
    full = records.last_full_run(paths, name)
    last_full = None
    if full is not None:  # the run's entry (times, scope), with the status a rerun may have completed
        last_full = {**next((e for e in recent if e["run_id"] == full["run_id"]), {}), **full}
    return PipelineView(
        project=paths.name,
        name=name,
        config=pipeline,
        next_runs=_next_runs(pipeline, next_count),
        recent=recent[: max(history_count, len(running))],
        last_id=records.last_run_id(paths, name) or 0,
        first_id=history_first_id(paths, name),
        last_full=last_full,
        timezone=project_zone(config),
        last=next((e for e in recent if e["run_id"] == last_id), recent[0] if recent else None),
    )


def project_view(paths: ProjectPaths, warnings: Warnings) -> ProjectView:
    config, config_error = load_project_config(paths, warnings)
    views = [pipeline_view(paths, name, config, warnings) for name in pipeline_names(paths, config)]
    deploys = list(reversed(deploys_tail(paths, DEPLOYS_ON_PROJECT_PAGE)))
    deployed = None
    sha = paths.current_sha()
    if sha:
        deployed = next((d for d in deploys if d.get("sha") == sha), None) or {"sha": sha, "short": sha[:7]}
    deployed = with_deploy_gap(paths, deployed)
    return ProjectView(paths, views, deployed, deploys, config_error, config, project_zone(config))


def projects(home: Home) -> list[ProjectPaths]:
    """Every project of this FLANK_HOME; a laptop's .flank/ is one local project."""
    found = [home.project(name) for name in home.projects()]
    if not found and (home.root / "runs").is_dir() and home.root.name == STATE_DIR:
        found = [ProjectPaths.for_local(home.root.parent)]
    return found


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- backfills (issue 23) ------------------------------------------------------------


class BackfillGroup(NamedTuple):
    """A backfill's runs among a pipeline page's newest, for the page to show together."""

    id: str
    status: str  # running, done, cancelled, interrupted (schedule/backfill.py)
    total: int  # the runs it plans
    runs: list[dict[str, Any]]  # its runs on the page, newest first
    counts: dict[str, int]  # run status -> how many of `runs`


def backfill_groups(paths: ProjectPaths, pipeline: str, recent: list[dict[str, Any]]) -> list[BackfillGroup]:
    """The backfills that have runs among `recent` (newest first), with their plans' size and status."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for entry in recent:
        if isinstance(entry.get("backfill"), str):
            by_id.setdefault(entry["backfill"], []).append(entry)
    if not by_id:
        return []  # most pages: no backfill, and no need to import its module (polish c)
    from flank_ops.errors import UserError
    from flank_ops.schedule.backfill import DONE, RUNNING, read_backfill

    groups = []
    for backfill_id, runs in by_id.items():
        try:
            state = read_backfill(paths, pipeline, backfill_id)
        except UserError:
            state = {}
        counts: dict[str, int] = {}
        for r in runs:
            counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
        total = len(state.get("minutes") or []) or len(runs)
        status = str(state.get("status") or "?")
        if status == RUNNING and len(state.get("runs") or {}) == total and RunStatus.RUNNING not in counts:
            status = DONE  # its last run has ended; the driver writes so just after this page
        groups.append(BackfillGroup(backfill_id, status, total, runs, counts))
    return groups
