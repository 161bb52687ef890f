"""The deploy branch's tip, read without a git call (loose and packed refs), as git itself sees it."""

from __future__ import annotations

from pathlib import Path

from flank_ops.git.bare_repo import branch_tip, resolve_commit
from helpers.repos import git, make_repo


def test_branch_tip_reads_loose_and_packed_refs_like_git(tmp_path: Path) -> None:
    wc = make_repo(tmp_path / "wc", {"a.txt": "a\n"})
    bare = tmp_path / "b.git"
    git("clone", "-q", "--bare", str(wc), str(bare), cwd=tmp_path)
    sha = git("rev-parse", "HEAD", cwd=wc).stdout.strip()
    assert branch_tip(bare, "main") == sha == resolve_commit(bare, "refs/heads/main")
    git("--git-dir", str(bare), "pack-refs", "--all", cwd=tmp_path)
    assert not (bare / "refs" / "heads" / "main").exists()
    assert branch_tip(bare, "main") == sha
    assert branch_tip(bare, "nope") is None and resolve_commit(bare, "nope") is None
    assert resolve_commit(bare, sha[:8]) == sha and resolve_commit(bare, "--all") is None
