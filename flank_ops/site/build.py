"""Building the status site from the records.

Three entry points, called by the deploy hook, the runner and `flank site`:

    after_deploy(home, project)           home, project, pushes and pipeline pages
    draw_run(paths, pipeline, run_id)     that run's pages, its pipeline's first history page
                                          and run-id page, the project and home pages
    draw_progress(paths, pipeline, run_id)   while it runs: its pages, the project and home pages
    rebuild_all(home)                     everything, from the records (the site is disposable)

draw_run reads a bounded amount whatever the number of past runs (see data.py).
Every file is replaced atomically; a damaged record becomes a visible warning
(stderr and the page), never a failed build.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from flank_ops.config.model import Config
from flank_ops.executors.cleanup import dead_run_hook
from flank_ops.fileio import PUBLIC_FILE_MODE, atomic_write_bytes, atomic_write_text, public_folder
from flank_ops.hints import flank_command
from flank_ops.humanize import page_zone
from flank_ops.paths import Home, ProjectPaths
from flank_ops.site import layout, remote_tasks
from flank_ops.site.data import (
    PAGE_SIZE,
    RECENT,
    ProjectView,
    Warnings,
    backfill_groups,
    history_tail,
    load_run_record,
    now_utc,
    pipeline_view,
    project_view,
    project_zone,
    projects,
    run_scope,
)
from flank_ops.site.outputs import latest_outputs, run_outputs
from flank_ops.store import records
from flank_ops.store.model import (
    FAILED_TASK_STATUSES,
    FINAL_TASK_STATUSES,
    LIVE_TASK_STATUSES,
    OUTCOME_RUN_STATUSES,
    RunRecord,
    RunStatus,
    TaskStatus,
    params_text,
    triggered_by_text,
)

GZIP_ABOVE = 1024 * 1024  # a finished task's log bigger than this also gets a .gz copy to download
# Task statuses whose last lines the run page shows under the status ("why did it fail").
_EXCERPT_STATUSES = FAILED_TASK_STATUSES | {TaskStatus.INTERRUPTED}
# after_run outcomes read "<what> failed (<why>)", "error: ..." or "s3: not uploaded: ...".
_AFTER_RUN_PROBLEM = re.compile(r"failed \(|^error: |not uploaded", re.IGNORECASE)


def after_run_problems(after_run: dict[str, str]) -> list[str]:
    """What the run page says of the after-run steps: only the ones that went wrong ("notify failed
    (...)" names its step already; "error: ..." does not)."""
    return [
        text if text.lower().startswith(str(step).lower()) else f"{step}: {text}"
        for step, text in ((step, str(text)) for step, text in after_run.items())
        if _AFTER_RUN_PROBLEM.search(text)
    ]


class BuildStats(NamedTuple):
    pages: int
    runs: int
    skipped_runs: int  # unchanged since their pages were written (incremental `flank site`)
    warnings: list[str]


class _Writer:
    """Writes pages under the site folder and counts them."""

    def __init__(self, site_dir: Path, *, force: bool = False) -> None:
        self.site = Path(site_dir)
        self.pages = 0
        self.force = force  # rewrite pages even when their inputs look unchanged
        self._public: set[Path] = set()  # folders known to be 0755

    def folder(self, path: Path) -> None:
        """The site is readable by others (a web server): its folders 0755, see fileio.py."""
        if path not in self._public:
            public_folder(path, self.site)
            self._public.update([path, *path.parents])

    def is_current(self, url: str, fingerprint: str) -> bool:
        """Was this page written from inputs with this fingerprint? (read from its last bytes)"""
        if self.force:
            return False
        try:
            with open(self.site / _unquote(url), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 200))
                return f.read().endswith(_fingerprint_comment(fingerprint).encode())
        except OSError:
            return False

    def page(self, url: str, html: str) -> None:
        # Pages are disposable (rebuilt from the records): atomic, but no fsync.
        target = self.site / _unquote(url)
        self.folder(target.parent)
        atomic_write_text(target, html, durable=False, public=True)
        self.pages += 1

    def css(self) -> None:
        from flank_ops.site.pages import stylesheet

        target = self.site / layout.url_css()
        data = stylesheet()
        self.folder(target.parent)
        try:
            if target.read_bytes() == data and stat.S_IMODE(target.stat().st_mode) == PUBLIC_FILE_MODE:
                return
        except OSError:
            pass
        atomic_write_bytes(target, data, durable=False, public=True)

    def actions_js(self) -> None:
        """issue 23: the few lines that reveal the action buttons, only on a site that has them."""
        from flank_ops.site.pages import actions_on, actions_script

        if not actions_on():
            return
        target = self.site / layout.url_actions_js()
        data = actions_script()
        try:
            if target.read_bytes() == data:
                return
        except OSError:
            pass
        atomic_write_bytes(target, data, durable=False, public=True)


