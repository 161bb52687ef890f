"""flank prune: remove old runs (records, logs and their site pages), and setup builds no kept release uses.

A run is kept when it is among the newest --keep N, or younger than
--keep-days D (either rule keeps it), or still running. Defaults come from
flank.toml:  [prune] keep = 200, keep_days = 90  (per project under [projects.NAME.prune]).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flank_ops.deploy.setup import prune_builds, pruned_line
from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_bytes, locked
from flank_ops.finish.reconcile import reconcile
from flank_ops.git.notes import mark_pruned
from flank_ops.paths import Home, ProjectPaths
from flank_ops.settings import settings_for
from flank_ops.site.build import after_prune
from flank_ops.store import records
from flank_ops.store.model import history_entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", metavar="PROJECT", help="only this project (default: every project)")
    parser.add_argument("--keep", type=int, metavar="N", help="keep the newest N runs of each pipeline")
    parser.add_argument("--keep-days", type=float, metavar="D", help="keep runs that started less than D days ago")
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")


def run(args: argparse.Namespace) -> int:
    home = Home()
    if args.project:
        names = [home.project(args.project).require().name]
    else:
        names = home.projects()
        if not names:
            print(f"flank: no projects in {home.root}")
            return 0
    for name in names:
        paths = home.project(name)
        keep, keep_days = _retention(args, settings_for(home, name).get("prune") or {})
        for pipeline in paths.pipelines_with_runs():
            removed, kept = prune_pipeline(paths, pipeline, keep=keep, keep_days=keep_days, dry_run=args.dry_run)
            verb = "would remove" if args.dry_run else "removed"
            if removed:
                print(
                    f"flank: {name}/{pipeline}: {verb} {len(removed)} run{'s' if len(removed) != 1 else ''} "
                    f"({_ranges(removed)}), kept {kept}"
                )
                if not args.dry_run:
                    after_prune(paths, pipeline, removed)
                    if paths.bare_repo.is_dir():
                        mark_pruned(paths, pipeline, removed)  # their note lines link the pipeline page
            else:
                print(f"flank: {name}/{pipeline}: nothing to remove ({kept} run{'s' if kept != 1 else ''} kept)")
        prune_setup_builds(paths, args.dry_run)
    return 0


def prune_setup_builds(paths: ProjectPaths, dry_run: bool) -> None:
    """issue 28 item 8: setup's builds that no kept release uses (deploys prune them too)."""
    with locked(paths.lock_file("deploy")):  # never while a deploy or a push's setup makes a build
        removed = prune_builds(paths, dry_run=dry_run)
    if removed:
        print(f"flank: {paths.name}: {pruned_line(removed, 'would remove' if dry_run else 'removed')}")


def _retention(args: argparse.Namespace, configured: dict[str, Any]) -> tuple[int | None, float | None]:
    keep = args.keep if args.keep is not None else configured.get("keep")
    keep_days = args.keep_days if args.keep_days is not None else configured.get("keep_days")
    if keep is None and keep_days is None:
        raise UserError(
            "say which runs to keep",
            "e.g. flank prune --keep 200 --keep-days 90, or set [prune] keep / keep_days in flank.toml",
        )
    try:
        keep = None if keep is None else int(keep)
        keep_days = None if keep_days is None else float(keep_days)
    except (TypeError, ValueError):
        raise UserError("[prune] keep and keep_days in flank.toml must be numbers") from None
    if (keep is not None and keep < 0) or (keep_days is not None and keep_days < 0):
        raise UserError("--keep and --keep-days cannot be negative")
    return keep, keep_days


def _ranges(ids: list[int]) -> str:
    """#1–#40, #45 — compact and exact."""
    ids = sorted(ids)
    out = []
    start = prev = ids[0]
    for i in [*ids[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(f"#{start}" if start == prev else f"#{start}–#{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(out)


def prune_pipeline(
    paths: ProjectPaths,
    pipeline: str,
    *,
    keep: int | None,
    keep_days: float | None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> tuple[list[int], int]:
    """Remove the runs the retention rules do not keep. Returns (removed ids, number kept)."""
    if not dry_run:
        reconcile(paths, pipeline)  # a dead "running" run becomes interrupted, and so prunable
    now = now or datetime.now(UTC)
    with locked(paths.lock_file("run-id", pipeline)):
        ids = records.list_run_ids(paths, pipeline)
        history = {e["run_id"]: e for e in records.read_history(paths, pipeline)}
        newest = set(sorted(ids, reverse=True)[:keep]) if keep is not None else set()
        cutoff = now - timedelta(days=keep_days) if keep_days is not None else None
        removed = []
        for run_id in ids:
            if run_id in newest:
                continue
            entry = history.get(run_id)
            if entry is None:
                try:
                    entry = history_entry(records.read_record(paths.run_dir(pipeline, run_id)))
                except (OSError, ValueError):
                    entry = {}  # damaged: judged by its folder's age below
            if entry.get("status") == "running" or (not entry and _recently_touched(paths, pipeline, run_id, now)):
                continue  # never pull a live run's folder from under it
            if cutoff is not None and _run_time(entry, paths.run_dir(pipeline, run_id)) >= cutoff:
                continue
            if keep is None and cutoff is None:
                continue
            removed.append(run_id)
        if removed and not dry_run:
            # the history first, so no page or index ever points at a removed folder
            _rewrite_history(paths.runs_dir(pipeline) / records.HISTORY_FILE, set(removed))
            for run_id in removed:
                shutil.rmtree(paths.run_dir(pipeline, run_id), ignore_errors=True)
    return removed, len(ids) - len(removed)


def _run_time(entry: dict[str, Any], run_dir: Path) -> datetime:
    for key in ("started_at", "ended_at"):
        try:
            value = datetime.fromisoformat(entry[key])
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        except (KeyError, TypeError, ValueError):
            continue
    try:
        return datetime.fromtimestamp(os.stat(run_dir).st_mtime, UTC)
    except OSError:
        return datetime.fromtimestamp(0, UTC)


def _recently_touched(paths: ProjectPaths, pipeline: str, run_id: int, now: datetime) -> bool:
    """A folder without a readable record may be a run starting right now."""
    try:
        mtime = datetime.fromtimestamp(os.stat(paths.run_dir(pipeline, run_id)).st_mtime, UTC)
    except OSError:
        return False
    return now - mtime < timedelta(hours=1)


def _rewrite_history(path: Path, removed: set[int]) -> None:
    """Drop removed runs from history.jsonl in one atomic replace.

    Runners append without the lock; a line appended while we rewrite is
    picked up by re-reading the tail just before the rename.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return
    for _ in range(5):
        kept = [line for line in data.splitlines(keepends=True) if _history_id(line) not in removed]
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            size = len(data)
        if size != len(data):
            with open(path, "rb") as f:
                data = f.read()
            continue
        out = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in kept)
        atomic_write_bytes(path, out)
        return
    atomic_write_bytes(path, b"".join(kept))


def _history_id(line: bytes) -> int | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry.get("run_id") if isinstance(entry, dict) else None
