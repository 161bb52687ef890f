"""Releases: one checkout per deployed commit, complete or absent.

A release is checked out into a temporary folder beside releases/<sha>, its
`persist:` folders are linked in, and only then is it renamed into place; a
crash or a full disk leaves a stray temp folder (cleaned by the next deploy),
never a half release. Old releases are pruned, never the persisted data.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from flank_ops.config.model import Config
from flank_ops.errors import UserError
from flank_ops.fileio import umasked
from flank_ops.git.gitcmd import quarantine_env, run_git
from flank_ops.paths import ProjectPaths

KEEP_RELEASES = 5
_TEMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"


def make_release(
    paths: ProjectPaths,
    sha: str,
    config: Config | None,
    load_config: Callable[[Path], Config],
) -> tuple[Path, list[str], Config]:
    """releases/<sha>, checked out with persist: links; reuses an existing one (re-push of an old commit).

    `config` is flank.yml at `sha` if already known, else `load_config(release_dir)` reads it
    from the checkout. Returns the release dir, warnings for the user and the config.
    Raises on failure, leaving nothing behind.
    """
    release = paths.release_dir(sha)
    if release.is_dir():
        config = config or load_config(release)
        warnings = link_persist(paths, release, config.persist)
        os.utime(release)  # counts as recently deployed when pruning
        return release, warnings, config
    paths.releases_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=paths.releases_dir, prefix=f"{_TEMP_PREFIX}{sha[:12]}-"))
    try:
        checkout(paths.bare_repo, sha, tmp)
        config = config or load_config(tmp)
        warnings = link_persist(paths, tmp, config.persist)
        os.chmod(tmp, umasked(0o755))  # mkdtemp makes it 0700; flank's umask keeps it so (fileio.py)
        os.rename(tmp, release)
        os.utime(release)  # deploy time orders releases for pruning
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return release, warnings, config


def checkout(git_dir: Path, sha: str, dest: Path) -> None:
    """Write the tree of `sha` into `dest`, using a throwaway index (the bare repo has none)."""
    index = dest.with_name(dest.name + ".index")
    try:
        proc = run_git(
            ["--work-tree", str(dest), "checkout", "-f", sha, "--", "."],
            git_dir=git_dir,
            env={**quarantine_env(), "GIT_INDEX_FILE": str(index)},  # pre-receive: setup's build
            check=False,
        )
        if proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip()
            if "space" in detail.lower():  # git's words for ENOSPC vary ("No space left", "Out of diskspace")
                raise UserError(f"no space left on the device ({dest.parent})", "free some disk space, then push again")
            raise UserError(f"git checkout of {sha[:7]} failed: {detail or f'exit {proc.returncode}'}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(index)


def safe_relative(path: str) -> bool:
    parts = Path(path).parts
    return bool(parts) and not Path(path).is_absolute() and ".." not in parts


def link_persist(paths: ProjectPaths, release: Path, persist: tuple[str, ...]) -> list[str]:
    """Create persist/<dir> and link it into the release as <dir>; never replace a tracked file."""
    warnings = []
    for name in persist:
        rel = name.strip("/")
        if not safe_relative(rel):
            warnings.append(f"persist: {name!r} is not a relative path inside the repo; not linked")
            continue
        data = paths.persist_dir / rel
        link = release / rel
        if not (_stays_inside(link.parent, release) and _stays_inside(data.parent, paths.persist_dir)):
            # Validation refuses such paths; the deploy never follows a symlink out of FLANK_HOME anyway.
            warnings.append(f"persist: {rel!r} leads out of the release through a symlink; not linked")
            continue
        data.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(data, link.parent)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_dir() and not link.is_symlink():
            # issue 11: tracked files under a persisted folder (an overlay): moved aside in the
            # release; the deploy syncs them into persist/<dir> (deploy/persist_overlay.py)
            aside = paths.release_tracked(release, rel)
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.rename(link, aside)
        elif link.exists() or link.is_symlink():
            warnings.append(
                f"persist: {rel!r} is tracked in the repo, so it was not linked to {data}; "
                f"stop tracking it (git rm -r --cached {rel}) to keep its data across deploys"
            )
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
    return warnings


def _stays_inside(path: Path, root: Path) -> bool:
    """`path` (which may not exist yet) is `root` or below it once every symlink is followed,
    and no symlink on the way dangles (creating folders there would fail or land elsewhere)."""
    probe = Path(path)
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent  # the deepest part that exists decides where the rest goes
    if os.path.islink(probe) and not os.path.exists(probe):
        return False  # dangling
    # realpath follows what exists and appends the rest as written (no '..': validated)
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return real == real_root or real.startswith(real_root + os.sep)


def clean_leftovers(paths: ProjectPaths) -> None:
    """Remove temp and trash folders a crashed deploy left (call under the deploy lock)."""
    if not paths.releases_dir.is_dir():
        return
    for entry in paths.releases_dir.iterdir():
        if entry.name.startswith((_TEMP_PREFIX, _TRASH_PREFIX)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def clean_stale_validated(paths: ProjectPaths, max_age_s: float = 86400) -> None:
    """Drop configs pre-receive saved for pushes git then failed to apply (never picked up)."""
    import time

    folder = paths.validated_config("x").parent
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        with contextlib.suppress(OSError):
            if time.time() - entry.stat().st_mtime > max_age_s:
                entry.unlink()


def prune_releases(
    paths: ProjectPaths,
    in_use: set[str],
    keep: int = KEEP_RELEASES,
    later: list[Callable[[], None]] | None = None,
) -> list[str]:
    """Delete releases beyond the `keep` most recently deployed, except the current one and
    `in_use` (run/in_use.releases_in_use). Returns the pruned shas. Persisted data is only
    linked, so never touched. With `later`, a pruned release is renamed away now and its files
    removed by a step added to `later` (a push does that after it has answered: deploy/hooks.py);
    a removal never done is finished by the next deploy (clean_leftovers)."""
    if not paths.releases_dir.is_dir():
        return []
    releases = [
        p for p in paths.releases_dir.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    ]
    if len(releases) <= keep:
        return []
    releases.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    protected = {p.name for p in releases[:keep]} | in_use
    current = paths.current_sha()
    if current:
        protected.add(current)
    pruned = []
    for release in releases[keep:]:
        if release.name in protected:
            continue
        # Rename first, so the release vanishes at once rather than file by file.
        trash = release.with_name(f"{_TRASH_PREFIX}{release.name}-{os.getpid()}")
        try:
            os.rename(release, trash)
        except OSError:
            continue
        # rmtree unlinks symlinks without following them: persist/ data is safe.
        if later is None:
            shutil.rmtree(trash, ignore_errors=True)
        else:
            later.append(functools.partial(shutil.rmtree, trash, ignore_errors=True))
        for kept in (paths.release_config(release.name), paths.config_cache(release.name)):
            with contextlib.suppress(OSError):
                kept.unlink()
        pruned.append(release.name)
    return pruned
