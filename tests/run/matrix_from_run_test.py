"""issue 26: `matrix_from:` — a matrix task whose cells are the lines (or a CSV's rows) of a file an
upstream task writes, through a real push, real make (a sub-make per task) and real Python and R tasks."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from helpers.cli import run_flank
from helpers.deployed import WAIT_FOR_GATE, deploy, open_gate, push, record, runs_dir, start_flank, task_status
from helpers.waiting import process_gone, wait_for

pytestmark = pytest.mark.slow  # real runs (make test-fast leaves them out)

FLANK_YML = """\
persist: [data]
pipelines:
  nightly:
    concurrency: 4
    tasks:
      regions:
        run: python3 py/regions.py
        inputs: [regions.conf]
        outputs: [data/regions.txt]
      model:
        run: python3 py/model.py
        needs: [regions]
        matrix_from: data/regions.txt
        inputs: ["inputs/{value}.txt"]
        outputs: ["data/model_{value}.txt"]
        artifacts: ["data/model_{value}.txt"]
      cells:
        run: printf 'region,year\\nnorth,2024\\nsouth,2025\\n' > data/cells.csv
        outputs: [data/cells.csv]
      fit:
        run: Rscript R/fit.R
        needs: [cells]
        matrix_from: data/cells.csv
        outputs: ["data/fit_{region}_{year}.txt"]
      report:
        run: cat data/model_*.txt > data/report.txt
        needs: [model]
        outputs: [data/report.txt]
