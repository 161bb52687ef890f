"""A FLANK_HOME another Unix user could reach, as the README sets one up for nginx, and such a user.

The pytest temp folders are 0700, so a FLANK_HOME there proves nothing about modes:
this one lives in a folder of its own that others may traverse (0711, as the README
tells users to make their home folder), so only flank's own modes decide who reads what.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.repos import git, make_repo


@pytest.fixture
def traversable_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """FLANK_HOME in a folder others can traverse but not list (0711); the user's umask is 022."""
    parent = Path(tempfile.mkdtemp(prefix="flank-perm-"))
    os.chmod(parent, 0o711)
    home = parent / "flank"
    monkeypatch.setenv("FLANK_HOME", str(home))
    old_umask = os.umask(0o022)  # a usual login umask: flank must not depend on a strict one
    try:
        yield home
    finally:
        os.umask(old_umask)
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def other_user() -> Iterator[str]:
    """A second Unix user (created for the test, removed after it)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second Unix user (useradd) and to run commands as it (runuser)")
    for tool in ("useradd", "userdel", "runuser"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool} command on this machine (apt-get install passwd util-linux)")
    name = f"flankprobe{os.getpid() % 100000}"
    subprocess.run(["userdel", name], capture_output=True)  # a leftover of a killed earlier test
    subprocess.run(
        ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True)


def read_as(user: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", "cat", str(path)], capture_output=True, text=True)


FLANK_YML = """\
pipelines:
  nightly:
    tasks:
      extract: echo extracted-rows
      report:
        run: echo report-done
        needs: [extract]
"""


def project_with_a_run(home: Path, tmp_path: Path, name: str = "proj") -> Path:
    """`flank init`, a push, a secret and a finished run, all under umask 022; returns the bare repo."""
    run_flank("init", name, check=True)
    bare = home / f"{name}.git"
    wc = make_repo(tmp_path / f"wc-{name}", {"flank.yml": FLANK_YML})
    git("remote", "add", "flank", str(bare), cwd=wc)
    git("push", "-q", "flank", "main", cwd=wc)
    assert (home / name / "current").exists()
    run_flank("secrets", "set", name, "API_TOKEN", input="s3cr3t-value", check=True)
    run_flank("run", name, "nightly", check=True)
    return bare
