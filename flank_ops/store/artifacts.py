"""Keeping a task's `artifacts:` with its run, right after the task ends (success or failure).

    runs/<pipeline>/<id>/artifacts/<task>/<path relative to the task's dir>

The runner calls `keep_finished` each time it merges task results (runner.py), so a task's
files are kept before the next run can rewrite them, and a failed task keeps its half-made
plot for debugging. The record's task entry gets "artifacts" and "artifact_warnings"
(format: records.py).

How a file is kept, and why not a plain hard link: a hard link shares the inode, and the
common writers rewrite files *in place* (R's png()/ggsave/write.csv open with O_TRUNC), so
tomorrow's run would change today's kept copy. So a kept file is, in this order:
  1. a hard link to the previous run's kept copy when the source has not been touched since
     that run kept it (same device, inode, size, mtime and ctime: ctime cannot be set by
     anyone, and changes with every write) — kept copies are never written, so sharing them
     is safe, and an unchanged 2 GB input costs nothing;
  2. a reflink (FICLONE: btrfs, XFS, bcachefs, ZFS): shares the blocks copy-on-write, instant;
  3. an in-kernel copy (copy_file_range); a failed copy is removed, never half a file kept.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import itertools
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from flank_ops.config.model import Pipeline, Task
from flank_ops.fileio import PUBLIC_FILE_MODE, atomic_write_json
from flank_ops.store import records
from flank_ops.store.model import ArtifactEntry, RunRecord, TaskStatus

MB = 1024 * 1024
MAX_FILES_PER_TASK = 5000  # a glob that matches more is a mistake (a cache folder?): the rest is not kept
LOOK_BACK_RUNS = 5  # how many earlier runs may lend an unchanged file
FICLONE = 0x40049409  # linux/fs.h _IOW(0x94, 9, int)
_UNFINISHED = ("pending", "running", "queued", "skipped")
NO_MATCH = ": no file matched"


class Budget(NamedTuple):
    max_bytes: int
    used: int


def keep_finished(
    run_dir: Path,
    record: RunRecord,
    pipeline: Pipeline,
    release_dir: Path,
    persist_root: Path,
    names: list[str],
    max_mb: int | None = None,
) -> list[str]:
    """Keep the artifacts of the tasks in `names` that have ended and were not kept yet.

    Returns the names whose entry changed. Never raises for a file: a problem is a warning
    on the task's entry (shown on the run page), not a failed run."""
    changed = []
    for name in names:
        entry = record.tasks.get(name)
        task = pipeline.tasks.get(name)
        if entry is None or task is None or not task.artifacts or entry.artifacts is not None:
            continue
        if entry.status in _UNFINISHED:
            continue
        if entry.status != "up_to_date" and not (entry.started_at or entry.attempts):
            continue  # it never started (upstream failed, cancelled while waiting): nothing to look for
        # an up_to_date task (issue 12) did not run, but its files are the run's outputs too: kept
        # again, as links to the earlier run's copies when untouched (no disk, no time)
        if max_mb is None:
            max_mb = _max_mb(run_dir, record)
        used = sum(int(a.get("size") or 0) for t in record.tasks.values() for a in t.artifacts or () if a.get("kept"))
        kept, warnings = keep_task(
            run_dir, record.run_id, name, task, release_dir, persist_root, Budget(max_mb * MB, used)
        )
        if entry.status == TaskStatus.UP_TO_DATE:
            # it did not run: a file not found is no warning, its files went with the release it ran in
            # and are those of the run that made them
            unmatched = [w for w in warnings if w.endswith(NO_MATCH)]
            warnings = [w for w in warnings if not w.endswith(NO_MATCH)]
            if unmatched:
                entry.artifacts_run = _run_that_kept(run_dir, record.run_id, name)
        entry.artifacts = kept
        entry.artifact_warnings = warnings
        changed.append(name)
    return changed


LOOK_BACK_MADE = 200  # how many earlier records an up-to-date task's files are looked for in


