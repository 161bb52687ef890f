"""The Resources page: a project's run peaks, task peaks and a memory chart, from the records."""

from __future__ import annotations

import os
import re
from pathlib import Path

from helpers.cli import run_flank
from cost.fixtures import write_toml, SEED_YML, write_runs
from run.deployed import deploy


def test_resources_page_shows_peaks_and_the_memory_chart(tmp_path: Path) -> None:
    write_toml()
    deploy(tmp_path, SEED_YML)
    write_runs()
    run_flank("site", check=True)
    site = Path(os.environ["FLANK_HOME"]) / "site"
    page = (site / "demo" / "resources.html").read_text()
    assert "Run peak: <strong>200.0 GB</strong>" in page
    assert "up to 2 tasks at once" in page and "Typical run: 2h45m over the last 30 runs" in page
    rows = re.findall(r"<tr><td>([\w-]+)</td><td class=\"num\">([\d.]+ [KMGT]B)</td>", page)
    assert rows == [("model_a", "120.0 GB"), ("model_b", "80.0 GB"), ("extract", "8.0 GB"), ("report", "4.0 GB")]
    chart = re.search(r'<svg class="memory".*?</svg>', page, re.S).group(0)
    assert "Memory in use over nightly #30" in chart and "<polyline" in chart
    assert re.search(r'href="(\.\./)?demo/resources.html">Resources', (site / "demo" / "index.html").read_text())
