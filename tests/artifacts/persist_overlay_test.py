"""Persisted folders holding tracked files (issue 11 item 4): real pushes into the real hooks.

Each deploy syncs the commit's tracked files into persist/<dir>; files the pipeline wrote survive
every deploy; a tracked file the commit deleted goes; one a task overwrote comes back."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import commit_all, git, run_flank
from run.deployed import deploy

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

    # deploy 2: a tracked file changed; the one the task overwrote comes back
    (clone / "data" / "_raw" / "a.csv").write_text("2\n")
    out = _push(clone, "new raw data")
    assert "persist: data: 2 tracked files synced into persist/data (2 new or changed, 0 removed)" in out
    assert (_persist() / "_raw" / "a.csv").read_text() == "2\n"
    assert (_persist() / "_raw" / "b.csv").read_text() == "b\n"
    assert (_persist() / "derived.csv").read_text() == "1\n"

    # deploy 3: a tracked file deleted in the commit goes; the pipeline's own files stay
    (clone / "data" / "_raw" / "b.csv").unlink()
    out = _push(clone, "drop b")
    assert "persist: data: 1 tracked file synced into persist/data (0 new or changed, 1 removed)" in out
    assert not (_persist() / "_raw" / "b.csv").exists()
    assert (_persist() / "derived.csv").read_text() == "1\n"
    assert (_persist() / "_raw" / "notes.txt").read_text() == "mine\n"

    # deploy 4 (code only): nothing to copy, the data is all there for the run
    (clone / "README").write_text("docs\n")
    out = _push(clone, "docs")
    assert "(0 new or changed, 0 removed)" in out
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert (_persist() / "derived.csv").read_text() == "2\n"
    release = Path(os.environ["FLANK_HOME"]) / "demo" / "current"
    assert os.path.islink(release / "data") and (release / "data" / "_raw" / "a.csv").read_text() == "2\n"


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
