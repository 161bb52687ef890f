"""run.json and history.jsonl as the current release writes them: read, rewritten unchanged.

tests/store/fixtures/release_f82f4d3/ holds run folders written by flank at commit f82f4d3 (before
the typed record): a failed full run with retries and a timeout, a partial `--task` run, a
`--rerun`, a run killed mid-task and marked interrupted by `flank status`, and a trigger skipped
by `overlap: skip`, with the launchers' tasks/<task>.json files beside them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from flank_ops.paths import Home
from flank_ops.store import records
from flank_ops.store.model import RunStatus, TaskStatus, history_entry

FIXTURES = Path(__file__).parent / "fixtures" / "release_f82f4d3"
RUN_FILES = sorted(FIXTURES.glob("*/*/run.json"))
LAUNCHERS_DIR = Path(__file__).resolve().parents[2] / "flank_ops" / "task"


@pytest.mark.parametrize("path", RUN_FILES, ids=lambda p: f"{p.parent.parent.name}-{p.parent.name}")
def test_a_record_of_the_current_release_is_read_and_written_back_unchanged(path: Path, tmp_path: Path) -> None:
    record = records.read_record(path.parent)
    assert record.status in RunStatus and all(t.status in TaskStatus for t in record.tasks.values())
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    records.write_record(run_dir, record)
    assert records.record_path(run_dir).read_text() == path.read_text()


def test_history_lines_of_the_current_release_are_what_its_records_give(flank_home: Path) -> None:
    paths = Home().project("demo")
    for pipeline_dir in FIXTURES.iterdir():
        shutil.copytree(pipeline_dir, paths.runs_dir(pipeline_dir.name))
        lines = [json.loads(line) for line in (pipeline_dir / records.HISTORY_FILE).read_text().splitlines()]
        assert list(records.read_history(paths, pipeline_dir.name)) == lines
        for line in lines:
            entry = history_entry(records.read_record(paths.run_dir(pipeline_dir.name, line["run_id"])))
            rerun_of = entry.pop("rerun_of", None)  # added since (issue 19): which run a --rerun completes
            assert entry == line
            assert rerun_of == records.read_record(paths.run_dir(pipeline_dir.name, line["run_id"])).selection.rerun_of
    assert records.last_run_id(paths, "nightly") == 3
    full = records.last_full_run(paths, "nightly", before=3)
    assert full is not None and (full["run_id"], full["status"]) == (1, "failed")
    assert (
        records.reconcile(paths, "nightly", on_interrupted=None) == []
        and records.reconcile(paths, "hold", on_interrupted=None) == []
    )


def test_a_launchers_result_of_the_current_release_merges_into_its_record() -> None:
    run_dir = FIXTURES / "nightly" / "1"
    record = records.read_record(run_dir)
    for task in record.tasks.values():
        task.status = TaskStatus.PENDING
    merged = records.merge_task_results(run_dir, record)
    assert merged == ["extract", "transform", "side", "slow"]
    assert record.tasks["slow"].status == TaskStatus.TIMED_OUT and record.tasks["slow"].extra == {"signal": 15}
    assert record.tasks["transform"].to_json() == {
        **json.loads(records.record_path(run_dir).read_text())["tasks"]["transform"]
    }


def _launcher_statuses(source: str) -> set[str]:
    """Every status string a launcher's source writes into tasks/<task>.json."""
    found = set(re.findall(r'\\?"status\\?": \\?"(\w+)\\?"', source))
    for line in source.splitlines():
        if re.search(r"\bstatus\s*=", line):
            found |= set(re.findall(r'"(\w+)"', line))
    return found


@pytest.mark.parametrize("launcher", ["task_exec.c", "task_exec.py"])
def test_the_launchers_status_strings_are_task_statuses(launcher: str) -> None:
    statuses = _launcher_statuses((LAUNCHERS_DIR / launcher).read_text())
    assert {"running", "success", "failed", "timed_out"} <= statuses  # the parse found them
    assert statuses <= {s.value for s in TaskStatus}, statuses - {s.value for s in TaskStatus}
