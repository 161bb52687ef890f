"""A repo's files as config/repo_paths.py reads them: a commit's tree, or a work tree's index.

The push checks the pushed commit (inside pre-receive, whose objects are still in
quarantine: keep_git_env=True); `flank validate` in a work tree checks the index, what
the next commit holds. Both answer the same two questions, so one set of rules serves both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from flank_ops.config.load import FILENAME as FLANK_YML
from flank_ops.config.repo_paths import Entry
from flank_ops.errors import UserError
from flank_ops.git.gitcmd import run_git

_KINDS = {"040000": "tree", "120000": "link", "160000": "commit"}


def _kind(mode: str) -> str:
    return _KINDS.get(mode.zfill(6), "blob")


# read(name, want_content) -> (type or "missing", size, content): one `git cat-file --batch` (git/push_check.py
# object_reader); content only up to its size limit.
ReadObject = Callable[[str, bool], tuple[str, int, bytes]]


class CommitTree:
    """The tree of one commit, read a folder at a time: through `read_object` when given (the
    push's one `git cat-file --batch`), else `git ls-tree`."""

    def __init__(
        self, git_dir: Path, sha: str, *, keep_git_env: bool = False, read_object: ReadObject | None = None
    ) -> None:
        self.git_dir = git_dir
        self.sha = sha
        self.keep_git_env = keep_git_env
        self.read_object = read_object
        self._folders: dict[str, dict[str, Entry] | None] = {}

    def folder(self, path: str) -> dict[str, Entry] | None:
        if path not in self._folders:
            spec = f"{self.sha}:{path}" if path else f"{self.sha}^{{tree}}"
            read, listing = self._read_tree(spec) if self.read_object is not None else (False, None)
            self._folders[path] = listing if read else self._ls_tree(spec)
        return self._folders[path]

    def _read_tree(self, spec: str) -> tuple[bool, dict[str, Entry] | None]:
        """(True, the tree object `spec` parsed, or None when `spec` is no tree), or (False, None) when it
        is too big to read this way."""
        assert self.read_object is not None
        kind, size, raw = self.read_object(spec, True)
        if kind != "tree":
            return True, None
        if len(raw) != size:
            return False, None
        oid_bytes = len(self.sha) // 2  # 20 (SHA-1) or 32 (SHA-256)
        listing: dict[str, Entry] = {}
        at = 0
        while at < len(raw):
            space = raw.index(b" ", at)
            nul = raw.index(b"\0", space)
            name = raw[space + 1 : nul].decode("utf-8", "surrogateescape")
            listing[name] = Entry(_kind(raw[at:space].decode()), raw[nul + 1 : nul + 1 + oid_bytes].hex())
            at = nul + 1 + oid_bytes
        return True, listing

    def _ls_tree(self, spec: str) -> dict[str, Entry] | None:
        proc = run_git(["ls-tree", "-z", spec], git_dir=self.git_dir, keep_git_env=self.keep_git_env, check=False)
        if proc.returncode != 0:
            return None
        listing = {}
        for record in proc.stdout.split(b"\0"):
            meta, tab, name = record.partition(b"\t")
            if tab:
                mode, _kind_word, oid = meta.decode().split()
                listing[name.decode("utf-8", "surrogateescape")] = Entry(_kind(mode), oid)
        return listing

    def link_target(self, entry: Entry) -> str:
        if self.read_object is not None:
            kind, size, raw = self.read_object(entry.oid, True)
            if kind == "blob" and len(raw) == size:
                return raw.decode("utf-8", "surrogateescape")
        return _blob(self.git_dir, entry.oid, self.keep_git_env, None)


class IndexTree:
    """A work tree's index (`git ls-files -s`): what `git commit` would record."""

    def __init__(self, work_tree: Path) -> None:
        self.work_tree = work_tree
        proc = run_git(["ls-files", "-s", "-z"], cwd=work_tree)
        self._folders: dict[str, dict[str, Entry]] = {"": {}}
        for record in proc.stdout.split(b"\0"):
            meta, tab, raw_path = record.partition(b"\t")
            if not tab:
                continue
            mode, oid, _stage = meta.decode().split()
            parts = raw_path.decode("utf-8", "surrogateescape").split("/")
            for depth in range(len(parts) - 1):
                parent = "/".join(parts[:depth])
                self._folders.setdefault(parent, {})[parts[depth]] = Entry("tree", "")
                self._folders.setdefault("/".join(parts[: depth + 1]), {})
            self._folders.setdefault("/".join(parts[:-1]), {})[parts[-1]] = Entry(_kind(mode), oid)

    def folder(self, path: str) -> dict[str, Entry] | None:
        return self._folders.get(path)

    def link_target(self, entry: Entry) -> str:
        return _blob(None, entry.oid, False, self.work_tree)


def _blob(git_dir: Path | None, oid: str, keep_git_env: bool, cwd: Path | None) -> str:
    proc = run_git(["cat-file", "blob", oid], git_dir=git_dir, cwd=cwd, keep_git_env=keep_git_env)
    return proc.stdout.decode("utf-8", "surrogateescape")


def work_tree_index(flank_yml: Path) -> IndexTree | None:
    """The index of the git work tree whose root holds `flank_yml`; None when it is not one
    (a flank.yml elsewhere is not what a push would deploy)."""
    folder = Path(os.path.abspath(flank_yml)).parent
    if not folder.is_dir():
        return None
    try:
        proc = run_git(["rev-parse", "--show-toplevel"], cwd=folder, check=False)
    except UserError:  # git is not installed: nothing to compare with
        return None
    top = proc.stdout.decode("utf-8", "surrogateescape").strip()
    if proc.returncode != 0 or not top or os.path.realpath(top) != os.path.realpath(folder):
        return None
    if os.path.basename(flank_yml) != FLANK_YML:
        return None
    return IndexTree(Path(top))


def committed_flank_yml(git_dir: Path, sha: str, max_bytes: int) -> bytes:
    """flank.yml's bytes at `sha`, straight from git's object store (content-addressed: the
    very bytes validated at push); UserError when it is not a regular file there."""
    from flank_ops.config.load import symlink_error

    entry = (CommitTree(git_dir, sha).folder("") or {}).get(FLANK_YML)
    if entry is None or entry.kind != "blob":
        if entry is not None and entry.kind == "link":
            raise UserError(str(symlink_error().errors[0]))
        raise UserError(f"no {FLANK_YML} file in commit {sha[:7]}")
    data = run_git(["cat-file", "blob", entry.oid], git_dir=git_dir).stdout
    if len(data) > max_bytes:
        raise UserError(f"{FLANK_YML} in commit {sha[:7]} is larger than {max_bytes // 1024 // 1024} MB")
    return data