def _fingerprint_comment(fingerprint: str) -> str:
    return f"<!-- flank-inputs {fingerprint} -->\n"


def _unquote(url: str) -> str:
    from urllib.parse import unquote

    return unquote(url)


def _say(warnings: Iterable[str]) -> None:
    for w in warnings:
        print(f"flank: warning: {w}", file=sys.stderr)


# --- pages -------------------------------------------------------------------


def _publish_raw_log(src: Path, dst: Path) -> None:
    """Put the raw log in the site as .txt: a hard link (free, and it grows with a live log), else a copy."""
    try:
        if dst.exists() and os.path.samestat(dst.stat(), src.stat()):
            if stat.S_IMODE(dst.stat().st_mode) != PUBLIC_FILE_MODE:
                os.chmod(dst, PUBLIC_FILE_MODE)
            return
    except OSError:
        pass
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or links not allowed: copy instead
        shutil.copyfile(src, tmp)
    # Readable on the site (nginx); a hard link shares the mode with the run's log, which
    # stays out of others' reach in the run folder (0700).
    os.chmod(tmp, PUBLIC_FILE_MODE)
    os.replace(tmp, dst)


def _publish_gzip(src: Path, dst: Path) -> bool:
    """A gzip copy of a finished task's big log, made once (a rebuild finds it there)."""
    import gzip

    try:
        if dst.stat().st_mtime_ns >= src.stat().st_mtime_ns:
            return True
    except OSError:
        pass
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        with (
            open(src, "rb") as fin,
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename=src.name, mode="wb", fileobj=raw, compresslevel=6, mtime=0) as fout,
        ):
            shutil.copyfileobj(fin, fout, 1024 * 1024)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never a half-written copy
        raise
    return True


def _write_run(
    w: _Writer,
    paths: ProjectPaths,
    pipeline: str,
    run_id: int,
    warnings: Warnings,
    tz: str | None = None,
    record: RunRecord | None = None,
) -> bool:
    """The run page and its log pages (times in zone `tz`), from `record` when the caller holds it
    (the after-run step: the final record), else as the run is now (records.current). False when
    the run folder is gone.

    A record that cannot be drawn (odd values a crash or an old version left)
    becomes a warning, never a failed build.
    """
    try:
        return _write_run_pages(w, paths, pipeline, run_id, warnings, tz, record)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise  # the disk, not the record: the user must hear about it
        warnings.add(f"{paths.name}/{pipeline} #{run_id}: skipped, its record could not be shown ({exc!r})")
        return False


