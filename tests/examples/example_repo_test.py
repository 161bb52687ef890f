"""examples/repo, end to end as `make demo` and a new user run it: a real push through the
real hooks, a real run of its R and Python scripts under make, the note, the site."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from helpers.cli import EXAMPLE_REPO, run_flank
from helpers.repos import git, make_repo

needs_r = pytest.mark.skipif(
    shutil.which("Rscript") is None, reason="Rscript is not installed (apt-get install r-base-core)"
)


def test_example_flank_yml_is_valid() -> None:
    proc = run_flank("validate", str(EXAMPLE_REPO))
    assert proc.returncode == 0, proc.stderr
    assert "OK — 1 pipeline, 5 tasks" in proc.stdout


@pytest.mark.slow
@needs_r
def test_example_project_deploys_runs_and_shows_on_the_site(tmp_path: Path, flank_home: Path) -> None:
    flank_home.mkdir(parents=True)
    # as make demo does: the schedule is shown at push, not installed in the machine's crontab
    (flank_home / "flank.toml").write_text("[schedule]\ninstall_crontab = false\n")
    run_flank("init", "demo", check=True)
    files = {str(p.relative_to(EXAMPLE_REPO)): p.read_text() for p in EXAMPLE_REPO.rglob("*") if p.is_file()}
    clone = make_repo(tmp_path / "sales-model", files, message="nightly sales model")
    git("remote", "add", "flank", str(flank_home / "demo.git"), cwd=clone)

    pushed = git("push", "flank", "main", cwd=clone)
    assert "remote: flank: flank.yml OK — 1 pipeline, 5 tasks" in pushed.stderr
    assert "remote: flank: deployed " in pushed.stderr and '"nightly sales model"' in pushed.stderr
    assert "nightly" in pushed.stderr and "(Europe/London)" in pushed.stderr

    run = run_flank("run", "demo", "nightly")
    assert run.returncode == 0, run.stdout + run.stderr
    record_dir = flank_home / "demo" / "runs" / "nightly" / "1"
    assert (record_dir / "run.json").is_file()
    # the pipeline's outputs land in the persisted folder, which outlives releases
    report = (flank_home / "demo" / "persist" / "output" / "report.md").read_text()
    assert "| region | units | revenue |" in report and "Run 1 of commit" in report
    assert "price elasticity" in (record_dir / "logs" / "model.log").read_text()

    # the example declares inputs and outputs: a second run recomputes nothing (extract reads a
    # "live" source and always runs; it writes the same day's data, so clean is up to date too)
    again = run_flank("run", "demo", "nightly")
    assert again.returncode == 0, again.stdout + again.stderr
    for task in ("clean", "model", "regions", "report"):
        assert f"  {task:<20} up_to_date" in again.stdout
    assert "5/5 ok (4 up to date)" in again.stdout

    git("config", "--add", "remote.flank.fetch", "+refs/notes/flank:refs/notes/flank", cwd=clone)
    git("config", "notes.displayRef", "refs/notes/flank", cwd=clone)
    git("fetch", "-q", "flank", cwd=clone)
    shown = git("log", "-1", cwd=clone).stdout
    assert "flank nightly #2 success" in shown and "5/5 ok (4 up to date)" in shown

    site = flank_home / "site"
    run_page = (site / "demo" / "nightly" / "1" / "index.html").read_text()
    assert "nightly sales model" in run_page
    for task in ("extract", "clean", "model", "regions", "report"):
        assert task in run_page
    assert os.path.isfile(site / "index.html")
    # issue 11: the plot and the HTML report made by R are kept with the run and on the site
    regions = json.loads((record_dir / "run.json").read_text())["tasks"]["regions"]
    kept = {a["path"]: a for a in regions["artifacts"]}
    assert kept["output/revenue_by_region.png"]["kept"] and kept["output/regions.html"]["kept"]
    png = site / "demo" / "nightly" / "latest" / "regions" / "output" / "revenue_by_region.png"
    assert png.read_bytes().startswith(b"\x89PNG")
    report_html = (site / "demo" / "nightly" / "latest" / "regions" / "output" / "regions.html").read_text()
    assert "Revenue by region" in report_html and "Run 1 of commit" in report_html
    assert 'class="thumb"' in run_page and "output/regions.html" in run_page
