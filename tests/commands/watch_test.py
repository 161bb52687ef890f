"""flank watch (issue 12): real file saves in a working copy re-run what they affect; Ctrl-C stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, process_gone, wait_for

pytestmark = pytest.mark.slow

FLANK_YML = """\
pipelines:
  ci:
    tasks:
      clean:
        run: sort -u data/raw.txt -o data/clean.txt
        inputs: [data/raw.txt]
        outputs: [data/clean.txt]
      count:
        run: wc -l data/clean.txt > data/count.txt
        needs: [clean]
        outputs: [data/count.txt]
      slow: sh slow.sh
"""
# waits (bounded) until the test creates .flank/gate; .flank/ is never watched
SLOW = "echo $$ > .flank/slow.pid; for i in $(seq 600); do [ -e .flank/gate ] && exit 0; sleep 0.1; done; exit 9\n"


def record(repo: Path, run_id: int) -> dict:
    return json.loads((repo / ".flank" / "runs" / "ci" / str(run_id) / "run.json").read_text())


def test_watch_reruns_on_save_validates_flank_yml_queues_one_run_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    (repo / "data").mkdir(parents=True)
    (repo / ".flank").mkdir()
    (repo / ".flank" / "gate").write_text("")
    (repo / "data" / "raw.txt").write_text("b\na\n")
    (repo / "flank.yml").write_text(FLANK_YML)
    (repo / "slow.sh").write_text(SLOW)
    out_file = tmp_path / "watch.out"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(out_file, "wb") as out:
        watch = subprocess.Popen(
            [sys.executable, "-m", "flank_ops", "watch"],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def said(text: str) -> bool:
            return text in out_file.read_text()

        wait_for(lambda: said("ci #1 success"), "the first run")
        assert said(f"site: {repo}/.flank/site/index.html")

        (repo / "data" / "raw.txt").write_text("b\na\nc\n")  # a real save
        wait_for(lambda: said("ci #2 success"), "a run after the save")
        assert "changed: data/raw.txt" in out_file.read_text()
        assert record(repo, 2)["tasks"]["clean"]["reason"] == "ran: data/raw.txt changed"
        assert record(repo, 2)["tasks"]["count"]["reason"] == "ran: upstream clean changed data/clean.txt"

        # a broken flank.yml: said with line and column, nothing run; fixed: runs (all up to date)
        (repo / "flank.yml").write_text(FLANK_YML.replace("needs: [clean]", "needs: [clean]\n        bogus: 1"))
        wait_for(lambda: said("not run; fix flank.yml"), "the validation error")
        assert "flank.yml:11:9: unknown key 'bogus'" in out_file.read_text()
        assert not said("ci #3 started")
        (repo / "flank.yml").write_text(FLANK_YML)
        wait_for(lambda: said("ci #3 success"), "a run after the fix")
        assert {n: t["status"] for n, t in record(repo, 3)["tasks"].items()} == {
            "clean": "up_to_date",
            "count": "up_to_date",
            "slow": "success",
        }

        # saves during a run queue exactly one more run
        (repo / ".flank" / "gate").unlink()
        (repo / "data" / "raw.txt").write_text("b\na\nc\nd\n")
        clean_4 = repo / ".flank" / "runs" / "ci" / "4" / "tasks" / "clean.json"
        wait_for(
            lambda: (
                (repo / ".flank" / "slow.pid").exists()
                and clean_4.exists()
                and json.loads(clean_4.read_text())["status"] == "success"
            ),
            "run 4 waiting for its slow task",
        )
        # (counted from here: whether an earlier save came while the last run's process was still
        # exiting, and so said it waits, depends on timing)
        before = len(out_file.read_text())
        for n, text in enumerate(("e\n", "f\n"), 1):
            with open(repo / "data" / "raw.txt", "a") as f:
                f.write(text)
            wait_for(lambda n=n: out_file.read_text()[before:].count("flank: changed:") >= n, f"save {n} seen")
        assert out_file.read_text()[before:].count("(runs when the current run ends)") == 1
        (repo / ".flank" / "gate").write_text("")
        wait_for(lambda: said("ci #5 success"), "the one queued run")
        wait_for(
            lambda: out_file.read_text().split("ci #5 success")[1].count("flank: watching") == 1, "the watch idle again"
        )
        assert out_file.read_text().count(" started (") == 5
        assert record(repo, 5)["tasks"]["clean"]["status"] == "success"

        # Ctrl-C during a run: the watch, the run and its task all end; the run is recorded interrupted
        (repo / ".flank" / "gate").unlink()
        (repo / ".flank" / "slow.pid").unlink()
        (repo / "data" / "raw.txt").write_text("z\n")
        wait_for(
            lambda: (repo / ".flank" / "slow.pid").exists() and (repo / ".flank" / "slow.pid").read_text(),
            "run 6's slow task",
        )
        task_pid = int((repo / ".flank" / "slow.pid").read_text())
        watch.send_signal(signal.SIGINT)
        assert watch.wait(60) == 0
        assert process_gone(task_pid)
        assert said("stopping the watch")
        assert record(repo, 6)["status"] == "interrupted"
        assert record(repo, 6)["tasks"]["slow"]["status"] == "interrupted"
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()


KNITR_FLANK_YML = """\
persist: [data]
pipelines:
  report:
    tasks:
      clean:
        run: python3 clean.py
        inputs: [data/raw.csv]
        outputs: [results/clean.csv]
        artifacts: [logs/clean.txt]
      render:
        run: sh render.sh report.Rmd
        needs: [clean]
        outputs: [report.html]
