"""Git notes: the one-line run summary on refs/notes/flank, serialized across processes."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flank_ops.git.notes import fold_note, note_line
from flank_ops.humanize import duration as format_duration
from flank_ops.site.layout import run_url
from flank_ops.store.model import RunRecord, RunStatus, RunTrigger, Selection, TaskResult, TaskStatus
from helpers.cli import REPO_ROOT, run_flank
from helpers.deployed import deploy
from helpers.repos import git

RECORD = RunRecord(
    project="myproj",
    pipeline="nightly",
    run_id=17,
    status=RunStatus.FAILED,
    started_at="2026-11-24T02:00:00.000+00:00",
    duration_s=872.4,
    summary="3/4 ok; model failed (exit 1, 3 attempts)",
    trigger=RunTrigger.SCHEDULE,
)


def test_note_line_is_the_spec_summary() -> None:
    page = run_url("http://vm.example:8083", "myproj", "nightly", 17)
    assert note_line(RECORD, page, timezone="UTC") == (
        "flank nightly #17 failed 2026-11-24 02:00 UTC (14m32s, schedule) — 3/4 ok; model failed (exit 1, 3 attempts)"
        " — http://vm.example:8083/myproj/nightly/17/"
    )
    # In the pipeline's zone, named: the note and the run page can never disagree silently.
    assert note_line(RECORD, page, timezone="Europe/Paris").startswith(
        "flank nightly #17 failed 2026-11-24 03:00 CET (14m32s, schedule)"
    )


def test_durations_read_like_a_clock() -> None:
    assert [format_duration(s) for s in (0.4, 59, 60, 872.4, 7500, 90000)] == [
        "0.4s",
        "59s",
        "1m00s",
        "14m32s",
        "2h05m",
        "1d01h",
    ]


@pytest.mark.slow
def test_twenty_concurrent_writers_lose_no_line_and_a_clone_sees_them(tmp_path: Path, flank_home: Path) -> None:
    clone = deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    sha = git("rev-parse", "HEAD", cwd=clone).stdout.strip()

    writer = (
        "import sys; from flank_ops.paths import Home; from flank_ops.git.notes import append_note; "
        "append_note(Home().project('demo'), sys.argv[1], f'flank nightly #{sys.argv[2]} success')"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", writer, sha, str(i)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for i in range(20)
    ]
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


@pytest.mark.slow
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


def run_line(pipeline: str, run_id: int, status: str = "success") -> str:
    return f"flank {pipeline} #{run_id} {status} 2026-11-24 02:00 UTC (1.0s) — 1/1 ok — http://vm:8083/demo/{pipeline}/{run_id}/"


def test_fold_keeps_the_newest_three_runs_per_pipeline_and_counts_the_rest() -> None:
    lines = [run_line("nightly", i, "failed" if i % 4 == 0 else "success") for i in range(1, 9)]
    lines += [run_line("hourly", 1), run_line("hourly", 2)]
    note = fold_note("\n".join(lines) + "\n", keep=3)
    assert note.splitlines() == [
        "flank nightly … and 5 earlier runs: 4 ok, 1 failed — http://vm:8083/demo/nightly/",
        run_line("nightly", 6),
        run_line("nightly", 7),
        run_line("nightly", 8, "failed"),
        run_line("hourly", 1),
        run_line("hourly", 2),
    ]
    # Folding again adds to the counts of the fold line; lines flank did not write stay.
    again = fold_note("hand-written remark\n" + note + run_line("nightly", 9, "cancelled") + "\n", keep=3)
    assert again.splitlines()[:2] == [
        "hand-written remark",
        "flank nightly … and 6 earlier runs: 5 ok, 1 failed — http://vm:8083/demo/nightly/",
    ]
    assert again.splitlines()[-1] == run_line("nightly", 9, "cancelled")


@pytest.mark.slow
def test_a_year_of_runs_leaves_a_short_note_and_every_run_record(tmp_path: Path, flank_home: Path) -> None:
    # Real git notes written by real processes at once (the notes lock serializes them), then real runs.
    flank_home.mkdir(exist_ok=True)
    (flank_home / "flank.toml").write_text('site_url = "http://vm.example:8083"\n')
    clone = deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    sha = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    writer = (
        "import sys; from flank_ops.paths import Home; from flank_ops.git.notes import append_note; "
        "[append_note(Home().project('demo'), sys.argv[1], "
        'f\'flank nightly #{i} {"failed" if i % 10 == 0 else "success"} 2026-01-01 02:00 UTC (1.0s)'
        " — 1/1 ok — http://vm.example:8083/demo/nightly/{i}/') for i in range(int(sys.argv[2]), int(sys.argv[3]))]"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    # Four writers at once, 30 runs each, run ids 1000..1119 (the real runs below are #1, #2).
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", writer, sha, str(1000 + 30 * k), str(1030 + 30 * k)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for k in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    run_flank("run", "demo", "nightly", check=True)
    run_flank("run", "demo", "nightly", check=True)

    git("config", "--add", "remote.flank.fetch", "+refs/notes/flank:refs/notes/flank", cwd=clone)
    git("config", "notes.displayRef", "refs/notes/flank", cwd=clone)
    git("fetch", "-q", "flank", cwd=clone)
    lines = [line for line in git("log", "-1", "--format=%N", cwd=clone).stdout.splitlines() if line]
    # 120 written + 2 real runs = 122; the newest 3 in full (one writer's last line, then the two real runs).
    assert lines[0] == "flank nightly … and 119 earlier runs: 107 ok, 12 failed — http://vm.example:8083/demo/nightly/"
    assert len(lines) == 4
    assert lines[2].startswith("flank nightly #1 success ") and lines[3].endswith(
        "http://vm.example:8083/demo/nightly/2/"
    )
    # Nothing is lost from the run records: both real runs are in the pipeline's history.
    history = (flank_home / "demo" / "runs" / "nightly" / "history.jsonl").read_text().splitlines()
    assert [json.loads(h)["run_id"] for h in history] == [1, 2]


def _record(**changes: Any) -> RunRecord:
    return dataclasses.replace(RECORD, **changes)


def test_a_note_says_what_kind_of_run_it_was() -> None:
    """issue 19 friction 2: the trigger, and what part of the pipeline a partial run ran."""
    page = run_url("http://vm:8083", "myproj", "nightly", 17)
    kinds = {
        "(14m32s, schedule) — ": _record(trigger=RunTrigger.SCHEDULE),
        "(14m32s, push) — ": _record(trigger=RunTrigger.PUSH),
        "(14m32s, manual, --from load) — ": _record(trigger=RunTrigger.MANUAL, selection=Selection(from_="load")),
        "(14m32s, manual, --task model) — ": _record(trigger=RunTrigger.MANUAL, selection=Selection(task="model")),
        "(14m32s, rerun of #16) — ": _record(trigger=RunTrigger.RERUN, selection=Selection(rerun_of=16)),
    }
    for kind, record in kinds.items():
        assert f"2026-11-24 02:00 UTC {kind}3/4 ok" in note_line(record, page, timezone="UTC")


def test_a_cancelled_run_counts_its_cancelled_tasks_instead_of_listing_them() -> None:
    from flank_ops.store.model import summarize

    tasks = {f"t{i}": TaskResult(status=TaskStatus.CANCELLED) for i in range(9)}
    tasks["first"] = TaskResult(status=TaskStatus.SUCCESS, attempts=1)
    assert summarize(_record(status=RunStatus.CANCELLED, tasks=tasks)) == "1/10 ok; 9 cancelled"
    two = {"a": TaskResult(status=TaskStatus.CANCELLED), "b": TaskResult(status=TaskStatus.CANCELLED)}
    assert summarize(_record(status=RunStatus.CANCELLED, tasks=two)) == "0/2 ok; a cancelled; b cancelled"


@pytest.mark.slow
def test_pruned_runs_lines_link_the_pipeline_page_not_a_404(tmp_path: Path, flank_home: Path) -> None:
    flank_home.mkdir(exist_ok=True)
    (flank_home / "flank.toml").write_text('site_url = "http://vm.example:8083"\n')
    clone = deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    sha = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    for _ in range(3):
        run_flank("run", "demo", "nightly", check=True)
    run_flank("prune", "demo", "--keep", "1", check=True)
    note = git("--git-dir", str(flank_home / "demo.git"), "notes", "--ref=flank", "show", sha, cwd=tmp_path).stdout
    lines = [line for line in note.splitlines() if line]
    assert len(lines) == 3
    for line in lines[:2]:
        assert line.endswith(" — pruned; its pipeline: http://vm.example:8083/demo/nightly/"), line
    assert lines[2].startswith("flank nightly #3 success") and lines[2].endswith(
        "http://vm.example:8083/demo/nightly/3/"
    )
    # folding them later still counts them and links the pipeline page
    folded = fold_note(note, keep=1).splitlines()
    assert folded[0] == "flank nightly … and 2 earlier runs: 2 ok — http://vm.example:8083/demo/nightly/"


@pytest.mark.slow
def test_a_note_is_in_the_same_zone_as_the_run_page(tmp_path: Path, flank_home: Path) -> None:
    """issue 19 bug 5: a project whose pipelines' zones differ shows every page in the VM's zone; its notes too."""
    clone = deploy(
        tmp_path,
        "pipelines:\n  ny:\n    timezone: America/New_York\n    tasks:\n      a: echo a\n"
        "  vm:\n    tasks:\n      b: echo b\n",
    )
    sha = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    run_flank("run", "demo", "ny", env={"TZ": "Asia/Tokyo"}, check=True)
    note = git("--git-dir", str(flank_home / "demo.git"), "notes", "--ref=flank", "show", sha, cwd=tmp_path).stdout
    assert re.match(r"flank ny #1 success \d{4}-\d\d-\d\d \d\d:\d\d JST ", note), note
    page = (flank_home / "site" / "demo" / "ny" / "1" / "index.html").read_text()
    assert " JST</dd>" in page and "EST" not in page


def test_a_resumed_run_keeps_one_line_its_last(tmp_path: Path, flank_home: Path) -> None:
    """issue 26: an interrupted run that `flank run --resume` finished has one line, not two."""
    from flank_ops.git.notes import append_note, read_note
    from flank_ops.paths import Home

    clone = deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    sha = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    paths = Home().project("demo")
    append_note(paths, sha, "flank nightly #4 success 2026-11-24 02:00 UTC (1s) — 1/1 ok — URL")
    append_note(paths, sha, "flank nightly #5 interrupted 2026-11-25 02:00 UTC (9s) — 0/1 ok — URL")
    append_note(paths, sha, "flank weekly #5 success 2026-11-25 02:00 UTC (9s) — 1/1 ok — URL")
    append_note(paths, sha, "flank nightly #5 success 2026-11-25 02:00 UTC (2h) — 1/1 ok — URL")
    assert read_note(paths, sha).splitlines() == [
        "flank nightly #4 success 2026-11-24 02:00 UTC (1s) — 1/1 ok — URL",
        "flank weekly #5 success 2026-11-25 02:00 UTC (9s) — 1/1 ok — URL",
        "flank nightly #5 success 2026-11-25 02:00 UTC (2h) — 1/1 ok — URL",
    ]
