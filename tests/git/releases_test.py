"""Old releases are pruned on deploy: the last 5, the current one and any a live run uses stay;
persisted data is never touched."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from flank_ops.paths import Home
from flank_ops.store.model import RunRecord
from flank_ops.store.records import runner_identity, write_record
from helpers.pushing import flank_lines, head, new_project, push
from helpers.waiting import wait_for


def old_release(project_dir: Path, sha: str, age_s: float) -> Path:
    """A release deployed `age_s` ago, linked to the persisted data like a real one."""
    release = project_dir / "releases" / sha
    release.mkdir(parents=True)
    (release / "flank.yml").write_text("old\n")
    os.symlink("../../persist/data", release / "data")
    then = time.time() - age_s
    os.utime(release, (then, then))
    return release


@pytest.mark.slow
def test_deploy_keeps_the_last_five_and_releases_in_use_and_never_the_data(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    data = project.dir / "persist" / "data"
    data.mkdir(parents=True)
    (data / "precious.csv").write_text("keep me\n")
    # Eight older releases, oldest last; a live run still uses the oldest one.
    olds = [f"{i:040x}" for i in range(1, 9)]
    for age, sha in enumerate(olds, start=1):
        old_release(project.dir, sha, age_s=3600 * age)
    paths = Home(project.home).project(project.name)
    run_dir = paths.run_dir("nightly", 1)
    run_dir.mkdir(parents=True)
    write_record(
        run_dir,
        RunRecord(
            project.name, "nightly", 1, release=str(project.dir / "releases" / olds[-1]), runner=runner_identity()
        ),
    )
    # A run whose runner died does not hold its release.
    dead_dir = paths.run_dir("nightly", 2)
    dead_dir.mkdir(parents=True)
    dead_runner = replace(runner_identity(), pid_start=-1)
    write_record(
        dead_dir,
        RunRecord(project.name, "nightly", 2, release=str(project.dir / "releases" / olds[-2]), runner=dead_runner),
    )

    proc = push(project)

    assert proc.returncode == 0, proc.stderr
    new = head(project.wc)
    assert project.releases() == sorted([new, *olds[:4], olds[-1]])
    assert project.current_sha() == new
    assert (data / "precious.csv").read_text() == "keep me\n"
    assert (project.current / "data" / "precious.csv").read_text() == "keep me\n"
    assert flank_lines(proc)[1].startswith("flank: deployed")
    # Their files are removed after the push has its answer (issue 22), by the process that deployed.
    releases = project.dir / "releases"
    wait_for(lambda: sorted(p.name for p in releases.iterdir()) == project.releases(), "the pruned files to go")
    assert (data / "precious.csv").read_text() == "keep me\n"


@pytest.mark.slow
def test_leftovers_of_a_crashed_deploy_are_cleaned(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    stray = project.dir / "releases" / ".tmp-0123456789ab-crashed"
    stray.mkdir(parents=True)
    (stray / "half.R").write_text("")
    assert push(project).returncode == 0
    assert not stray.exists()
    assert project.releases() == [head(project.wc)]
