"""flank watch [PIPELINE]: the laptop loop (issue 12).

In a working copy: runs the pipeline (`flank run --local`), then watches the files; on a save
(debounced) re-validates flank.yml (errors with line and column, nothing run) and runs again —
which, with inputs:/outputs:, re-runs just what the save affects. What a run writes itself must
not start another (issue 19 bug 4), so these never count as a save: the pipeline's declared
outputs and artifacts (and the folders made to hold them), files in `persist:` folders that git
does not track (a tracked data file there is the user's to edit), .git/, .flank/, what .gitignore
ignores (asked of git, so its rules are git's), and the temporary files of
editors (`*~`, `.#*`, `*.swp`), knitr (`*.knit.md`, `<report>_files/` beside report.Rmd), sed -i
(`sedXXXXXX`) and RStudio (.Rproj.user/). A save during a run queues one more
run (never two at once, never more than one queued). Ctrl-C stops the watch and the run in
progress (the run is sent SIGTERM, as `flank cancel` does, and waited for: no orphans).

Each run is a child `flank run --local` process in its own session, so only the watch decides
when it stops; its progress lines (one per task as it finishes, with its reason) go to the
terminal as they come.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import subprocess
import sys
import threading
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING

import watchfiles

from flank_ops.config.load import FILENAME, load_config_file
from flank_ops.config.repo_paths import repo_relative
from flank_ops.config.suggest import choices_hint
from flank_ops.errors import ConfigErrors, UserError
from flank_ops.git.gitcmd import ignored_paths, tracked_paths
from flank_ops.paths import STATE_DIR, ProjectPaths
from flank_ops.run.runner import find_working_copy
from flank_ops.site.layout import SiteLayout

if TYPE_CHECKING:
    import watchfiles

    from flank_ops.config.model import Config

DEBOUNCE_MS = 50  # gathers an editor's write-rename-chmod burst into one change
STEP_MS = 20
STOP_GRACE_S = 30.0  # how long a stopped run may take to record itself before it is killed
EDITOR_TEMP_PATTERNS = (
    r"^#.*#$",
    r"^4913$",
    r"\.tmp$",
    r"\.swp?x?$",
    r"\.kate-swp$",
    r"\.bak$",
    r"~$",
    r"^\.#",
    r"\.knit\.md$",  # rmarkdown's intermediate file, deleted when the render ends
    r"\.utf8\.md$",
    r"^sed[A-Za-z0-9]{6}$",  # GNU sed -i writes the new file beside the old under this name
    r"^\.Rhistory$",
)
TOOL_DIRS = (STATE_DIR, ".Rproj.user", ".quarto", ".ipynb_checkpoints")
KNITR_DIR_SUFFIXES = ("_files", "_cache")  # report_files/ beside report.Rmd: knitr's figures while it renders
RENDERED_SUFFIXES = (".Rmd", ".rmd", ".qmd", ".Rmarkdown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "pipeline",
        nargs="?",
        metavar="PIPELINE",
        help="the pipeline to run (may be left out when flank.yml has just one)",
    )


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def _load(working_copy: Path) -> Config:
    return load_config_file(working_copy / FILENAME)


def _pick_pipeline(config: Config, wanted: str | None) -> str:
    names = list(config.pipelines)
    if wanted is None:
        if len(names) == 1:
            return names[0]
        raise UserError(
            "flank.yml has several pipelines: name the one to watch", f"flank watch PIPELINE ({', '.join(names)})"
        )
    if wanted not in config.pipelines:
        raise UserError(f"no pipeline {wanted!r} in flank.yml", choices_hint(wanted, names, "pipelines"))
    return wanted


def written_by_runs(config: Config, pipeline: str) -> list[str]:
    """Repo-relative patterns of what the pipeline's runs write: declared outputs and artifacts."""
    tasks = config.pipelines[pipeline].tasks.values() if pipeline in config.pipelines else []
    return [p for t in tasks for p in (repo_relative(t.dir, o) for o in (*t.outputs, *t.artifacts)) if p]


def make_filter(working_copy: Path, written: list[str]) -> watchfiles.DefaultFilter:
    """The per-path filter; `written` (written_by_runs) is the caller's list, updated in place when
    flank.yml changes. What .gitignore ignores is filtered per batch (unsaved_changes)."""

    class WatchFilter(watchfiles.DefaultFilter):
        def __init__(self) -> None:
            super().__init__(
                ignore_dirs=(*watchfiles.DefaultFilter.ignore_dirs, *TOOL_DIRS),
                ignore_entity_patterns=(*watchfiles.DefaultFilter.ignore_entity_patterns, *EDITOR_TEMP_PATTERNS),
            )
            self.written = written

        def __call__(self, change: watchfiles.Change, path: str) -> bool:
            if not super().__call__(change, path):
                return False
            rel = os.path.relpath(path, working_copy)
            if rel == ".." or rel.startswith(".." + os.sep):
                return False
            parts = rel.split(os.sep)
            if parts[0] in (STATE_DIR, ".git") or _knitr_scratch(working_copy, parts):
                return False
            rel = "/".join(parts)
            for pattern in self.written:
                folder = pattern[:-3] if pattern.endswith("/**") else None
                if rel == pattern or fnmatchcase(rel, pattern) or (folder and rel == folder):
                    return False
                if folder and rel.startswith(folder + "/"):
                    return False
                if pattern.startswith(rel + "/") and not any(c in rel for c in "*?["):
                    return False  # the folder a run makes to hold its outputs (results/ for results/*.png)
            return True

    return WatchFilter()


