"""issue 26: one engine query per run and executor, however many tasks wait on it.

Each remote task is a process of its own (make starts one per task), and each used to ask the
engine about its job on its own: 200 tasks were 200 pollers against slurmctld or the AWS API.
Now the tasks of a run share one answer through files in the run's jobs/ folder:

    jobs/<kind>.ids          the run's job ids, one a line (each task adds its own at submit)
    jobs/<kind>.poll.json    {"at": unix time, "states": {job id: the engine's answer}}
    jobs/<kind>.poll.lock    whoever holds it asks the engine, for every id at once

A task reads poll.json; when it is older than MAX_AGE_S (or was taken before the task's job
existed) the first task to take the lock asks the engine about all the run's jobs in one call
(Slurm: `scontrol show job -o`; Batch: describe_jobs, 100 ids a call) and writes the answer
(atomically); the others wait on the lock and read it. The answer of one job is whatever
`fetch` made of it (plain JSON); the backend turns it into a JobState as before.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_AGE_S = 1.0  # at most one engine query a second per run and executor

Fetch = Callable[[list[str]], dict[str, Any]]  # job ids -> {job id: answer}; ids the engine lacks are left out


class SharedPoll:
    def __init__(
        self, folder: Path, kind: str, fetch: Fetch, done: Callable[[Any], bool], max_age_s: float = MAX_AGE_S
    ) -> None:
        """`done(answer)`: the job is over (it is not asked about again once every task read it)."""
        self.folder, self.kind, self.fetch, self.done, self.max_age_s = Path(folder), kind, fetch, done, max_age_s
        self.registered: dict[str, float] = {}  # job id -> when this process added it (unix time)

    def _path(self, suffix: str) -> Path:
        return self.folder / f"{self.kind}.{suffix}"

    def register(self, job_id: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path("ids"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, f"{job_id}\n".encode())
        finally:
            os.close(fd)
        self.registered[job_id] = time.time()

    def _read(self) -> tuple[float, dict[str, Any]]:
        try:
            data = json.loads(self._path("poll.json").read_text())
            return float(data["at"]), dict(data["states"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0, {}

    def _usable(self, at: float, states: dict[str, Any], job_id: str) -> bool:
        """Fresh, and taken after the job was submitted (else its absence means nothing)."""
        return time.time() - at < self.max_age_s and (job_id in states or at > self.registered.get(job_id, 0.0))

    def state(self, job_id: str) -> tuple[bool, Any]:
        """(known, answer): the engine's answer about the job from a shared query at most
        MAX_AGE_S old; (False, None) when that query did not list the job (ask about it alone)."""
        at, states = self._read()
        if not self._usable(at, states, job_id):
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._path("poll.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # another task may be asking: its answer will do
                at, states = self._read()
                if not self._usable(at, states, job_id):
                    # jobs seen over stay in the answer (their tasks may not have read it yet), unasked
                    over = {i: a for i, a in states.items() if self.done(a)}
                    asked = [i for i in self._ids() if i not in over]
                    at, states = time.time(), {**over, **(self.fetch(asked) if asked else {})}
                    self._write(at, states)
            finally:
                os.close(fd)  # releases the lock
        if job_id in states:
            return True, states[job_id]
        return False, None

    def _ids(self) -> list[str]:
        try:
            lines = self._path("ids").read_text().split()
        except OSError:
            lines = []
        return list(dict.fromkeys([*lines, *self.registered]))

    def _write(self, at: float, states: dict[str, Any]) -> None:
        from flank_ops.fileio import atomic_write_text

        atomic_write_text(
            self._path("poll.json"), json.dumps({"at": at, "states": states}, default=str), mode=0o600, durable=False
        )
