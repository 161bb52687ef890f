"""Task logs for the web: read only the tail, make any bytes safe, render ANSI colours.

A log can be 1 GB, hold NUL bytes, invalid UTF-8, `\\r` progress bars and
terminal escape codes, or an attacker's `<script>`. The page shows the last
lines, escaped, with colours as CSS classes; the raw file is linked beside it.

The task launcher keeps the log's companion file `<task>.log.times` (one entry a line):
    attempt <n> <offset> <unix_ms>                        attempt n begins at byte offset
    end <n> <offset> <unix_ms> <exit_code or -> <status>  attempt n ended
    <offset> <unix_ms>                                    the line at byte offset began then
(line entries at most every 100 ms: a line's time is that of the nearest entry at or
before it). From it the log page gets a section per attempt and each line's elapsed
time; without it (older runs) the page shows the plain tail.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from markupsafe import Markup, escape

from flank_ops.fileio import tail_lines

TAIL_LINES = 2000
# Read at most this much from the end: 2,000 lines of a sane log fit easily, and
# a log of one endless line (no newlines) still costs a bounded read.
TAIL_BYTES = 2 * 1024 * 1024

# CSI sequences (colours, cursor moves, erase-line) and OSC sequences (titles, links).
_ESCAPE_RE = re.compile(r"\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# C0 controls other than tab and newline (a lone ESC included), plus DEL: shown as visible symbols.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


EXCERPT_LINES = 30  # a failed task's lines on the run page
LIVE_LINES = 12  # a running task's lines on the run page
EXCERPT_BYTES = 256 * 1024


class LogTail(NamedTuple):
    html: Markup  # the tail, escaped, with colour spans
    lines_shown: int
    truncated: bool  # True when the file holds more than what is shown
    size: int  # bytes on disk (0 when missing)
    exists: bool
    error: str | None = None  # the error line itself (R's `Error in …`, a traceback's last line), when found


def read_tail_bytes(path: Path, max_lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> tuple[bytes, bool, int]:
    """The last `max_lines` lines of a file, reading at most `max_bytes` from its end: (data, truncated, size)."""
    tail = tail_lines(path, max_lines, max_bytes)
    data = b"\n".join(line for _, line in tail.lines)
    return data + (b"\n" if tail.lines and tail.ends_with_newline else b""), tail.truncated, tail.size


def read_tail_lines(
    path: Path, max_lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES
) -> tuple[list[tuple[int, bytes]], bool, int]:
    """The last lines of a file with the byte offset each starts at: ([(offset, line)], truncated, size)."""
    tail = tail_lines(path, max_lines, max_bytes)
    return tail.lines, tail.truncated, tail.size


def _collapse_carriage_returns(line: str) -> str:
    """A progress bar rewrites its line with `\\r`: keep what a terminal would finally show."""
    if "\r" not in line:
        return line
    line = line.rstrip("\r")
    parts = [p for p in line.split("\r") if p]
    return parts[-1] if parts else ""


def _visible_control(match: re.Match[str]) -> str:
    ch = match.group(0)
    # U+2400 block: NUL -> ␀, BEL -> ␇ ...; DEL -> ␡
    return "\u2421" if ch == "\x7f" else chr(0x2400 + ord(ch))


class _Style(NamedTuple):
    fg: str | None = None
    bg: str | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False

    def classes(self) -> str:
        out = []
        if self.fg:
            out.append(f"fg-{self.fg}")
        if self.bg:
            out.append(f"bg-{self.bg}")
        for flag in ("bold", "dim", "italic", "underline"):
            if getattr(self, flag):
                out.append(f"a-{flag}")
        return " ".join(out)


def _apply_sgr(style: _Style, params: str) -> _Style:
    codes = [int(c) if c.isdigit() else 0 for c in params.split(";")] if params else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            style = _Style()
        elif c == 1:
            style = style._replace(bold=True)
        elif c == 2:
            style = style._replace(dim=True)
        elif c == 3:
            style = style._replace(italic=True)
        elif c == 4:
            style = style._replace(underline=True)
        elif c == 22:
            style = style._replace(bold=False, dim=False)
        elif c == 23:
            style = style._replace(italic=False)
        elif c == 24:
            style = style._replace(underline=False)
        elif 30 <= c <= 37:
            style = style._replace(fg=str(c - 30))
        elif 90 <= c <= 97:
            style = style._replace(fg=str(c - 90 + 8))
        elif c == 39:
            style = style._replace(fg=None)
        elif 40 <= c <= 47:
            style = style._replace(bg=str(c - 40))
        elif 100 <= c <= 107:
            style = style._replace(bg=str(c - 100 + 8))
        elif c == 49:
            style = style._replace(bg=None)
        elif c in (38, 48):
            # 256-colour / true colour: skip its arguments, keep the text plain
            if i + 1 < len(codes) and codes[i + 1] == 5:
                i += 2
            elif i + 1 < len(codes) and codes[i + 1] == 2:
                i += 4
        i += 1
    return style


def ansi_to_html(text: str) -> Markup:
    """Escape `text` and turn SGR colour codes into <span class=...>; drop other escapes."""
    return _ansi_to_html(text, _Style())[0]


def _ansi_to_html(text: str, style: _Style) -> tuple[Markup, _Style]:
    out: list[str] = []
    pos = 0

    def emit(chunk: str) -> None:
        if not chunk:
            return
        chunk = _CONTROL_RE.sub(_visible_control, chunk)
        safe = str(escape(chunk))
        cls = style.classes()
        out.append(f'<span class="{cls}">{safe}</span>' if cls else safe)

    for m in _ESCAPE_RE.finditer(text):
        emit(text[pos : m.start()])
        pos = m.end()
        if m.group(2) == "m":
            style = _apply_sgr(style, m.group(1) or "")
    emit(text[pos:])
    return Markup("".join(out)), style


def render_log_lines(lines: list[bytes]) -> list[Markup]:
    """Each line as safe HTML; a colour set on one line carries on to the next, as in a terminal."""
    out = []
    style = _Style()
    for data in lines:
        text = _collapse_carriage_returns(data.decode("utf-8", errors="backslashreplace"))
        html, style = _ansi_to_html(text, style)
        out.append(html)
    return out


def render_log_text(data: bytes) -> Markup:
    """Bytes of a log -> safe HTML: invalid UTF-8 shown as \\xNN, controls as symbols."""
    text = data.decode("utf-8", errors="backslashreplace")
    if text.endswith("\n"):
        text = text[:-1]
    lines = [_collapse_carriage_returns(line) for line in text.split("\n")]
    return ansi_to_html("\n".join(lines))


def log_tail(path: Path, max_lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> LogTail:
    try:
        data, truncated, size = read_tail_bytes(path, max_lines, max_bytes)
    except FileNotFoundError:
        return LogTail(Markup(""), 0, False, 0, False)
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    return LogTail(render_log_text(data), lines, truncated, size, True)


# --- attempts and line times (the launcher's <task>.log.times) ---------------


def times_path(log_file: Path) -> Path:
    return log_file.with_name(log_file.name + ".times")


class AttemptMark(NamedTuple):
    number: int
    offset: int
    started_ms: int
    ended_ms: int | None = None
    exit_code: int | None = None
    status: str | None = None


class LogTimes(NamedTuple):
    attempts: list[AttemptMark]  # in the order they began
    marks: list[tuple[int, int]]  # (offset, unix_ms), ascending offsets


def read_times(path: Path) -> LogTimes | None:
    """The companion file, or None when there is none. Damaged entries are skipped."""
    try:
        text = path.read_bytes().decode("ascii", errors="replace")
    except OSError:
        return None
    attempts: dict[int, AttemptMark] = {}
    marks: list[tuple[int, int]] = []
    for line in text.splitlines():
        f = line.split()
        try:
            if len(f) == 4 and f[0] == "attempt":
                n, off, ms = int(f[1]), int(f[2]), int(f[3])
                attempts[n] = AttemptMark(n, off, ms)
                marks.append((off, ms))
            elif len(f) >= 5 and f[0] == "end":
                n, ms = int(f[1]), int(f[3])
                code = None if f[4] == "-" else int(f[4])
                if n in attempts:
                    attempts[n] = attempts[n]._replace(ended_ms=ms, exit_code=code, status=f[5] if len(f) > 5 else None)
            elif len(f) == 2:
                marks.append((int(f[0]), int(f[1])))
        except ValueError:
            continue
    marks.sort()
    return LogTimes(sorted(attempts.values(), key=lambda a: (a.offset, a.number)), marks)


class LogLine(NamedTuple):
    elapsed: str | None  # since its attempt began, e.g. "12s"; None without times
    html: Markup


class AttemptView(NamedTuple):
    number: int | None  # None: output before the first attempt began (or no times at all)
    started_at: datetime | None
    exit_code: int | None
    status: str | None
    duration_s: float | None
    lines: list[LogLine]
    cut: bool  # its first lines are older than the tail shown


class LogView(NamedTuple):
    tail: LogTail  # size, truncation, and the plain tail (shown when there are no times)
    attempts: list[AttemptView]  # empty when the companion file is missing


def _time_at(marks: list[tuple[int, int]], offset: int) -> int | None:
    """The time of the nearest entry at or before `offset`."""
    import bisect

    i = bisect.bisect_right(marks, (offset, float("inf"))) - 1
    return marks[i][1] if i >= 0 else None


def log_view(path: Path, max_lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> LogView:
    """The tail of a log split into its attempts, each line with its elapsed time (when the times exist)."""
    from flank_ops.humanize import duration

    tail = log_tail(path, max_lines, max_bytes)
    times = read_times(times_path(path)) if tail.exists else None
    if times is None or not times.attempts:
        return LogView(tail, [])
    lines, _, _ = read_tail_lines(path, max_lines, max_bytes)
    rendered = render_log_lines([data for _, data in lines])
    first_shown = lines[0][0] if lines else tail.size
    views: list[AttemptView] = []
    groups: list[tuple[AttemptMark | None, list[LogLine]]] = []
    i = 0
    bounds = [a.offset for a in times.attempts[1:]] + [float("inf")]
    if lines and lines[0][0] < times.attempts[0].offset:
        pre = []
        while i < len(lines) and lines[i][0] < times.attempts[0].offset:
            pre.append(LogLine(None, rendered[i]))
            i += 1
        groups.append((None, pre))
    attempt: AttemptMark | None
    for attempt, bound in zip(times.attempts, bounds):
        group = []
        while i < len(lines) and lines[i][0] < bound:
            ms = _time_at(times.marks, lines[i][0])
            elapsed = duration(max(0, ms - attempt.started_ms) / 1000) if ms is not None else None
            group.append(LogLine(elapsed, rendered[i]))
            i += 1
        groups.append((attempt, group))
    for attempt, group in groups:
        if attempt is None:
            views.append(AttemptView(None, None, None, None, None, group, first_shown > 0))
            continue
        took = (attempt.ended_ms - attempt.started_ms) / 1000 if attempt.ended_ms is not None else None
        started = datetime.fromtimestamp(attempt.started_ms / 1000, UTC)
        views.append(
            AttemptView(
                attempt.number, started, attempt.exit_code, attempt.status, took, group, first_shown > attempt.offset
            )
        )
    return LogView(tail, views)


def log_excerpt(path: Path, max_lines: int = EXCERPT_LINES) -> LogTail:
    """A task's last lines for the run page (of its last attempt, when the times say where it began),
    with the error line found in them."""
    tail = log_tail(path, max_lines, EXCERPT_BYTES)
    if not tail.exists:
        return tail
    times = read_times(times_path(path))
    lines, truncated, size = read_tail_lines(path, max_lines, EXCERPT_BYTES)
    if times is not None and times.attempts:
        start = times.attempts[-1].offset
        kept = [data for off, data in lines if off >= start]
    else:
        kept = [data for _, data in lines]
    error = error_line(kept)
    if len(kept) == len(lines):
        return tail._replace(error=error)
    data = b"\n".join(kept)
    return LogTail(render_log_text(data), len(kept), truncated, size, True, error)


# R: `Error in f(x) : message` (the message on the next, indented line when the call is long) or
# `Error: message`; Python: a traceback's last unindented line (`KeyError: "['x'] not in index"`).
_R_ERROR = re.compile(r"^Error(?: in .*?)?\s*:\s*(.*)$")
_TRACEBACK = "Traceback (most recent call last):"
ERROR_LINE_MAX = 300


def _plain(data: bytes) -> str:
    text = _collapse_carriage_returns(data.decode("utf-8", errors="replace"))
    return _CONTROL_RE.sub("", _ESCAPE_RE.sub("", text)).rstrip()


def error_line(lines: list[bytes]) -> str | None:
    """The line that says why a task failed, from its last lines: the newer of R's last `Error…`
    line and a Python traceback's exception line; None when neither is there."""
    text = [_plain(line) for line in lines]
    found: tuple[int, str] | None = None
    for i, line in enumerate(text):
        match = _R_ERROR.match(line)
        if match:
            message = line
            if not match[1] and i + 1 < len(text) and text[i + 1][:1].isspace():
                message = f"{line.rstrip()} {text[i + 1].strip()}"  # R put the message on the next line
            found = (i, message)
        elif line.startswith(_TRACEBACK):
            for j in range(i + 1, len(text)):
                if text[j] and not text[j][:1].isspace():
                    found = (j, text[j])
                    break
    if found is None:
        return None
    message = " ".join(found[1].split())
    return message if len(message) <= ERROR_LINE_MAX else message[: ERROR_LINE_MAX - 1] + "…"