def _write_run_pages(
    w: _Writer,
    paths: ProjectPaths,
    pipeline: str,
    run_id: int,
    warnings: Warnings,
    tz: str | None = None,
    held: RunRecord | None = None,
) -> bool:
    from flank_ops.site.logs import LIVE_LINES, log_excerpt
    from flank_ops.site.pages import render
    from flank_ops.site.reasons import task_reasons
    from flank_ops.site.svg import DagNode, GanttBar, dag_svg, gantt_svg

    run_dir = paths.run_dir(pipeline, run_id)
    if not run_dir.is_dir():
        return False
    project = paths.name
    url = layout.url_run(project, pipeline, run_id)
    root = layout.depth_prefix(url)
    crumbs = [(project, layout.url_project(project)), (pipeline, layout.url_pipeline(project, pipeline))]
    before = len(warnings)
    record = held if held is not None else load_run_record(paths, pipeline, run_id, warnings)
    if record is None:
        problem = warnings[-1] if len(warnings) > before else "run.json is missing (the run may be starting)"
        w.page(
            url,
            render(
                "run.html",
                url,
                project_name=project,
                pipeline=pipeline,
                run_id=run_id,
                record=None,
                problem=problem,
                run_dir=str(run_dir),
                crumbs=crumbs,
                tz=tz,
            ),
        )
        return True

    running = record.status == RunStatus.RUNNING
    tasks = []
    failures = []  # the failed tasks' last lines, shown under the status
    live = []  # the running tasks' last lines, while the run goes on
    nodes = []
    bars = []
    for name, t in record.tasks.items():
        status = t.status
        log_file = records.task_log_file(run_dir, name, t)
        try:
            log_size = log_file.stat().st_size
        except OSError:
            log_size = None
        # An empty log gets no page ("no output" on the run page): a page per silent
        # task was most of the cost of drawing a big run.
        has_log = bool(log_size)
        log_href = root + layout.url_log(project, pipeline, run_id, name) if has_log else None
        task = {
            "name": name,
            "status": str(status),
            "attempts": t.attempts,
            "duration_s": t.duration_s,
            "exit_code": t.exit_code,
            "peak_rss_kb": t.peak_rss_kb,
            "has_log": has_log,
            "no_output": log_size == 0 and status in FINAL_TASK_STATUSES,
            "error": str(t.error) if t.error else None,
        }
        tasks.append(task)
        if status in _EXCERPT_STATUSES:
            failures.append({**task, "excerpt": log_excerpt(log_file) if has_log else None})
        elif status == TaskStatus.RUNNING and running:
            live.append({**task, "excerpt": log_excerpt(log_file, LIVE_LINES) if has_log else None})
        nodes.append(DagNode(name, tuple(str(n) for n in t.needs), str(status), log_href))
        bars.append(GanttBar(name, str(status), t.started_at, t.ended_at, log_href))
        if has_log:
            task["gz"] = _write_log(w, paths, pipeline, run_id, name, status, log_file, running, crumbs, tz)

    problems = after_run_problems(record.after_run)
    outputs = run_outputs(w, paths, pipeline, run_id, record, root)
    if outputs:  # issue 28: the run page shows a bounded number of images; this page shows them all
        all_url = layout.url_run_outputs(project, pipeline, run_id)
        w.page(
            all_url,
            render(
                "outputs.html",
                all_url,
                project_name=project,
                pipeline=pipeline,
                run_id=run_id,
                record=record,
                tz=tz,
                outputs=run_outputs(w, paths, pipeline, run_id, record, root, inline_limit=10**6, open_per_task=10**6),
                all_outputs_page=True,
                crumbs=[*crumbs, (f"#{run_id}", url)],
            ),
        )
    w.page(
        url,
        render(
            "run.html",
            url,
            project_name=project,
            pipeline=pipeline,
            run_id=run_id,
            record=record,
            triggered_by=triggered_by_text(record.triggered_by),
            tasks=tasks,
            failures=failures,
            live=live,
            after_run_problems=problems,
            tz=tz,
            outputs=outputs,
            dag=dag_svg(nodes, f"Tasks of {pipeline} #{run_id}", paths.home.dag_layouts_dir),
            gantt=gantt_svg(bars, record.started_at, record.ended_at, now_utc()),
            refresh=running,
            crumbs=crumbs,
            warnings=warnings[before:],
            remote=remote_tasks.remote_rows(record),  # issue 14
            params=params_text(record),  # issue 23
            reasons=task_reasons(record),
        ),
    )
    return True


