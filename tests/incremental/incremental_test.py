"""Incremental runs (issue 12): real pushes, real make, tasks skipped when nothing they depend on changed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_flank

from helpers.deployed import deploy, push, record, runs_dir
from helpers.repos import age

pytestmark = pytest.mark.slow

# clean -> model -> report, clean -> regions -> report; data/ is persisted across deploys.
PIPELINE = """\
persist: [data]
pipelines:
  nightly:
    tasks:
      clean:
        run: sh scripts/clean.sh
        inputs: [raw.txt]
        outputs: [data/clean.txt]
      model:
        run: sh scripts/model.sh
        needs: [clean]
        outputs: [data/model.txt]
      regions:
        run: sh scripts/regions.sh
        needs: [clean]
        outputs: [data/regions.txt]
      report:
        run: sh scripts/report.sh
        needs: [model, regions]
        outputs: [data/report.txt]
"""
FILES = {
    "raw.txt": "b\na\nb\n",
    "scripts/clean.sh": "sort -u raw.txt > data/clean.txt\n",
    "scripts/model.sh": "wc -l < data/clean.txt > data/model.txt\n",
    "scripts/regions.sh": "# regions\ngrep -c a data/clean.txt > data/regions.txt\n",
    "scripts/report.sh": "cat data/model.txt data/regions.txt > data/report.txt\n",
}
ALL = ["clean", "model", "regions", "report"]


def statuses(run_id: int) -> dict[str, str]:
    return {n: t["status"] for n, t in record(run_id)["tasks"].items()}


def reasons(run_id: int) -> dict[str, str | None]:
    return {n: t.get("reason") for n, t in record(run_id)["tasks"].items()}


def run_ok(*args: str) -> str:
    proc = run_flank("run", "demo", "nightly", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_second_run_of_an_unchanged_pipeline_executes_nothing(tmp_path: Path) -> None:
    deploy(tmp_path, PIPELINE, FILES)
    run_ok()
    assert statuses(1) == dict.fromkeys(ALL, "success")
    assert reasons(1) == dict.fromkeys(ALL, "ran: no previous success")
    out = run_ok()
    assert statuses(2) == dict.fromkeys(ALL, "up_to_date")
    assert reasons(2) == dict.fromkeys(ALL, "up_to_date")
    assert "4/4 ok (4 up to date)" in out
    for name in ALL:
        assert f"  {name:<20} up_to_date" in out
    assert not list((runs_dir() / "2" / "logs").glob("*.log"))  # nothing was started
    # issue 22: not even make (its start cost a no-change run more than the decision did)
    assert not (runs_dir() / "2" / "make.log").exists() and (runs_dir() / "1" / "make.log").exists()
    # the fingerprints are plain files a person can read, outside releases and runs
    state = json.loads(
        (Path(os.environ["FLANK_HOME"]) / "demo" / "fingerprints" / "nightly" / "model.json").read_text()
    )
    assert state["run_id"] == 1 and "data/model.txt" in state["outputs"] and "clean" in state["upstream"]


def test_a_changed_input_reruns_that_task_and_its_dependents_only(tmp_path: Path) -> None:
    clone = deploy(tmp_path, PIPELINE, FILES)
    run_ok()
    push(
        clone, {"scripts/model.sh": "wc -l < data/clean.txt > data/model.txt; echo v2 >> data/model.txt\n"}, "model v2"
    )
    out = run_ok()
    assert statuses(2) == {"clean": "up_to_date", "model": "success", "regions": "up_to_date", "report": "success"}
    assert reasons(2)["model"] == "ran: scripts/model.sh changed"
    assert reasons(2)["report"] == "ran: upstream model changed data/model.txt"
    assert "success" in out and "— ran: scripts/model.sh changed" in out


def test_early_cut_off_a_rerun_with_identical_output_skips_dependents(tmp_path: Path) -> None:
    clone = deploy(tmp_path, PIPELINE, FILES)
    run_ok()
    # another duplicate line: clean runs again, but `sort -u` writes the same bytes
    push(clone, {"raw.txt": "b\na\nb\na\n"}, "more raw data")
    out = run_ok()
    assert statuses(2) == {"clean": "success", "model": "up_to_date", "regions": "up_to_date", "report": "up_to_date"}
    assert reasons(2)["clean"] == "ran: raw.txt changed"
    # decided by the launcher, said as the plan's up-to-date tasks are: no duration (it did not run)
    for name in ("model", "regions", "report"):
        assert f"  {name:<20} up_to_date\n" in out, out
    # a comment in one script: that task runs; its output is the same, so nothing after it does
    push(clone, {"scripts/regions.sh": "# regions, counted\ngrep -c a data/clean.txt > data/regions.txt\n"}, "comment")
    run_ok()
    assert statuses(3) == {"clean": "up_to_date", "model": "up_to_date", "regions": "success", "report": "up_to_date"}
    # a deploy that changes only a script no task uses: nothing runs
    push(clone, {"scripts/notes.sh": "# someday\n"}, "unrelated")
    run_ok()
    assert statuses(4) == dict.fromkeys(ALL, "up_to_date")


def test_force_and_force_task_and_from(tmp_path: Path) -> None:
    deploy(tmp_path, PIPELINE, FILES)
    run_ok()
    run_ok("--force")
    assert statuses(2) == dict.fromkeys(ALL, "success")
    assert reasons(2) == dict.fromkeys(ALL, "ran: forced")
    run_ok("--force-task", "model")
    # model ran; it wrote the same output, so report (which needs it) stayed up to date
    assert statuses(3) == {"clean": "up_to_date", "model": "success", "regions": "up_to_date", "report": "up_to_date"}
    run_ok("--from", "model")
    assert statuses(4) == {"clean": "skipped", "model": "success", "regions": "skipped", "report": "success"}
    assert reasons(4)["report"] == "ran: forced"
    proc = run_flank("run", "demo", "nightly", "--force-task", "modle")
    assert proc.returncode != 0 and "no task 'modle'" in proc.stderr and "did you mean 'model'" in proc.stderr


def test_on_the_vm_the_kept_up_to_date_answer_sees_a_persisted_file_edited_through_the_release(
    tmp_path: Path,
) -> None:
    # issue 22 (incremental/up_to_date.py) on a deployed project: outputs live in persist/data and are
    # read through the release's data link; the kept answer must see a hand edit made there
    deploy(tmp_path, PIPELINE, FILES)
    run_ok()
    project = Path(os.environ["FLANK_HOME"]) / "demo"
    age(project)
    run_ok()  # all up to date, decided in full: the answer is kept
    assert (project / "fingerprints" / ".up-to-date" / "nightly.json").is_file()
    assert statuses(2) == dict.fromkeys(ALL, "up_to_date")
    run_ok()  # answered from the kept answer
    assert statuses(3) == dict.fromkeys(ALL, "up_to_date")
    (project / "persist" / "data" / "model.txt").write_text("edited by hand\n")
    age(project / "persist", 5)
    run_ok()
    assert reasons(4)["model"] == "ran: output data/model.txt changed since its last success"


def test_deleted_or_edited_output_reruns_its_task(tmp_path: Path) -> None:
    deploy(tmp_path, PIPELINE, FILES)
    run_ok()
    data = Path(os.environ["FLANK_HOME"]) / "demo" / "persist" / "data"
    (data / "regions.txt").unlink()
    (data / "model.txt").write_text("edited by hand\n")
    run_ok()
    assert reasons(2)["regions"] == "ran: outputs missing (data/regions.txt)"
    assert reasons(2)["model"] == "ran: output data/model.txt changed since its last success"
    assert statuses(2)["clean"] == "up_to_date" and statuses(2)["report"] == "up_to_date"


def test_a_declared_output_never_written_fails_the_task(tmp_path: Path) -> None:
    files = {**FILES, "scripts/model.sh": "echo 'forgot to write it'\n"}
    deploy(tmp_path, PIPELINE, files)
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1
    rec = record(1)
    assert rec["tasks"]["model"]["status"] == "failed"
    assert "did not write its declared output data/model.txt" in rec["tasks"]["model"]["error"]
    assert rec["tasks"]["report"]["status"] == "upstream_failed"
    log = (runs_dir() / "1" / "logs" / "model.log").read_text()
    assert "forgot to write it" in log and "did not write its declared output data/model.txt" in log
    # no fingerprint: the next run runs it again, never a wrong skip
    run_flank("run", "demo", "nightly")
    assert record(2)["tasks"]["model"]["status"] == "failed"
    assert record(2)["tasks"]["model"]["reason"] == "ran: no previous success"


def test_an_input_that_is_a_directory_fails_the_task_saying_so(tmp_path: Path) -> None:
    yml = PIPELINE.replace("inputs: [raw.txt]", "inputs: [scripts]")
    deploy(tmp_path, yml, FILES)
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1
    clean = record(1)["tasks"]["clean"]
    assert clean["status"] == "failed" and "input scripts is a directory" in clean["error"]
    assert "input scripts is a directory" in (runs_dir() / "1" / "logs" / "clean.log").read_text()


def test_a_task_without_outputs_always_runs_and_a_missing_input_never_skips(tmp_path: Path) -> None:
    yml = PIPELINE.replace("inputs: [raw.txt]", "inputs: [raw.txt, 'extra/*.csv']") + "      live: echo fetched\n"
    deploy(tmp_path, yml, FILES)
    run_ok()
    run_ok()
    assert statuses(2)["live"] == "success"
    assert reasons(2)["live"] == "ran: no outputs declared (always runs)"
    assert statuses(2)["clean"] == "success" and reasons(2)["clean"] == "ran: input extra/*.csv missing"


def test_plan_says_what_the_next_run_does(tmp_path: Path) -> None:
    clone = deploy(tmp_path, PIPELINE, FILES)
    proc = run_flank("plan", "demo", "nightly")
    assert proc.returncode == 0, proc.stderr
    assert "clean                runs — ran: no previous success" in proc.stdout
    run_ok()
    proc = run_flank("plan", "demo", "nightly")
    assert "nothing to run: all 4 tasks are up to date" in proc.stdout
    push(
        clone, {"scripts/model.sh": "wc -l < data/clean.txt > data/model.txt; echo v2 >> data/model.txt\n"}, "model v2"
    )
    proc = run_flank("plan", "demo", "nightly")
    lines = proc.stdout
    assert "model                runs — ran: scripts/model.sh changed" in lines
    assert "clean                up_to_date" in lines and "regions              up_to_date" in lines
    assert "report               runs if an upstream's outputs change (decided when model has run)" in lines
    run_ok()
    assert statuses(2) == {"clean": "up_to_date", "model": "success", "regions": "up_to_date", "report": "success"}
    assert not list(runs_dir().glob("3"))  # plan ran nothing


def test_the_run_page_shows_up_to_date_tasks_and_every_reason(tmp_path: Path) -> None:
    from flank_ops.site import layout

    clone = deploy(tmp_path, PIPELINE, FILES)
    run_ok()
    push(
        clone, {"scripts/model.sh": "wc -l < data/clean.txt > data/model.txt; echo v2 >> data/model.txt\n"}, "model v2"
    )
    run_ok()
    page = (Path(os.environ["FLANK_HOME"]) / "site" / layout.url_run("demo", "nightly", 2)).read_text()
    # the task graph: up-to-date tasks have their own class (colour) and icon
    assert 'class="node s-up_to_date"' in page and "≡" in page
    why = page[page.index('<ul class="reasons">') :]
    why = why[: why.index("</ul>")]
    assert "<strong>model</strong>" in why and "scripts/model.sh changed" in why
    assert "<strong>report</strong>" in why and "upstream model changed data/model.txt" in why
    assert "<strong>clean</strong>" in why and "up to date: nothing it depends on changed" in why


SETUP_PIPELINE = """\
setup: {run: "mkdir -p env && cp requirements.txt env/lock.txt", key: [requirements.txt]}
persist: [data]
pipelines:
  nightly:
    tasks:
      plots:
        run: sh scripts/plots.sh
        outputs: [data/plots.txt]
      tables:
        run: sh scripts/tables.sh
        outputs: [data/tables.txt]
        auto_inputs: [scripts, sources]
      live: echo fetched
