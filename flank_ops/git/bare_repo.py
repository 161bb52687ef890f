"""The bare repo a project is pushed to: creating it, its hook shims, its deploy branch.

The deploy branch is what the bare repo's HEAD points at (`flank init --branch`),
so a person can see and change it with plain git (`git symbolic-ref HEAD`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from flank_ops.errors import UserError
from flank_ops.fileio import atomic_write_text
from flank_ops.git.gitcmd import run_git

HOOK_NAMES = ("pre-receive", "post-receive")
DEFAULT_BRANCH = "main"
PYTHON_PLACEHOLDER = "@PYTHON@"
_SHA = re.compile(r"[0-9a-f]{40}")


def deploy_branch(git_dir: Path) -> str:
    """The branch whose pushes are deployed: the bare repo's HEAD (read as a file: no git call)."""
    try:
        head = (Path(git_dir) / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return DEFAULT_BRANCH
    prefix = "ref: refs/heads/"
    return head[len(prefix) :] if head.startswith(prefix) else DEFAULT_BRANCH


def check_branch_name(branch: str) -> str:
    proc = run_git(["check-ref-format", "--branch", branch], check=False)
    if proc.returncode != 0 or branch.startswith("-"):
        raise UserError(f"invalid branch name {branch!r}", "use a plain branch name such as 'main'")
    return branch


def hook_shim(hook: str, python: str) -> str:
    """The shim text for `hook`: the template from hooks/ (package_data.py) with this interpreter filled in."""
    from flank_ops.package_data import package_folder

    template = (package_folder("hooks") / hook).read_text(encoding="utf-8")
    return template.replace(PYTHON_PLACEHOLDER, shlex.quote(python))


def install_hooks(git_dir: Path, python: str | None = None) -> list[str]:
    """(Re)write the hook shims so they call `python -m flank_ops`; returns the hook names."""
    python = python or sys.executable
    # -o run=..., -o setup=skip|force: a repo made before flank used push options gets them too.
    run_git(["config", "receive.advertisePushOptions", "true"], git_dir=Path(git_dir))
    hooks_dir = Path(git_dir) / "hooks"
    for hook in HOOK_NAMES:
        atomic_write_text(hooks_dir / hook, hook_shim(hook, python), mode=0o755)
    return list(HOOK_NAMES)


def create_bare_repo(git_dir: Path, branch: str) -> None:
    """A bare repo at `git_dir`, HEAD on `branch`, push options on, flank hooks installed.

    Built under a temporary name and renamed, so a failed init leaves nothing behind.
    """
    git_dir = Path(git_dir)
    tmp = git_dir.with_name(f".{git_dir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        run_git(["init", "--bare", "-q", f"--initial-branch={branch}", str(tmp)])
        run_git(["config", "receive.advertisePushOptions", "true"], git_dir=tmp)
        # A reflog in the bare repo lets a person find what was deployed before a force push.
        run_git(["config", "core.logAllRefUpdates", "always"], git_dir=tmp)
        # Objects a push writes are the owner's only, whatever the pusher's umask (see fileio.py).
        run_git(["config", "core.sharedRepository", "0600"], git_dir=tmp)
        install_hooks(tmp)
        os.rename(tmp, git_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_commit(git_dir: Path, rev: str) -> str | None:
    """The full sha of commit `rev` (a sha, short sha, branch or ref) in the repo, or None."""
    if not rev or rev.startswith("-"):
        return None
    proc = run_git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], git_dir=Path(git_dir), check=False)
    sha = proc.stdout.decode("ascii", "replace").strip()
    return sha if proc.returncode == 0 and sha else None


def branch_tip(git_dir: Path, branch: str) -> str | None:
    """The commit `branch` points at, or None when it has none yet.

    Read from the ref files like deploy_branch (no git call: every site build asks), with
    git itself as the fallback for anything unusual."""
    ref = f"refs/heads/{branch}"
    try:
        loose = (Path(git_dir) / ref).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        loose = None
    except (OSError, UnicodeDecodeError):
        return resolve_commit(git_dir, ref)
    if loose is not None:
        return loose if _SHA.fullmatch(loose) else resolve_commit(git_dir, ref)
    try:
        packed = (Path(git_dir) / "packed-refs").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return resolve_commit(git_dir, ref)
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name == ref and _SHA.fullmatch(sha):
            return sha
    return None
