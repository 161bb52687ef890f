"""Git notes: the one-line run summary on refs/notes/flank, serialized across processes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT, git, run_flank
from flank_ops.git.notes import note_line
from flank_ops.humanize import duration as format_duration
from run.deployed import deploy

RECORD = {
    "project": "myproj", "pipeline": "nightly", "run_id": 17, "status": "failed",
    "started_at": "2026-11-24T02:00:00.000+00:00", "duration_s": 872.4,
    "summary": "3/4 ok; model failed (exit 1, 3 attempts)",
}


def test_note_line_is_the_spec_summary() -> None:
    assert note_line(RECORD, "http://vm.example:8083", timezone="UTC") == (
        "flank nightly #17 failed 2026-11-24 02:00 (14m32s) — 3/4 ok; model failed (exit 1, 3 attempts)"
        " — http://vm.example:8083/myproj/nightly/17/"
    )
    assert note_line(RECORD, "http://vm.example:8083/", timezone="Europe/Paris").startswith(
        "flank nightly #17 failed 2026-11-24 03:00 (14m32s)")


def test_durations_read_like_a_clock() -> None:
    assert [format_duration(s) for s in (0.4, 59, 60, 872.4, 7500, 90000)] == [
        "0.4s", "59s", "1m00s", "14m32s", "2h05m", "1d01h"]


def test_twenty_concurrent_writers_lose_no_line_and_a_clone_sees_them(tmp_path: Path, flank_home: Path) -> None:
    clone = deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    sha = git("rev-parse", "HEAD", cwd=clone).stdout.strip()

    writer = ("import sys; from flank_ops.paths import Home; from flank_ops.git.notes import append_note; "
              "append_note(Home().project('demo'), sys.argv[1], f'flank nightly #{sys.argv[2]} success')")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", writer, sha, str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(20)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()

    note = git("--git-dir", str(flank_home / "demo.git"), "notes", "--ref=flank", "show", sha, cwd=tmp_path)
    lines = note.stdout.split("\n")
    assert sorted(line for line in lines if line) == sorted(f"flank nightly #{i} success" for i in range(20))

    # The two lines `flank init` prints, run once in the user's clone:
    init_out = run_flank("init", "other", check=True).stdout
    assert "git config --add remote.flank.fetch '+refs/notes/flank:refs/notes/flank'" in init_out
    assert "git config notes.displayRef refs/notes/flank" in init_out
    git("config", "--add", "remote.flank.fetch", "+refs/notes/flank:refs/notes/flank", cwd=clone)
    git("config", "notes.displayRef", "refs/notes/flank", cwd=clone)
    git("fetch", "-q", "flank", cwd=clone)
    log = git("log", "-1", cwd=clone).stdout
    assert "Notes (flank):" in log and "flank nightly #7 success" in log


def test_a_real_run_appends_its_line_to_the_deployed_commit(tmp_path: Path, flank_home: Path) -> None:
    (flank_home).mkdir(exist_ok=True)
    (flank_home / "flank.toml").write_text('site_url = "http://vm.example:8083"\n')
    clone = deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    run_flank("run", "demo", "nightly", check=True)
    run_flank("run", "demo", "nightly", check=True)
    git("config", "--add", "remote.flank.fetch", "+refs/notes/flank:refs/notes/flank", cwd=clone)
    git("config", "notes.displayRef", "refs/notes/flank", cwd=clone)
    git("fetch", "-q", "flank", cwd=clone)
    log = git("log", "-1", "--format=%N", cwd=clone).stdout
    lines = [line for line in log.splitlines() if line]
    assert len(lines) == 2
    assert lines[0].startswith("flank nightly #1 success ") and "— 1/1 ok — " in lines[0]
    assert lines[1].endswith("http://vm.example:8083/demo/nightly/2/")
