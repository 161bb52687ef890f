"""Run summaries as git notes on refs/notes/flank in the project's bare repo.

One line per run is added to the note of the run's commit, its time in the pipeline's zone:

    flank nightly #17 failed 2026-11-24 02:00 GMT (14m32s) — 3/4 ok; model failed (exit 1, 3 attempts) — URL

A note stays short however long its commit stays deployed: the newest KEEP_FULL
runs of each pipeline keep their line, older ones are folded into one line per
pipeline that counts them by status and links the pipeline's page (the run
records themselves are untouched: the site and `flank status` show every run):

    flank nightly … and 362 earlier runs: 350 ok, 12 failed — http://vm:8083/demo/nightly/

The runner writes the notes ref directly in the bare repo (hooks do not see it;
clients are refused pushes to it by pre-receive). A write reads the old note,
then moves the ref: two writers at once would lose a line or fail on the ref
lock, so every write holds the project's notes flock.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from flank_ops.fileio import locked
from flank_ops.git.gitcmd import run_git
from flank_ops.paths import ProjectPaths

NOTES_REF = "refs/notes/flank"
KEEP_FULL = 3  # newest runs per pipeline kept in full on a note
# What a run status reads as in a fold line; other statuses keep their own name.
FOLD_WORDS = {"success": "ok"}

_RUN_LINE = re.compile(r"^flank (?P<pipeline>\S+) #(?P<run_id>\d+) (?P<status>\S+) ")
_FOLD_LINE = re.compile(r"^flank (?P<pipeline>\S+) … and (?P<count>\d+) earlier runs?: (?P<counts>.*?) — (?P<url>\S+)$")
_FOLD_COUNT = re.compile(r"^(?P<n>\d+) (?P<word>\S+)$")


class RunSelection(Protocol):
    """What part of the pipeline a run chose (store.model.Selection)."""

    @property
    def task(self) -> str | None: ...
    @property
    def from_(self) -> str | None: ...
    @property
    def rerun_of(self) -> int | None: ...


class FinishedRun(Protocol):
    """What a note line says of a run (store.model.RunRecord has it; git/ sits below store/)."""

    @property
    def pipeline(self) -> str: ...
    @property
    def run_id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> str | None: ...
    @property
    def duration_s(self) -> float | None: ...
    @property
    def summary(self) -> str | None: ...
    @property
    def trigger(self) -> str | None: ...
    @property
    def selection(self) -> RunSelection: ...


def run_kind(record: FinishedRun) -> str:
    """What kind of run it was, as a note says it: `schedule`, `push`, `manual, --from load`, `rerun of #16`."""
    selection = record.selection
    if selection.rerun_of is not None:
        return f"rerun of #{selection.rerun_of}"
    parts = [str(record.trigger or "manual")]
    for option, value in (("task", selection.task), ("from", selection.from_)):
        if value:
            parts.append(f"--{option} {value}")
    return ", ".join(parts)


def note_line(
    record: FinishedRun,
    page_url: str,
    timezone: str | None = None,
    completes: int | None = None,
    by: str | None = None,
    params: str = "",
) -> str:
    """The spec's one-line summary of a finished run (not yet masked), with the kind of run beside its
    duration and, after it, the parameters not at their default (`params`, run.records.params_text);
    `page_url` is the run's page (site/layout.run_url: git/ sits below site/ and does not place pages
    itself); `completes`: the full run this successful `--rerun` completed (run/state.py); `by` who
    started it when a person did ("ada via web": store/model.triggered_by_text)."""
    from flank_ops.humanize import NOTE, clock, duration  # here: the push's pre-receive imports NOTES_REF only

    kind = run_kind(record) + (f", {params}" if params else "")
    parts = [
        f"flank {record.pipeline} #{record.run_id} {record.status}",
        clock(record.started_at, timezone, NOTE) if record.started_at else "?",
        f"({duration(record.duration_s)}, {kind})",
    ]
    line = " ".join(parts)
    if record.summary:
        line += f" — {record.summary}"
    if completes is not None:
        line += f"; completes #{completes}"
    if by:
        line += f" — by {by}"
    return f"{line} — {page_url}"


def _fold_counts(text: str) -> dict[str, int] | None:
    counts: dict[str, int] = {}
    for part in text.split(", "):
        match = _FOLD_COUNT.match(part.strip())
        if not match:
            return None
        counts[match["word"]] = counts.get(match["word"], 0) + int(match["n"])
    return counts


def fold_note(text: str, keep: int = KEEP_FULL) -> str:
    """The note `text` with each pipeline's runs beyond its newest `keep` folded into one line.

    Lines are in the order runs were added (oldest first). A pipeline's fold line keeps the
    counts of every run folded so far and links the pipeline's page (its run URLs' folder);
    lines flank did not write are kept as they are.
    """
    other: list[str] = []
    folds: dict[str, tuple[dict[str, int], str]] = {}  # pipeline -> (counts by word, url)
    runs: list[tuple[str, str, str]] = []  # (pipeline, status, line), oldest first
    for line in text.splitlines():
        if not line.strip():
            continue
        fold = _FOLD_LINE.match(line)
        counts = _fold_counts(fold["counts"]) if fold else None
        if fold and counts is not None:
            old_counts, _ = folds.get(fold["pipeline"], ({}, ""))
            for word, n in counts.items():
                old_counts[word] = old_counts.get(word, 0) + n
            folds[fold["pipeline"]] = (old_counts, fold["url"])
            continue
        run = _RUN_LINE.match(line)
        if run:
            runs.append((run["pipeline"], run["status"], line))
        else:
            other.append(line)
    per_pipeline: dict[str, int] = {}
    for pipeline, _, _ in runs:
        per_pipeline[pipeline] = per_pipeline.get(pipeline, 0) + 1
    kept: list[str] = []
    seen: dict[str, int] = {}
    for pipeline, status, line in runs:
        seen[pipeline] = seen.get(pipeline, 0) + 1
        if per_pipeline[pipeline] - seen[pipeline] < keep:
            kept.append(line)
            continue
        counts, url = folds.get(pipeline, ({}, ""))
        word = FOLD_WORDS.get(status, status)
        counts[word] = counts.get(word, 0) + 1
        folds[pipeline] = (counts, url or pipeline_page(line))
    fold_lines = [fold_line(pipeline, counts, url) for pipeline, (counts, url) in folds.items()]
    return "\n".join(other + fold_lines + kept) + "\n"


def fold_line(pipeline: str, counts: dict[str, int], url: str) -> str:
    """`flank nightly … and 362 earlier runs: 350 ok, 12 failed — URL` (ok first, then by count)."""
    total = sum(counts.values())
    order = sorted(counts, key=lambda w: (w != "ok", -counts[w], w))
    parts = ", ".join(f"{counts[w]} {w}" for w in order)
    return f"flank {pipeline} … and {total} earlier run{'s' if total != 1 else ''}: {parts} — {url}"


def pipeline_page(line: str) -> str:
    """The pipeline page of a run line: its run address (layout.run_url) cut back to the pipeline's folder
    (a pruned run's line links it already)."""
    tail = line.rsplit(" — ", 1)[-1].strip()
    url = tail.split()[-1] if tail else tail
    match = re.match(r"^(.*/)\d+/$", url)
    return match[1] if match else url


PRUNED = "pruned; its pipeline: "


def _pruned_line(line: str) -> str:
    """A run line whose run was pruned: its page is gone, so it links the pipeline page instead."""
    head, sep, _ = line.rpartition(" — ")
    return f"{head} — {PRUNED}{pipeline_page(line)}" if sep else line


def mark_pruned(paths: ProjectPaths, pipeline: str, run_ids: Iterable[int]) -> int:
    """Rewrite the note lines of pruned runs so they link the pipeline page, not a page that is gone
    (issue 19); returns the number of notes changed. Every note is read in one `git cat-file --batch`."""
    wanted = {int(i) for i in run_ids}
    if not wanted:
        return 0
    git_dir = Path(paths.bare_repo)
    with locked(paths.lock_file("notes")):
        listed = run_git(["notes", f"--ref={NOTES_REF}", "list"], git_dir=git_dir, check=False)
        pairs = [line.split() for line in listed.stdout.decode().splitlines() if len(line.split()) == 2]
        if listed.returncode != 0 or not pairs:
            return 0
        batch = run_git(
            ["cat-file", "--batch"], git_dir=git_dir, input="".join(f"{blob}\n" for blob, _ in pairs).encode()
        ).stdout
        changed = 0
        pos = 0
        for _, commit in pairs:
            header_end = batch.index(b"\n", pos)
            size = int(batch[pos:header_end].split()[2])
            text = batch[header_end + 1 : header_end + 1 + size].decode("utf-8", "replace")
            pos = header_end + 1 + size + 1
            lines = text.splitlines()
            new = []
            for line in lines:
                run = _RUN_LINE.match(line)
                hit = run and run["pipeline"] == pipeline and int(run["run_id"]) in wanted and PRUNED not in line
                new.append(_pruned_line(line) if hit else line)
            if new != lines:
                run_git(
                    ["notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", commit],
                    git_dir=git_dir,
                    input=("\n".join(new) + "\n").encode("utf-8"),
                    env=_who(),
                )
                changed += 1
        return changed


def _who() -> dict[str, str]:
    # Notes are commits: give them an identity, the VM's git may have none configured.
    host = os.uname().nodename  # the host name (socket.gethostname's), without loading socket
    return {
        "GIT_AUTHOR_NAME": "flank",
        "GIT_AUTHOR_EMAIL": f"flank@{host}",
        "GIT_COMMITTER_NAME": "flank",
        "GIT_COMMITTER_EMAIL": f"flank@{host}",
    }


def append_note(paths: ProjectPaths, sha: str, line: str, keep: int = KEEP_FULL) -> None:
    """Add `line` to the note of commit `sha` on refs/notes/flank, folding runs beyond the newest
    `keep` per pipeline (see fold_note); serialized across processes by the notes lock."""
    with locked(paths.lock_file("notes")):
        old = _without_run(read_note(paths, sha), line)
        text = fold_note(old + ("\n" if old and not old.endswith("\n") else "") + line + "\n", keep)
        run_git(
            ["notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", sha],
            git_dir=Path(paths.bare_repo),
            input=text.encode("utf-8"),
            env=_who(),
        )


def _without_run(note: str, line: str) -> str:
    """The note without an earlier line of the run `line` is about: a resumed run (issue 26) that
    was interrupted and then finished has one line, its last."""
    new = _RUN_LINE.match(line)
    if new is None or not note:
        return note
    key = (new["pipeline"], new["run_id"])
    kept = [
        old for old in note.splitlines() if (m := _RUN_LINE.match(old)) is None or (m["pipeline"], m["run_id"]) != key
    ]
    return "\n".join(kept) + ("\n" if kept else "")


def read_note(paths: ProjectPaths, sha: str) -> str:
    """The note text of `sha` ('' when there is none)."""
    proc = run_git(["notes", f"--ref={NOTES_REF}", "show", sha], git_dir=Path(paths.bare_repo), check=False)
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else ""
