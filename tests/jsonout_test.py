"""`--json` (flank_ops/jsonout.py): every command's answer against the one JSON Schema of the answers,
r/flank/inst/schema/answers.json — the contract the R package `flank` checks from its side too
(r/flank/tests/testthat). Real push, real runs, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from flank_ops.jsonout import SCHEMA
from helpers.cli import run_flank
from helpers.repos import git, make_repo

pytestmark = pytest.mark.slow

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "r" / "flank" / "inst" / "schema" / "answers.json"

FLANK_YML = """\
pipelines:
  nightly:
    tasks:
      extract: echo extracted rows
      report:
        run: echo report done
        needs: [extract]
"""


def check(answer: dict) -> dict:
    """The answer fits its kind's schema (and the envelope every answer has)."""
    schema = json.loads(SCHEMA_FILE.read_text())
    definitions = schema["definitions"]
    root = {"definitions": definitions}
    jsonschema.validate(answer, {**root, "$ref": "#/definitions/envelope"})
    assert answer["schema"] == SCHEMA
    jsonschema.validate(answer, {**root, "$ref": f"#/definitions/{schema['kinds'][answer['kind']]}"})
    return answer


def answer_of(*args: str, cwd: Path | None = None, code: int = 0) -> dict:
    proc = run_flank(*args, "--json", cwd=cwd)
    assert proc.returncode == code, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout  # one answer, one line: nothing else on stdout
    return check(json.loads(lines[0]))


def test_every_answer_fits_the_schema_and_says_what_a_user_asked(tmp_path: Path, flank_home: Path) -> None:
    run_flank("init", "demo", check=True)
    wc = make_repo(tmp_path / "wc", {"flank.yml": FLANK_YML})
    git("push", str(flank_home / "demo.git"), "main", cwd=wc)

    status = answer_of("status", "demo")
    [pipeline] = status["projects"][0]["pipelines"]
    assert pipeline["pipeline"] == "nightly" and pipeline["run"] is None

    plan = answer_of("plan", "demo", "nightly")
    assert [(t["task"], t["decision"]) for t in plan["tasks"]] == [("extract", "run"), ("report", "run")]

    ran = answer_of("run", "demo", "nightly")
    assert ran["run_id"] == 1 and ran["run"]["status"] == "success" and ran["url"].endswith("/demo/nightly/1/")
    detached = answer_of("run", "demo", "nightly", "--task", "extract", "--detach")
    assert detached["detached"] and detached["run_id"] == 2 and detached["url"].endswith("/demo/nightly/2/")

    logs = answer_of("logs", "demo", "nightly", "1")
    assert logs["run"]["tasks"]["report"]["status"] == "success"
    assert Path(logs["logs"]["extract"]).read_text().strip() == "extracted rows"

    status = answer_of("status", "demo", "--runs", "5")
    [pipeline] = status["projects"][0]["pipelines"]
    assert pipeline["run"]["run_id"] in (1, 2) and pipeline["runs"][-1]["run_id"] == 1

    assert answer_of("secrets", "list", "demo")["names"] == []
    assert answer_of("validate", str(wc))["pipelines"] == [{"pipeline": "nightly", "tasks": ["extract", "report"]}]
    (tmp_path / "bad.yml").write_text("pipelines:\n  x:\n    taskz: 1\n")
    bad = answer_of("validate", str(tmp_path / "bad.yml"), code=1)
    assert not bad["valid"] and any("did you mean 'tasks'" in (e["hint"] or "") for e in bad["errors"])
    answer_of("report", "resources", "demo")
    answer_of("cost", "plan")


def test_errors_are_json_with_the_exit_code_and_hint_of_the_text_answer(tmp_path: Path, flank_home: Path) -> None:
    run_flank("init", "demo", check=True)
    wc = make_repo(tmp_path / "wc", {"flank.yml": FLANK_YML})
    git("push", str(flank_home / "demo.git"), "main", cwd=wc)
    for args in (["logs", "demo", "nightlx"], ["plan", "demo", "nightlx"], ["cancel", "demo", "nightly"]):
        text = run_flank(*args)
        proc = run_flank(*args, "--json")
        assert proc.returncode == text.returncode != 0, args
        error = check(json.loads(proc.stdout))
        assert error["kind"] == "error" and error["error"] in text.stderr
        if error["hint"]:
            assert error["hint"] in text.stderr
        assert "Traceback" not in proc.stderr
    error = json.loads(run_flank("plan", "demo", "nightlx", "--json").stdout)
    assert error["hint"].startswith("did you mean 'nightly'?")


def test_a_command_line_mistake_with_json_is_a_json_error_with_argparses_exit_code() -> None:
    text = run_flank("status", "--bogus")
    proc = run_flank("status", "--json", "--bogus")
    assert proc.returncode == text.returncode == 2
    error = check(json.loads(proc.stdout))
    assert error["kind"] == "error" and "unrecognized arguments: --bogus" in error["error"]
    assert error["error"].split(": ", 1)[1] in text.stderr and error["hint"].startswith("usage: ")
    assert proc.stderr == ""
