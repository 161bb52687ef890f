"""A run's Outputs and a pipeline's Latest outputs (issue 11), for site_template/_outputs.html.

The kept files (run/artifacts.py) go into the site as hard links: kept copies are never
written again, so sharing their inode is safe and costs no disk; `latest/` holds links to the
newest successful run's files, so its URLs stay the same from run to run and survive a prune
of that run (the link keeps the data until a newer run replaces it).

Page weight is bounded: a big image is shown by its thumbnail (site/thumbnails.py, made once), a
small one as itself, width-limited and lazily loaded (a browser fetches it only when scrolled to),
at most MAX_INLINE_IMAGES per page; the rest link the run's outputs page, which shows them all.
HTML reports are never inlined: a link opening the file in a new tab. Names are escaped by the
template and URL-quoted by layout.py, so no file name can add markup to a page.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any, Protocol

from flank_ops.config.model import Pipeline
from flank_ops.fileio import PUBLIC_FILE_MODE
from flank_ops.paths import ProjectPaths
from flank_ops.site import layout
from flank_ops.store import records
from flank_ops.store.model import ArtifactEntry, RunRecord, RunStatus, TaskStatus

INLINE_IMAGE_MAX_BYTES = 2 * 1024 * 1024
MAX_INLINE_IMAGES = 24
THUMB_LOOK_BACK = 5  # earlier runs whose thumbnail of the same (hard-linked) file is reused
OPEN_PER_TASK = 6  # a task's first files on a run page; the rest are folded (issue 28: 66 plots)
MAX_LISTED_PER_TASK = 200  # a page lists this many of a task's files (all are published)
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp")
REPORT_TYPES = (".html", ".htm")


class SiteWriter(Protocol):
    site: Path

    def folder(self, path: Path) -> None: ...


def kind_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return "image" if ext in IMAGE_TYPES else "report" if ext in REPORT_TYPES else "file"


def run_outputs(
    w: SiteWriter,
    paths: ProjectPaths,
    pipeline: str,
    run_id: int,
    record: RunRecord,
    root: str,
    *,
    inline_limit: int = MAX_INLINE_IMAGES,
    open_per_task: int = OPEN_PER_TASK,
) -> list[dict[str, Any]]:
    """Publish the run's kept files into the site and describe them per task (empty: no section).

    Each task shows its first `open_per_task` files, the rest folded; images past `inline_limit`
    link the run's outputs page (url_run_outputs), which shows them all."""
    from flank_ops.site.unchanged_outputs import unchanged_since

    run_dir = paths.run_dir(pipeline, run_id)
    groups = []
    inline = [inline_limit]
    for task, entry in record.tasks.items():
        # an up-to-date task whose files went with an older release: they are with the run that made them
        kept_with = entry.artifacts_run if entry.status == TaskStatus.UP_TO_DATE else None
        if kept_with is not None and not paths.run_dir(pipeline, kept_with).is_dir():
            kept_with = None  # that run was pruned: nothing to point at
        if not (entry.artifacts or entry.artifact_warnings or kept_with):
            continue
        old = unchanged_since(paths, pipeline, run_id, task, entry.started_at)
        files: list[dict[str, Any]] = []
        for a in entry.artifacts or ():
            if not isinstance(a, dict) or not isinstance(a.get("path"), str):
                continue
            url = layout.url_artifact(paths.name, pipeline, run_id, str(task), a["path"])
            source = records.kept_artifact(run_dir, str(task), a["path"])
            kept = bool(a.get("kept")) and source is not None and _publish(w, source, url)
            if len(files) < MAX_LISTED_PER_TASK:
                earlier = [
                    layout.url_artifact(paths.name, pipeline, n, str(task), a["path"])
                    for n in range(run_id - 1, max(0, run_id - 1 - THUMB_LOOK_BACK), -1)
                ]
                thumb = _thumbnail(w, url, earlier) if kept else None
                described = _describe(a, root + url if kept else None, kept, inline, root + thumb if thumb else None)
                if a["path"] in old:
                    described["unchanged_since"] = old[a["path"]] or True
                files.append(described)
        listed = len(entry.artifacts or ())
        groups.append(
            {
                "task": str(task),
                "files": files,
                "more": max(0, listed - len(files)),
                "warnings": [str(x) for x in entry.artifact_warnings or ()],
                "run_id": None,
                "kept_with": kept_with,
                "kept_with_href": root + layout.url_run(paths.name, pipeline, kept_with) if kept_with else None,
                "open": open_per_task,
                "all_href": root + layout.url_run_outputs(paths.name, pipeline, run_id),
            }
        )
    return groups


