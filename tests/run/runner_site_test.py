"""The status site a run leaves behind (issue 22): drawing is off the run's path, yet the final
pages are exactly what a full `flank site --rebuild` draws from the records."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.deployed import deploy

pytestmark = pytest.mark.slow  # real runs (make test-fast leaves them out)

PIPELINE = """\
pipelines:
  nightly:
    tasks:
      extract: echo extracted
      transform:
        run: echo transforming; sleep 0.3
        needs: [extract]
      model:
        run: echo failing; exit 3
        needs: [transform]
      report:
        run: echo never
        needs: [model]
      side: echo independent
"""


BUILT = re.compile(rb"<footer>Built [^<]*</footer>")  # when the page was drawn: the one thing a redraw changes


def _site_bytes(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): BUILT.sub(b"", p.read_bytes()) for p in sorted(site.rglob("*")) if p.is_file()}


def test_the_site_after_runs_is_what_a_full_rebuild_draws(tmp_path: Path) -> None:
    deploy(tmp_path, PIPELINE)
    for _ in range(2):
        assert run_flank("run", "demo", "nightly").returncode == 1
    site = Path(os.environ["FLANK_HOME"]) / "site"
    after_runs = _site_bytes(site)
    assert "demo/nightly/2/index.html" in after_runs
    for kept in ("grid-columns", "run-uses"):  # drawn from the records alone
        shutil.rmtree(Path(os.environ["FLANK_HOME"]) / ".flank" / kept)
    proc = run_flank("site", "--rebuild")
    assert proc.returncode == 0, proc.stderr
    rebuilt = _site_bytes(site)
    assert sorted(after_runs) == sorted(rebuilt)
    assert [page for page in rebuilt if after_runs[page] != rebuilt[page]] == []


def test_a_site_that_cannot_be_drawn_never_fails_the_run_and_the_next_draw_repairs_it(tmp_path: Path) -> None:
    deploy(tmp_path, "pipelines:\n  nightly:\n    tasks:\n      only: echo hi\n")
    site = Path(os.environ["FLANK_HOME"]) / "site"
    shutil.rmtree(site, ignore_errors=True)
    site.write_text("not a folder\n")  # every draw of this run fails
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 0, proc.stderr
    assert "nightly #1 success" in proc.stdout
    assert "could not refresh the status site" in proc.stderr
    site.unlink()
    assert run_flank("run", "demo", "nightly").returncode == 0
    page = (site / "demo" / "nightly" / "2" / "index.html").read_text()
    assert "success" in page and "running" not in page
