"""Persisted folders holding tracked files (issue 11 item 4): real pushes into the real hooks.

Each deploy syncs the commit's tracked files into persist/<dir>; files the pipeline wrote survive
every deploy; a tracked file the commit deleted goes; one a task overwrote comes back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import commit_all, git, run_flank

from helpers.deployed import deploy

pytestmark = pytest.mark.slow

FLANK_YML = """\
persist: [data]
pipelines:
  nightly:
    tasks:
      derive:
        run: cat data/_raw/a.csv > data/derived.csv; echo overwritten > data/_raw/b.csv; echo mine > data/_raw/notes.txt
"""


def _persist() -> Path:
    return Path(os.environ["FLANK_HOME"]) / "demo" / "persist" / "data"


def _push(clone: Path, message: str) -> str:
    commit_all(clone, message)
    proc = git("push", "flank", "main", cwd=clone)
    return proc.stdout + proc.stderr


def test_tracked_files_are_synced_and_derived_files_survive_three_deploys(tmp_path: Path) -> None:
    clone = deploy(tmp_path, FLANK_YML, {"data/_raw/a.csv": "1\n", "data/_raw/b.csv": "b\n"})
    assert (_persist() / "_raw" / "a.csv").read_text() == "1\n"
    assert run_flank("validate", cwd=clone).returncode == 0  # validate and the push agree
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert (_persist() / "derived.csv").read_text() == "1\n"
    assert (_persist() / "_raw" / "b.csv").read_text() == "overwritten\n"

    # deploy 2: a tracked file changed comes in; the one the task overwrote stays the task's (issue 28)
    (clone / "data" / "_raw" / "a.csv").write_text("2\n")
    out = _push(clone, "new raw data")
    assert "persist: data: 1 tracked file changed since " in out
    assert "synced into persist/data (1 new or changed, 0 removed)" in out
    assert (_persist() / "_raw" / "a.csv").read_text() == "2\n"
    assert (_persist() / "_raw" / "b.csv").read_text() == "overwritten\n"
    assert (_persist() / "derived.csv").read_text() == "1\n"

    # deploy 3: a tracked file deleted in the commit goes unless the pipeline rewrote it; the pipeline's own
    # files stay
    (clone / "data" / "_raw" / "a.csv").unlink()
    (clone / "data" / "_raw" / "b.csv").unlink()
    (clone / "data" / "_raw" / "c.csv").write_text("2\n")
    out = _push(clone, "drop a and b, a is c now")
    assert "(1 new or changed, 1 removed; 1 no longer tracked kept: the pipeline rewrote it)" in out, out
    assert not (_persist() / "_raw" / "a.csv").exists()
    assert (_persist() / "_raw" / "b.csv").read_text() == "overwritten\n"
    assert (_persist() / "derived.csv").read_text() == "1\n"
    assert (_persist() / "_raw" / "notes.txt").read_text() == "mine\n"

    # deploy 4 (code only): nothing to copy, the data is all there for the run
    (clone / "README").write_text("docs\n")
    out = _push(clone, "docs")
    assert "persist: data: no tracked file changed since " in out
    (clone / "flank.yml").write_text(FLANK_YML.replace("data/_raw/a.csv", "data/_raw/c.csv"))
    _push(clone, "read c")
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert (_persist() / "derived.csv").read_text() == "2\n"
    release = Path(os.environ["FLANK_HOME"]) / "demo" / "current"
    assert os.path.islink(release / "data") and (release / "data" / "_raw" / "c.csv").read_text() == "2\n"


RERUN_YML = """\
persist: [results]
pipelines:
  nightly:
    tasks:
      augment: mkdir -p data && echo augmented > data/03_dat_aug.csv
      model:
        run: sh model.sh
        needs: [augment]