"""


def test_a_package_upgrade_reruns_the_tasks_of_that_release_unless_they_opt_out(tmp_path: Path) -> None:
    """issue 28 item 1: the setup key is an input of every task, by default."""
    files = {
        "requirements.txt": "matplotlib==3.7.5\n",
        "scripts/plots.sh": "cat env/lock.txt > data/plots.txt\n",
        "scripts/tables.sh": "echo tables > data/tables.txt\n",
    }
    clone = deploy(tmp_path, SETUP_PIPELINE, files)
    run_ok()
    push(clone, {"README.md": "notes\n"}, "readme only")
    run_ok()
    assert statuses(2) == {"plots": "up_to_date", "tables": "up_to_date", "live": "success"}

    push(clone, {"requirements.txt": "matplotlib==3.8.4\n"}, "matplotlib 3.8.4")
    deploys_log = Path(os.environ["FLANK_HOME"]) / "demo" / "deploys.jsonl"
    deploys = [json.loads(line) for line in deploys_log.read_text().splitlines()]
    keys = [d["setup"]["key"] for d in deploys]
    assert keys[0] == keys[1] != keys[2]
    plan = run_flank("plan", "demo", "nightly").stdout
    assert f"plots                runs — ran: environment changed (setup key {keys[0][:7]}… → {keys[2][:7]}…)" in plan
    assert "live                 always runs: no outputs declared" in plan
    run_ok()
    assert statuses(3) == {"plots": "success", "tables": "up_to_date", "live": "success"}
    assert reasons(3)["plots"] == f"ran: environment changed (setup key {keys[0][:7]}… → {keys[2][:7]}…)"
    assert (Path(os.environ["FLANK_HOME"]) / "demo" / "persist" / "data" / "plots.txt").read_text() == (
        "matplotlib==3.8.4\n"
    )
    run_ok()
    assert statuses(4) == {"plots": "up_to_date", "tables": "up_to_date", "live": "success"}


def test_scripts_a_task_sources_or_imports_are_its_inputs(tmp_path: Path) -> None:
    """issue 28 item 10, issue 19 friction 4: R source() and Python imports, one level, no inputs: listed."""
    if shutil.which("Rscript") is None:
        pytest.skip("R is not installed")
    yml = """\