def _write_log(
    w: _Writer,
    paths: ProjectPaths,
    pipeline: str,
    run_id: int,
    task: str,
    status: TaskStatus,
    log_file: Path,
    running: bool,
    crumbs: list[tuple[str, str]],
    tz: str | None = None,
) -> bool:
    """The log page (and the raw log beside it); True when a .gz copy is linked."""
    from flank_ops.site.logs import log_view, times_path
    from flank_ops.site.pages import render

    project = paths.name
    url = layout.url_log(project, pipeline, run_id, task)
    raw_log = w.site / _unquote(layout.url_raw_log(project, pipeline, run_id, task))
    w.folder(raw_log.parent)
    _publish_raw_log(log_file, raw_log)
    # A log page depends only on its log and its task's status: during and after a
    # run, the pages of tasks that did not change are not drawn again.
    refresh = running and status in LIVE_TASK_STATUSES
    st = log_file.stat()
    gz = False
    if st.st_size > GZIP_ABOVE and status in FINAL_TASK_STATUSES:
        gz = _publish_gzip(log_file, w.site / _unquote(layout.url_raw_log_gz(project, pipeline, run_id, task)))
    try:
        tst = times_path(log_file).stat()
        times = f"{tst.st_size}:{tst.st_mtime_ns}"
    except OSError:
        times = "-"
    fingerprint = f"{status}:{int(refresh)}:{st.st_size}:{st.st_mtime_ns}:{times}:{int(gz)}:{tz}"
    if w.is_current(url, fingerprint):
        return gz
    w.page(
        url,
        render(
            "log.html",
            url,
            project_name=project,
            pipeline=pipeline,
            run_id=run_id,
            task=task,
            status=str(status),
            view=log_view(log_file),
            refresh=refresh,
            gz=gz,
            tz=tz,
            crumbs=[*crumbs, (f"#{run_id}", layout.url_run(project, pipeline, run_id))],
        )
        + _fingerprint_comment(fingerprint),
    )
    return gz


def _archives(first_id: int | None, last_id: int) -> list[tuple[int, int, int]]:
    """(number, first, last) of every run-id page, newest first."""
    if first_id is None or last_id < 1:
        return []
    lo_n, hi_n = layout.archive_number(first_id), layout.archive_number(max(first_id, last_id))
    return [(n, *layout.archive_range(n)) for n in range(hi_n, lo_n - 1, -1)]


def _archive_nav(archives: list[tuple[int, int, int]], current: int | None = None) -> list:
    """The run-id pages a page links to: the newest few, those around `current` and the
    oldest, with None for each gap — so a page costs the same with 200 pages as with 5."""
    if len(archives) <= 12:
        return list(archives)
    keep = set(range(6)) | {len(archives) - 1}
    numbers = [n for n, _, _ in archives]
    if current in numbers:
        at = numbers.index(current)
        keep |= set(range(at - 2, at + 3))
    out: list = []
    previous = None
    for i in sorted(i for i in keep if 0 <= i < len(archives)):
        if previous is not None and i != previous + 1:
            out.append(None)
        out.append(archives[i])
        previous = i
    return out