def _run_that_kept(run_dir: Path, run_id: int, task: str) -> int | None:
    """The nearest earlier run in which `task` ran and kept files (an up-to-date task's files are that
    run's); None when none of the last LOOK_BACK_MADE runs did (pruned, or it never kept any)."""
    runs = Path(run_dir).parent
    for earlier_id in range(run_id - 1, max(0, run_id - 1 - LOOK_BACK_MADE), -1):
        try:
            earlier = records.read_record(runs / str(earlier_id)).tasks.get(task)
        except (OSError, ValueError):
            continue
        if earlier is None:
            continue
        if earlier.status == TaskStatus.UP_TO_DATE and earlier.artifacts_run is not None:
            return earlier.artifacts_run
        if earlier.status == TaskStatus.SUCCESS:
            return earlier_id if any(a.get("kept") for a in earlier.artifacts or ()) else None
    return None


def _max_mb(run_dir: Path, record: RunRecord) -> int:
    from flank_ops.errors import UserError
    from flank_ops.paths import Home
    from flank_ops.settings import DEFAULT_ARTIFACTS_MAX_MB, artifacts_max_mb, settings_for

    # runs/<pipeline>/<id> under the project folder, under FLANK_HOME (local mode: .flank/ alike)
    home = Home(Path(run_dir).parents[3]) if not record.local else Home(Path(run_dir).parents[2])
    try:
        return artifacts_max_mb(settings_for(home, record.project))
    except UserError:
        return DEFAULT_ARTIFACTS_MAX_MB  # `flank doctor` and the run's other steps say what is wrong


# --- one task ---------------------------------------------------------------------


def keep_task(
    run_dir: Path, run_id: int, name: str, task: Task, release_dir: Path, persist_root: Path, budget: Budget
) -> tuple[list[ArtifactEntry], list[str]]:
    """Match the task's patterns and keep each file; (artifact entries, warnings)."""
    base = release_dir / task.dir if task.dir and task.dir != "." else release_dir
    roots = [os.path.realpath(release_dir), os.path.realpath(persist_root)]
    dest_root = records.artifacts_dir(run_dir, name)
    earlier = _earlier_sources(run_dir, run_id, name)
    sources: dict[str, list[int]] = {}
    entries: list[ArtifactEntry] = []
    warnings: list[str] = []
    seen: set[str] = set()
    used = budget.used
    with _Walk() as walk:
        for pattern in task.artifacts:
            found = 0
            # In name order (what a person expects kept first under a limit); never more names read
            # than can be kept, so a glob matching 100,000 files costs what 1,000 do.
            room = MAX_FILES_PER_TASK - len(seen) + 1
            for rel in sorted(itertools.islice(_matches(base, pattern), room + len(seen))):
                if rel in seen:
                    found += 1
                    continue
                if len(seen) >= MAX_FILES_PER_TASK:
                    warnings.append(
                        f"{pattern}: the task has more than {MAX_FILES_PER_TASK} files to keep; the rest was "
                        "not kept (narrow the pattern: artifacts are files to look at)"
                    )
                    found = -1
                    break
                seen.add(rel)
                found += 1
                entry, signature = _keep_one(base, rel, roots, dest_root, earlier, budget.max_bytes, used, walk)
                entries.append(entry)
                if entry["kept"]:
                    used += entry["size"]
                    if signature is not None:
                        sources[entry["path"]] = signature
                elif entry.get("note"):
                    warnings.append(f"{entry['path']}: {entry['note']}")
            if not found:
                warnings.append(f"{pattern}{NO_MATCH}")
    entries.sort(key=lambda e: e["path"])
    if sources:
        _save_sources(run_dir, name, sources)
    return entries, warnings


def _matches(base: Path, pattern: str) -> Iterator[str]:
    """Paths (relative to `base`) of the files `pattern` names; a folder stands for the files in it."""
    if glob.has_magic(pattern):
        names: Iterator[str] = glob.iglob(pattern, root_dir=base, recursive=True)
    else:
        names = iter([pattern] if os.path.lexists(base / pattern) else [])
    for rel in names:
        full = base / rel
        if full.is_dir() and not full.is_symlink():
            for folder, dirs, files in os.walk(full):
                dirs.sort()
                for f in sorted(files):
                    yield os.path.relpath(os.path.join(folder, f), base)
        else:
            yield os.path.normpath(rel)


