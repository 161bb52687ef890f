"""The Resources page: a project's run peaks, task peaks and a memory chart, from the records."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.cost_fixtures import SEED_YML, write_runs, write_toml
from helpers.deployed import deploy


@pytest.mark.slow
def test_resources_page_shows_peaks_and_the_memory_chart(tmp_path: Path) -> None:
    write_toml()
    deploy(tmp_path, SEED_YML)
    write_runs()
    run_flank("site", check=True)
    site = Path(os.environ["FLANK_HOME"]) / "site"
    page = (site / "demo" / "resources.html").read_text()
    assert "Run peak: <strong>200.0 GiB</strong>" in page
    assert "up to 2 tasks at once" in page and "Typical run: 2h45m (median of 30 full runs) of the last 30 runs" in page
    rows = re.findall(r"<tr><td>([\w-]+)</td><td class=\"num\">([\d.]+ [KMGT]iB)</td>", page)
    assert rows == [("model_a", "120.0 GiB"), ("model_b", "80.0 GiB"), ("extract", "8.0 GiB"), ("report", "4.0 GiB")]
    chart = re.search(r'<svg class="memory".*?</svg>', page, re.S).group(0)
    assert "Memory in use over nightly #30" in chart and "<polyline" in chart
    assert re.search(r'href="(\.\./)?demo/resources.html">Resources', (site / "demo" / "index.html").read_text())


def test_a_remote_tasks_unmeasured_peak_is_unknown_not_zero(flank_home: Path) -> None:
    """issue 26 item 7: a task on Slurm/Batch whose cluster gave no figure has no peak; memory is in binary units."""
    from flank_ops.paths import Home
    from flank_ops.site import build
    from flank_ops.store import records
    from helpers.site_records import make_project, make_run

    home = Home()
    paths = make_project(home)
    run_id = make_run(paths)
    run_dir = paths.run_dir("nightly", run_id)
    record = records.read_record(run_dir)
    record.tasks["model"].peak_rss_kb = None
    record.tasks["model"].executor = {"kind": "slurm", "job_id": "42", "max_rss_kb": None}
    records.write_record(run_dir, record)
    build.rebuild_all(home)
    run_page = (home.site_dir / "demo" / "nightly" / str(run_id) / "index.html").read_text()
    cells = dict(re.findall(r'<td class="t-name">(\w+)</td>.*?data-label="memory">([^<]*)</td>', run_page, re.S))
    assert cells["model"] == "unknown" and cells["extract"] == "50.0 MiB", cells
    page = (home.site_dir / "demo" / "resources.html").read_text()
    rows = dict(re.findall(r"<tr><td>([\w-]+)</td><td class=\"num\">([^<]+)</td>", page))
    assert rows["model"] == "unknown" and rows["extract"] == "50.0 MiB", rows
    assert re.search(
        r'<th class="num">Peak memory</th><th class="num">Typical</th>', page
    )  # headers over their numbers


def test_the_memory_chart_is_on_the_scale_of_the_vms_memory() -> None:
    """issue 19 bug 6: a 1 GiB run on a 64 GiB VM is drawn low under the VM's line, not filling the chart."""
    from flank_ops.site.svg import memory_svg

    gib = 1024 * 1024
    svg = str(memory_svg([(0.0, gib), (50.0, 0)], 100.0, gib, 64 * gib, "Memory in use over nightly #3"))
    assert "this VM" in svg
    vm_y = float(re.search(r'<line class="limit" x1="\d+" y1="([\d.]+)"', svg).group(1))
    ys = [float(p.split(",")[1]) for p in re.search(r'points="([^"]+)"', svg).group(1).split()]
    floor = max(ys)
    assert vm_y < min(ys) and (floor - min(ys)) < (floor - vm_y) / 20  # 1/64 of the height


def test_a_run_whose_tasks_all_ran_on_a_cluster_gets_no_empty_chart(flank_home: Path) -> None:
    """Found by the third trial: the chart's run had no measured task (all on Slurm, no accounting);
    the page said 'Memory in use over qt #1 ...' above nothing."""
    from flank_ops.paths import Home
    from flank_ops.site import build
    from flank_ops.store import records
    from helpers.site_records import make_project, make_run

    home = Home()
    paths = make_project(home)
    run_id = make_run(paths)
    run_dir = paths.run_dir("nightly", run_id)
    record = records.read_record(run_dir).to_json()
    for task in record["tasks"].values():
        task.update(peak_rss_kb=None, executor={"name": "slurm", "job_id": "42", "max_rss_kb": None})
    records.write_record(run_dir, records.RunRecord.from_json(record))
    build.rebuild_all(home)
    page = (home.site_dir / "demo" / "resources.html").read_text()
    assert "<td>model</td>" in page  # the pipeline's section is there ...
    assert "Memory in use over" not in page and 'class="memory-chart"' not in page  # ... without an empty chart
    assert "Run peak: <strong>unknown</strong>," in page  # not "0 KiB (0% of this VM)"
