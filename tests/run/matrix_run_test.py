"""issue 26: a matrix: task runs as one instance per cell, through real make and the real launchers."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.deployed import deploy, record, runs_dir

pytestmark = pytest.mark.slow  # real runs (make test-fast leaves them out)

MATRIX = """\
pipelines:
  nightly:
    concurrency: 4
    tasks:
      prep: echo prepared
      model:
        run: echo "model $FLANK_MATRIX_REGION $FLANK_MATRIX_YEAR"; test "$FLANK_MATRIX_REGION$FLANK_MATRIX_YEAR" != south2025
        needs: [prep]
        matrix: {region: [north, south], year: [2024, 2025]}
      fit:
        run: python3 -c "import os, time; time.sleep(0.3); print('fit', os.environ['FLANK_MATRIX_VALUE'])"
        matrix: [a, b, c]
        max_parallel: 1
      north_report:
        run: echo north only
        needs: ["model[region=north]"]
      report:
        run: echo all
        needs: [model, fit]
"""


def test_instances_run_with_their_values_and_dependents_wait_for_them(tmp_path: Path) -> None:
    deploy(tmp_path, MATRIX)
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1, proc.stderr
    assert "model[region=south,year=2025] failed (exit 1)" in proc.stdout
    # five tasks, two of them run once per cell: said so, not "10 tasks"
    assert re.search(r"nightly #1 started \(5 tasks: model ×4, fit ×3; commit \w+\)", proc.stdout), proc.stdout
    rec = record(1)
    statuses = {name: t["status"] for name, t in rec["tasks"].items()}
    assert statuses == {
        "prep": "success",
        "model[region=north,year=2024]": "success",
        "model[region=north,year=2025]": "success",
        "model[region=south,year=2024]": "success",
        "model[region=south,year=2025]": "failed",
        "fit[a]": "success",
        "fit[b]": "success",
        "fit[c]": "success",
        "north_report": "success",  # it needs only the north instances
        "report": "upstream_failed",  # it needs every instance
    }
    run_dir = runs_dir() / "1"
    log = run_dir / rec["tasks"]["model[region=south,year=2024]"]["log"]
    assert log.read_text().strip() == "model south 2024"
    assert (run_dir / rec["tasks"]["fit[b]"]["log"]).read_text().strip() == "fit b"  # Python sees it too
    # max_parallel: 1 — the instances of fit never overlapped
    spans = sorted((rec["tasks"][f"fit[{v}]"]["started_at"], rec["tasks"][f"fit[{v}]"]["ended_at"]) for v in "abc")
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:]))
    # the site: one node per matrix task with its count; a row per instance under the task's own
    site = Path(os.environ["FLANK_HOME"]) / "site" / "demo" / "nightly"
    run_page = (site / "1" / "index.html").read_text()
    assert ">model ×4</text>" in run_page and ">fit ×3</text>" in run_page
    assert 'data-task="model[region=north,year=2024]"' not in run_page  # no node per instance
    assert '<tr class="matrix-task"><td class="t-name" colspan="7">model</td></tr>' in run_page
    assert '<span class="cell-values">[region=south,year=2025]</span>' in run_page
    log_page = re.search(
        r'href="\.\./\.\./\.\./demo/nightly/1/(logs/model-region-south-year-2025-\w+\.html)"', run_page
    )
    assert log_page and "model south 2025" in (site / "1" / log_page.group(1)).read_text()
    assert 'class="node s-failed" data-task="model"' in run_page  # the node shows the failed instance
    grid = (site / "index.html").read_text()
    assert '<span class="cell-values">[a]</span>' in grid
    # the grid's narrow column shows an instance's values, as the timeline does; its keys on hover
    assert '<span class="cell-values" title="region=south, year=2025">[south,2025]</span>' in grid
    # by hand: the Makefile has a target for each instance and one for the whole task
    makefile = Path(os.environ["FLANK_HOME"]) / "demo" / "pipelines" / "nightly.mk"
    by_hand = subprocess.run(
        ["make", "-k", "-f", str(makefile), f"RUN_DIR={tmp_path / 'by-hand'}", "fit"], capture_output=True, text=True
    )
    assert by_hand.returncode == 0, by_hand.stderr
    assert sorted(p.name for p in (tmp_path / "by-hand" / "logs").glob("*.log")) == [
        "fit[a].log",
        "fit[b].log",
        "fit[c].log",
    ]
    # one instance, or all of a task, by its name
    one = run_flank("run", "demo", "nightly", "--task", "model[region=north,year=2024]")
    assert one.returncode == 0, one.stdout + one.stderr
    ran = {n for n, t in record(2)["tasks"].items() if t["status"] != "skipped"}
    assert ran == {"model[region=north,year=2024]"}
    north = run_flank("run", "demo", "nightly", "--task", "model[region=north]")
    assert north.returncode == 0, north.stdout + north.stderr
    assert "2/2 ok" in north.stdout
    every = run_flank("run", "demo", "nightly", "--task", "fit")
    assert every.returncode == 0, every.stdout + every.stderr
    assert {n for n, t in record(4)["tasks"].items() if t["status"] != "skipped"} == {"fit[a]", "fit[b]", "fit[c]"}
    assert "3/3 ok" in every.stdout


def test_force_task_and_from_name_a_matrix_task_as_task_does(tmp_path: Path) -> None:
    """Found by the third trial: `--force-task model` said "no task 'model'", and `--from model`
    left up-to-date instances skipped, while `--task model` runs them all."""
    deploy(
        tmp_path,
        "persist: [out]\npipelines:\n  nightly:\n    tasks:\n"
        "      model:\n        run: echo $FLANK_MATRIX_VALUE > out/m_$FLANK_MATRIX_VALUE.txt\n"
        "        matrix: [north, south]\n        outputs: ['out/m_{value}.txt']\n"
        "      report: {run: 'cat out/m_*.txt > out/all.txt', needs: [model], outputs: [out/all.txt]}\n",
    )
    assert run_flank("run", "demo", "nightly").returncode == 0
    plan = run_flank("plan", "demo", "nightly", "--force-task", "model[north]")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "model[north]         runs — ran: forced" in plan.stdout and "model[south]         up_to_date" in plan.stdout
    for args, run_id in ((["--force-task", "model"], 2), (["--from", "model"], 3)):
        out = run_flank("run", "demo", "nightly", *args)
        assert out.returncode == 0, out.stdout + out.stderr
        reasons = {n: t.get("reason") for n, t in record(run_id)["tasks"].items()}
        assert reasons["model[north]"] == reasons["model[south]"] == "ran: forced", (args, reasons)
