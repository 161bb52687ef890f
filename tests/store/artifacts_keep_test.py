"""`artifacts:` end to end: a real push, a real run, the files kept with the run (issue 11)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import run_flank

from helpers.deployed import deploy, push, record, runs_dir

MAKES_OUTPUTS = """\
persist: [results]
pipelines:
  nightly:
    tasks:
      model:
        run: sh make.sh
        artifacts: [results/*.png, results/summary.csv, "results/odd name's <b>.txt", missing/*.pdf]
      report:
        run: printf '<html><body><script>document.title="ran"</script>report</body></html>' > results/report.html
        needs: [model]
        artifacts: [results/report.html]
"""
MAKE_SH = """\
printf 'PNG-1' > results/plot.png
printf 'a,b\\n1,2\\n' > results/summary.csv
printf 'odd' > "results/odd name's <b>.txt"
printf 'not kept' > results/other.txt
"""


def _kept(run_id: int, task: str) -> Path:
    return runs_dir() / str(run_id) / "artifacts" / task


@pytest.mark.slow
def test_a_run_keeps_the_matching_files_and_says_what_matched_nothing(tmp_path: Path) -> None:
    deploy(tmp_path, MAKES_OUTPUTS, {"make.sh": MAKE_SH})
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = record(1)
    model = rec["tasks"]["model"]
    assert [(a["path"], a["size"], a["kept"]) for a in model["artifacts"]] == [
        ("results/odd name's <b>.txt", 3, True),
        ("results/plot.png", 5, True),
        ("results/summary.csv", 8, True),
    ]
    assert model["artifact_warnings"] == ["missing/*.pdf: no file matched"]
    assert (_kept(1, "model") / "results" / "plot.png").read_bytes() == b"PNG-1"
    assert not (_kept(1, "model") / "results" / "other.txt").exists()
    assert (_kept(1, "report") / "results" / "report.html").read_text().startswith("<html>")


@pytest.mark.slow
def test_a_file_rewritten_in_place_later_does_not_change_the_kept_one(tmp_path: Path) -> None:
    deploy(tmp_path, MAKES_OUTPUTS, {"make.sh": MAKE_SH})
    assert run_flank("run", "demo", "nightly").returncode == 0
    plot = Path(os.environ["FLANK_HOME"]) / "demo" / "persist" / "results" / "plot.png"
    with open(plot, "r+b") as f:  # in place, the way R's png() rewrites it (O_TRUNC, same inode)
        f.write(b"XXXXX")
    assert (_kept(1, "model") / "results" / "plot.png").read_bytes() == b"PNG-1"


@pytest.mark.slow
def test_an_unchanged_file_is_shared_with_the_previous_run_and_a_changed_one_is_not(tmp_path: Path) -> None:
    yml = MAKES_OUTPUTS.replace(
        "run: sh make.sh", "run: '[ -e results/plot.png ] || sh make.sh; echo $FLANK_RUN_ID > results/summary.csv'"
    )
    deploy(tmp_path, yml, {"make.sh": MAKE_SH})
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert run_flank("run", "demo", "nightly").returncode == 0
    first, second = _kept(1, "model") / "results", _kept(2, "model") / "results"
    assert os.path.samefile(first / "plot.png", second / "plot.png")  # untouched since run 1: one copy
    assert not os.path.samefile(first / "summary.csv", second / "summary.csv")
    assert (second / "summary.csv").read_text() == "2\n" and (first / "summary.csv").read_text() == "1\n"


@pytest.mark.slow
def test_a_failed_task_keeps_its_partial_outputs(tmp_path: Path) -> None:
    deploy(tmp_path, MAKES_OUTPUTS.replace("run: sh make.sh", "run: sh make.sh; exit 3"), {"make.sh": MAKE_SH})
    proc = run_flank("run", "demo", "nightly")
    assert proc.returncode == 1
    rec = record(1)
    assert rec["tasks"]["model"]["status"] == "failed"
    assert (_kept(1, "model") / "results" / "plot.png").read_bytes() == b"PNG-1"
    assert rec["tasks"]["report"]["status"] == "upstream_failed" and "artifacts" not in rec["tasks"]["report"]


@pytest.mark.slow
def test_past_max_mb_per_run_the_rest_is_not_kept_and_the_record_says_why(tmp_path: Path) -> None:
    big = "head -c 700000 /dev/zero > results/big.png; head -c 600000 /dev/zero > results/big2.png"
    yml = MAKES_OUTPUTS.replace("run: sh make.sh", f"run: '{big}'")
    deploy(tmp_path, yml)
    (Path(os.environ["FLANK_HOME"]) / "flank.toml").write_text(
        "[schedule]\ninstall_crontab = false\n[artifacts]\nmax_mb_per_run = 1\n"
    )
    assert run_flank("run", "demo", "nightly").returncode == 0
    model = record(1)["tasks"]["model"]
    kept = {a["path"]: a for a in model["artifacts"]}
    assert kept["results/big.png"]["kept"] is True
    assert kept["results/big2.png"]["kept"] is False
    assert "max_mb_per_run = 1 MB" in kept["results/big2.png"]["note"]
    assert any("results/big2.png: not kept" in w for w in model["artifact_warnings"])
    assert not (_kept(1, "model") / "results" / "big2.png").exists()


@pytest.mark.slow
def test_a_symlink_out_of_the_project_is_not_kept(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    yml = MAKES_OUTPUTS.replace("run: sh make.sh", f"run: ln -sf {secret} results/plot.png")
    deploy(tmp_path, yml)
    assert run_flank("run", "demo", "nightly").returncode == 0
    model = record(1)["tasks"]["model"]
    entry = next(a for a in model["artifacts"] if a["path"] == "results/plot.png")
    assert entry["kept"] is False and "outside" in entry["note"]
    assert not (_kept(1, "model") / "results" / "plot.png").exists()


@pytest.mark.slow
def test_a_glob_matching_too_many_files_keeps_a_bounded_number(tmp_path: Path) -> None:
    many = "mkdir -p results/many; cd results/many; seq 1 6000 | xargs touch"
    yml = MAKES_OUTPUTS.replace("run: sh make.sh", f"run: '{many}'").replace(
        'artifacts: [results/*.png, results/summary.csv, "results/odd name\'s <b>.txt", missing/*.pdf]',
        "artifacts: [results/many/*]",
    )
    deploy(tmp_path, yml)
    assert run_flank("run", "demo", "nightly").returncode == 0
    model = record(1)["tasks"]["model"]
    assert len(model["artifacts"]) == 5000
    assert model["artifact_warnings"] == [
        "results/many/*: the task has more than 5000 files to keep; the rest was not kept (narrow the pattern: "
        "artifacts are files to look at)"
    ]


@pytest.mark.slow
def test_bad_patterns_are_refused_with_line_and_column(tmp_path: Path) -> None:
    clone = deploy(tmp_path, MAKES_OUTPUTS, {"make.sh": MAKE_SH})
    bad = MAKES_OUTPUTS.replace("artifacts: [results/report.html]", "artifacts: [../etc/passwd, /tmp/x]")
    (clone / "flank.yml").write_text(bad)
    proc = run_flank("validate", cwd=clone)
    assert proc.returncode != 0
    assert "flank.yml:11:21: artifacts: '../etc/passwd' must stay inside the project ('..' is not allowed)" in (
        proc.stdout + proc.stderr
    )
    assert "flank.yml:11:36: artifacts: '/tmp/x' must be relative to the task's dir, not absolute" in (
        proc.stdout + proc.stderr
    )


@pytest.mark.slow
def test_odd_names_and_a_20_gb_file_are_handled_safely(tmp_path: Path) -> None:
    odd = (
        "printf x > \"$(printf 'results/bad\\377name.csv')\"; printf y > 'results/with space.csv'; "
        "truncate -s 20G results/huge.rds"
    )
    yml = MAKES_OUTPUTS.replace("run: sh make.sh", "run: sh odd.sh").replace(
        'artifacts: [results/*.png, results/summary.csv, "results/odd name\'s <b>.txt", missing/*.pdf]',
        "artifacts: [results/*.csv, results/*.rds]",
    )
    deploy(tmp_path, yml, {"odd.sh": odd + "\n"})
    assert run_flank("run", "demo", "nightly").returncode == 0
    model = {a["path"]: a for a in record(1)["tasks"]["model"]["artifacts"]}
    assert model["results/bad%FFname.csv"]["kept"] is True
    assert "not UTF-8" in model["results/bad%FFname.csv"]["note"]
    assert (_kept(1, "model") / "results" / "bad%FFname.csv").read_bytes() == b"x"
    assert model["results/with space.csv"]["kept"] is True
    huge = model["results/huge.rds"]
    assert huge["kept"] is False and huge["size"] == 20 * 1024**3 and "max_mb_per_run = 500 MB" in huge["note"]
    page = (Path(os.environ["FLANK_HOME"]) / "site" / "demo" / "nightly" / "1" / "index.html").read_text()
    assert "results/bad%FFname.csv" in page and "bad%25FFname.csv" in page  # shown as text, linked quoted
    assert "20.0 GiB" in page


def test_a_notification_links_the_report_the_run_kept(tmp_path: Path) -> None:
    from flank_ops.notify.message import build_message
    from flank_ops.paths import ProjectPaths
    from flank_ops.store.model import RunRecord, RunStatus, RunTrigger, TaskResult, TaskStatus

    paths = ProjectPaths.for_local(tmp_path)
    record = RunRecord(
        project="demo",
        pipeline="nightly",
        run_id=7,
        status=RunStatus.SUCCESS,
        trigger=RunTrigger.SCHEDULE,
        started_at="2026-11-26T11:45:00.000+00:00",
        summary="2/2 ok",
        tasks={
            "model": TaskResult(
                status=TaskStatus.SUCCESS, artifacts=[{"path": "results/a.png", "size": 1, "kept": True}]
            ),
            "report": TaskResult(
                status=TaskStatus.SUCCESS,
                artifacts=[
                    {"path": "out/big report.html", "size": 9, "kept": False, "note": "not kept: ..."},
                    {"path": "out/report.html", "size": 9, "kept": True},
                ],
            ),
        },
    )
    text = build_message(paths, record, "success", "http://vm.example:8083/").as_text()
    assert "report: http://vm.example:8083/demo/nightly/7/artifacts/report/out/report.html" in text
    del record.tasks["report"]
    text = build_message(paths, record, "success", "http://vm.example:8083/").as_text()
    assert "report:" not in text


@pytest.mark.slow
def test_an_up_to_date_task_keeps_its_unchanged_outputs_as_links(tmp_path: Path) -> None:
    yml = """\
persist: [results]
pipelines:
  nightly:
    tasks:
      model:
        run: printf 'PNG-1' > results/plot.png
        outputs: [results/plot.png]
        artifacts: [results/plot.png]
"""
    deploy(tmp_path, yml)
    assert run_flank("run", "demo", "nightly").returncode == 0
    assert run_flank("run", "demo", "nightly").returncode == 0
    second = record(2)["tasks"]["model"]
    assert second["status"] == "up_to_date"
    assert [(a["path"], a["kept"]) for a in second["artifacts"]] == [("results/plot.png", True)]
    assert os.path.samefile(_kept(1, "model") / "results" / "plot.png", _kept(2, "model") / "results" / "plot.png")


@pytest.mark.slow
def test_an_up_to_date_task_whose_files_went_with_the_old_release_points_at_the_run_that_kept_them(
    tmp_path: Path,
) -> None:
    # the plot is written into the release (not a persist: folder), the model into a persisted one:
    # after a push the task is up to date, and its plot is with the run that made it, not missing
    yml = """\
persist: [results]
pipelines:
  nightly:
    tasks:
      model:
        run: printf 'PNG-1' > plot.png && printf m > results/model.rds
        outputs: [results/model.rds]
        artifacts: [plot.png]
"""
    clone = deploy(tmp_path, yml)
    assert run_flank("run", "demo", "nightly").returncode == 0
    push(clone, {"README.md": "notes\n"}, "docs only")
    assert run_flank("run", "demo", "nightly").returncode == 0
    second = record(2)["tasks"]["model"]
    assert second["status"] == "up_to_date"
    assert not second.get("artifact_warnings")
    assert second["artifacts_run"] == 1
    page = (Path(os.environ["FLANK_HOME"]) / "site" / "demo" / "nightly" / "2" / "index.html").read_text()
    assert "no file matched" not in page
    assert re.search(r'up to date: its files are kept with <a href="[^"]*nightly/1/index.html">run #1</a>', page)