"""
FILES = {
    "regions.conf": "north\nsouth\neast\n",
    "py/regions.py": "import shutil\nshutil.copy('regions.conf', 'data/regions.txt')\n",
    "py/model.py": (
        "import os\nv = os.environ['FLANK_MATRIX_VALUE']\nprint('model', v)\n"
        "open(f'data/model_{v}.txt', 'w').write(open(f'inputs/{v}.txt').read())\n"
    ),
    "R/fit.R": (
        'r <- Sys.getenv("FLANK_MATRIX_REGION"); y <- Sys.getenv("FLANK_MATRIX_YEAR")\n'
        'cat("fit", r, y, "\\n")\n'
        'writeLines(paste(r, y), sprintf("data/fit_%s_%s.txt", r, y))\n'
    ),
    "inputs/north.txt": "n\n",
    "inputs/south.txt": "s\n",
    "inputs/east.txt": "e\n",
}
MODELS = ["model[north]", "model[south]", "model[east]"]
FITS = ["fit[region=north,year=2024]", "fit[region=south,year=2025]"]


def statuses(run_id: int) -> dict[str, str]:
    return {n: t["status"] for n, t in record(run_id)["tasks"].items()}


def test_cells_come_from_an_upstream_file_and_rerun_per_cell(tmp_path: Path) -> None:
    clone = deploy(tmp_path, FLANK_YML, FILES)
    plan = run_flank("plan", "demo", "nightly")
    assert plan.returncode == 0, plan.stderr
    assert "model                cells from data/regions.txt, known after regions runs" in plan.stdout

    first = run_flank("run", "demo", "nightly")
    assert first.returncode == 0, first.stdout + first.stderr
    rec = record(1)
    assert list(rec["tasks"]) == ["regions", *MODELS, "cells", *FITS, "report"]  # the instances in the task's place
    assert set(statuses(1).values()) == {"success"}
    assert rec["tasks"]["report"]["needs"] == MODELS
    assert rec["selected_tasks"] == list(rec["tasks"])
    assert [a["path"] for a in rec["tasks"]["model[north]"]["artifacts"]] == ["data/model_north.txt"]
    run_dir = runs_dir() / "1"
    assert (run_dir / rec["tasks"]["model[south]"]["log"]).read_text().splitlines()[-1] == "model south"  # Python
    assert (run_dir / rec["tasks"]["fit[region=south,year=2025]"]["log"]).read_text().splitlines()[
        -1
    ] == "fit south 2025 "  # R
    assert "model[east]" in first.stdout and "fit[region=north,year=2024]" in first.stdout
    data = Path(os.environ["FLANK_HOME"]) / "demo" / "persist" / "data"
    assert (data / "report.txt").read_text() == "e\nn\ns\n"
    assert (data / "fit_north_2024.txt").read_text() == "north 2024\n"
    # the site shows them as it shows matrix: instances
    run_page_dir = Path(os.environ["FLANK_HOME"]) / "site" / "demo" / "nightly" / "1"
    run_page = (run_page_dir / "index.html").read_text()
    assert ">model ×3</text>" in run_page and ">fit ×2</text>" in run_page
    assert '<span class="cell-values">[region=south,year=2025]</span>' in run_page
    log_page = re.search(r'href="\.\./\.\./\.\./demo/nightly/1/(logs/model-east-\w+\.html)"', run_page)
    assert log_page and "model east" in (run_page_dir / log_page.group(1)).read_text()

    # by hand: the deployed Makefile's target reads the cells and runs every instance
    makefile = Path(os.environ["FLANK_HOME"]) / "demo" / "pipelines" / "nightly.mk"
    by_hand = subprocess.run(
        ["make", "-k", "-j", "2", "-f", str(makefile), f"RUN_DIR={tmp_path / 'by-hand'}", "model"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr
    assert "model: 3 cells from data/regions.txt" in by_hand.stdout
    assert sorted(p.stem for p in (tmp_path / "by-hand" / "logs").glob("*.log")) == sorted(
        [*MODELS, "regions"]
    )  # and what it needs

    # nothing changed: every cell is up to date, and so is what needs them
    second = run_flank("run", "demo", "nightly")
    assert second.returncode == 0, second.stdout + second.stderr
    assert set(statuses(2).values()) == {"up_to_date"}, statuses(2)
    assert "model: 3 cells from data/regions.txt (3 up to date)" in (runs_dir() / "2" / "make.log").read_text()

    # one cell's input changed: that cell runs, and what needs the task
    push(clone, {"inputs/south.txt": "S\n"}, "south changed")
    # the file's writer is up to date, so plan reads the cells as the run will (found by the third trial)
    plan = run_flank("plan", "demo", "nightly")
    assert plan.returncode == 0, plan.stderr
    # (the task column is as wide as the longest name, fit[region=north,year=2024]: tests/commands/plan_test.py)
    assert re.search(r"  model\[south\] +runs — ran: inputs/south.txt changed", plan.stdout), plan.stdout
    assert re.search(r"  model\[north\] +up_to_date", plan.stdout) and "cells from" not in plan.stdout
    third = run_flank("run", "demo", "nightly")
    assert third.returncode == 0, third.stdout + third.stderr
    assert statuses(3) == {
        "regions": "up_to_date",
        "model[north]": "up_to_date",
        "model[south]": "success",
        "model[east]": "up_to_date",
        "cells": "up_to_date",
        **dict.fromkeys(FITS, "up_to_date"),
        "report": "success",
    }
    assert "inputs/south.txt" in record(3)["tasks"]["model[south]"]["reason"]
    assert (data / "report.txt").read_text() == "e\nn\nS\n"

    # a new line in the file is a new cell (its dependents run again; the old cells stay up to date)
    push(clone, {"regions.conf": "north\nsouth\neast\nwest\n", "inputs/west.txt": "w\n"}, "west")
    fourth = run_flank("run", "demo", "nightly")
    assert fourth.returncode == 0, fourth.stdout + fourth.stderr
    assert statuses(4)["model[west]"] == "success" and statuses(4)["model[north]"] == "up_to_date"


def test_a_bad_cells_file_fails_the_task_with_one_clear_line(tmp_path: Path) -> None:
    clone = deploy(tmp_path, FLANK_YML, {**FILES, "regions.conf": ""})
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1
    rec = record(1)
    assert rec["tasks"]["model"]["status"] == "failed"
    assert rec["tasks"]["report"]["status"] == "upstream_failed"
    assert set(statuses(1)[n] for n in ["cells", *FITS]) == {"success"}  # the rest of the run goes on
    message = "model: data/regions.txt has no cells: it is empty (the task that writes it wrote no values)"
    assert rec["tasks"]["model"]["error"] == message
    assert f"model failed ({message})" in proc.stdout
    # its line says no more than that it failed: not the plan's "cells from …, known after regions runs"
    # when regions has run (found by the third trial); the summary and the log say why
    assert "  model                failed\n" in proc.stdout, proc.stdout
    assert (runs_dir() / "1" / "logs" / "model.log").read_text() == f"flank: {message}\n"
    assert "Traceback" not in (runs_dir() / "1" / "make.log").read_text()

    push(clone, {"regions.conf": "north\nno rth\n"}, "a bad value")
    bad = run_flank("run", "demo", "nightly")
    assert bad.returncode == 1
    assert record(2)["tasks"]["model"]["error"].startswith("model: data/regions.txt:2: 'no rth' is not a plain value")


def test_a_rerun_of_a_failed_cell_reads_the_cells_again(tmp_path: Path) -> None:
    clone = deploy(tmp_path, FLANK_YML, {**FILES, "regions.conf": "north\nwest\n"})  # no inputs/west.txt
    failed = run_flank("run", "demo", "nightly")
    assert failed.returncode == 1
    assert statuses(1)["model[west]"] == "failed" and statuses(1)["report"] == "upstream_failed"
    push(clone, {"inputs/west.txt": "w\n"}, "west's input")
    rerun = run_flank("run", "demo", "nightly", "--rerun", "1")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    ran = {n: s for n, s in statuses(2).items() if s != "skipped"}
    assert ran == {"model[north]": "up_to_date", "model[west]": "success", "report": "success"}
    one = run_flank("run", "demo", "nightly", "--task", "model[west]")
    assert one.returncode == 1 and not one.stdout
    assert one.stderr == (
        "flank: the cells of 'model' are known only when the run reads data/regions.txt\n"
        "  run all of them: --task model\n"
    )


def test_cancel_stops_the_instances_the_sub_make_runs(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    yml = (
        "persist: [gate, data]\npipelines:\n  nightly:\n    concurrency: 4\n    tasks:\n"
        "      regions:\n        run: printf 'a\\nb\\n' > data/regions.txt\n        outputs: [data/regions.txt]\n"
        "      hold:\n        run: sh hold.sh\n        needs: [regions]\n        matrix_from: data/regions.txt\n"
        "      report:\n        run: 'true'\n        needs: [hold]\n"
    )
    deploy(tmp_path, yml, {"hold.sh": f"echo $$ >> {pids}\n{WAIT_FOR_GATE}\n"})
    runner = start_flank("run", "demo", "nightly")
    try:
        wait_for(lambda: task_status(1, "hold[a]") == task_status(1, "hold[b]") == "running", "both instances")
        # the launcher says running before the instance's shell has written its pid
        wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2, "both pids")
        cancel = run_flank("cancel", "demo", "nightly")
        assert cancel.returncode == 0, cancel.stderr
        out, err = runner.communicate(timeout=60)
    finally:
        open_gate()
    assert runner.returncode == 130, out + err
    assert statuses(1) == {"regions": "success", "hold[a]": "cancelled", "hold[b]": "cancelled", "report": "cancelled"}
    for pid in map(int, pids.read_text().split()):
        wait_for(lambda pid=pid: process_gone(pid), f"instance {pid} to end")