def _knitr_scratch(working_copy: Path, parts: list[str]) -> bool:
    """`report_files/...` or `report_cache/...` beside a report.Rmd (or .qmd)."""
    for i, part in enumerate(parts[:-1] if len(parts) > 1 else parts):
        for suffix in KNITR_DIR_SUFFIXES:
            if part.endswith(suffix) and len(part) > len(suffix):
                stem = working_copy.joinpath(*parts[:i], part[: -len(suffix)])
                if any(stem.with_name(stem.name + ext).is_file() for ext in RENDERED_SUFFIXES):
                    return True
    return False


def unsaved_changes(working_copy: Path, paths: set[str], persisted: list[str]) -> set[str]:
    """The saves among `paths` (the per-path filter passed them): not what .gitignore ignores, and in
    `persist:` folders (where the pipeline writes) only files git tracks — data the user edits.
    Git's own rules: one `git check-ignore` and one `git ls-files` per batch."""
    inside = {
        p
        for p in paths
        if any((rel := os.path.relpath(p, working_copy)) == f or rel.startswith(f + os.sep) for f in persisted)
    }
    saved = paths - inside
    return (saved - ignored_paths(working_copy, saved)) | tracked_paths(working_copy, inside)


def _watch_files(
    working_copy: Path,
    watch_filter: watchfiles.DefaultFilter,
    persisted: list[str],
    changes: queue.Queue[set[str]],
    stop: threading.Event,
) -> None:
    for batch in watchfiles.watch(
        working_copy,
        watch_filter=watch_filter,
        debounce=DEBOUNCE_MS,
        step=STEP_MS,
        stop_event=stop,
        raise_interrupt=False,
        rust_timeout=500,
    ):
        saved = unsaved_changes(working_copy, {path for _, path in batch}, persisted)
        if saved:
            changes.put(saved)


def _start_run(working_copy: Path, pipeline: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "flank_ops", "run", "--local", pipeline],
        cwd=working_copy,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop_run(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)  # the runner stops make and its tasks, and records the run
    try:
        child.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def run(args: argparse.Namespace) -> int:
    working_copy = find_working_copy(Path.cwd())
    config = _load(working_copy)  # a broken flank.yml at the start: said, and nothing watched
    pipeline = _pick_pipeline(config, args.pipeline)
    site = SiteLayout(ProjectPaths.for_local(working_copy).home.site_dir).home_page()
    written = written_by_runs(config, pipeline)
    persisted = list(config.persist)  # both lists are updated in place when flank.yml changes
    watch_filter = make_filter(working_copy, written)
    print(f"flank: watching {working_copy} for pipeline {pipeline} (Ctrl-C stops)", flush=True)
    print(f"  site: {site}", flush=True)

    changes: queue.Queue[set[str]] = queue.Queue()
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch_files, args=(working_copy, watch_filter, persisted, changes, stop), daemon=True
    )
    old_term = signal.signal(signal.SIGTERM, _raise_stop)
    child: subprocess.Popen[bytes] | None = None
    queued = True  # the first run
    try:
        watcher.start()
        while True:
            if queued and child is None:
                queued = False
                try:
                    config = _load(working_copy)
                    pipeline_now = _pick_pipeline(config, pipeline)
                except ConfigErrors as exc:
                    print(f"flank: {exc}\nflank: not run; fix flank.yml and save it again", flush=True)
                except UserError as exc:
                    print(f"flank: {exc.message}\nflank: not run; fix flank.yml and save it again", flush=True)
                else:
                    written[:] = written_by_runs(config, pipeline_now)
                    persisted[:] = config.persist
                    child = _start_run(working_copy, pipeline_now)
            try:
                saved = changes.get(timeout=0.05)
            except queue.Empty:
                saved = set()
            if saved:
                names = sorted(os.path.relpath(p, working_copy) for p in saved)
                shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                waits = " (runs when the current run ends)" if child is not None and not queued else ""
                print(f"flank: changed: {shown}{waits}", flush=True)
                queued = True
            if child is not None and child.poll() is not None:
                child = None
                if not queued:
                    print(f"flank: watching (site: {site})", flush=True)
            if not watcher.is_alive():
                raise UserError(f"stopped watching {working_copy}: the file watcher ended")
    except (KeyboardInterrupt, _Stop):
        print("\nflank: stopping the watch", flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop.set()
        if child is not None:
            _stop_run(child)
        watcher.join(timeout=2)
        signal.signal(signal.SIGTERM, old_term)
    return 0
