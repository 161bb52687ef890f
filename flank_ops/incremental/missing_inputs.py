"""Saying why a task's input is missing when it was written inside a release (issue 11 item 5).

A file a task writes outside the `persist:` folders lands in the release folder, and the next
deploy makes a new release without it: a later run (a `--rerun` after a fix push, typically)
fails with "'data/03_dat_aug.csv' does not exist". When a failed task's log names a path that
is missing from this release but present in an earlier one, the log gets
one line saying so and naming `persist:` as the fix (the run page shows the log's last lines).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from flank_ops.config.model import Pipeline
from flank_ops.fileio import tail_lines
from flank_ops.store import records
from flank_ops.store.model import RunRecord, TaskStatus

TAIL_BYTES = 16 * 1024
MAX_CANDIDATES = 50
# 'data/x.csv' / "data/x.csv" / ‘data/x.csv’, and `cat: data/x.csv: No such file or directory`
_QUOTED = re.compile(r"""['"\u2018\u201c]([^'"\u2019\u201d\n\r]{1,300})['"\u2019\u201d]""")
_COLON = re.compile(r"([^\s:'\"]{1,300}): No such file or directory")


def explain(
    run_dir: Path, record: RunRecord, pipeline: Pipeline, release_dir: Path, persist: tuple[str, ...], names: list[str]
) -> None:
    """For each failed task in `names`, look for a lost input and say so (never raises for a file)."""
    releases = release_dir.parent
    for name in names:
        entry = record.tasks.get(name)
        task = pipeline.tasks.get(name)
        if entry is None or task is None or entry.status != TaskStatus.FAILED:
            continue
        log = records.task_log_file(run_dir, name, entry)
        lost = _lost_input(log, release_dir, releases, task.dir, persist)
        if lost is None:
            continue
        path, other = lost
        folder = path.split("/")[0] if "/" in path else "."
        fix = (
            f"add {folder!r} to persist: in flank.yml (persist: [{folder}]) so what the tasks write there "
            "survives deploys"
            if folder != "."
            else "write it into a folder listed in persist: in flank.yml"
        )
        line = (
            f"flank: {path!r} is missing from this release ({release_dir.name[:7]}) but release "
            f"{other[:7]} has it: it was written inside the release folder, which each deploy replaces; {fix}"
        )
        try:
            with open(log, "ab") as f:
                f.write(b"\n" + line.encode("utf-8", "replace") + b"\n")
        except OSError:
            pass


def _lost_input(
    log: Path, release_dir: Path, releases: Path, task_dir: str | None, persist: tuple[str, ...]
) -> tuple[str, str] | None:
    try:
        tail = tail_lines(log, TAIL_BYTES, TAIL_BYTES)  # the whole lines of its last TAIL_BYTES
        text = b"\n".join(line for _, line in tail.lines).decode("utf-8", "replace")
    except OSError:
        return None
    base = Path(task_dir) if task_dir and task_dir != "." else Path()
    candidates = list(dict.fromkeys(m.group(1).strip() for rx in (_QUOTED, _COLON) for m in rx.finditer(text)))
    try:
        others = sorted(
            (p for p in releases.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != release_dir.name),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
    except OSError:
        return None
    for raw in candidates[:MAX_CANDIDATES]:
        if not raw or raw.startswith(("/", "~")) or ".." in Path(raw).parts or "\0" in raw:
            continue
        rel = (base / raw).as_posix()
        if any(rel == p or rel.startswith(p + "/") for p in persist):
            continue  # a persisted file: not lost at a deploy
        try:
            if os.path.lexists(release_dir / rel):
                continue
            for other in others:
                if (other / rel).is_file():
                    return rel, other.name
        except OSError:
            continue
    return None
