"""One time zone on every page of a project (issue 19 bug 5): its pipelines' zone, or the VM's when they
differ — run times, push times and the "Built …" footers alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flank_ops.paths import Home
from flank_ops.site import build
from helpers.site_records import FLANK_YML, make_project, make_run

NZ_YML = FLANK_YML.replace("Europe/London", "Pacific/Auckland")
MIXED_YML = (
    NZ_YML
    + """\
  weekly:
    schedule: "0 3 * * 1"
    tasks:
      only: echo hi
"""
)
# every clock time the pages print ends with the zone's abbreviation
CLOCK = re.compile(r"\d\d:\d\d ([A-Z][A-Za-z+\-0-9]{1,5})\b")


def zones_on(page: Path) -> set[str]:
    text = re.sub(r"<[^>]+>", " ", page.read_text())
    return set(CLOCK.findall(text))


@pytest.fixture
def vm_in_tokyo(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_projects_pages_are_in_its_pipelines_zone(flank_home: Path, vm_in_tokyo: None) -> None:
    home = Home()
    paths = make_project(home, flank_yml=NZ_YML)
    make_run(paths)
    build.rebuild_all(home)
    site = home.site_dir
    for page in (
        "index.html",
        "demo/index.html",
        "demo/deploys.html",
        "demo/resources.html",
        "demo/nightly/index.html",
        "demo/nightly/1/index.html",
    ):
        assert zones_on(site / page) == {"NZDT"}, page
    assert re.search(r"Built \w{3} \d\d \w{3} \d{4} \d\d:\d\d NZDT", (site / "demo/deploys.html").read_text())


def test_pipelines_in_different_zones_put_the_project_in_the_vms_zone(flank_home: Path, vm_in_tokyo: None) -> None:
    home = Home()
    paths = make_project(home, flank_yml=MIXED_YML)
    make_run(paths)
    build.rebuild_all(home)
    for page in (
        "index.html",
        "demo/index.html",
        "demo/deploys.html",
        "demo/nightly/index.html",
        "demo/nightly/1/index.html",
    ):
        assert zones_on(home.site_dir / page) == {"JST"}, page