def safe_name(rel: str) -> str:
    """The kept name of a matched path: bytes that are not UTF-8 and control characters become %XX,
    so the record (JSON) and the site (URLs) can hold every name."""
    out = []
    for ch in rel:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
            out.append(f"%{code - 0xDC00:02X}")
        elif code < 0x20 or code == 0x7F or ch == "%":
            out.append(f"%{code:02X}")
        else:
            out.append(ch)
    return "".join(out)


def _inside(real: str, roots: list[str]) -> bool:
    return any(real == r or real.startswith(r + os.sep) for r in roots)


class _Walk:
    """Per-task caches: a task's files share few folders (realpath, mkdir and the open folder once per
    folder); a context manager, closing the folders it opened."""

    MAX_OPEN_DIRS = 64

    def __init__(self) -> None:
        self.real_dirs: dict[str, str] = {}
        self.made: set[str] = set()
        self.dir_fds: dict[str, int] = {}

    def realpath(self, path: str) -> str:
        folder, leaf = os.path.split(path)
        real = self.real_dirs.get(folder)
        if real is None:
            real = self.real_dirs[folder] = os.path.realpath(folder)
        joined = os.path.join(real, leaf)
        return os.path.realpath(joined) if os.path.islink(joined) else joined

    def open_file(self, real: str) -> int:
        """Open the file at `real` (a path with no symlink left: realpath) for reading, following no
        link on the way: each folder from / is opened with O_NOFOLLOW relative to the one before.
        A folder swapped for a symlink after `real` was checked fails here (ELOOP/ENOTDIR), so the
        file opened is the file checked (issue 20 item 4)."""
        folder, leaf = os.path.split(real)
        dir_fd = self.dir_fds.get(folder)
        if dir_fd is None:
            if len(self.dir_fds) >= self.MAX_OPEN_DIRS:
                self.close()
            dir_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            for part in folder.split("/"):
                if not part:
                    continue
                try:
                    inner = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                finally:
                    os.close(dir_fd)
                dir_fd = inner
            self.dir_fds[folder] = dir_fd
        # O_NONBLOCK: a FIFO opens at once (and is refused: not a regular file) instead of hanging
        return os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)

    def makedirs(self, folder: str) -> None:
        if folder not in self.made:
            os.makedirs(folder, exist_ok=True)
            self.made.add(folder)

    def close(self) -> None:
        for fd in self.dir_fds.values():
            os.close(fd)
        self.dir_fds.clear()

    def __enter__(self) -> _Walk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _keep_one(
    base: Path,
    rel: str,
    roots: list[str],
    dest_root: Path,
    earlier: dict[str, tuple[Path, list[int]]],
    max_bytes: int,
    used: int,
    walk: _Walk,
) -> tuple[ArtifactEntry, list[int] | None]:
    name = safe_name(rel)
    entry: ArtifactEntry = {"path": name, "size": 0, "kept": False, "note": None}
    if name != rel:
        entry["note"] = "its name has bytes that are not UTF-8 or control characters, shown as %XX"
    try:
        real = walk.realpath(os.path.join(base, rel))
    except OSError as exc:  # a folder changed while it was resolved
        entry["note"] = f"not kept: {exc.strerror or exc}"
        return entry, None
    if not _inside(real, roots):
        entry["note"] = "not kept: it is a symlink leading outside the release and persisted folders"
        return entry, None
    try:
        fd = walk.open_file(real)
    except OSError as exc:
        moved = exc.errno in (errno.ELOOP, errno.ENOTDIR)
        entry["note"] = "not kept: " + (
            "it, or a folder on its path, became a symlink" if moved else exc.strerror or str(exc)
        )
        return entry, None
    try:
        return _keep_open(fd, entry, name, dest_root, earlier, max_bytes, used, walk)
    finally:
        os.close(fd)