def _write_pipeline_index(
    w: _Writer, paths: ProjectPaths, name: str, config: Config | None, warnings: Warnings
) -> list[dict]:
    """The pipeline page; returns its newest runs (newest first)."""
    from flank_ops.site.grid import task_grid
    from flank_ops.site.pages import render
    from flank_ops.site.svg import DagNode, TrendPoint, dag_svg, trend_svg

    project = paths.name
    url = layout.url_pipeline(project, name)
    root = layout.depth_prefix(url)
    pv = pipeline_view(paths, name, config, warnings, history_count=PAGE_SIZE, next_count=5)
    _link_runs(w, paths, name, pv.recent, pv.timezone)
    dag = ""
    if pv.config is not None:
        dag = dag_svg(
            [DagNode(t, pv.config.tasks[t].needs) for t in pv.config.topological_order()],
            f"Tasks of {name}",
            paths.home.dag_layouts_dir,
        )
    grid = task_grid(paths, name, pv.recent, pv.config.topological_order() if pv.config is not None else [])
    # the duration trend compares like with like: a partial run is not a shorter full one
    finished = [r for r in reversed(pv.recent) if r.get("status") in OUTCOME_RUN_STATUSES and not r.get("partial")]
    trend = trend_svg(
        [
            TrendPoint(r["run_id"], r["status"], r.get("duration_s"), root + layout.url_run(project, name, r["run_id"]))
            for r in finished
        ]
    )
    newest = max([pv.last_id, *(r["run_id"] for r in pv.recent)], default=0)
    w.page(
        url,
        render(
            "pipeline.html",
            url,
            project_name=project,
            pipeline=name,
            start_command=flank_command("run", None if paths.local else project, name, on_page=True),
            config=pv.config,
            next_runs=pv.next_runs,
            dag=dag,
            trend=trend,
            runs=pv.recent,
            archives=_archive_nav(_archives(pv.first_id, newest)),
            archive=None,
            refresh=any(r.get("status") == RunStatus.RUNNING for r in pv.recent),
            tz=pv.timezone,
            last_full=pv.last_full,
            crumbs=[(project, layout.url_project(project))],
            grid=grid,
            latest=latest_outputs(w, paths, name, pv.recent, root, pv.config),
            backfills=backfill_groups(paths, name, pv.recent),  # issue 23
        ),
    )
    return pv.recent


def _link_runs(w: _Writer, paths: ProjectPaths, pipeline: str, runs: list[dict], tz: str | None) -> None:
    """Make sure every run a page links to has its page: a run seen before its first
    drawing gets drawn now; one whose folder is gone is shown without a link (never a 404)."""
    for r in runs:
        page = w.site / _unquote(layout.url_run(paths.name, pipeline, r["run_id"]))
        if page.exists():
            continue
        if not _write_run(w, paths, pipeline, r["run_id"], Warnings(), tz) or not page.exists():
            r["no_page"] = True


def _write_archive(
    w: _Writer,
    paths: ProjectPaths,
    name: str,
    number: int,
    runs: list[dict],
    archives: list[tuple[int, int, int]],
    tz: str | None = None,
) -> None:
    from flank_ops.site.pages import render

    project = paths.name
    url = layout.url_archive(project, name, number)
    lo, hi = layout.archive_range(number)
    runs = sorted((run_scope(r) for r in runs if lo <= r["run_id"] <= hi), key=lambda r: r["run_id"], reverse=True)
    for r in runs:
        if not (w.site / _unquote(layout.url_run(project, name, r["run_id"]))).exists():
            r["no_page"] = True  # e.g. pruned folder, or not drawn yet: no link to a 404
    w.page(
        url,
        render(
            "pipeline.html",
            url,
            project_name=project,
            pipeline=name,
            config=None,
            next_runs=[],
            dag="",
            trend="",
            runs=runs,
            archives=_archive_nav(archives, number),
            archive=(lo, hi),
            tz=tz,
            crumbs=[(project, layout.url_project(project)), (name, layout.url_pipeline(project, name))],
        ),
    )


def _link_views(w: _Writer, views: list[ProjectView]) -> None:
    for view in views:
        for pv in view.pipelines:
            _link_runs(w, view.paths, pv.name, pv.recent[:RECENT], pv.timezone)


def _write_project(w: _Writer, view: ProjectView, warnings: list[str], *, resources: bool = True) -> None:
    """The project page (and, with `resources`, its resources page: it changes when a run ends)."""
    from flank_ops.site.pages import render

    _link_views(w, [view])
    project = view.paths.name
    url = layout.url_project(project)
    w.page(
        url,
        render(
            "project.html",
            url,
            project=view,
            deploys=view.deploys,
            warnings=warnings,
            tz=view.timezone,
            refresh=any(r.get("status") == RunStatus.RUNNING for pv in view.pipelines for r in pv.recent[:1]),
            crumbs=[(project, url)],
        ),
    )
    if resources:
        from flank_ops.site.resources_page import write_resources

        write_resources(w, view.paths, view.timezone)


