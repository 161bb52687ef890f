"""issue 26: `max_parallel:` — at most N instances of a matrix task run at once.

make's -j bounds the whole run; a matrix task's own bound is N lock files per task in the
run folder (RUN_DIR/slots/<task>.<k>): an instance starts once it holds one (flock), and
the lock goes with the process that holds it (through the exec into the launcher, and
when it dies, however it dies). While it waits, the instance's make job slot waits too.
"""

from __future__ import annotations

import fcntl
import os
import select
from collections.abc import Callable

SLOTS_DIR = "slots"
WAIT_POLL_S = 0.05


def hold_slot(run_dir: str, group: str, max_parallel: int, stopped: Callable[[], bool]) -> int | None:
    """Block until one of the group's slots is free; -> its fd (kept open, not close-on-exec,
    so the lock lasts as long as the task), or None when `stopped()` says to give up."""
    from flank_ops.config.model import make_target

    folder = os.path.join(run_dir, SLOTS_DIR)
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, f"{make_target(group)}.{k}") for k in range(max_parallel)]
    while not stopped():
        for path in paths:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.set_inheritable(fd, True)
            return fd
        select.select([], [], [], WAIT_POLL_S)
    return None
