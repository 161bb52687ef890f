"""Persisted folders that hold tracked files: an overlay (issues 11, 28).

A common layout tracks raw inputs under `data/_raw/` and writes derived files into `data/`;
another commits the pipeline's own outputs (plots) under a persisted folder. With
`persist: [data]`, each deploy brings into `persist/data/` what the *commit changed* there
(the release moved the commit's files aside into .flank-tracked/, see releases.link_persist),
and nothing else: git knows what changed (each file's blob id against the last synced commit's),
so a file the pipeline rewrote and the commit did not touch stays the pipeline's, and a push
that changed none of them syncs nothing (the next run has nothing new to see).

* new or changed in the commit: replaces the persisted file (written beside it and renamed,
  so a run reading it sees the old or the new file, never half);
* unchanged in the commit: left alone (put back only if it is missing);
* gone from the commit (deleted or untracked): removed only if nobody wrote it since the
  deploy placed it (its size and mtime as recorded then); a file the pipeline rewrote is kept.

What the deploys placed is kept in persist-tracked/<dir>.json (paths.persist_manifest):
{"commit": sha, "files": {path: {"blob": id, "size": n, "mtime_ns": t}}}. A manifest of
an older flank (a list of paths, no blobs) syncs by content once, as flank did then.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from pathlib import Path
from typing import Any

from flank_ops.fileio import atomic_write_json
from flank_ops.paths import ProjectPaths


def sync_tracked(paths: ProjectPaths, release: Path, persist: tuple[str, ...]) -> list[str]:
    """Sync every persisted folder's tracked files that the commit changed from `release` into
    persist/; one line each for the push output. Raises OSError (the deploy fails and says why:
    runs must not read half-synced data)."""
    lines = []
    sha = release.name
    for name in persist:
        rel = name.strip("/")
        source = paths.release_tracked(release, rel)
        manifest = paths.persist_manifest(rel)
        if not source.is_dir() and not manifest.exists():
            continue  # nothing tracked there, now or before
        blobs = _blobs(paths, sha, rel) if source.is_dir() else {}
        lines.append(_sync_folder(source, paths.persist_dir / rel, manifest, rel, sha, blobs))
    return lines


def _blobs(paths: ProjectPaths, sha: str, rel: str) -> dict[str, str]:
    """path under `rel` -> blob id, from the commit's tree (no file is read)."""
    from flank_ops.deploy.setup import tree_entries

    prefix = rel + "/"
    entries = tree_entries(paths.bare_repo, sha, recursive=True, only=(rel,))
    return {path[len(prefix) :]: blob for path, blob in entries.items() if path.startswith(prefix)}


def _tracked_files(source: Path) -> tuple[list[str], list[str]]:
    """(files, symlinks) under `source`, relative to it."""
    files: list[str] = []
    links: list[str] = []
    if not source.is_dir():
        return files, links
    for folder, dirs, names in os.walk(source):
        for d in list(dirs):
            if os.path.islink(os.path.join(folder, d)):
                links.append(os.path.relpath(os.path.join(folder, d), source))
                dirs.remove(d)
        for n in names:
            path = os.path.join(folder, n)
            (links if os.path.islink(path) else files).append(os.path.relpath(path, source))
    return sorted(files), sorted(links)


def _read_manifest(manifest: Path) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """(the commit last synced, path -> what the deploy placed); (None, {path: {}}) for an old list."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, {}
    if not isinstance(data, dict):
        return None, {}
    files = data.get("files")
    if isinstance(files, list):  # an older flank's manifest: which paths, no blobs
        return None, {str(f): {} for f in files}
    if not isinstance(files, dict):
        return None, {}
    commit = data.get("commit")
    return (str(commit) if commit else None), {str(k): v for k, v in files.items() if isinstance(v, dict)}


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _untouched(path: Path, placed: dict[str, Any]) -> bool:
    """Is `path` still what a deploy placed (nobody wrote it since)?"""
    try:
        stamp = _stamp(path)
    except OSError:
        return False
    return "mtime_ns" in placed and stamp == {"size": placed.get("size"), "mtime_ns": placed.get("mtime_ns")}


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.flank-sync.tmp")
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sync_folder(source: Path, dest: Path, manifest: Path, rel: str, sha: str, blobs: dict[str, str]) -> str:
    files, links = _tracked_files(source)
    base, placed = _read_manifest(manifest)
    record: dict[str, dict[str, Any]] = {}
    changed = restored = skipped = 0
    for f in files:
        src, dst = source / f, dest / f
        blob = blobs.get(f, "")
        before = placed.get(f)
        if dst.is_dir() and not dst.is_symlink():
            skipped += 1  # the pipeline made a folder where the commit has a file: its data wins
            continue
        present = dst.is_file() and not dst.is_symlink()
        if base is not None and before is not None and before.get("blob") == blob:
            if present:  # the commit did not change it: whatever is there (maybe the pipeline's) stays
                record[f] = before
                continue
            restored += 1
        elif present and filecmp.cmp(src, dst, shallow=False):
            record[f] = {"blob": blob, **_stamp(dst)}
            continue
        else:
            changed += 1
        _place(src, dst)
        record[f] = {"blob": blob, **_stamp(dst)}
    removed = kept = 0
    for f in sorted(set(placed) - set(files)):
        gone = dest / f
        if gone.is_symlink() or (gone.is_file() and (base is None or _untouched(gone, placed[f]))):
            gone.unlink()
            removed += 1
        elif gone.is_file():
            kept += 1  # no longer tracked, and the pipeline rewrote it: its output now
    manifest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(manifest, {"commit": sha, "files": record})
    return _sync_line(rel, len(files), base, changed, removed, restored, kept, skipped, links)


def _sync_line(
    rel: str,
    total: int,
    base: str | None,
    changed: int,
    removed: int,
    restored: int,
    kept: int,
    skipped: int,
    links: list[str],
) -> str:
    def files(n: int, what: str = "file") -> str:
        return f"{n} tracked {what}{'s' if n != 1 else ''}"

    if base is None:
        line = f"persist: {rel}: {files(total)} synced into persist/{rel} ({changed} new or changed, {removed} removed"
    elif changed + removed + restored + kept == 0:
        line = f"persist: {rel}: no tracked file changed since {base[:7]}; nothing synced ({total} tracked"
    else:
        line = (
            f"persist: {rel}: {files(changed + removed + kept)} changed since "
            f"{base[:7]} synced into persist/{rel} ({changed} new or changed, {removed} removed"
        )
    if restored:
        line += f"; {restored} missing put back"
    if kept:
        line += f"; {kept} no longer tracked kept: the pipeline rewrote {'it' if kept == 1 else 'them'}"
    line += ")"
    if links:
        line += f"; {len(links)} tracked symlink{'s' if len(links) != 1 else ''} not synced ({links[0]}...)"
    if skipped:
        line += f"; {skipped} not synced: the pipeline made a folder of that name"
    return line
