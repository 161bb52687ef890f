"""issue 23 item 3: run parameters — real pushes, real make; tasks read FLANK_PARAM_<NAME>."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flank_ops.site import layout
from helpers.cli import run_flank
from helpers.deployed import deploy, record, runs_dir
from helpers.repos import git

pytestmark = pytest.mark.slow  # real runs (make test-fast leaves them out)

PIPELINE = """\
persist: [data]
pipelines:
  nightly:
    params:
      day: 2026-11-01
      n: 3
      model: {type: choice, choices: [lm, glm], default: lm, description: which fit}
    tasks:
      fit:
        run: echo "day=$FLANK_PARAM_DAY n=$FLANK_PARAM_N model=$FLANK_PARAM_MODEL" > data/fit.txt
        outputs: [data/fit.txt]
      show: {run: 'cat data/fit.txt; [ "$FLANK_PARAM_N" != 9 ]', needs: [fit]}
"""


def fit_output() -> str:
    return (Path(os.environ["FLANK_HOME"]) / "demo" / "persist" / "data" / "fit.txt").read_text()


def test_parameters_reach_tasks_the_record_the_note_and_the_page(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    deploy(tmp_path, PIPELINE, {"data/.keep": ""})

    proc = run_flank("run", "demo", "nightly", "-p", "n=7", "-p", "model=glm")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fit_output() == "day=2026-11-01 n=7 model=glm\n"
    first = record(1)
    assert first["params"] == {"day": "2026-11-01", "n": 7, "model": "glm"}  # typed
    assert first["non_default_params"] == ["n", "model"]
    sha = first["commit"]["sha"]
    note = git(
        "--git-dir", str(Path(os.environ["FLANK_HOME"]) / "demo.git"), "notes", "--ref=flank", "show", sha, cwd=tmp_path
    )
    assert "(" in note.stdout and "manual, n=7, model=glm)" in note.stdout
    page = (Path(os.environ["FLANK_HOME"]) / "site" / layout.url_run("demo", "nightly", 1)).read_text()
    assert "<dt>Parameters</dt><dd>n=7, model=glm</dd>" in page

    # the same values again: up to date; other values (the defaults): it runs, saying why
    plan = run_flank("plan", "demo", "nightly", "-p", "n=7", "-p", "model=glm", check=True).stdout
    assert "fit                  up_to_date" in plan
    plan = run_flank("plan", "demo", "nightly", "-p", "n=8", "-p", "model=glm", check=True).stdout
    assert "fit                  runs — ran: parameter n changed" in plan
    run_flank("run", "demo", "nightly", "-p", "n=7", "-p", "model=glm", check=True)
    assert record(2)["tasks"]["fit"]["status"] == "up_to_date"
    run_flank("run", "demo", "nightly", check=True)
    third = record(3)
    assert third["tasks"]["fit"]["status"] == "success"
    assert third["tasks"]["fit"]["reason"] == "ran: parameters model, n changed"
    assert third["non_default_params"] == []
    assert fit_output() == "day=2026-11-01 n=3 model=lm\n"
    page = (Path(os.environ["FLANK_HOME"]) / "site" / layout.url_run("demo", "nightly", 3)).read_text()
    assert "<dt>Parameters</dt>" not in page  # defaults only: nothing to show

    # --rerun of a failed run reruns it with that run's values
    assert run_flank("run", "demo", "nightly", "-p", "n=9").returncode == 1
    assert run_flank("run", "demo", "nightly", "--rerun", "4").returncode == 1
    assert record(5)["params"]["n"] == 9 and record(5)["tasks"]["show"]["status"] == "failed"


def test_bad_parameters_start_nothing(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    deploy(tmp_path, PIPELINE, {"data/.keep": ""})
    for args, message in [
        (["-p", "nn=1"], "flank: pipeline 'nightly' has no parameter 'nn'"),
        (["-p", "n=seven"], "flank: parameter 'n' (int): 'seven' is not a whole number"),
        (["-p", "model=glmm", "--detach"], "flank: parameter 'model' (choice): 'glmm' is not one of lm, glm"),
        (["-p", "n"], "flank: -p 'n' is not NAME=VALUE"),
    ]:
        proc = run_flank("run", "demo", "nightly", *args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert proc.stderr.startswith(message), proc.stderr
        assert "Traceback" not in proc.stderr
    assert "did you mean 'n'?" in run_flank("run", "demo", "nightly", "-p", "nn=1").stderr
    assert not runs_dir().exists() or not any(p.name.isdigit() for p in runs_dir().iterdir())