def _write_deploys(w: _Writer, paths: ProjectPaths, tz: str | None = None) -> None:
    from flank_ops.site.data import all_deploys, deploy_gap_text
    from flank_ops.site.pages import render
    from flank_ops.site.setup_logs import with_setup_logs

    url = layout.url_deploys(paths.name)
    w.page(
        url,
        render(
            "deploys.html",
            url,
            project_name=paths.name,
            deploys=with_setup_logs(w, paths, list(reversed(all_deploys(paths)))),
            deploy_gap=deploy_gap_text(paths),
            tz=tz,
            crumbs=[(paths.name, layout.url_project(paths.name)), ("pushes", url)],
        ),
    )


def _write_home(w: _Writer, views: list[ProjectView], warnings: list[str]) -> None:
    from flank_ops.site.pages import render

    _link_views(w, views)
    url = layout.url_home()
    w.page(
        url,
        render(
            "home.html",
            url,
            projects=views,
            warnings=warnings,
            tz=page_zone(v.timezone for v in views),
            refresh=any(
                r.get("status") == RunStatus.RUNNING for v in views for pv in v.pipelines for r in pv.recent[:1]
            ),
        ),
    )


def _all_views(home: Home, warnings: Warnings, known: dict[str, ProjectView]) -> list[ProjectView]:
    views = []
    for paths in projects(home):
        views.append(known.get(paths.name) or project_view(paths, warnings))
    for name, view in known.items():  # e.g. a laptop's local project
        if all(v.paths.name != name for v in views):
            views.append(view)
    return views


def _reconcile(paths: ProjectPaths, pipeline: str) -> None:
    try:
        records.reconcile(paths, pipeline, on_interrupted=dead_run_hook(paths))
    except Exception as exc:  # noqa: BLE001 - the site still shows what it can
        print(f"flank: warning: could not check {paths.name}/{pipeline} for dead runs: {exc}", file=sys.stderr)


# --- entry points ------------------------------------------------------------


def after_deploy(home: Home, project: str) -> None:
    """Rebuild the pages a deploy changes (home, project, pushes, pipeline pages)."""
    warnings = Warnings()
    w = _Writer(home.site_dir)
    w.css()
    paths = home.project(project)
    view = project_view(paths, warnings)
    for pv in view.pipelines:
        _write_pipeline_index(w, paths, pv.name, view.config, Warnings())
    _write_project(w, view, [])
    _write_deploys(w, paths, view.timezone)
    _write_home(w, _all_views(home, warnings, {project: view}), [])
    _say(warnings)


def draw_run(paths: ProjectPaths, pipeline: str, run_id: int, record: RunRecord | None = None) -> None:
    """Rebuild the pages one run changes (its run + log pages, pipeline page 1, project, home); the
    run's page from `record` when the caller holds it (the after-run step), else read as it is now."""
    warnings = Warnings()
    home = paths.home
    w = _Writer(home.site_dir)
    w.css()
    view = project_view(paths, warnings)
    tz = _zone_of(view, pipeline)
    _write_run(w, paths, pipeline, run_id, warnings, tz, record)
    recent = _write_pipeline_index(w, paths, pipeline, view.config, Warnings())
    pv = next((p for p in view.pipelines if p.name == pipeline), None)
    number = layout.archive_number(run_id)
    lo, _ = layout.archive_range(number)
    newest = max([run_id, *(r["run_id"] for r in recent)])
    if pv is not None and newest - lo < 3 * PAGE_SIZE:  # an old run's page waits for a full rebuild
        entries = {r["run_id"]: r for r in history_tail(paths, pipeline, newest - lo + PAGE_SIZE)}
        entries.update({r["run_id"]: r for r in recent})
        _write_archive(w, paths, pipeline, number, list(entries.values()), _archives(pv.first_id or run_id, newest), tz)
    _write_project(w, view, [])
    _write_home(w, _all_views(home, Warnings(), {paths.name: view}), [])
    _say(warnings)