def _keep_open(
    fd: int,
    entry: ArtifactEntry,
    name: str,
    dest_root: Path,
    earlier: dict[str, tuple[Path, list[int]]],
    max_bytes: int,
    used: int,
    walk: _Walk,
) -> tuple[ArtifactEntry, list[int] | None]:
    """Keep the file open at `fd` (checked to be inside: _keep_one) as `name`."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        entry["note"] = "not kept: not a regular file"
        return entry, None
    entry["size"] = st.st_size
    if used + st.st_size > max_bytes:
        entry["note"] = (
            f"not kept: {_mb(st.st_size)} would take the run past [artifacts] max_mb_per_run = "
            f"{max_bytes // MB} MB in flank.toml ({_mb(used)} kept already)"
        )
        return entry, None
    parts = name.split("/")
    if not name or name.startswith("/") or ".." in parts:
        entry["note"] = "not kept: an unusable file name"
        return entry, None
    dest = os.path.join(dest_root, name)
    signature = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    try:
        walk.makedirs(os.path.dirname(dest))
        how = _store(fd, st, dest, earlier.get(name), signature)
    except OSError as exc:
        why = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
        entry["note"] = f"not kept: {why}"
        return entry, None
    entry["kept"] = True
    if how == "linked":  # unchanged since an earlier run kept it: shares that run's kept copy
        signature = list(earlier[name][1])
    return entry, signature


def _mb(size: int) -> str:
    from flank_ops.humanize import fmt_bytes

    return fmt_bytes(size)


def _store(
    src: int, st: os.stat_result, dest: str, earlier: tuple[Path, list[int]] | None, signature: list[int]
) -> str:
    """Put a copy of the file open at `src` at `dest` that later writes to it cannot change; says how.

    `dest` is in the run's own new folder, read by nobody until the record names it, so it is
    written in place; a failure removes it (never half a file kept)."""
    if earlier is not None and earlier[1] == signature:
        try:
            os.link(earlier[0], dest)
            return "linked"
        except FileExistsError:
            os.unlink(dest)  # a leftover of a runner that died here: keep it afresh
            return _store(src, st, dest, earlier, signature)
        except OSError:
            pass  # pruned meanwhile, or another file system: a copy
    try:
        return _clone(src, dest, st.st_size)
    except FileExistsError:
        os.unlink(dest)
        return _clone(src, dest, st.st_size)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(dest)
        raise


def _clone(src: int, dst: str, size: int) -> str:
    # readable by all (the run folder itself is private): the site publishes a kept copy as a hard
    # link only when it needs no chmod (site/outputs.py), so publishing never changes a file's mode
    out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PUBLIC_FILE_MODE)
    os.fchmod(out, PUBLIC_FILE_MODE)
    os.lseek(src, 0, os.SEEK_SET)
    with open(src, "rb", closefd=False) as fin, open(out, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return "reflinked"
        except OSError:
            pass
        left = size
        try:
            while left > 0:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), min(left, 1 << 30))
                if n == 0:
                    break
                left -= n
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
        # what copy_file_range could not do (another file system, an old kernel), and the end of
        # a file that grew while we copied: the kept copy is what the task left
        shutil.copyfileobj(fin, fout, 1 << 20)
    return "copied"


# --- what earlier runs kept (to link unchanged files) ----------------------------


def _earlier_sources(run_dir: Path, run_id: int, task: str) -> dict[str, tuple[Path, list[int]]]:
    """name -> (kept file, source signature) from the nearest earlier runs that kept it."""
    runs = Path(run_dir).parent
    found: dict[str, tuple[Path, list[int]]] = {}
    for earlier_id in range(run_id - 1, max(0, run_id - 1 - LOOK_BACK_RUNS), -1):
        earlier = runs / str(earlier_id)
        try:
            index = json.loads(records.artifact_sources_path(earlier).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for name, signature in ((index.get(task) or {}) if isinstance(index, dict) else {}).items():
            if name not in found and isinstance(signature, list):
                found[name] = (records.artifacts_dir(earlier, task) / name, signature)
    return found


def _save_sources(run_dir: Path, task: str, sources: dict[str, list[int]]) -> None:
    path = records.artifact_sources_path(run_dir)
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    index[task] = sources
    try:
        atomic_write_json(path, index)
    except OSError:
        pass  # only an optimisation for the next run


# --- a rerun's missing inputs -------------------------------------------------------
