"""flank watch (issue 12): real file saves in a working copy re-run what they affect; Ctrl-C stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT, process_gone, wait_for

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
        for n, text in enumerate(("e\n", "f\n"), 1):
            with open(repo / "data" / "raw.txt", "a") as f:
                f.write(text)
            wait_for(
                lambda n=n: out_file.read_text().count("(runs when the current run ends)") >= n, f"save {n} queued"
            )
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