def draw_progress(paths: ProjectPaths, pipeline: str, run_id: int) -> None:
    """A running run's redraw: its run + log pages and the project and home pages (their pipeline
    cards). Its pipeline's pages (history, grid) are drawn when it ends (draw_run)."""
    warnings = Warnings()
    w = _Writer(paths.home.site_dir)
    view = project_view(paths, warnings)
    _write_run(w, paths, pipeline, run_id, warnings, _zone_of(view, pipeline))
    _write_project(w, view, [], resources=False)  # what the runs used: read from their records when they end
    _write_home(w, _all_views(paths.home, Warnings(), {paths.name: view}), [])
    _say(warnings)


def _zone_of(view: ProjectView, pipeline: str) -> str | None:
    """The zone of the pipeline's pages: its project's (data.project_zone; None: the VM's)."""
    return view.timezone


def redraw_run_page(paths: ProjectPaths, pipeline: str, run_id: int, record: RunRecord | None = None) -> None:
    """Only the run's own page (and its logs), e.g. once the notifications and the S3
    upload that follow its drawing have said how they went (from `record` when the caller holds it)."""
    from flank_ops.site.data import load_project_config, project_zone

    warnings = Warnings()
    w = _Writer(paths.home.site_dir)
    config, _ = load_project_config(paths, warnings)
    _write_run(w, paths, pipeline, run_id, warnings, project_zone(config), record)
    _say(warnings)


def redraw_runs(paths: ProjectPaths, pipeline: str, run_ids: Iterable[int]) -> None:
    """Redraw runs whose record changed outside the runner (marked interrupted), and the
    pages that list them, so none keeps saying "running" and refreshing forever. Never raises."""
    try:
        run_ids = sorted(set(run_ids))
        if not run_ids:
            return
        warnings = Warnings()
        w = _Writer(paths.home.site_dir)
        w.css()
        view = project_view(paths, warnings)
        tz = _zone_of(view, pipeline)
        for run_id in run_ids[:-1]:
            _write_run(w, paths, pipeline, run_id, warnings, tz)
        draw_run(paths, pipeline, run_ids[-1])
        _say(warnings)
    except Exception as exc:  # noqa: BLE001 - whoever marked the runs must not fail for the site
        print(f"flank: warning: could not redraw the status site: {exc}", file=sys.stderr)


def write_actions_script(home: Home) -> None:
    """The script that reveals the action buttons (issue 23), when the site has them (flank serve --actions)."""
    _Writer(home.site_dir).actions_js()


def rebuild_all(home: Home, *, only_changed: bool = False) -> None:
    """Rebuild the whole site from the records."""
    _say(rebuild(home, only_changed=only_changed).warnings)


def rebuild(home: Home, *, only_changed: bool = False) -> BuildStats:
    """Every page from the records; stale pages of pruned runs or pipelines are removed.

    With only_changed, run pages newer than their run.json are kept as they are.
    """
    warnings = Warnings()
    w = _Writer(home.site_dir, force=not only_changed)
    w.css()
    w.actions_js()
    views: list[ProjectView] = []
    runs = skipped = 0
    kept_projects = set()
    for paths in projects(home):
        for pipeline in paths.pipelines_with_runs():
            _reconcile(paths, pipeline)
        view = project_view(paths, warnings)
        views.append(view)
        kept_projects.add(layout.file_name(paths.name))
        kept_pipelines = set()
        for pv in view.pipelines:
            kept_pipelines.add(layout.file_name(pv.name))
            r, s = _rebuild_pipeline(w, paths, pv.name, view.config, warnings, only_changed)
            runs += r
            skipped += s
        _remove_unknown(
            w.site / layout.file_name(paths.name),
            keep=kept_pipelines | {"index.html", "deploys.html", layout.SETUP_LOGS_DIR},
        )
        _write_project(w, view, [])
        _write_deploys(w, paths, view.timezone)
    _remove_unknown(w.site, keep=kept_projects | {"index.html", layout.STATIC_DIR})
    _write_home(w, views, list(warnings))
    return BuildStats(w.pages, runs, skipped, list(warnings))


