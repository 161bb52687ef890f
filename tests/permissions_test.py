"""Who may read what under FLANK_HOME: state is the owner's, only the site is readable by others.

A second Unix user tries to read every kind of state flank keeps (logs, records,
history, pushes, releases, the bare repo, secrets) and the site's pages.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from flank_ops.exit_codes import ExitCode
from flank_ops.paths import Home
from helpers.readable_site import other_user, project_with_a_run, read_as, traversable_home  # noqa: F401 - fixtures


def private_files(home: Path, bare: Path) -> list[Path]:
    paths = Home(home).project("proj")
    run_dir = paths.run_dir("nightly", 1)
    release = paths.current.resolve()
    objects = [p for p in (bare / "objects").rglob("*") if p.is_file()]
    files = [
        run_dir / "logs" / "extract.log",
        run_dir / "run.json",
        paths.runs_dir("nightly") / "history.jsonl",
        paths.deploys_log,
        paths.secrets_env,
        release / "flank.yml",
        paths.makefile("nightly"),
        bare / "config",
        bare / "HEAD",
        objects[0],
    ]
    for f in files:
        assert f.is_file(), f  # the test reads real files, not missing ones
    return files


def site_files(home: Path) -> list[Path]:
    site = home / "site"
    files = [
        site / "index.html",
        site / "_static" / "style.css",
        site / "proj" / "index.html",
        site / "proj" / "nightly" / "index.html",
        site / "proj" / "nightly" / "1" / "index.html",
        site / "proj" / "nightly" / "1" / "logs" / "extract.html",
        site / "proj" / "nightly" / "1" / "logs" / "extract.txt",
    ]
    for f in files:
        assert f.is_file(), f
    return files


@pytest.mark.slow
def test_another_user_reads_the_site_but_no_state(traversable_home: Path, other_user: str, tmp_path: Path) -> None:
    home = traversable_home
    bare = project_with_a_run(home, tmp_path)
    os.chmod(home, 0o711)  # the README's step for a web server: others may pass through FLANK_HOME

    for f in private_files(home, bare):
        proc = read_as(other_user, f)
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, f"{other_user} could read {f}"
        assert proc.stdout == ""

    for f in site_files(home):
        proc = read_as(other_user, f)
        assert proc.returncode == 0, f"{other_user} cannot read {f}: {proc.stderr}"
        assert proc.stdout == f.read_text()
    raw_log = read_as(other_user, home / "site" / "proj" / "nightly" / "1" / "logs" / "extract.txt")
    assert "extracted-rows" in raw_log.stdout


@pytest.mark.slow
def test_modes_follow_one_rule_whatever_the_users_umask(traversable_home: Path, tmp_path: Path) -> None:
    """Everything outside site/ has no group/other bits; site files are 0644 and its folders 0755.

    The raw logs on the site are hard links to the runs' logs (one inode, one mode):
    readable through the site, out of reach through the run folder (0700).
    """
    home = traversable_home
    project_with_a_run(home, tmp_path)
    site = home / "site"
    site_inodes = set()
    for p in [site, *site.rglob("*")]:
        st = p.lstat()
        if stat.S_ISDIR(st.st_mode):
            assert stat.S_IMODE(st.st_mode) == 0o755, f"{p} is {oct(st.st_mode)}"
        elif stat.S_ISREG(st.st_mode):
            assert stat.S_IMODE(st.st_mode) == 0o644, f"{p} is {oct(st.st_mode)}"
            site_inodes.add((st.st_dev, st.st_ino))
    readable = []
    for p in home.rglob("*"):
        if p == site or site in p.parents:
            continue
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode) or (st.st_dev, st.st_ino) in site_inodes:
            continue
        if st.st_mode & 0o077:
            readable.append(f"{p.relative_to(home)} {oct(stat.S_IMODE(st.st_mode))}")
    assert readable == []


def test_the_crash_log_is_never_written_through_a_link_planted_in_a_shared_folder(tmp_path: Path) -> None:
    """With FLANK_HOME not writable, the traceback goes to the user's cache, not to /tmp/flank-errors.log
    (a name another user can plant as a link to a file of theirs)."""
    import subprocess
    import sys

    from helpers.cli import REPO_ROOT

    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), FLANK_HOME=str(tmp_path / "missing"), XDG_CACHE_HOME=str(cache))
    crash = "from flank_ops.error_handler import error_handler\nwith error_handler():\n    raise RuntimeError('boom')\n"
    proc = subprocess.run([sys.executable, "-c", crash], env=env, capture_output=True, text=True)
    log = cache / "flank" / "flank-errors.log"
    assert proc.returncode == ExitCode.UNEXPECTED and f"the details are in {log}" in proc.stderr
    assert "RuntimeError: boom" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600

    log.unlink()
    victim = tmp_path / "victim"
    log.symlink_to(victim)
    proc = subprocess.run([sys.executable, "-c", crash], env=env, capture_output=True, text=True)
    assert proc.returncode == ExitCode.UNEXPECTED and "its details could not be saved" in proc.stderr
    assert not victim.exists()
