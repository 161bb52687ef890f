"""Who started a run, and from where (issue 23 item 5): the record's triggered_by, the run page, the note."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest

from flank_ops.paths import Home
from helpers.cli import run_flank
from helpers.deployed import deploy, record
from helpers.repos import git
from helpers.waiting import wait_for

YML = "pipelines:\n  nightly:\n    tasks:\n      hello: echo hi\n"


def _note(run_id: int) -> str:
    home = Path(os.environ["FLANK_HOME"])
    sha = record(run_id)["commit"]["sha"]
    return git("--git-dir", str(home / "demo.git"), "notes", "--ref=flank", "show", sha, cwd=home).stdout


@pytest.mark.slow
def test_a_cli_run_and_a_web_run_say_who_started_them(tmp_path: Path) -> None:
    deploy(tmp_path, YML)
    run_flank("run", "demo", "nightly", check=True, env={"SSH_CONNECTION": "", "SSH_TTY": ""})
    me = getpass.getuser()
    assert record(1)["triggered_by"] == {"user": me, "via": "cli"}
    page = (Home().site_dir / "demo" / "nightly" / "1" / "index.html").read_text()
    assert f"manual · by {me} via cli" in page
    assert f"— by {me} via cli — http" in _note(1)

    # what the site's Run button does: a detached run naming the signed-in user
    run_flank("run", "demo", "nightly", "--detach", "--by", "ada", "--via", "web", check=True)
    wait_for(lambda: record(2).get("status") == "success" and "#2" in _note(2), "the detached run to end")
    assert record(2)["triggered_by"] == {"user": "ada", "via": "web"}
    assert "— by ada via web — http" in _note(2)
    # the detached run's page is drawn after its record is final (a forked draw): wait for it
    page = Home().site_dir / "demo" / "nightly" / "2" / "index.html"
    wait_for(lambda: page.is_file() and "success" in page.read_text(), "the detached run's final page")
    assert "manual · by ada via web" in page.read_text()
