"""The laptop's clone as `flank up` / `flank down` see it: which project it is, and its `flank` remote."""

from __future__ import annotations

from pathlib import Path

from flank_ops.errors import UserError
from flank_ops.git.gitcmd import run_git
from flank_ops.paths import check_project_name


def project_of_clone(named: str | None) -> str:
    """The project named, else the clone's folder name (as `flank init NAME` would be run for it)."""
    if named:
        return check_project_name(named)
    proc = run_git(["rev-parse", "--show-toplevel"], check=False)
    if proc.returncode != 0:
        raise UserError(
            "no project named and not in a git clone", "run it in your project's clone, or name it: flank up NAME"
        )
    return check_project_name(Path(proc.stdout.decode().strip()).name)


def point_remote(name: str, url: str) -> str:
    """Add or move the clone's git remote; what was done, for the user."""
    if run_git(["rev-parse", "--git-dir"], check=False).returncode != 0:
        return f"not in a git clone: in yours, run  git remote add {name} {url}"
    current = run_git(["remote", "get-url", name], check=False)
    if current.returncode != 0:
        run_git(["remote", "add", name, url])
        return f"git remote {name} added: {url}"
    if current.stdout.decode().strip() == url:
        return f"git remote {name} is {url}"
    run_git(["remote", "set-url", name, url])
    return f"git remote {name} now points at {url}"