"""
# what an R analysis writes besides its outputs: a log kept as an artifact, a state file in a persisted
# folder (beside the tracked data/raw.csv the user edits), a scratch folder .gitignore ignores, RStudio's state
CLEAN_PY = """\
import os
for d in ("results", "logs", "scratch", ".Rproj.user"):
    os.makedirs(d, exist_ok=True)
rows = sorted(set(open("data/raw.csv").read().split()))
open("results/clean.csv", "w").write("\\n".join(rows) + "\\n")
open("logs/clean.txt", "w").write(f"{len(rows)} rows\\n")
open("data/state.txt", "w").write("seen\\n")
open("scratch/tmp.txt", "w").write("x\\n")
open(".Rproj.user/state", "w").write("x\\n")
"""
# rmarkdown::render as the file system sees it: report.knit.md and report_files/ while it knits,
# a sed -i (its sedXXXXXX temp file), an editor's backup, then report.html and the scratch removed
RENDER_SH = """\
mkdir -p report_files/figure-html
echo png > report_files/figure-html/p1.png
cat "$1" results/clean.csv > report.knit.md
sed -i 's/title/Title/' report.knit.md
cp report.knit.md report.knit.md~
cp report.knit.md report.html
rm -rf report.knit.md report.knit.md~ report_files
"""


def test_watch_on_a_knitr_project_gives_exactly_one_run_per_save(tmp_path: Path) -> None:
    """issue 19 bug 4: what a run writes (outputs, artifacts, persisted and ignored folders, knitr's,
    sed's and editors' temporary files) never counts as a save; uncommitted edits are labelled so."""
    from helpers.repos import git, make_repo

    repo = make_repo(
        tmp_path / "proj",
        {
            "flank.yml": KNITR_FLANK_YML,
            "clean.py": CLEAN_PY,
            "render.sh": RENDER_SH,
            "report.Rmd": "# title\n",
            "data/raw.csv": "b\na\n",
            "notes.md": "notes\n",
            ".gitignore": "scratch/\n.flank/\n",
        },
    )
    sha = git("rev-parse", "--short=7", "HEAD", cwd=repo).stdout.strip()
    out_file = tmp_path / "watch.out"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(out_file, "wb") as out:
        watch = subprocess.Popen(
            [sys.executable, "-m", "flank_ops", "watch"],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def text() -> str:
            return out_file.read_text()

        def ran(n: int) -> None:
            """Run n ended and the watch is idle again."""
            wait_for(lambda: f"report #{n} success" in text(), f"run {n}")
            wait_for(lambda: "flank: watching (site" in text().split(f"report #{n} success")[1], f"idle after {n}")

        ran(1)
        assert f"report #1 started (2 tasks, commit {sha})" in text()
        (repo / "data" / "raw.csv").write_text("b\na\nc\n")
        ran(2)
        assert f"report #2 started (2 tasks, {sha} + changes)" in text()
        assert json.loads((repo / ".flank/runs/report/2/run.json").read_text())["commit"]["short"] == f"{sha} + changes"
        (repo / "report.Rmd").write_text("# title two\n")
        ran(3)
        # a last save: had a run's own writes counted, they would be listed before this one
        (repo / "notes.md").write_text("more notes\n")
        ran(4)
        changed = [line for line in text().splitlines() if line.startswith("flank: changed:")]
        assert changed == ["flank: changed: data/raw.csv", "flank: changed: report.Rmd", "flank: changed: notes.md"]
        assert text().count(" started (") == 4
        assert (repo / "report.html").read_text().startswith("# Title two")
    finally:
        watch.send_signal(signal.SIGINT)
        try:
            watch.wait(60)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
