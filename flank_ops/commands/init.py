"""flank init NAME: the bare repo a user pushes to, its hooks, the project's state folders.

Running it again on an existing project repairs the hook shims (e.g. after the
Python that flank lives in moved) and touches nothing else.
"""
from __future__ import annotations

import argparse
import getpass
import os
import socket

from flank_ops.errors import UserError
from flank_ops.git.bare_repo import (
    DEFAULT_BRANCH,
    check_branch_name,
    create_bare_repo,
    deploy_branch,
    install_hooks,
)
from flank_ops.paths import Home, ProjectPaths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="project name (letters, digits, '_', '-', '.')")
    parser.add_argument(
        "--branch", default=None, help=f"the branch whose pushes are deployed (default: {DEFAULT_BRANCH})"
    )


def run(args: argparse.Namespace) -> int:
    home = Home()
    paths = home.project(args.name)
    git_dir = paths.bare_repo
    if git_dir.exists():
        repair(paths, args.branch)
    else:
        branch = check_branch_name(args.branch or DEFAULT_BRANCH)
        home.root.mkdir(parents=True, exist_ok=True)
        create_bare_repo(git_dir, branch)
        make_state_dirs(paths)
        print(f"flank: created project {paths.name!r}")
        print(f"  bare repo  {git_dir}  (deploys branch {branch})")
        print(f"  state      {paths.dir}/")
    print_next_steps(paths)
    return 0


def repair(paths: ProjectPaths, branch: str | None) -> None:
    git_dir = paths.bare_repo
    if not (git_dir / "HEAD").is_file() or not (git_dir / "objects").is_dir():
        raise UserError(
            f"{git_dir} exists but is not a bare git repository",
            "move it away, or pick another project name",
        )
    current_branch = deploy_branch(git_dir)
    if branch is not None and branch != current_branch:
        raise UserError(
            f"project {paths.name!r} exists and deploys branch {current_branch!r}, not {branch!r}",
            f"to change it: git --git-dir={git_dir} symbolic-ref HEAD refs/heads/{branch}",
        )
    hooks = install_hooks(git_dir)
    make_state_dirs(paths)
    print(f"flank: project {paths.name!r} exists; repaired its hooks ({', '.join(hooks)})")


def make_state_dirs(paths: ProjectPaths) -> None:
    """Create the project's folders that are missing; existing ones are left as they are."""
    for folder in (paths.dir, paths.releases_dir, paths.persist_dir, paths.pipelines_dir,
                   paths.runs_root, paths.locks_dir):
        folder.mkdir(parents=True, exist_ok=True)


def ssh_remote_url(paths: ProjectPaths) -> str:
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()
    return f"ssh://{user}@{socket.getfqdn()}{paths.bare_repo}"


def print_next_steps(paths: ProjectPaths) -> None:
    branch = deploy_branch(paths.bare_repo)
    print()
    print("In your clone (e.g. RStudio's terminal), add this VM as a remote and push:")
    print(f"  git remote add flank {ssh_remote_url(paths)}")
    print(f"  git push flank {branch}")
    print()
    print("To see run summaries in git log (once per clone, then git fetch flank):")
    print("  git config --add remote.flank.fetch '+refs/notes/flank:refs/notes/flank'")
    print("  git config notes.displayRef refs/notes/flank")
