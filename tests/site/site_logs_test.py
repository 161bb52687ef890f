"""flank_ops/site/logs.py: what a log page shows for hostile, binary, coloured and huge logs."""

from __future__ import annotations

from pathlib import Path

from flank_ops.site.logs import TAIL_LINES, ansi_to_html, log_tail, render_log_text


def test_html_in_a_log_is_escaped() -> None:
    html = render_log_text(b"<script>document.title='pwned'</script> & <img src=x onerror=alert(1)>\n")
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&amp;" in html


def test_ansi_colours_become_spans_and_other_escapes_vanish() -> None:
    html = ansi_to_html("\x1b[1;31mERROR\x1b[0m plain \x1b[2K\x1b[1Aup \x1b]0;title\x07\x1b[38;5;208morange\x1b[m")
    assert '<span class="fg-1 a-bold">ERROR</span>' in html
    assert " plain up " in html
    assert "\x1b" not in html and "title" not in html
    assert "orange" in html


def test_carriage_return_progress_bars_collapse_to_their_last_state() -> None:
    html = render_log_text(b"downloading  10%\rdownloading  50%\rdownloading 100%\r\nnext line\r\n")
    assert html == "downloading 100%\nnext line"


def test_nul_controls_and_invalid_utf8_are_shown_not_crashing() -> None:
    html = render_log_text(b"a\x00b \x07 \xff\xfe caf\xc3\xa9 \x1b\n")
    assert "a\u2400b" in html  # ␀
    assert "\u2407" in html  # ␇
    assert "\\xff\\xfe" in html
    assert "café" in html
    assert "\u241b" in html  # a lone ESC is shown as ␛


def test_tail_of_a_1gb_log_reads_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "huge.log"
    with open(log, "wb") as f:
        f.truncate(1024**3)  # sparse: 1 GB of NULs costs no disk
        f.seek(0, 2)
        f.write(b"".join(f"line {i}\n".encode() for i in range(5000)))
    tail = log_tail(log)
    assert tail.exists and tail.truncated
    assert tail.size > 1024**3
    assert tail.lines_shown == TAIL_LINES
    assert tail.html.rstrip().endswith("line 4999")
    assert "line 2999" not in tail.html and "line 3000" in tail.html


def test_one_endless_line_is_cut_not_read_whole(tmp_path: Path) -> None:
    log = tmp_path / "oneline.log"
    log.write_bytes(b"x" * (5 * 1024 * 1024))
    tail = log_tail(log)
    assert tail.truncated and len(tail.html) <= 2 * 1024 * 1024


def test_missing_and_empty_logs(tmp_path: Path) -> None:
    assert not log_tail(tmp_path / "nope.log").exists
    (tmp_path / "empty.log").write_bytes(b"")
    empty = log_tail(tmp_path / "empty.log")
    assert empty.exists and empty.lines_shown == 0 and not empty.truncated


def test_the_error_line_of_r_and_python_failures() -> None:
    """issue 28 item 5: the line lifted into a failed task's box heading."""
    from flank_ops.site.logs import error_line

    def lines(text: str) -> list[bytes]:
        return text.encode().splitlines()

    assert error_line(lines("reading\nError: object 'x' not found\nExecution halted\n")) == (
        "Error: object 'x' not found"
    )
    assert error_line(lines("Error in f(x) : boom\nCalls: f\nExecution halted\n")) == "Error in f(x) : boom"
    # R put the message on the next line; colours are dropped
    assert error_line(lines("\x1b[31mError in glm(y ~ x) : \x1b[0m\n  bad formula\n")) == (
        "Error in glm(y ~ x) : bad formula"
    )
    chained = (
        'Traceback (most recent call last):\n  File "a.py", line 1, in <module>\n'
        "KeyError: 'a'\n\nDuring handling of the above exception, another exception occurred:\n\n"
        'Traceback (most recent call last):\n  File "a.py", line 3, in <module>\n'
        "    raise ValueError('bad input')\nValueError: bad input\n"
    )
    assert error_line(lines(chained)) == "ValueError: bad input"
    assert error_line(lines("all fine\nexit 1\n")) is None
    assert len(error_line(lines("Error: " + "x" * 1000)) or "") == 300
