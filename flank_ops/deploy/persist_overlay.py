"""Persisted folders that hold tracked files: an overlay (issue 11).

A common R layout tracks raw inputs under `data/_raw/` and writes derived files into `data/`.
With `persist: [data]`, each deploy copies the commit's tracked files under `data/` into
`persist/data/` (the release moved them aside into .flank-tracked/, see releases.link_persist):
a new or changed file replaces the older version (written beside it and renamed, so a run
reading it sees the old or the new file, never half), a file an earlier deploy placed there
that the new commit deleted is removed, and every file the pipeline wrote is left alone. A
task that overwrites a tracked file gets it back at the next deploy.

Which files a deploy placed is kept in persist-tracked/<dir>.json (paths.persist_manifest).
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from pathlib import Path

from flank_ops.fileio import atomic_write_json
from flank_ops.paths import ProjectPaths


def sync_tracked(paths: ProjectPaths, release: Path, persist: tuple[str, ...]) -> list[str]:
    """Sync every persisted folder's tracked files from `release` into persist/; one line each
    for the push output. Raises OSError (the deploy fails and says why: runs must not read
    half-synced data)."""
    lines = []
    for name in persist:
        rel = name.strip("/")
        source = paths.release_tracked(release, rel)
        manifest = paths.persist_manifest(rel)
        if not source.is_dir() and not manifest.exists():
            continue  # nothing tracked there, now or before
        lines.append(_sync_folder(source, paths.persist_dir / rel, manifest, rel))
    return lines


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


def _sync_folder(source: Path, dest: Path, manifest: Path, rel: str) -> str:
    files, links = _tracked_files(source)
    try:
        placed = set(json.loads(manifest.read_text(encoding="utf-8")).get("files") or [])
    except (OSError, ValueError, AttributeError):
        placed = set()
    changed = skipped = 0
    for f in files:
        src, dst = source / f, dest / f
        if dst.is_file() and not dst.is_symlink() and filecmp.cmp(src, dst, shallow=False):
            continue
        if dst.is_dir() and not dst.is_symlink():
            skipped += 1  # the pipeline made a folder where the commit has a file: its data wins
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.flank-sync.tmp")
        try:
            shutil.copy2(src, tmp)
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        changed += 1
    removed = 0
    for f in sorted(placed - set(files)):
        gone = dest / f
        if gone.is_file() or gone.is_symlink():
            gone.unlink()
            removed += 1
    manifest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(manifest, {"files": files})
    line = (
        f"persist: {rel}: {len(files)} tracked file{'s' if len(files) != 1 else ''} synced into persist/{rel} "
        f"({changed} new or changed, {removed} removed)"
    )
    if links:
        line += f"; {len(links)} tracked symlink{'s' if len(links) != 1 else ''} not synced ({links[0]}...)"
    if skipped:
        line += f"; {skipped} not synced: the pipeline made a folder of that name"
    return line