def latest_outputs(
    w: SiteWriter,
    paths: ProjectPaths,
    pipeline: str,
    recent: list[dict[str, Any]],
    root: str,
    config: Pipeline | None = None,
) -> list[dict[str, Any]]:
    """Fill `latest/` from the newest successful runs (per task) among `recent` (newest first);
    files no run provides any more are removed. Returns the groups for the pipeline page.

    With the pipeline's `config`, only its tasks with `artifacts:` are looked for, and the
    records are read only until each has been found (this runs at every redraw of the page)."""
    found: dict[str, tuple[int, list[ArtifactEntry]]] = {}
    wanted_tasks = {n for n, t in config.tasks.items() if t.artifacts} if config is not None else None
    for entry in recent:
        if wanted_tasks is not None and wanted_tasks <= set(found):
            break
        if entry.get("status") != RunStatus.SUCCESS:
            continue
        run_id = int(entry["run_id"])
        try:
            record = records.read_record(paths.run_dir(pipeline, run_id))
        except (OSError, ValueError):
            continue
        for task, t in record.tasks.items():
            kept = [
                a for a in t.artifacts or () if isinstance(a, dict) and a.get("kept") and isinstance(a.get("path"), str)
            ]
            if kept and task not in found and (wanted_tasks is None or task in wanted_tasks):
                found[task] = (run_id, kept)
    wanted: set[Path] = set()
    groups = []
    inline = [MAX_INLINE_IMAGES]
    for task, (run_id, kept) in found.items():
        files: list[dict[str, Any]] = []
        for a in kept:
            url = layout.url_latest(paths.name, pipeline, task, a["path"])
            source = records.kept_artifact(paths.run_dir(pipeline, run_id), task, a["path"])
            ok = source is not None and _publish(w, source, url)
            if ok:
                wanted.add(layout.SiteLayout(w.site).file(url))
            if len(files) < MAX_LISTED_PER_TASK:
                thumb = (
                    _thumbnail(w, url, [layout.url_artifact(paths.name, pipeline, run_id, task, a["path"])])
                    if ok
                    else None
                )
                if thumb:
                    wanted.add(layout.SiteLayout(w.site).file(thumb))
                files.append(_describe(a, root + url if ok else None, ok, inline, root + thumb if thumb else None))
        all_url = layout.url_run_outputs(paths.name, pipeline, run_id)
        groups.append(
            {
                "task": task,
                "files": files,
                "more": max(0, len(kept) - len(files)),
                "warnings": [],
                "run_id": run_id,
                "run_href": root + layout.url_run(paths.name, pipeline, run_id),
                "open": OPEN_PER_TASK,
                # the run's outputs page, when drawn (a run drawn by an older flank has none: no 404)
                "all_href": root + all_url if layout.SiteLayout(w.site).file(all_url).exists() else None,
            }
        )
    latest_dir = layout.SiteLayout(w.site).pipeline_dir(paths.name, pipeline) / layout.LATEST_DIR
    _remove_others(latest_dir, wanted)
    return groups


def main_report_url(base_url: str, record: RunRecord) -> str | None:
    """The run's main report (its first kept HTML artifact), for notifications: the run's own copy
    (a failed run's report is not at latest/). None when the run kept no HTML report."""
    for task, t in record.tasks.items():
        for a in t.artifacts or ():
            if (
                isinstance(a, dict)
                and a.get("kept")
                and kind_of(str(a.get("path"))) == "report"
                and records.artifact_names_ok(task, str(a["path"]))
            ):
                return base_url + layout.url_artifact(
                    record.project, record.pipeline, record.run_id, task, str(a["path"])
                )
    return None


