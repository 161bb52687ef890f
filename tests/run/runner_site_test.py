"""The status site a run leaves behind (issue 22): drawing is off the run's path, yet the final
pages are exactly what a full `flank site --rebuild` draws from the records."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from pathlib import Path

import pytest

from flank_ops.paths import Home
from helpers.cli import run_flank, wait_for_site_draws
from helpers.deployed import deploy, record, start_flank
from helpers.waiting import wait_for

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
    wait_for_site_draws(Path(os.environ["FLANK_HOME"]))  # the push's redraw, after its answer, is over
    site = Path(os.environ["FLANK_HOME"]) / "site"
    shutil.rmtree(site, ignore_errors=True)
    site.write_text("not a folder\n")  # every draw of this run fails
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 0, proc.stderr
    assert "nightly #1 success" in proc.stdout
    assert "could not refresh the status site" in proc.stderr
    # the final draw, after `flank run` answered, failed too: run.json says so (flank status shows it)
    assert record(1)["after_run"]["site"].startswith("error: ")
    site.unlink()
    assert run_flank("run", "demo", "nightly").returncode == 0
    page = (site / "demo" / "nightly" / "2" / "index.html").read_text()
    assert "success" in page and "running" not in page


UP_TO_DATE_PIPELINE = """\
persist: [data]
pipelines:
  nightly:
    tasks:
      clean:
        run: echo cleaned > data/clean.txt
        outputs: [data/clean.txt]
"""


def _gated_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Graphviz `dot` first on PATH, held while the returned gate file exists (at most a minute), then
    the real one: nothing else can hold a draw up on purpose."""
    real_dot = shutil.which("dot")
    if real_dot is None:
        pytest.skip("Graphviz dot is not installed")
    gate = tmp_path / "dot-gate"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = f'#!/bin/sh\nfor i in $(seq 3000); do [ -e "{gate}" ] || break; sleep 0.02; done\nexec "{real_dot}" "$@"\n'
    (bin_dir / "dot").write_text(script)
    (bin_dir / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return gate


def test_flank_run_returns_before_its_final_pages_are_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's last draw goes on after `flank run` has answered (issue 22). Held up here by a
    Graphviz `dot` that waits for a gate file (a wrapper around the real one on PATH: nothing else
    can hold a draw up on purpose), then released: the page comes, final."""
    gate = _gated_dot(tmp_path, monkeypatch)
    deploy(tmp_path, UP_TO_DATE_PIPELINE)
    assert run_flank("run", "demo", "nightly").returncode == 0
    home = Path(os.environ["FLANK_HOME"])
    wait_for_site_draws(home)  # the push's and this run's late draws are done: none lays the graph out again
    shutil.rmtree(home / ".flank" / "dag-layouts")  # the next draw lays the graph out again: dot
    gate.touch()
    run = start_flank("run", "demo", "nightly")  # nothing to run: its one draw is the final one
    try:
        wait_for(lambda: run.poll() is not None, "flank run to answer while its pages wait for dot", timeout=30)
        out, err = run.communicate()
        assert run.returncode == 0, err
        assert "nightly #2 success" in out
        page = home / "site" / "demo" / "nightly" / "2" / "index.html"
        assert not page.exists()  # still being drawn (dot is held)
    finally:
        gate.unlink()
        if run.poll() is None:
            run.kill()
            run.communicate()
    wait_for(page.exists, "the run's page, drawn once dot answers")
    assert "success" in page.read_text() and "running" not in page.read_text()


def test_a_push_holds_the_site_draws_lock_until_its_redraw_after_the_answer_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The push redraws the site after it has answered (issue 22). It holds the site-draws lock shared
    from before the answer, so whoever must see the site as the push left it waits for that lock (the
    tests' wait_for_site_draws): a test that changed the site right after a push raced the redraw.
    The redraw is held up by a gated Graphviz `dot`, as above."""
    gate = _gated_dot(tmp_path, monkeypatch)
    home = Path(os.environ["FLANK_HOME"])
    gate.touch()
    try:
        deploy(tmp_path, PIPELINE, settle=False)  # returns when `git push` has its answer
        page = home / "site" / "demo" / "nightly" / "index.html"
        assert not page.exists()  # the redraw waits for dot
        fd = os.open(Home(home).site_draws_lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        gate.unlink()
    wait_for_site_draws(home)
    assert "nightly" in page.read_text()