persist: [data]
pipelines:
  nightly:
    tasks:
      model:
        run: Rscript R/run_step.R 05_model.R
        outputs: [data/model.txt]
      summarise:
        run: python3 py/summarise.py
        outputs: [data/summary.txt]
      by_hand:
        run: python3 py/summarise.py --out data/by_hand.txt
        outputs: [data/by_hand.txt]
        auto_inputs: false
"""
    files = {
        "R/run_step.R": 'step <- commandArgs(TRUE)[1]\nsource(file.path("R", step))\n',
        "R/05_model.R": 'source("R/helpers.R")\nwriteLines(helper(), "data/model.txt")\n',
        "R/helpers.R": 'helper <- function() "v1"\n',
        "py/summarise.py": (
            "import sys\nfrom common import VERSION\n"
            "out = sys.argv[2] if len(sys.argv) > 2 else 'data/summary.txt'\nopen(out, 'w').write(VERSION)\n"
        ),
        "py/common.py": "VERSION = 'v1'\n",
    }
    clone = deploy(tmp_path, yml, files)
    run_ok()
    assert statuses(1) == {"model": "success", "summarise": "success", "by_hand": "success"}
    push(clone, {"py/common.py": "VERSION = 'v2'\n"}, "common v2")
    run_ok()
    assert statuses(2) == {"model": "up_to_date", "summarise": "success", "by_hand": "up_to_date"}
    assert reasons(2)["summarise"] == "ran: py/common.py changed"
    push(clone, {"R/05_model.R": 'source("R/helpers.R")\nwriteLines(paste(helper(), "!"), "data/model.txt")\n'}, "m")
    run_ok()
    assert reasons(3)["model"] == "ran: R/05_model.R changed"
    # R/helpers.R is two levels down from the command (run_step.R -> 05_model.R -> helpers.R): one level
    # is followed from each script the command names, and 05_model.R is named (found beside run_step.R)
    push(clone, {"R/helpers.R": 'helper <- function() "v2"\n'}, "helpers v2")
    run_ok()
    assert statuses(4) == {"model": "success", "summarise": "up_to_date", "by_hand": "up_to_date"}
    assert reasons(4)["model"] == "ran: R/helpers.R changed"
    data = Path(os.environ["FLANK_HOME"]) / "demo" / "persist" / "data"
    assert (data / "model.txt").read_text() == "v2 !\n"
