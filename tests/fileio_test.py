"""fileio.tail_lines: a file's last lines read from its end, the same as reading it all would give."""

from __future__ import annotations

from pathlib import Path

import pytest

from flank_ops.fileio import tail_lines


def _whole_file_answer(data: bytes, max_lines: int, max_bytes: int | None) -> list[tuple[int, bytes]]:
    """What reading the whole file gives: its lines with offsets, those within the last max_bytes
    (the window's first line left out as possibly cut, unless it is all there is), the last max_lines."""
    lines, pos = [], 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        lines.append((pos, data[pos:end]))
        pos = end + 1
    if max_bytes is not None and len(data) > max_bytes:
        floor = len(data) - max_bytes
        whole = [(o, line) for o, line in lines if o > floor]
        lines = whole or [(floor, data[floor:].rstrip(b"\n"))]
    return lines[len(lines) - max_lines :] if len(lines) > max_lines else lines


@pytest.mark.parametrize("block", [1, 3, 64 * 1024])
def test_the_last_lines_are_those_the_whole_file_has(tmp_path: Path, block: int) -> None:
    path = tmp_path / "task.log"
    for data in (b"", b"one\n", b"no newline at the end", b"a\n\nb\n", b"x" * 50 + b"\n" + b"y\n" * 30 + b"tail"):
        path.write_bytes(data)
        for max_lines in (1, 2, 5, 100):
            for max_bytes in (None, 7, 40, 1000):
                tail = tail_lines(path, max_lines, max_bytes, block=block)
                expected = _whole_file_answer(data, max_lines, max_bytes)
                assert tail.lines == expected, (data, max_lines, max_bytes)
                assert tail.size == len(data)
                assert tail.truncated == (bool(expected) and expected[0][0] > 0)
                assert all(data[o : o + len(line)] == line for o, line in tail.lines)


def test_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        tail_lines(tmp_path / "absent.log", 10)
