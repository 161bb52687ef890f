"""flank_ops/git/release_config.py: the flank.yml a release was validated with, and its Config kept
beside it so runs load it instead of validating again (issue 22)."""

from __future__ import annotations

import pickle
import stat
from pathlib import Path

from flank_ops.config.load import load_config
from flank_ops.git.release_config import load_release_config, validated_before
from flank_ops.paths import Home
from helpers.cli import run_flank
from helpers.pushing import SIMPLE_FLANK_YML, head, new_project, push
from helpers.repos import commit_all, git, make_repo


def test_a_push_stores_the_bytes_pre_receive_validated_and_their_config(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    assert push(project).returncode == 0
    paths = Home(project.home).project(project.name)
    sha = head(project.wc)
    stored = paths.release_config(sha)
    assert stored.read_bytes() == git("show", f"{sha}:flank.yml", cwd=project.wc).stdout.encode()
    assert stat.S_IMODE(stored.stat().st_mode) & 0o077 == 0  # private, as every file of FLANK_HOME
    assert not paths.validated_flank_yml(sha).exists()  # handed over, not left behind
    assert paths.config_cache(sha).is_file()
    assert load_release_config(paths, sha) == load_config(SIMPLE_FLANK_YML)
    # The next push of these very bytes reuses that Config (issue 22); of any other bytes, never.
    assert validated_before(paths, stored.read_bytes()) == load_config(SIMPLE_FLANK_YML)
    assert validated_before(paths, stored.read_bytes() + b"\n") is None


def test_a_damaged_or_foreign_cache_is_never_used(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    assert push(project).returncode == 0
    paths = Home(project.home).project(project.name)
    sha = head(project.wc)
    cache = paths.config_cache(sha)
    cache.write_bytes(b"not a pickle")
    assert run_flank("run", project.name, "nightly").returncode == 0
    other = load_config("pipelines:\n  other:\n    tasks:\n      x: echo x\n")
    cache.write_bytes(b"k" * 32 + pickle.dumps(other))  # made from other bytes
    assert load_release_config(paths, sha) == load_config(SIMPLE_FLANK_YML)
    proc = run_flank("run", project.name, "nightly")
    assert proc.returncode == 0, proc.stderr
    assert "nightly #2 success" in proc.stdout


def test_a_working_copy_run_follows_every_edit_of_flank_yml(tmp_path: Path) -> None:
    wc = make_repo(tmp_path / "wc", {"flank.yml": "pipelines:\n  p:\n    tasks:\n      a: echo aaa\n"})
    proc = run_flank("run", "--local", "p", cwd=wc)
    assert proc.returncode == 0, proc.stderr
    for run_id, word in ((2, "bbb"), (3, "ccc")):  # same size, moments apart: the bytes decide, not the stat
        (wc / "flank.yml").write_text(f"pipelines:\n  p:\n    tasks:\n      a: echo {word}\n")
        commit_all(wc, word)
        proc = run_flank("run", "--local", "p", cwd=wc)
        assert proc.returncode == 0, proc.stderr
        assert run_flank("logs", "--local", "p", str(run_id), "a", cwd=wc).stdout == f"{word}\n"
    (wc / "flank.yml").write_text("pipelines:\n  p:\n    tasks:\n      a: echo ddd\n    bogus: 1\n")
    proc = run_flank("run", "--local", "p", cwd=wc)
    assert proc.returncode == 1
    assert "unknown key 'bogus'" in proc.stderr
