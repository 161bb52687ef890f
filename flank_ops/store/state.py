"""A pipeline's state: what every run needs to know about the runs before it, in one small file.

    runs/<pipeline>/state.json
    {"format": 1,
     "last_id": 17,                                    the last run id handed out
     "running": [17],                                  runs not finished (their runners may have died)
     "last_finished": {"run_id": 16, "status": "failed"},   the run that finished last (any status)
     "last_success": 15,                               the newest run that succeeded (null: none)
     "last_ran": {"run_id": 16, "status": "failed"},   the newest finished run that ran (not a
                                                       trigger refused by overlap: skip)
     "last_full": {"run_id": 16, "status": "failed"},       the newest finished full (not partial,
                                                       not skipped) run; a rerun of it (or of a
                                                       rerun of it) adds "via": its id, and one that
                                                       succeeds completes it: "status": "success",
                                                       "completed_by": the rerun's id
     "outcomes": [{"run_id": 15, "status": "success"}, {"run_id": 16, "status": "failed"}]}
                                                       the last two runs that ended success, failed
                                                       or interrupted (what notifications compare)

Why: `flank run` and `flank status` must cost the same with 10 or 100,000 past runs, so no
per-run path scans history.jsonl or lists the run folders; they read this instead. It is
updated under the pipeline's run-id lock together with the record it follows: when a run is
created (`created`) and when its final record and history line are written (`finished`).

It is a cache of history.jsonl and the run folders: a missing or damaged file (a FLANK_HOME
from before it existed, a crash) is rebuilt from them (`rebuild`, the one full scan). This
module is pure (no files); store/records.py reads, rebuilds and writes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FORMAT = 2  # 2: "last_ran", reruns completing "last_full" (a format-1 file is rebuilt)
# Statuses a notification compares a success with (skipped and cancelled runs say nothing).
OUTCOME_STATUSES = ("success", "failed", "interrupted")


@dataclass
class PipelineState:
    """A pipeline's state.json: its last run id and the runs going on."""

    last_id: int = 0
    running: list[int] = field(default_factory=list)
    last_finished: dict[str, Any] | None = None
    last_success: int | None = None
    last_full: dict[str, Any] | None = None
    last_ran: dict[str, Any] | None = None
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # oldest first, at most two

    def to_text(self) -> str:
        return (
            json.dumps(
                {
                    "format": FORMAT,
                    "last_id": self.last_id,
                    "running": self.running,
                    "last_finished": self.last_finished,
                    "last_success": self.last_success,
                    "last_full": self.last_full,
                    "last_ran": self.last_ran,
                    "outcomes": self.outcomes,
                },
                separators=(", ", ": "),
            )
            + "\n"
        )

    @classmethod
    def from_text(cls, text: str) -> PipelineState:
        """Raises ValueError for anything but a state file this version wrote."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a pipeline state file")
        state = cls(
            last_id=data["last_id"],
            running=data["running"],
            last_finished=data["last_finished"],
            last_success=data["last_success"],
            last_full=data["last_full"],
            last_ran=data["last_ran"],
            outcomes=data["outcomes"],
        )
        if not (
            isinstance(state.last_id, int)
            and isinstance(state.running, list)
            and all(isinstance(i, int) for i in state.running)
            and isinstance(state.outcomes, list)
        ):
            raise ValueError("not a pipeline state file")
        return state

    def created(self, run_id: int) -> None:
        """Run `run_id` was handed out and its first record written."""
        self.last_id = max(self.last_id, run_id)
        if run_id not in self.running:
            self.running.append(run_id)

    def finished(self, entry: Mapping[str, Any]) -> None:
        """A run's history line (model.history_entry) was written: it is over."""
        run_id, status = entry["run_id"], entry["status"]
        self.running = [i for i in self.running if i != run_id]
        self.last_id = max(self.last_id, run_id)
        self.last_finished = {"run_id": run_id, "status": status}
        if status == "success" and (self.last_success or 0) < run_id:
            self.last_success = run_id
        if status != "skipped" and (self.last_ran or {}).get("run_id", 0) < run_id:
            self.last_ran = {"run_id": run_id, "status": status}
        if status != "skipped" and not entry.get("partial") and (self.last_full or {}).get("run_id", 0) < run_id:
            self.last_full = {"run_id": run_id, "status": status}
        elif self.last_full is not None and _reruns(entry, self.last_full):
            self.last_full = completed_by_rerun(self.last_full, run_id, status)
        if status in OUTCOME_STATUSES:
            self.outcomes = [*(o for o in self.outcomes if o["run_id"] != run_id), {"run_id": run_id, "status": status}]
            self.outcomes = self.outcomes[-2:]

    def forget(self, run_id: int) -> None:
        """A run folder that is gone (or never got a record): not running any more."""
        self.running = [i for i in self.running if i != run_id]

    def outcome_before(self, run_id: int) -> dict[str, Any] | None | bool:
        """The outcome (run_id, status) of the run that finished before run `run_id`, None when
        there was none; False when this state cannot tell (another run finished since)."""
        if not self.outcomes or self.outcomes[-1]["run_id"] != run_id:
            return False
        return self.outcomes[-2] if len(self.outcomes) > 1 else None


def _reruns(entry: Mapping[str, Any], full: Mapping[str, Any]) -> bool:
    """Is the finished run `entry` a `--rerun` of the last full run, or of a rerun of it?"""
    rerun_of = entry.get("rerun_of")
    return rerun_of is not None and rerun_of in (full["run_id"], full.get("via"))


def completed_by_rerun(full: Mapping[str, Any], rerun_id: int, status: str) -> dict[str, Any]:
    """The last full run after `--rerun` of it (or of a rerun of it) ended with `status`: a rerun
    that succeeds completes it — the pipeline is green again, as GitHub Actions' "re-run failed
    jobs" turns its run green; one that does not is remembered, so a rerun of *it* may."""
    if full["status"] == "success" or status == "skipped":  # nothing left to complete
        return dict(full)
    if status == "success":
        return {"run_id": full["run_id"], "status": "success", "completed_by": rerun_id}
    return {**full, "via": rerun_id}


def rebuild(
    history: Iterable[Mapping[str, Any]], run_ids: Iterable[int], last_id: int, is_partial: Any = None
) -> PipelineState:
    """The state from the whole history (in the order runs finished) and the run folders on disk.
    `is_partial(run_id)` answers for history lines from before they said whether they were partial."""
    state = PipelineState(last_id=last_id)
    finished: set[int] = set()
    for entry in history:
        if entry.get("partial") is None and is_partial is not None:
            entry = {**entry, "partial": is_partial(entry["run_id"])}
        state.finished(entry)
        finished.add(entry["run_id"])
    ids = sorted(run_ids)
    state.running = [i for i in ids if i not in finished]
    state.last_id = max([state.last_id, *ids[-1:], *finished]) if ids or finished else state.last_id
    return state
