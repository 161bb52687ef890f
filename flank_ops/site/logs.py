"""Task logs for the web: read only the tail, make any bytes safe, render ANSI colours.

A log can be 1 GB, hold NUL bytes, invalid UTF-8, `\\r` progress bars and
terminal escape codes, or an attacker's `<script>`. The page shows the last
lines, escaped, with colours as CSS classes; the raw file is linked beside it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from markupsafe import Markup, escape

TAIL_LINES = 2000
# Read at most this much from the end: 2,000 lines of a sane log fit easily, and
# a log of one endless line (no newlines) still costs a bounded read.
TAIL_BYTES = 2 * 1024 * 1024

# CSI sequences (colours, cursor moves, erase-line) and OSC sequences (titles, links).
_ESCAPE_RE = re.compile(r"\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# C0 controls other than tab and newline (a lone ESC included), plus DEL: shown as visible symbols.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class LogTail(NamedTuple):
    html: Markup  # the tail, escaped, with colour spans
    lines_shown: int
    truncated: bool  # True when the file holds more than what is shown
    size: int  # bytes on disk (0 when missing)
    exists: bool


def read_tail_bytes(path: Path, max_lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> tuple[bytes, bool, int]:
    """The last `max_lines` lines of a file, reading at most `max_bytes` from its end.

    Returns (data, truncated, size). Never reads the whole file.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start = max(0, size - max_bytes)
        f.seek(start)
        data = f.read(max_bytes)
    if not data:
        return b"", False, size
    truncated = start > 0
    if truncated:
        # drop the partial first line (unless the read is one giant line)
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            data = data[cut + 1:]
    lines = data.split(b"\n")
    trailing_newline = bool(lines) and lines[-1] == b""
    if trailing_newline:
        lines.pop()
    if len(lines) > max_lines:
        lines = lines[-max_lines:]
        truncated = True
    return b"\n".join(lines) + (b"\n" if trailing_newline else b""), truncated, size


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
    out: list[str] = []
    style = _Style()
    pos = 0

    def emit(chunk: str) -> None:
        if not chunk:
            return
        chunk = _CONTROL_RE.sub(_visible_control, chunk)
        safe = str(escape(chunk))
        cls = style.classes()
        out.append(f'<span class="{cls}">{safe}</span>' if cls else safe)

    for m in _ESCAPE_RE.finditer(text):
        emit(text[pos:m.start()])
        pos = m.end()
        if m.group(2) == "m":
            style = _apply_sgr(style, m.group(1) or "")
    emit(text[pos:])
    return Markup("".join(out))


def render_log_text(data: bytes) -> Markup:
    """Bytes of a log -> safe HTML: invalid UTF-8 shown as \\xNN, controls as symbols."""
    text = data.decode("utf-8", errors="backslashreplace")
    if text.endswith("\n"):
        text = text[:-1]
    lines = [_collapse_carriage_returns(line) for line in text.split("\n")]
    return ansi_to_html("\n".join(lines))


def log_tail(path: Path, max_lines: int = TAIL_LINES) -> LogTail:
    try:
        data, truncated, size = read_tail_bytes(path, max_lines)
    except FileNotFoundError:
        return LogTail(Markup(""), 0, False, 0, False)
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    return LogTail(render_log_text(data), lines, truncated, size, True)
