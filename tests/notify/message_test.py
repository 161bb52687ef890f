"""The notification text: log tails read from the end of big logs, cleaned and masked."""
from __future__ import annotations

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
