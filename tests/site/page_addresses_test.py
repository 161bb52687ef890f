"""Every address flank hands out for a page (push output, `flank run`, the git note, notifications)
opens the page the site wrote, also for names the site has to rename (`index`, `logs`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from helpers.cli import run_flank
from helpers.deployed import deploy
from helpers.repos import commit_all, git
from helpers.servers import http_recorder

BASE = "http://vm.example:8083/"
FLANK_YML = """\
pipelines:
  logs:
    notify: [failure]
    tasks:
      fit: echo fitting; exit 3
"""


def page_file(url: str) -> Path:
    """The file a web server (flank serve, nginx, S3 website) answers `url` with."""
    assert url.startswith(BASE), url
    path = Path(os.environ["FLANK_HOME"]) / "site" / unquote(url[len(BASE) :])
    return path / "index.html" if url.endswith("/") else path


@pytest.mark.slow
def test_a_project_named_index_with_a_pipeline_named_logs_links_its_real_pages(tmp_path: Path) -> None:
    home = Path(os.environ["FLANK_HOME"])
    with http_recorder() as hook:
        home.mkdir(parents=True)
        (home / "flank.toml").write_text(
            f'site_url = "{BASE}"\n[schedule]\ninstall_crontab = false\n'
            f'[notify.webhook]\nurl = "{hook.url}"\ntimeout = 5\n'
        )
        clone = deploy(tmp_path, FLANK_YML, project="index")
        proc = run_flank("run", "index", "logs")
        requests = list(hook.requests)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "logs #1 failed" in proc.stdout

    printed = re.search(r"^  page: (\S+)$", proc.stdout, re.M)
    assert printed, proc.stdout
    [note] = git(
        "--git-dir", str(home / "index.git"), "notes", "--ref=flank", "show", "HEAD", cwd=clone
    ).stdout.splitlines()
    assert note.startswith("flank logs #1 failed ")
    [request] = requests
    notified = re.search(r"<(\S+)\|run page>", request.json()["text"])
    assert notified, request.json()["text"]

    for url in (printed[1], note.rsplit(" — ", 1)[1], notified[1]):
        page = page_file(url)
        assert page.is_file(), f"{url} is not a page of the site ({page} does not exist)"
        assert "<h1>logs #1" in page.read_text()

    commit_all(clone, "again")
    pushed = git("push", "flank", "main", cwd=clone).stderr
    project_url = re.search(r"status site (\S+)", pushed)
    assert project_url, pushed
    assert "<h1>index</h1>" in page_file(project_url[1]).read_text()