def _thumbnail(w: SiteWriter, url: str, twins: list[str]) -> str | None:
    """The site URL of the published image's thumbnail (made once, site/thumbnails.py; linked from one of
    `twins`, other URLs of the same file, when it is the same file), or None."""
    from flank_ops.site.thumbnails import thumbnail

    if kind_of(url) != "image":
        return None
    thumb = layout.url_thumbnail(url)
    site = layout.SiteLayout(w.site)
    pairs = [(site.file(t), site.file(layout.url_thumbnail(t))) for t in twins]
    return thumb if thumbnail(site.file(url), site.file(thumb), pairs) else None


def _describe(
    a: ArtifactEntry, href: str | None, kept: bool, inline: list[int], thumb_href: str | None = None
) -> dict[str, Any]:
    path = a["path"]
    kind = kind_of(path)
    size = a.get("size") if isinstance(a.get("size"), int) else None
    small = thumb_href is not None or (size is not None and size <= INLINE_IMAGE_MAX_BYTES)
    show = kept and kind == "image" and small and inline[0] > 0
    if show:
        inline[0] -= 1
    return {
        "path": path,
        "name": os.path.basename(path),
        "kind": kind,
        "size": size,
        "kept": kept,
        "href": href,
        "inline": show,
        "note": str(a["note"]) if a.get("note") else None,
        "too_big": kept and kind == "image" and not small,
        "beyond_limit": kept and kind == "image" and not show and small,
        "thumb_href": thumb_href,
    }


def _publish(w: SiteWriter, source: Path, url: str) -> bool:
    """Put `source` (a kept file: records.kept_artifact) at the site file behind `url`, readable by
    a web server: a hard link when it is our own regular file already readable by all (kept files
    are: run/artifacts.py), else a copy — publishing never changes the mode of the source."""
    site_layout = layout.SiteLayout(w.site)
    dst = site_layout.file(url)
    if not Path(os.path.normpath(dst)).is_relative_to(os.path.normpath(site_layout.root)):
        return False
    try:
        st = os.stat(source, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            return False
        try:
            published = dst.stat(follow_symlinks=False)
            if os.path.samestat(published, st):
                return True
            if stat.S_ISREG(published.st_mode) and (published.st_size, published.st_mtime_ns) == (
                st.st_size,
                st.st_mtime_ns,
            ):
                return True  # the copy made earlier of this very file: a rebuild copies nothing again
        except OSError:
            pass
        w.folder(dst.parent)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        linked = False
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == PUBLIC_FILE_MODE:
            try:
                os.link(source, tmp, follow_symlinks=False)
                linked = True
            except OSError:
                pass  # another file system: a copy
        if not linked:
            try:
                _copy_regular(source, tmp)
                os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))  # the copy carries its source's time (above)
            except BaseException:
                tmp.unlink(missing_ok=True)  # never half a file published
                raise
        os.replace(tmp, dst)
        return True
    except OSError:
        return False


def _copy_regular(source: Path, tmp: Path) -> None:
    """A copy of the regular file `source` (never through a symlink), readable by a web server."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with open(fd, "rb") as fin:
        if not stat.S_ISREG(os.fstat(fin.fileno()).st_mode):
            raise OSError(f"{source}: not a regular file")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PUBLIC_FILE_MODE)
        with open(out, "wb") as fout:
            os.fchmod(fout.fileno(), PUBLIC_FILE_MODE)
            shutil.copyfileobj(fin, fout, 1 << 20)


def _remove_others(folder: Path, wanted: set[Path]) -> None:
    if not folder.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            if path not in wanted:
                path.unlink(missing_ok=True)
        for name in dirnames:
            try:
                os.rmdir(Path(dirpath) / name)  # only when emptied
            except OSError:
                pass
