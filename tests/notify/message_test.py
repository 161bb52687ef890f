"""The notification text: log tails read from the end of big logs, cleaned and masked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from flank_ops.notify.message import log_tail


def test_tail_of_a_big_log_reads_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "model.log"
    with open(log, "w") as f:
        for i in range(200_000):  # ~2.5 MB
            f.write(f"iteration {i}\n")
    assert log_tail(log) == [f"iteration {i}" for i in range(199_980, 200_000)]


def test_tail_removes_ansi_colours_and_cuts_long_lines(tmp_path: Path) -> None:
    log = tmp_path / "t.log"
    log.write_bytes(b"\x1b[1;31mError\x1b[0m in glm()\n" + b"y" * 1000 + b"\n\xff bad utf-8\n")
    lines = log_tail(log)
    assert lines[0] == "Error in glm()"
    assert lines[1] == "y" * 300 + "…"
    assert lines[2] == "\ufffd bad utf-8"


def test_missing_log_has_no_tail(tmp_path: Path) -> None:
    assert log_tail(tmp_path / "nope.log") == []


def test_the_start_time_is_in_the_pipelines_zone_and_names_it(tmp_path: Path, monkeypatch) -> None:
    """A scheduled 12:45 Copenhagen run: the message says 12:45 CET, as its note and page do."""
    from flank_ops.notify.message import build_message
    from flank_ops.paths import ProjectPaths

    paths = ProjectPaths.for_local(tmp_path)
    from flank_ops.store.model import RunRecord, RunStatus, RunTrigger

    record = RunRecord(
        project="demo",
        pipeline="nightly",
        run_id=7,
        status=RunStatus.FAILED,
        trigger=RunTrigger.SCHEDULE,
        started_at="2026-11-26T11:45:00.000+00:00",
        duration_s=872.4,
        timezone="Europe/Copenhagen",
        summary="0/1 ok",
    )
    text = build_message(paths, record, "failure", "http://vm.example:8083/").as_text()
    assert "trigger: schedule, started Thu 26 Nov 2026 12:45 CET, took 14m32s" in text
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")  # no timezone: in the VM's zone, named
    time.tzset()
    try:
        no_zone = dataclasses.replace(record, timezone=None)
        assert "started Thu 26 Nov 2026 20:45 JST" in build_message(paths, no_zone, "failure", "").as_text()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_notification_names_the_parameters_not_at_their_default(tmp_path: Path) -> None:
    """issue 23: 'parameters: n=7' — the defaults are not repeated."""
    from flank_ops.notify.message import build_message
    from flank_ops.paths import ProjectPaths
    from flank_ops.store.model import RunRecord, RunStatus

    paths = ProjectPaths.for_local(tmp_path)
    record = RunRecord(
        "demo", "nightly", 7, status=RunStatus.FAILED, params={"n": 7, "dry": False}, non_default_params=["n"]
    )
    text = build_message(paths, record, "failure", "http://vm.example:8083/").as_text()
    assert "parameters: n=7\n" in text and "dry" not in text
    record = RunRecord("demo", "nightly", 7, status=RunStatus.FAILED, params={"n": 3}, non_default_params=[])
    assert "parameters" not in build_message(paths, record, "failure", "http://vm.example:8083/").as_text()