def _rebuild_pipeline(
    w: _Writer, paths: ProjectPaths, name: str, config: Config | None, warnings: Warnings, only_changed: bool
) -> tuple[int, int]:
    run_ids = records.list_run_ids(paths, name)
    site_dir = w.site / _unquote(layout.url_pipeline(paths.name, name)).rsplit("/", 1)[0]
    runs = skipped = 0
    tz = project_zone(config)
    for run_id in run_ids:
        if only_changed and _page_is_current(w, paths, name, run_id):
            skipped += 1
            continue
        if _write_run(w, paths, name, run_id, warnings, tz):
            runs += 1
    recent = _write_pipeline_index(w, paths, name, config, Warnings())
    history = list(records.read_history(paths, name))
    by_number: dict[int, list[dict]] = defaultdict(list)
    for entry in [*history, *recent]:
        by_number[layout.archive_number(entry["run_id"])].append(entry)
    first = min((e["run_id"] for e in history), default=None)
    newest = max([0, *run_ids, *(e["run_id"] for e in history)])
    archives = _archives(first, newest)
    for number, _, _ in archives:
        # one entry per run id (a run in both the history and `recent` appears once)
        entries = list({e["run_id"]: e for e in by_number.get(number, [])}.values())
        _write_archive(w, paths, name, number, entries, archives, tz)
    keep = {"index.html", layout.LATEST_DIR, *(str(i) for i in run_ids), *(f"runs-{n}.html" for n, _, _ in archives)}
    _remove_unknown(site_dir, keep=keep)
    return runs, skipped


def _page_is_current(w: _Writer, paths: ProjectPaths, pipeline: str, run_id: int) -> bool:
    page = w.site / _unquote(layout.url_run(paths.name, pipeline, run_id))
    try:
        return page.stat().st_mtime >= records.record_path(paths.run_dir(pipeline, run_id)).stat().st_mtime
    except OSError:
        return False


_TEMP_RE = re.compile(r"^\..*\.tmp$")


def _remove_unknown(folder: Path, keep: set[str]) -> None:
    """Delete what flank no longer has records for (pruned runs, removed pipelines)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name in keep or _TEMP_RE.match(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def remove_run_pages(home: Home, project: str, pipeline: str, run_ids: Iterable[int]) -> None:
    """Delete the pages of runs that were pruned (their records are gone)."""
    for run_id in run_ids:
        target = home.site_dir / _unquote(layout.url_run(project, pipeline, run_id)).rsplit("/", 1)[0]
        shutil.rmtree(target, ignore_errors=True)


def after_prune(paths: ProjectPaths, pipeline: str, removed: Iterable[int]) -> None:
    """Remove the pruned runs' pages and rewrite the pages that listed them."""
    removed = list(removed)
    home = paths.home
    remove_run_pages(home, paths.name, pipeline, removed)
    warnings = Warnings()
    w = _Writer(home.site_dir)
    w.css()
    view = project_view(paths, warnings)
    _write_pipeline_index(w, paths, pipeline, view.config, Warnings())
    # the run-id pages: rewrite those that still hold runs, delete the emptied ones
    history = list(records.read_history(paths, pipeline))
    run_ids = records.list_run_ids(paths, pipeline)
    first = min((e["run_id"] for e in history), default=None)
    archives = _archives(first, max([0, *run_ids, *(e["run_id"] for e in history)]))
    by_number: dict[int, list[dict]] = defaultdict(list)
    for entry in history:
        by_number[layout.archive_number(entry["run_id"])].append(entry)
    for number, _, _ in archives:
        _write_archive(w, paths, pipeline, number, by_number.get(number, []), archives, _zone_of(view, pipeline))
    live = {n for n, _, _ in archives}
    for number in {layout.archive_number(i) for i in removed} - live:
        (w.site / _unquote(layout.url_archive(paths.name, pipeline, number))).unlink(missing_ok=True)
    _write_project(w, view, [])
    _write_home(w, _all_views(home, Warnings(), {paths.name: view}), [])
    _say(warnings)