"""


def test_a_rerun_after_a_fix_push_names_persist_when_an_input_was_lost_with_the_old_release(tmp_path: Path) -> None:
    clone = deploy(tmp_path, RERUN_YML, {"model.sh": "echo 'bug'; exit 1\n"})
    assert run_flank("run", "demo", "nightly").returncode == 1
    (clone / "model.sh").write_text(
        "[ -e data/03_dat_aug.csv ] || { echo \"Error: 'data/03_dat_aug.csv' does not exist.\"; exit 1; }\n"
        "cp data/03_dat_aug.csv results/model.txt\n"
    )
    _push(clone, "fix the model")
    proc = run_flank("run", "demo", "nightly", "--rerun", "1")
    assert proc.returncode == 1
    log = (Path(os.environ["FLANK_HOME"]) / "demo" / "runs" / "nightly" / "2" / "logs" / "model.log").read_text()
    assert "'data/03_dat_aug.csv' is missing from this release" in log
    assert "add 'data' to persist: in flank.yml (persist: [data])" in log
    # the fix the message names: persist data, push, rerun, and it runs on the fixed code
    (clone / "flank.yml").write_text(RERUN_YML.replace("persist: [results]", "persist: [results, data]"))
    _push(clone, "persist data")
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert (_persist().parent / "results" / "model.txt").read_text() == "augmented\n"


COMMITTED_OUTPUTS_YML = """\
persist: [images]
pipelines:
  nightly:
    tasks:
      plots:
        run: mkdir -p images && for p in p1 p2; do echo "$p by the pipeline" > images/$p.png; done
        inputs: [plot.sh]
        outputs: [images/p1.png, images/p2.png]
"""


def _statuses(run_id: int) -> dict[str, str]:
    from helpers.deployed import record

    return {name: task["status"] for name, task in record(run_id)["tasks"].items()}


def test_committed_outputs_are_synced_only_when_the_commit_changes_them(tmp_path: Path) -> None:
    """issue 28 item 2: git knows what a commit changed; what the pipeline rewrote stays the pipeline's."""
    images = Path(os.environ["FLANK_HOME"]) / "demo" / "persist" / "images"
    clone = deploy(
        tmp_path,
        COMMITTED_OUTPUTS_YML,
        {"images/p1.png": "p1 committed\n", "images/p2.png": "p2 committed\n", "plot.sh": "\n"},
    )
    first = git("rev-parse", "--short=7", "HEAD", cwd=clone).stdout.strip()
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert (images / "p2.png").read_text() == "p2 by the pipeline\n"

    # A README-only push: nothing synced, nothing counted, and the next run has nothing to do.
    (clone / "README").write_text("docs\n")
    out = _push(clone, "docs")
    assert f"persist: images: no tracked file changed since {first}; nothing synced (2 tracked)" in out, out
    assert (images / "p1.png").read_text() == "p1 by the pipeline\n"
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert _statuses(2) == {"plots": "up_to_date"}

    # The commit changes one of them: only that one is synced.
    docs = git("rev-parse", "--short=7", "HEAD", cwd=clone).stdout.strip()
    (clone / "images" / "p1.png").write_text("p1 committed again\n")
    out = _push(clone, "new p1")
    assert (
        f"persist: images: 1 tracked file changed since {docs} synced into persist/images (1 new or changed, 0 removed)"
        in out
    ), out
    assert (images / "p1.png").read_text() == "p1 committed again\n"
    assert (images / "p2.png").read_text() == "p2 by the pipeline\n"

    # Untracked: files the pipeline rewrote stay; one the deploy placed and nobody touched since goes.
    assert run_flank("run", "demo", "nightly", "--force").returncode == 0
    (clone / "images" / "p1.png").write_text("p1 committed once more\n")
    _push(clone, "p1 once more")
    git("rm", "-q", "--cached", "images/p1.png", "images/p2.png", cwd=clone)
    (clone / ".gitignore").write_text("images/\n")
    out = _push(clone, "the pipeline owns its plots")
    assert "(0 new or changed, 1 removed; 1 no longer tracked kept: the pipeline rewrote it)" in out, out
    assert not (images / "p1.png").exists()
    assert (images / "p2.png").read_text() == "p2 by the pipeline\n"
