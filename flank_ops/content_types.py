"""The Content-Type of a file of the site or a run, the same whether `flank serve` sends it or S3 does.

Our own table first: mimetypes' answers vary between machines. Text gets charset=utf-8; a .jsonl is
shown as text (a browser would download application/x-ndjson); a compressed file (a big log's .txt.gz
copy) is application/gzip, never its inner type, which would show it as garbled text.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

CONTENT_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".json": "application/json",
    ".jsonl": "text/plain",
    ".log": "text/plain",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".svg": "image/svg+xml",
    ".xml": "application/xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".gz": "application/gzip",
}
UNKNOWN = "application/octet-stream"
TEXTUAL = ("application/json", "image/svg+xml", "application/xml", "text/javascript")


def content_type(path: Path | str) -> str:
    """Content-Type for a file by its name; text gets charset=utf-8."""
    ext = os.path.splitext(str(path))[1].lower()
    kind = CONTENT_TYPES.get(ext)
    if kind is None:
        guessed, encoding = mimetypes.guess_type(str(path))
        kind = guessed if guessed and not encoding else UNKNOWN
    if kind.startswith("text/") or kind in TEXTUAL:
        kind += "; charset=utf-8"
    return kind
