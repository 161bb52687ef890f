"""A project made with `flank init` and a working copy that pushes to it, as a user does.

Shared by the tests of flank_ops/git (real hooks, real `git push` into a real bare repo).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

from helpers.cli import run_flank
from helpers.repos import git, make_repo

# No schedule: these tests must not touch the machine's crontab (the schedule tests do that).
SIMPLE_FLANK_YML = """\
persist: [data]
pipelines:
  nightly:
    tasks:
      extract: echo extract
      report:
        run: echo report
        needs: [extract]
"""


class Project(NamedTuple):
    name: str
    home: Path  # FLANK_HOME
    wc: Path  # the user's working copy, remote "flank" = the bare repo
    bare: Path

    @property
    def dir(self) -> Path:
        return self.home / self.name

    @property
    def current(self) -> Path:
        return self.dir / "current"

    def current_sha(self) -> str | None:
        try:
            return os.path.basename(os.readlink(self.current))
        except OSError:
            return None

    def releases(self) -> list[str]:
        return sorted(p.name for p in (self.dir / "releases").iterdir() if not p.name.startswith("."))

    def deploys(self) -> list[dict[str, Any]]:
        path = self.dir / "deploys.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def remote_sha(self, ref: str = "refs/heads/main") -> str | None:
        proc = git("--git-dir", str(self.bare), "rev-parse", "--verify", "-q", ref, cwd=self.home, check=False)
        return proc.stdout.strip() or None


def new_project(
    tmp_path: Path,
    files: dict[str, str] | None = None,
    name: str = "proj",
    init_args: tuple[str, ...] = (),
    message: str = "first",
) -> Project:
    home = Path(os.environ["FLANK_HOME"])
    run_flank("init", name, *init_args, check=True)
    bare = home / f"{name}.git"
    files = {"flank.yml": SIMPLE_FLANK_YML} if files is None else files
    wc = make_repo(tmp_path / f"wc-{name}", files, message=message)
    git("remote", "add", "flank", str(bare), cwd=wc)
    return Project(name, home, wc, bare)


def push(project: Project, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`git push flank ...` (default: main); returns the process, output in .stderr."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_DIR")}
    if env:
        full_env.update(env)
    return subprocess.run(
        ["git", "push", "flank", *(args or ("main",))],
        cwd=project.wc,
        env=full_env,
        text=True,
        capture_output=True,
    )


def flank_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The `remote: flank: ...` lines of a push, without the prefix and git's padding."""
    out = []
    for line in proc.stderr.splitlines():
        if line.startswith("remote: "):
            out.append(line[len("remote: ") :].rstrip())
    return out


def head(wc: Path) -> str:
    return git("rev-parse", "HEAD", cwd=wc).stdout.strip()
