"""What `setup:`'s builds take on disk (issue 28 item 8), for the Resources page, `flank doctor`
and pruning (deploy/setup.py prune_builds keeps only builds a kept release uses).

A build's size is measured once, when setup made it (setup/sizes/<build>, bytes as text); a build
an older flank made is measured when asked. Sizes are disk use (allocated blocks), links not followed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple

from flank_ops.paths import ProjectPaths

WARN_SHARE = 0.2  # setup's builds above this share of the disk: say so (doctor, Resources page)


class SetupDisk(NamedTuple):
    builds: int
    bytes: int
    disk_total: int  # the size of the disk holding them (0: unknown)

    @property
    def share(self) -> float:
        return self.bytes / self.disk_total if self.disk_total else 0.0

    @property
    def too_big(self) -> bool:
        return self.share > WARN_SHARE


def disk_bytes(folder: Path) -> int:
    """Disk use of everything under `folder` (like du -s), symlinks not followed."""
    total = 0
    todo = [str(folder)]
    while todo:
        try:
            with os.scandir(todo.pop()) as it:
                for item in it:
                    try:
                        st = item.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if item.is_dir(follow_symlinks=False):
                        todo.append(item.path)
        except OSError:
            continue
    return total


def size_file(paths: ProjectPaths, build: str) -> Path:
    return paths.setup_dir / "sizes" / build


def build_bytes(paths: ProjectPaths, build: str) -> int:
    try:
        return int(size_file(paths, build).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return disk_bytes(paths.setup_dir / "builds" / build)


def record_build_bytes(paths: ProjectPaths, build: str) -> int:
    """Measure a build setup just made and remember its size."""
    from flank_ops.fileio import atomic_write_bytes

    size = disk_bytes(paths.setup_dir / "builds" / build)
    size_file(paths, build).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(size_file(paths, build), str(size).encode("ascii"))
    return size


def setup_disk(paths: ProjectPaths) -> SetupDisk | None:
    """The builds on disk and their total size (None: this project never ran setup)."""
    builds = paths.setup_dir / "builds"
    try:
        names = [p.name for p in builds.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    except OSError:
        return None
    try:
        total = shutil.disk_usage(builds).total
    except OSError:
        total = 0
    return SetupDisk(len(names), sum(build_bytes(paths, n) for n in names), total)
