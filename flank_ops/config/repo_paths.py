"""Where `dir:` and `persist:` really lead in the repo, once tracked symlinks are followed.

A release is a checkout of the pushed commit, so a symlink committed in the repo is
followed when a task enters its `dir:` and when the deploy links a persisted folder.
Validation resolves each path through the commit's tree (or, for `flank validate` in a
work tree, the index) the way the kernel will, and refuses paths that leave the repo,
or go through a symlink to nothing: file:line:col like every other flank.yml error.

This module knows paths only; the trees come from git (flank_ops/git/trees.py). The
rules and their words live here once, for the push and for `flank validate` alike.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple, Protocol

MAX_LINKS = 40  # the kernel's limit on symlinks followed in one lookup (ELOOP)


class Entry(NamedTuple):
    kind: str  # "tree", "blob", "link" or "commit" (a submodule: its content is not in the release)
    oid: str


class RepoTree(Protocol):
    def folder(self, path: str) -> dict[str, Entry] | None:
        """The entries of the folder at `path` ("" = the repo root); None when it is not a folder."""

    def link_target(self, entry: Entry) -> str:
        """The text of a symlink entry."""


class Resolved(NamedTuple):
    path: str  # where it leads, relative to the repo root
    kind: str  # "tree", "blob", "commit" or "missing" (not in the tree: created later, or persisted)


class PathProblem(Exception):
    def __init__(self, kind: str, where: str, target: str = "") -> None:
        super().__init__(kind)
        self.kind = kind  # "escape", "dangling", "loop" or "file"
        self.where = where  # the symlink (or file) in the way
        self.target = target  # the symlink's text


def resolve(tree: RepoTree, path: str, persisted: tuple[str, ...] = ()) -> Resolved:
    """Follow `path` (relative, no '..') through the tree; PathProblem when it cannot stay inside.

    A symlink whose target is missing from the tree is dangling, unless it points into a
    persisted folder (those are linked in at deploy, so exist in every release).
    """
    return _walk(tree, [], path.split("/"), persisted, [MAX_LINKS], None)


def _walk(
    tree: RepoTree,
    done: list[str],
    parts: list[str],
    persisted: tuple[str, ...],
    budget: list[int],
    via: tuple[str, str] | None,
) -> Resolved:
    parts = [p for p in parts if p not in ("", ".")]
    while parts:
        name = parts.pop(0)
        if name == "..":
            if not done:  # above the repo root; only a symlink's text can say '..' (validated)
                raise PathProblem("escape", *(via or ("", "")))
            done.pop()
            continue
        listing = tree.folder("/".join(done))
        entry = listing.get(name) if listing is not None else None
        here = "/".join(done + [name])
        if entry is None:
            return Resolved("/".join([here, *parts]), "missing")
        if entry.kind == "link":
            target = tree.link_target(entry)
            link = via or (here, target)
            if target.startswith("/"):
                raise PathProblem("escape", *link)
            budget[0] -= 1
            if budget[0] < 0:
                raise PathProblem("loop", *link)
            found = _walk(tree, list(done), target.split("/"), persisted, budget, link)
            if found.kind == "missing" and not _inside(found.path, persisted):
                raise PathProblem("dangling", *link)
            if found.kind == "blob" and parts:
                raise PathProblem("file", here)
            if found.kind in ("blob", "commit", "missing"):
                return Resolved("/".join([found.path, *parts]), found.kind)
            done = found.path.split("/") if found.path else []
            continue
        if entry.kind == "blob":
            if parts:
                raise PathProblem("file", here)
            return Resolved(here, "blob")
        if entry.kind == "commit":
            return Resolved("/".join([here, *parts]), "commit")
        done.append(name)
    return Resolved("/".join(done), "tree")


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == f or path.startswith(f + "/") for f in folders)


def path_problems(tree: RepoTree, key: str, path: str, persisted: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """What is wrong with `dir:` or `persist:` path `path` in this tree: (message, hint) pairs."""
    change = "drop it from persist:" if key == "persist" else "change dir:"
    try:
        found = resolve(tree, path, persisted if key == "dir" else ())
    except PathProblem as problem:
        if problem.kind == "escape":
            return [
                (
                    f"{key}: {path!r} leads out of the repo: {problem.where!r} is a symlink to {problem.target!r}",
                    f"point the symlink at a folder inside the repo, or {change}",
                )
            ]
        if problem.kind == "dangling":
            return [
                (
                    f"{key}: {path!r} goes through {problem.where!r}, a symlink to {problem.target!r}, "
                    "which is not in the repo",
                    "commit what it points to, or remove the symlink",
                )
            ]
        if problem.kind == "loop":
            return [
                (
                    f"{key}: {path!r} goes through {problem.where!r}: too many levels of symlinks",
                    "remove the symlink loop",
                )
            ]
        return [(f"{key}: {path!r} goes through {problem.where!r}, a file in the repo, not a folder", None)]
    if key == "persist" and found.kind != "missing":
        # issue 11: a tracked folder is an overlay (each deploy syncs its tracked files into
        # persist/<dir>: deploy/persist_overlay.py); a file, a submodule or a symlink cannot be one.
        if found.kind == "tree" and found.path == path:
            return []
        if found.kind == "tree":
            return [
                (
                    f"persist: {path!r} is a symlink in the repo (to {found.path!r}); a persisted folder must be "
                    "the folder itself",
                    f"persist the folder it points to: persist: [{found.path}]",
                )
            ]
        if found.kind == "commit":
            return [
                (f"persist: {path!r} is a git submodule; its files are not in the release", "drop it from persist:")
            ]
        return [
            (f"persist: {path!r} is a file in the repo, not a folder", "persist: names folders; drop it from persist:")
        ]
    if key == "dir" and found.kind == "blob":
        return [(f"dir: {path!r} is a file in the repo, not a folder", None)]
    return []


def flank_yml_link_problem() -> tuple[str, str]:
    """A flank.yml committed as a symlink: flank never follows it (it could lead anywhere,
    and change without a push). The words of the push and of `flank validate`."""
    return (
        "is a symlink; flank reads only a flank.yml committed as a regular file",
        "commit the file itself in place of the link",
    )


@functools.lru_cache(maxsize=16384)  # pure; a big pipeline's decision asks it ~10 times per task
def repo_relative(task_dir: str | None, pattern: str) -> str | None:
    """`pattern` (relative to the task's dir) as a normalised path from the repo root; None when it
    leads out of the repo."""
    joined = os.path.normpath(os.path.join(task_dir or ".", pattern))
    if joined == ".." or joined.startswith("../") or os.path.isabs(joined):
        return None
    return joined
