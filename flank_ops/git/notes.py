"""Run summaries as git notes on refs/notes/flank in the project's bare repo.

One line per run is appended to the note of the run's commit:

    flank nightly #17 failed 2026-11-24 02:00 (14m32s) — 3/4 ok; model failed (exit 1, 3 attempts) — URL

The runner writes the notes ref directly in the bare repo (hooks do not see it;
clients are refused pushes to it by pre-receive). `git notes append` reads the
old note, then moves the ref: two writers at once would lose a line or fail on
the ref lock, so every write holds the project's notes flock.
"""
from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from flank_ops.fileio import locked
from flank_ops.git.gitcmd import run_git
from flank_ops.humanize import duration
from flank_ops.paths import ProjectPaths

NOTES_REF = "refs/notes/flank"


def _local_time(iso: str | None, timezone: str | None) -> str:
    if not iso:
        return "?"
    when = datetime.fromisoformat(iso)
    tz = None
    if timezone:
        from zoneinfo import ZoneInfo

        try:
            tz = ZoneInfo(timezone)
        except (KeyError, ValueError, OSError):
            tz = None
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def run_url(base_url: str, record: dict[str, Any]) -> str:
    base = base_url if base_url.endswith("/") else base_url + "/"
    return f"{base}{record['project']}/{record['pipeline']}/{record['run_id']}/"


def note_line(record: dict[str, Any], base_url: str, timezone: str | None = None) -> str:
    """The spec's one-line summary of a finished run (not yet masked)."""
    parts = [
        f"flank {record['pipeline']} #{record['run_id']} {record['status']}",
        _local_time(record.get("started_at"), timezone),
        f"({duration(record.get('duration_s'))})",
    ]
    line = " ".join(parts)
    if record.get("summary"):
        line += f" — {record['summary']}"
    return f"{line} — {run_url(base_url, record)}"


def append_note(paths: ProjectPaths, sha: str, line: str) -> None:
    """Append `line` to the note of commit `sha` on refs/notes/flank, serialized across processes."""
    # Notes are commits: give them an identity, the VM's git may have none configured.
    who = {
        "GIT_AUTHOR_NAME": "flank", "GIT_AUTHOR_EMAIL": f"flank@{socket.gethostname()}",
        "GIT_COMMITTER_NAME": "flank", "GIT_COMMITTER_EMAIL": f"flank@{socket.gethostname()}",
    }
    with locked(paths.lock_file("notes")):
        run_git(["notes", f"--ref={NOTES_REF}", "append", "-m", line, sha], git_dir=Path(paths.bare_repo), env=who)


def read_note(paths: ProjectPaths, sha: str) -> str:
    """The note text of `sha` ('' when there is none)."""
    proc = run_git(["notes", f"--ref={NOTES_REF}", "show", sha], git_dir=Path(paths.bare_repo), check=False)
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else ""
